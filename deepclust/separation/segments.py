"""Long signals in overlapping segments: where the segments lie, the network run over them in batches,
and their pieces cross-faded back into one signal.

The one place that cuts, batches and stitches (demucs's ``apply_model`` shape), so a file of any length
is separated in bounded memory; what the network and the masks are is the caller's
(:class:`deepclust.separation.separator.Separator` hands them in as functions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

# Neighbouring segments overlap by this much and are cross-faded, so the
# BLSTM sees context on both sides of every boundary.
SEGMENT_OVERLAP_SECONDS = 1.0
# Embeddings of a file are kept between the fitting and the masking pass up
# to this size; longer files run the network twice instead of holding more.
EMBEDDING_CACHE_BYTES = 256 * 2**20
# Segments of equal length go through the network together, this many at a
# time: enough to occupy the cores, few enough to bound memory (8 x 8 s of
# 40-dim embeddings at 8 kHz is about 170 MB).
SEGMENT_BATCH = 8


@dataclass
class Segment:
    start: int  # sample offset in the file (model rate)
    signal: np.ndarray
    fade_in: int = 0   # samples shared with the previous segment (cross-faded)
    fade_out: int = 0  # samples shared with the next one


def segments(signal: np.ndarray, length: int, overlap: int) -> list[Segment]:
    """The fewest pieces of at most ``length`` samples that cover ``signal`` with
    neighbours overlapping by at least ``overlap``, all of one length and evenly
    spaced: equal lengths go through the network as one batch, and no piece is
    a short remainder (a 10 s file is two 5.5 s pieces, not 8 s + 3 s)."""
    total = len(signal)
    if total <= length:
        return [Segment(0, signal)]
    count = math.ceil((total - overlap) / (length - overlap))
    size = min(length, math.ceil((total + (count - 1) * overlap) / count) + 1)
    starts = [(i * (total - size)) // (count - 1) for i in range(count)]
    shared = [starts[i] + size - starts[i + 1] for i in range(count - 1)]
    return [Segment(start, signal[start:start + size], fade_in=shared[i - 1] if i else 0,
                    fade_out=shared[i] if i < count - 1 else 0) for i, start in enumerate(starts)]


def split(signal: np.ndarray, sample_rate: int, seconds: float, min_length: int) -> list[Segment]:
    """:func:`segments` of ``seconds`` (at least ``min_length`` samples: one STFT window) overlapping by
    SEGMENT_OVERLAP_SECONDS, or by a quarter of a segment where that is less; none for an empty signal."""
    length = max(int(seconds * sample_rate), min_length)
    overlap = min(int(SEGMENT_OVERLAP_SECONDS * sample_rate), length // 4)
    return segments(signal, length, overlap) if signal.size else []


def crossfade(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Weights for one segment: linear ramps where it overlaps its neighbours, 1 elsewhere."""
    w = np.ones(length, np.float32)
    if fade_in:
        w[:fade_in] = np.linspace(0.0, 1.0, fade_in + 2, dtype=np.float32)[1:-1]
    if fade_out:
        w[length - fade_out:] = np.linspace(1.0, 0.0, fade_out + 2, dtype=np.float32)[1:-1]
    return w


def batched(segs: Sequence[Segment], featurize: Callable[[Segment], tuple[np.ndarray, Any]],
            network: Callable[[np.ndarray], Iterable[Any]], size: int = SEGMENT_BATCH) -> Iterator[tuple[int, Any, Any]]:
    """``(index, payload, output)`` for every segment, in order. ``featurize(segment)`` gives the network's
    input for it and a payload handed through; ``network`` takes the stacked inputs of up to ``size``
    consecutive segments of one input shape and gives one output per segment: a batch keeps the CPU's
    cores (or the GPU) busy where one long sequence through a BLSTM runs one frame at a time."""
    group: list[tuple[int, np.ndarray, Any]] = []

    def flush():
        outputs = network(np.stack([inputs for _, inputs, _ in group]))
        for (i, _, payload), output in zip(group, outputs):
            yield i, payload, output
        group.clear()

    for i, seg in enumerate(segs):
        inputs, payload = featurize(seg)
        if group and (len(group) == size or group[-1][1].shape != inputs.shape):
            yield from flush()
        group.append((i, inputs, payload))
    if group:
        yield from flush()


def fits_cache(values: int) -> bool:
    """Whether a file's ``values`` float32 embedding values (all its segments') are kept between the pass that
    fits the masker and the pass that masks, rather than the network run again for the second."""
    return values * 4 <= EMBEDDING_CACHE_BYTES


def replay(cached: dict[int, tuple], count: int, rerun: Callable[[], Iterator[tuple]]) -> Iterator[tuple]:
    """The second pass's ``(index, *kept)`` for each of ``count`` segments, in order: what the first pass kept in
    ``cached`` (each taken out as it is used, so its memory goes with it) where it kept every segment, else
    ``rerun()``, the network run over the segments again."""
    if len(cached) == count:
        return ((i, *cached.pop(i)) for i in range(count))
    return rerun()


def overlap_add(pieces: Iterable[tuple[Segment, np.ndarray]], channels: int, length: int) -> np.ndarray:
    """The (channels, length) signal from each segment's (channels, samples) piece, cross-faded
    (:func:`crossfade`) where neighbours overlap."""
    out = np.zeros((channels, length), np.float32)
    for seg, piece in pieces:
        out[:, seg.start:seg.start + len(seg.signal)] += piece * crossfade(len(seg.signal), seg.fade_in, seg.fade_out)
    return out
