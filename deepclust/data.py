"""Training data: the corpus of a list, the on-the-fly mixture drawer, and the Keras dataset.

The lists are read by :mod:`deepclust.lists`; mixtures are drawn on the fly:
k distinct speakers, a random segment of one utterance of each, scaled by
:mod:`deepclust.mixing` and turned into (features, labels) by
:mod:`deepclust.features`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from . import audio, features, mixing
from .config import Config
from .lists import Entry, parse_list
from .progress import Progress

log = logging.getLogger(__name__)


class DataError(ValueError):
    """The data cannot make the mixtures the config asks for."""


@dataclass
class Corpus:
    """Utterances loaded into memory, grouped by speaker."""

    speakers: dict[str, list[np.ndarray]]
    skipped: list[tuple[Entry, str]] = field(default_factory=list)

    @property
    def num_utterances(self) -> int:
        return sum(len(u) for u in self.speakers.values())

    @property
    def seconds(self) -> float:
        return sum(len(x) for u in self.speakers.values() for x in u)


def load_corpus(list_file: str | Path, sample_rate: int, min_speakers: int = 1, progress: bool = False) -> Corpus:
    """Read every utterance of ``list_file`` at ``sample_rate``.

    Unreadable, missing, empty or non-finite files are skipped with a warning
    naming file and line, and counted; if nothing usable is left, or fewer
    speakers than a mixture needs, a DataError says so.
    """
    entries = parse_list(list_file)
    if not entries:
        raise DataError(f"{list_file}: no utterances listed; expected one 'path speakerID' per line.")
    speakers: dict[str, list[np.ndarray]] = {}
    skipped: list[tuple[Entry, str]] = []
    bar = Progress(len(entries), f"reading {list_file}", unit="file", enabled=progress)
    for entry in entries:
        try:
            signal, _ = audio.read(entry.path, sample_rate)
            if signal.size == 0:
                raise audio.AudioError(f"{entry.path}: zero-length audio")
            if not np.any(signal):
                raise audio.AudioError(f"{entry.path}: all samples are zero")
        except audio.AudioError as exc:
            log.warning("%s: skipped: %s", entry.where, exc)
            skipped.append((entry, str(exc)))
            bar.step(skipped=True)
        else:
            speakers.setdefault(entry.speaker, []).append(signal)
            bar.step()
    if skipped:
        log.warning("%s: skipped %d of %d utterances (see warnings above)", list_file, len(skipped), len(entries))
    if not speakers:
        raise DataError(f"{list_file}: none of the {len(entries)} listed files could be read; check the paths.")
    if len(speakers) < min_speakers:
        raise DataError(
            f"{list_file}: {len(speakers)} speaker(s) but mixtures need {min_speakers} distinct speakers; "
            f"add speakers to the list or lower data.min_speakers. Received: speakers={sorted(speakers)}"
        )
    return Corpus(speakers, skipped)


def map_targets(fn, targets):
    """``fn`` applied to the targets: one array, or each array of a tuple (a model with a mask head)."""
    return tuple(fn(t) for t in targets) if isinstance(targets, tuple) else fn(targets)


def example_from_sources(scaled_sources: np.ndarray, config: Config):
    """Scaled sources (k, samples) -> (log-magnitude (T, F), labels (T, F, max_speakers)),
    or with a mask head (log-magnitude, (labels, mask targets (T, F, max_speakers + 1)))."""
    feats, targets = examples_from_sources(scaled_sources[None], config)
    return feats[0], map_targets(lambda t: t[0], targets)


def examples_from_sources(scaled_sources: np.ndarray, config: Config):
    """A stack of mixtures' scaled sources (B, k, samples), zero rows for absent speakers,
    -> (log-magnitude (B, T, F), labels (B, T, F, max_speakers)); with ``model.mask_head``
    the targets are (labels, mask targets (B, T, F, max_speakers + 1)), one per output.

    One STFT of all sources of the stack; the mixture's spectrum is their sum
    (the STFT is linear), so it needs no transform of its own.
    """
    fcfg = config.features
    gains = np.array([features.level_gain(m, fcfg) for m in scaled_sources.sum(axis=1)], np.float32)
    source_specs = features.stft(scaled_sources * gains[:, None, None], fcfg)  # (B, k, T, F)
    spec = source_specs.sum(axis=1)
    weights = features.bin_weights(spec, fcfg)
    labels = features.dominant_labels(source_specs, weights, config.data.max_speakers)
    if not config.model.mask_head:
        return features.log_magnitude(spec), labels
    return features.log_magnitude(spec), (labels, features.mask_targets(source_specs, spec, config.data.max_speakers))


# A bucketed batch draws at most this many candidate mixtures per place before
# it takes mixtures from other buckets (and pads to the longest of them).
MAX_BUCKET_DRAWS = 50


class Mixer:
    """Draws random mixtures of distinct speakers from a corpus."""

    def __init__(self, corpus: Corpus, config: Config):
        self.config = config
        self.names = sorted(corpus.speakers)
        self.utterances = [corpus.speakers[n] for n in self.names]
        if len(self.names) < config.data.min_speakers:
            raise DataError(
                f"{len(self.names)} speaker(s) available but data.min_speakers={config.data.min_speakers}; "
                "add speakers or lower data.min_speakers."
            )
        self.chunk_samples = features.samples_for_frames(config.data.chunk_frames, config.features)

    def num_speakers(self, rng: np.random.Generator) -> int:
        d = self.config.data
        # Drawn only when asked for, so configs without single voices draw the same mixtures as before.
        if d.single_speaker_fraction and rng.random() < d.single_speaker_fraction:
            return 1
        hi = min(d.max_speakers, len(self.names))
        return int(rng.integers(d.min_speakers, hi + 1))

    def pick(self, rng: np.random.Generator, k: int | None = None) -> list[np.ndarray]:
        """The utterances of one mixture: ``k`` (default: drawn) distinct speakers, one utterance each."""
        k = self.num_speakers(rng) if k is None else k
        chosen = rng.choice(len(self.names), size=k, replace=False)
        return [self.utterances[s][int(rng.integers(len(self.utterances[s])))] for s in chosen]

    def draw_sources(self, rng: np.random.Generator, length: int | None, k: int | None = None) -> np.ndarray:
        """(k, length) scaled sources; ``length=None`` uses whole utterances cut to the shortest."""
        utts = self.pick(rng, k)
        if length is None:
            length = min(len(u) for u in utts)
        return mixing.draw_scaled(np.stack([mixing.segment(u, length, rng) for u in utts]), rng, self.config.data)

    def chunk(self, rng: np.random.Generator):
        """One training chunk: (chunk_frames, F) features and (chunk_frames, F, C) labels."""
        feats, targets = self.batch(rng, 1)
        return feats[0], map_targets(lambda t: t[0], targets)

    def batch(self, rng: np.random.Generator, size: int, frames: int | None = None):
        """``size`` chunks of ``frames`` (default ``chunk_frames``) frames: (size, frames, F)
        features and (size, frames, F, C) labels."""
        if self.config.data.whole_utterances:
            return self.bucketed_batch(rng, size)
        frames = frames or self.config.data.chunk_frames
        samples = features.samples_for_frames(frames, self.config.features)
        sources = [self.draw_sources(rng, samples) for _ in range(size)]
        return self._examples(sources, samples, frames)

    def bucketed_batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` whole-utterance mixtures of similar length, padded to their bucket's end.

        The first mixture drawn sets the bucket (so buckets come up as often as
        their lengths do); further draws are kept if they fall in it. Only the
        choice of utterances is repeated, which costs nothing next to the STFT.
        """
        d, fcfg = self.config.data, self.config.features
        longest = features.samples_for_frames(d.max_frames, fcfg)
        width = d.bucket_frames

        def frames_of(utts):
            return features.num_frames(min(min(len(u) for u in utts), longest), fcfg)

        picks = [self.pick(rng)]
        bucket = (frames_of(picks[0]) - 1) // width if width else 0
        for _ in range(MAX_BUCKET_DRAWS * size):
            if len(picks) == size:
                break
            utts = self.pick(rng)
            if not width or (frames_of(utts) - 1) // width == bucket:
                picks.append(utts)
        while len(picks) < size:  # a rare bucket: take any mixtures, the batch is padded to its longest
            picks.append(self.pick(rng))
        frames = min(d.max_frames, (bucket + 1) * width) if width else max(frames_of(u) for u in picks)
        frames = max(frames, max(frames_of(u) for u in picks))
        sources = []
        for utts in picks:
            length = min(min(len(u) for u in utts), longest)
            sources.append(mixing.draw_scaled(np.stack([mixing.segment(u, length, rng) for u in utts]), rng, d))
        return self._examples(sources, features.samples_for_frames(frames, fcfg), frames)

    def _examples(self, sources: list[np.ndarray], samples: int, frames: int):
        """Sources of each mixture (k_i, <= samples), zero-padded into one stack -> features, labels of ``frames``."""
        stack = np.zeros((len(sources), self.config.data.max_speakers, samples), np.float32)
        for b, scaled in enumerate(sources):
            stack[b, :scaled.shape[0], :scaled.shape[1]] = scaled
        feats, targets = examples_from_sources(stack, self.config)

        def fit(array):
            return _fit_frames(array.swapaxes(0, 1), frames).swapaxes(0, 1)

        return fit(feats), map_targets(fit, targets)


def _fit_frames(array: np.ndarray, frames: int) -> np.ndarray:
    """Crop or zero-pad the first axis to ``frames`` (zero labels carry no weight)."""
    if array.shape[0] >= frames:
        return array[:frames]
    pad = [(0, frames - array.shape[0])] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, pad)


def chunks_of(array: np.ndarray, frames: int, hop: int) -> list[np.ndarray]:
    """Cut (T, ...) into ``frames``-long pieces every ``hop`` frames, the last one padded."""
    starts = list(range(0, max(array.shape[0] - frames, 0) + 1, hop))
    if starts[-1] + frames < array.shape[0]:
        starts.append(array.shape[0] - frames)
    return [_fit_frames(array[s:s + frames], frames) for s in starts]


def validation_set(mixer: Mixer, config: Config):
    """Fixed validation chunks: whole-utterance mixtures drawn once with ``valid_seed``,
    cut into ``chunk_frames`` chunks every ``chunk_hop`` frames (as the original did).
    Returns (features, labels), or (features, (labels, mask targets)) with a mask head."""
    d = config.data
    rng = np.random.default_rng(d.valid_seed)
    xs, ys = [], []
    for _ in range(d.valid_mixtures):
        feats, targets = example_from_sources(mixer.draw_sources(rng, None), config)
        xs += chunks_of(feats, d.chunk_frames, d.chunk_hop)
        ys.append(map_targets(lambda t: chunks_of(t, d.chunk_frames, d.chunk_hop), targets))
    if config.model.mask_head:
        return np.stack(xs), tuple(np.stack([c for y in ys for c in y[i]]) for i in range(2))
    return np.stack(xs), np.stack([c for y in ys for c in y])


def feature_statistics(mixer: Mixer, config: Config, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and variance of log-magnitude features over ``stats_mixtures`` training chunks."""
    rng = np.random.default_rng([seed, 7])
    total = np.zeros(config.num_bins, np.float64)
    total_sq = np.zeros(config.num_bins, np.float64)
    count = 0
    for _ in range(config.data.stats_mixtures):
        feats, _ = mixer.chunk(rng)
        total += feats.sum(axis=0)
        total_sq += np.square(feats, dtype=np.float64).sum(axis=0)
        count += feats.shape[0]
    mean = total / count
    variance = np.maximum(total_sq / count - mean**2, 1e-6)
    return mean.astype(np.float32), variance.astype(np.float32)


class MixtureDataset(keras.utils.PyDataset):
    """Batches of fresh random mixtures; batch i of epoch e is a pure function of (seed, e, i),
    so any number of worker threads gives the same data."""

    def __init__(self, mixer: Mixer, config: Config, batch_size: int | None = None, steps: int | None = None,
                 seed: int | None = None, shard: tuple[int, int] = (0, 1), **kwargs):
        workers = config.data.workers
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=max(2 * workers, 4), **kwargs)
        self.mixer = mixer
        self.batch_size = batch_size or config.train.batch_size
        self.steps = steps or config.train.steps_per_epoch
        self.seed = config.train.seed if seed is None else seed
        self.shard = shard  # (index, count): worker i of n draws its own stream of mixtures
        self.epoch = 0  # written only by callbacks.EpochSync
        self.frames_served = self.batches_served = 0  # batch lengths vary with whole_utterances
        # Chunk-length curriculum (data.long_chunk_frames): epochs from this one on draw long
        # chunks, in batches as much smaller as keeps the frames per step; None = not yet.
        self.long_from_epoch: int | None = None
        long_frames = config.data.long_chunk_frames
        self.long_batch_size = max(1, round(self.batch_size * config.data.chunk_frames / long_frames)) \
            if long_frames else self.batch_size

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        return self.batch_at(self.epoch, index)

    def batch_at(self, epoch: int, index: int):
        """Batch ``index`` of ``epoch``: the same arrays whoever asks, in whatever order."""
        rng = np.random.default_rng([self.seed, self.shard[0], self.shard[1], int(epoch), int(index)])
        if self.long_from_epoch is not None and epoch >= self.long_from_epoch:
            x, y = self.mixer.batch(rng, self.long_batch_size, self.mixer.config.data.long_chunk_frames)
        else:
            x, y = self.mixer.batch(rng, self.batch_size)
        self.frames_served += x.shape[0] * x.shape[1]
        self.batches_served += 1
        return x, y

    @property
    def frames_per_batch(self) -> float:
        """Mean frames (batch x length) per batch handed out so far."""
        return self.frames_served / max(self.batches_served, 1)
