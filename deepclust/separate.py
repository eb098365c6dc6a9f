"""Separation: embeddings -> k-means clusters -> masks -> waveforms.

The :class:`Separator` API does the work; the CLI only calls it. A file is
processed in segments of ``segment_seconds`` (overlapping, cross-faded), so
memory stays bounded however long the file is, and all segments are
clustered jointly (one k-means fitted on active bins sampled from the whole
file), so speaker n is the same voice from start to end.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
from sklearn.cluster import KMeans

from . import audio, features
from . import model as model_lib
from .config import CONFIG_FILENAME, SeparateConfig, read_config_file

log = logging.getLogger(__name__)

# Neighbouring segments overlap by this much and are cross-faded, so the
# BLSTM sees context on both sides of every boundary.
SEGMENT_OVERLAP_SECONDS = 1.0
# Embeddings of a file are kept between the fitting and the masking pass up
# to this size; longer files run the network twice instead of holding more.
EMBEDDING_CACHE_BYTES = 256 * 2**20
ENV_BASE = "DEEPC_BASE"
# Speaker counting considers k clusters only with at least this many active bins each.
MIN_BINS_PER_CLUSTER = 10
# Segments of equal length go through the network together, this many at a
# time: enough to occupy the cores, few enough to bound memory (8 x 8 s of
# 40-dim embeddings at 8 kHz is about 170 MB).
SEGMENT_BATCH = 8


class SeparationError(ValueError):
    """A file cannot be separated as asked; the message says why and how to fix it."""


@dataclass
class Separation:
    """The result for one mixture: ``sources`` is (k, samples) at ``sample_rate``."""

    sources: np.ndarray
    sample_rate: int
    num_speakers: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class Clustering:
    """Cluster centres fitted on a file's active bins, and how to turn distances into masks."""

    centers: np.ndarray  # (k, D)
    mask: str = "binary"
    temperature: float = 0.1

    def masks(self, embeddings: np.ndarray) -> np.ndarray:
        """(T, F, D) embeddings -> (k, T, F) masks that sum to one at every bin."""
        k = self.centers.shape[0]
        flat = embeddings.reshape(-1, embeddings.shape[-1])
        # ||v - c||^2 = ||v||^2 - 2 v.c + ||c||^2; ||v|| = 1 for every bin.
        dist = 1.0 - 2.0 * flat @ self.centers.T + np.sum(self.centers**2, axis=1)[None, :]
        if self.mask == "soft" and k > 1:
            logits = -dist / self.temperature
            logits -= logits.max(axis=1, keepdims=True)
            weights = np.exp(logits)
            weights /= weights.sum(axis=1, keepdims=True)
        else:
            weights = np.zeros_like(dist)
            weights[np.arange(dist.shape[0]), np.argmin(dist, axis=1)] = 1.0
        return weights.T.reshape((k,) + embeddings.shape[:-1]).astype(np.float32)


def estimate_num_speakers(samples: np.ndarray, max_speakers: int, max_cosine: float,
                          max_cosine_many: float | None = None, seed: int = 0, n_init: int = 3) -> int:
    """How many speakers the embeddings of active bins hold: the most clusters
    (at most ``max_speakers``) whose k-means centres are all less alike than
    ``max_cosine`` (two clusters) or ``max_cosine_many`` (three or more;
    default ``max_cosine``).

    Deep clustering trains embeddings of different speakers to be orthogonal
    (target affinity 0) and those of one speaker to coincide. Split one voice
    in two and the halves' centres stay close (cosine about 0.8 on held-out
    voices); two voices give centres far apart (about 0.4). Counting on the
    centres is more robust than counting eigenvalues of the embeddings' second
    moment: a network that has not fully converged spreads every speaker over
    a few directions, which inflates the eigenvalue count (held-out voices,
    1-3 speakers, thresholds chosen on validation voices: 81 % right against
    74 % for the best eigenvalue rule).
    """
    many = max_cosine if max_cosine_many is None else max_cosine_many
    for k in range(max_speakers, 1, -1):
        if samples.shape[0] < MIN_BINS_PER_CLUSTER * k:
            continue
        centres = normalize(KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(samples).cluster_centers_)
        if np.max((centres @ centres.T)[np.triu_indices(k, 1)]) < (max_cosine if k == 2 else many):
            return k
    return 1


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalise along the last axis (the original clustered unnormalised vectors)."""
    norm = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    return embeddings / np.maximum(norm, 1e-8)


def fit_clusters(samples: np.ndarray, num_speakers: int, cfg: SeparateConfig, seed: int = 0) -> Clustering:
    """k-means (scikit-learn) on (n, D) embeddings of active bins."""
    if num_speakers == 1 or samples.shape[0] < num_speakers:
        center = samples.mean(axis=0, keepdims=True) if samples.size else np.zeros((1, samples.shape[-1]), np.float32)
        centers = np.repeat(center, num_speakers, axis=0)
        if num_speakers > 1:  # too few active bins to tell voices apart: split nothing
            centers = centers + np.eye(num_speakers, centers.shape[1], dtype=centers.dtype) * 1e-3
        return Clustering(centers.astype(np.float32), cfg.mask, cfg.soft_temperature)
    kmeans = KMeans(n_clusters=num_speakers, n_init=cfg.kmeans_init, random_state=seed)
    kmeans.fit(samples)
    return Clustering(kmeans.cluster_centers_.astype(np.float32), cfg.mask, cfg.soft_temperature)


class SlotAlignment:
    """Keeps a mask head's speaker slots in the same order from segment to segment.

    The head is trained permutation-invariantly, so the slot a voice lands in may
    change between two segments of a file. Each segment takes the order of its
    slots that agrees best with the previous segment where the two overlap
    (mask times mixture magnitude); the energy of each aligned slot over the
    whole file picks the k loudest voices.
    """

    def __init__(self, hop_length: int):
        self.hop = hop_length
        self.orders: dict[int, tuple[int, ...]] = {}
        self.energy: np.ndarray | None = None
        self._tail: np.ndarray | None = None  # the previous segment's aligned, magnitude-weighted masks
        self._end = 0  # the previous segment's last sample + 1

    def add(self, index: int, seg: Segment, masks: np.ndarray, spec: np.ndarray) -> None:
        """Fix the slot order of segment ``index`` ((T, F, slots) masks, (T, F) spectrum); segments in order."""
        weighted = masks * np.abs(spec)[..., None]
        order = tuple(range(masks.shape[-1]))
        frames = min((self._end - seg.start) // self.hop, masks.shape[0]) if self._tail is not None else 0
        if frames > 0:
            tail, head = self._tail[-frames:], weighted[:frames]
            order = max(itertools.permutations(order),
                        key=lambda p: sum(float(np.sum(tail[..., c] * head[..., p[c]])) for c in range(len(p))))
        aligned = weighted[..., list(order)]
        self.orders[index] = order
        self.energy = aligned.sum(axis=(0, 1)) + (0.0 if self.energy is None else self.energy)
        self._tail, self._end = aligned, seg.start + len(seg.signal)

    def loudest(self, k: int) -> list[int]:
        return sorted(np.argsort(-self.energy)[:k].tolist())


def head_masks(masks: np.ndarray, order: tuple[int, ...], slots: list[int]) -> np.ndarray:
    """(T, F, slots) head masks -> (k, T, F) masks of the chosen aligned slots, summing to one at every bin."""
    chosen = masks[..., list(order)][..., slots]
    total = chosen.sum(axis=-1, keepdims=True)
    # A bin whose mass sat in a dropped slot is shared equally rather than lost.
    chosen = np.where(total > 1e-6, chosen / np.maximum(total, 1e-6), 1.0 / len(slots))
    return np.moveaxis(chosen, -1, 0).astype(np.float32)


class Timings(dict):
    """Seconds spent per stage (features, network, kmeans, istft, io), accumulated."""

    @contextlib.contextmanager
    def measure(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self[stage] = self.get(stage, 0.0) + time.perf_counter() - start


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


def crossfade(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Weights for one segment: linear ramps where it overlaps its neighbours, 1 elsewhere."""
    w = np.ones(length, np.float32)
    if fade_in:
        w[:fade_in] = np.linspace(0.0, 1.0, fade_in + 2, dtype=np.float32)[1:-1]
    if fade_out:
        w[length - fade_out:] = np.linspace(1.0, 0.0, fade_out + 2, dtype=np.float32)[1:-1]
    return w


class Separator:
    """Separates mixtures with a trained deep clustering model."""

    def __init__(self, model: keras.Model, config: SeparateConfig | None = None):
        self.model = model
        spec = model_lib.feature_spec(model)
        self.sample_rate = spec.sample_rate
        self.features = spec.feature_config()
        self.config = config or SeparateConfig()
        self.timings = Timings()
        if self.config.mask == "network" and not model_lib.has_mask_head(model):
            raise SeparationError(
                "separate.mask='network' uses the masks of a mask head, and this model has none (it was "
                "trained without model.mask_head); use mask='soft' or 'binary'. Received: mask='network'"
            )

    @classmethod
    def from_path(cls, path: str | Path, **overrides) -> "Separator":
        """From a training folder (``model.keras`` and ``config.toml``) or a model file.

        The ``[separate]`` section of the config saved beside the model sets the
        defaults; ``overrides`` (e.g. ``mask="soft"``) replace single values.
        """
        path = Path(path)
        model_path = path / "model.keras" if path.is_dir() else path
        net = model_lib.load(model_path)
        cfg = SeparateConfig()
        saved = model_path.parent / CONFIG_FILENAME
        if saved.is_file():
            cfg = read_config_file(saved).separate
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return cls(net, replace(cfg, **overrides))

    # -- stages ---------------------------------------------------------------
    def embed(self, log_magnitude: np.ndarray) -> np.ndarray:
        """(T, F) features -> (T, F, D) unit-length embeddings."""
        # predict_on_batch runs a compiled graph; calling the model eagerly
        # would step the LSTM through Python one frame at a time.
        out = self.model.predict_on_batch(log_magnitude[None].astype(np.float32))
        if isinstance(out, (list, tuple)):  # a mask head's output follows the embeddings
            out = out[0]
        return normalize(keras.ops.convert_to_numpy(out)[0].astype(np.float32))

    @property
    def features_bins(self) -> int:
        return self.features.window_length // 2 + 1

    @property
    def embedding_dim(self) -> int:
        return int(self.model.outputs[0].shape[-1])

    @property
    def mask_slots(self) -> int:
        """Speaker slots of the mask head (0 without one)."""
        return int(self.model.outputs[1].shape[-1]) if model_lib.has_mask_head(self.model) else 0

    def _segment_features(self, seg: Segment, gain: float):
        with self.timings.measure("features"):
            spec = features.stft(seg.signal * gain, self.features)
            return spec, features.log_magnitude(spec), features.active_bins(spec, self.features)

    def _embed_segments(self, segs: list[Segment], gain: float):
        """Yield ``(index, spec, active, embeddings, head masks or None)`` per segment, running
        the network on batches of equal-length segments: a batch keeps the CPU's cores (or the
        GPU) busy where one long sequence through a BLSTM runs one frame at a time."""
        group: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []

        def flush():
            with self.timings.measure("network"):
                out = self.model.predict_on_batch(np.stack([g[2] for g in group]))
                out = out if isinstance(out, (list, tuple)) else [out]
                batch = normalize(keras.ops.convert_to_numpy(out[0]).astype(np.float32))
                masks = keras.ops.convert_to_numpy(out[1]).astype(np.float32) if len(out) > 1 else [None] * len(group)
            for (i, spec, _, active), emb, mask in zip(group, batch, masks):
                yield i, spec, active, emb, mask
            group.clear()

        for i, seg in enumerate(segs):
            spec, feats, active = self._segment_features(seg, gain)
            if group and (len(group) == SEGMENT_BATCH or group[-1][2].shape != feats.shape):
                yield from flush()
            group.append((i, spec, feats, active))
        if group:
            yield from flush()

    def separate(self, signal: np.ndarray, num_speakers: int | str | None = None, seed: int = 0) -> Separation:
        """Separate a mono signal at the model's sample rate into (k, samples).

        ``num_speakers``: a count, ``"auto"`` (estimated from the embeddings,
        see :func:`estimate_num_speakers`), or None for the config's value.
        """
        num_speakers = num_speakers or self.config.num_speakers
        auto = num_speakers == "auto"
        k = 1 if auto else int(num_speakers)
        if self.config.mask == "network" and k > self.mask_slots:
            raise SeparationError(
                f"the model's mask head has {self.mask_slots} speaker slots (data.max_speakers it was "
                f"trained with); use mask='soft' to cluster more voices. Received: num_speakers={k}"
            )
        signal = np.asarray(signal, np.float32)
        warnings: list[str] = []
        if signal.size == 0:
            return Separation(np.zeros((k, 0), np.float32), self.sample_rate, k, ["empty input"])
        gain = features.level_gain(signal, self.features)
        seg_len = max(int(self.config.segment_seconds * self.sample_rate), self.features.window_length)
        overlap = min(int(SEGMENT_OVERLAP_SECONDS * self.sample_rate), seg_len // 4)
        segs = segments(signal, seg_len, overlap)
        rng = np.random.default_rng(seed)

        timings = self.timings
        # Pass 1: embeddings of every segment (in batches of equal-length
        # segments); a sample of active bins from each for the clustering.
        per_segment = max(1, self.config.kmeans_max_bins // len(segs))
        bins_total = sum(features.num_frames(len(s.signal), self.features) for s in segs) * self.features_bins
        cache = bins_total * self.embedding_dim * 4 <= EMBEDDING_CACHE_BYTES
        cached: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        samples, active_count = [], 0
        network = self.config.mask == "network"
        alignment = SlotAlignment(self.features.hop_length) if network else None
        for i, spec, active, emb, head in self._embed_segments(segs, gain):
            if cache:
                cached[i] = (spec, emb, head)
            if network:
                alignment.add(i, segs[i], head, spec)
            idx = np.flatnonzero(active.ravel())
            active_count += idx.size
            if idx.size > per_segment:
                idx = rng.choice(idx, per_segment, replace=False)
            samples.append(emb.reshape(-1, emb.shape[-1])[idx])
        samples = np.concatenate(samples)
        if active_count < 10 * max(k, 2):
            warnings.append(f"only {active_count} active time-frequency bins: the input is (nearly) silent")
        with timings.measure("kmeans"):
            if auto:
                most = min(self.config.auto_max_speakers, self.mask_slots) if network else self.config.auto_max_speakers
                k = estimate_num_speakers(samples, most, self.config.auto_max_cosine,
                                          self.config.auto_max_cosine_many, seed)
            if network:
                slots = alignment.loudest(k)
            else:
                clustering = fit_clusters(samples, k, self.config, seed)

        # Pass 2: masks from the joint clustering, inverse STFT, cross-fade.
        out = np.zeros((k, len(signal)), np.float32)
        if cache:
            pass2 = ((i, *cached.pop(i)) for i in range(len(segs)))
        else:
            pass2 = ((i, spec, emb, head) for i, spec, _, emb, head in self._embed_segments(segs, gain))
        for i, spec, emb, head in pass2:
            seg = segs[i]
            with timings.measure("kmeans"):
                masks = head_masks(head, alignment.orders[i], slots) if network else clustering.masks(emb)
            with timings.measure("istft"):
                pieces = features.istft(masks * spec[None], len(seg.signal), self.features) / gain
            out[:, seg.start:seg.start + len(seg.signal)] += pieces * crossfade(len(seg.signal), seg.fade_in,
                                                                               seg.fade_out)
        return Separation(out, self.sample_rate, k, warnings)

    # -- files ------------------------------------------------------------------
    def separate_file(self, path: str | Path, out_dir: str | Path | None = None, *,
                      num_speakers: int | None = None, force: bool = False) -> list[Path]:
        """Separate ``path`` and write ``out_1.wav ... out_k.wav``.

        Outputs go beside the input, or into ``out_dir``. They have the input's
        sample rate and length, are scaled together (max-abs) only if they would
        clip, and never replace existing files unless ``force``.
        """
        path = Path(path)
        num_speakers = num_speakers or self.config.num_speakers
        target = Path(out_dir) if out_dir is not None else path.parent
        # With "auto" the count is known only after clustering: check for up to the most it can be.
        most = self.config.auto_max_speakers if num_speakers == "auto" else int(num_speakers)
        existing = [str(target / f"out_{n}.wav") for n in range(1, most + 1) if (target / f"out_{n}.wav").exists()]
        if existing and not force:
            raise FileExistsError(
                f"{path}: output exists ({', '.join(existing)}); refusing to overwrite. "
                "Use --force to replace, or --out-dir to write elsewhere."
            )
        if target.exists() and not os.access(target, os.W_OK):
            raise PermissionError(f"{target}: output folder is not writable; choose another with --out-dir.")
        with self.timings.measure("io"):
            original, rate = audio.read(path)
            signal = audio.resample(original, rate, self.sample_rate)
        result = self.separate(signal, num_speakers)
        for message in result.warnings:
            log.warning("%s: %s", path, message)
        with self.timings.measure("io"):
            sources = audio.resample(result.sources.T, self.sample_rate, rate).T
            sources = audio.peak_safe(_fit_length(sources, len(original)))
            target.mkdir(parents=True, exist_ok=True)
            outputs = [target / f"out_{n}.wav" for n in range(1, result.num_speakers + 1)]
            for out, source in zip(outputs, sources):
                audio.write(out, source, rate, subtype=self.config.subtype, overwrite=force)
        return outputs


def _fit_length(sources: np.ndarray, length: int) -> np.ndarray:
    if sources.shape[1] >= length:
        return sources[:, :length]
    return np.pad(sources, ((0, 0), (0, length - sources.shape[1])))


def find_model(base: str | Path | None = None, model: str | Path | None = None) -> Path:
    """Where the model is: ``--model``, else ``--base``, else ``$DEEPC_BASE`` (as the original)."""
    if model is not None:
        return Path(model)
    if base is None:
        base = os.environ.get(ENV_BASE)
    if not base:
        raise SeparationError(
            f"no model given: pass --base DIR (a training folder) or --model FILE, "
            f"or set the {ENV_BASE} environment variable to the training folder."
        )
    return Path(base) / "model.keras"


def output_dir_for(path: Path, out_dir: str | Path | None, many: bool) -> Path | None:
    """``None`` (beside the input) for one file without --out-dir; else ``D/<stem>``."""
    if out_dir is None and not many:
        return None
    root = Path(out_dir) if out_dir is not None else path.parent
    return root / path.stem


def separate_files(paths: list[str | Path], *, base=None, model=None, num_speakers=None, out_dir=None,
                   mask=None, force: bool = False) -> tuple[dict[Path, list[Path]], dict[Path, str]]:
    """Separate many files; a failing file is reported and the others go on.

    Returns ``(written, failed)``: outputs per input, and the error per failed input.
    """
    separator = Separator.from_path(find_model(base, model), mask=mask)
    written, failed = {}, {}
    many = len(paths) > 1
    for p in map(Path, paths):
        try:
            written[p] = separator.separate_file(p, output_dir_for(p, out_dir, many),
                                                 num_speakers=num_speakers, force=force)
            log.info("%s -> %s", p, ", ".join(map(str, written[p])))
        except (audio.AudioError, FileExistsError, PermissionError, SeparationError, OSError) as exc:
            failed[p] = str(exc)
            log.error("%s: failed: %s", p, exc)
    return written, failed
