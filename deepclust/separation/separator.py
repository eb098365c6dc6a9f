"""Separation: the :class:`Separator` API, from a mixture to one waveform per speaker.

One analysis path serves ``separate``, ``visualize`` and the speaker-count
script: the file is cut into overlapping segments of ``segment_seconds``
and embedded batch by batch (:mod:`deepclust.separation.segments`: bounded
memory however long the file is), a sample of every segment's active bins is
kept, the speakers are counted (``--num-speakers auto``) and one masker is
fitted on that sample for the whole file (:mod:`deepclust.separation.clustering`),
so speaker n is the same voice from start to end. Rendering then masks each
segment and inverts it, and the segments are cross-faded back into one signal.
``Separator.timings`` keeps the seconds each stage took (``scripts/bench.py``
reads them). :meth:`Separator.separate` takes audio at any rate,
mono or (samples, channels), and gives the sources back at that rate and
length; the ``separate`` command's work on files (:mod:`deepclust.separation.files`)
only calls it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import keras
import numpy as np

from .. import paths
from ..config import MAX_SPEAKERS, SeparateConfig, read_config_file
from ..dsp import audio, features
from ..nn import chimera, model as model_lib
from .clustering import KMeansMasker, estimate_num_speakers, normalize
from .segments import Segment, batched, fits_cache, overlap_add, replay, split

log = logging.getLogger(__name__)

# Shorter inputs are refused: a few dozen frames cannot show which bins go together.
MIN_SECONDS = 0.25


class SeparationError(ValueError):
    """A file cannot be separated as asked; the message says why and how to fix it."""


@dataclass
class Separation:
    """The result for one mixture: ``sources`` is (k, samples) at ``sample_rate`` (the input's rate and
    length); ``notes`` say what was done to the input on the way (downmix, resampling, the count found),
    ``warnings`` what may make the result poor; ``source`` is the file it came from, if any."""

    sources: np.ndarray
    sample_rate: int
    num_speakers: int
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: Path | None = None
    counted: bool = False  # num_speakers came from --num-speakers auto


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
class Analysis:
    """What pass 1 learnt of one file: its segments and level gain, a sample of the embeddings of its
    active bins (``samples`` (n, D); ``sample_bins`` (n, 3): segment, frame, bin of each;
    ``sample_magnitudes`` (n,): the mixture's magnitude there), the speaker
    count and the masker fitted on them, and the embeddings kept for pass 2 where they fit in memory."""

    segments: list[Segment]
    gain: float
    length: int
    masker: KMeansMasker | chimera.HeadMasker
    samples: np.ndarray | None = None
    sample_bins: np.ndarray | None = None
    sample_magnitudes: np.ndarray | None = None
    active_count: int = 0
    num_speakers: int = 0
    cached: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Separator:
    """Separates mixtures with a trained deep clustering model."""

    def __init__(self, model: keras.Model, config: SeparateConfig | None = None):
        self.model = model
        spec = model_lib.feature_spec(model)
        self.sample_rate = spec.sample_rate
        self.stft = spec.stft
        self.features = spec.feature_config()
        self.config = config or SeparateConfig()
        self.timings = Timings()
        if self.config.mask == "network" and not chimera.has_mask_head(model):
            raise SeparationError(
                "separate.mask='network' uses the masks of a mask head, and this model has none (it was "
                "trained without model.mask_head); use mask='soft' or 'binary'. Received: mask='network'"
            )

    @classmethod
    def load(cls, source: str | Path = paths.PRETRAINED, **overrides) -> "Separator":
        """From ``"pretrained"`` (the model shipped in the package), a training folder (``model.keras``
        and ``config.toml``) or a ``.keras`` file.

        The ``[separate]`` section of the config saved beside the model sets the
        defaults; ``overrides`` (e.g. ``mask="soft"``) replace single values.
        """
        model_path = paths.locate(source)
        net = model_lib.load(model_path)
        cfg = SeparateConfig()
        saved = paths.saved_config(model_path)
        if saved.is_file():
            cfg = read_config_file(saved).separate
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return cls(net, replace(cfg, **overrides))

    from_path = load  # the name before the public API; the same call

    @property
    def trained_max_speakers(self) -> int:
        """The most voices in the mixtures this model was trained on (its ``data.max_speakers``)."""
        return model_lib.feature_spec(self.model).max_speakers

    # -- stages ---------------------------------------------------------------
    @property
    def features_bins(self) -> int:
        return self.stft.num_bins

    @property
    def embedding_dim(self) -> int:
        return int(self.model.outputs[0].shape[-1])

    @property
    def mask_slots(self) -> int:
        """Speaker slots of the mask head (0 without one)."""
        return chimera.mask_slots(self.model)

    def segment_features(self, seg: Segment, gain: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One segment's STFT (T, F) at level ``gain``, its log magnitude (the network's input) and its active bins."""
        with self.timings.measure("features"):
            spec = features.stft(seg.signal * gain, self.features)
            return spec, features.log_magnitude(spec), features.active_bins(spec, self.features)

    def _network(self, inputs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Per segment of the batch ``inputs`` (B, T, F): its unit-length embeddings and its head's masks (or None)."""
        with self.timings.measure("network"):
            out = self.model.predict_on_batch(inputs)
            out = out if isinstance(out, (list, tuple)) else [out]
            batch = normalize(keras.ops.convert_to_numpy(out[0]).astype(np.float32))
            masks = keras.ops.convert_to_numpy(out[1]).astype(np.float32) if len(out) > 1 else [None] * len(batch)
        return list(zip(batch, masks))

    def embed_segments(self, segs: list[Segment], gain: float):
        """Yield ``(index, spec, active, embeddings, head masks or None)`` per segment, the network run on
        batches of segments (:func:`segments.batched`)."""
        def featurize(seg):
            spec, feats, active = self.segment_features(seg, gain)
            return feats, (spec, active)

        for i, (spec, active), (emb, mask) in batched(segs, featurize, self._network):
            yield i, spec, active, emb, mask

    def analyse(self, signal: np.ndarray, num_speakers: int | str | None = None, seed: int = 0) -> "Analysis":
        """Pass 1 of a separation: segments, embeddings, the active-bin sample, the speaker count
        and the masker fitted for the whole file. ``signal`` is mono at the model's rate;
        ``num_speakers`` a count, ``"auto"`` (see :func:`clustering.estimate_num_speakers`) or None
        for the config's value."""
        num_speakers = num_speakers or self.config.num_speakers
        auto = num_speakers == "auto"
        k = 1 if auto else self._checked_count(num_speakers)
        if self.config.mask == "network" and k > self.mask_slots:
            raise SeparationError(
                f"the model's mask head has {self.mask_slots} speaker slots (data.max_speakers it was "
                f"trained with); use mask='soft' to cluster more voices. Received: num_speakers={k}"
            )
        analysis = self.embed_file(np.asarray(signal, np.float32), seed)
        if not analysis.length:
            raise SeparationError("the signal is empty; expected at least "
                                  f"{MIN_SECONDS} s of audio. Received: 0 samples")
        if not auto and k > self.trained_max_speakers:
            analysis.warnings.append(f"asked for {k} speakers, and the model was trained on mixtures of at most "
                                     f"{self.trained_max_speakers}: expect a poor separation")
        with self.timings.measure("kmeans"):
            if auto:
                most = self.config.auto_max_speakers
                most = min(most, self.mask_slots) if self.config.mask == "network" else most
                k = estimate_num_speakers(analysis.samples, most, self.config.auto_max_cosine,
                                          self.config.auto_max_cosine_many, seed)
            analysis.num_speakers = k
            analysis.masker.fit(analysis.samples, k, analysis.sample_magnitudes)
        if analysis.active_count < 10 * max(k, 2):
            analysis.warnings.append(f"only {analysis.active_count} active time-frequency bins: "
                                     "the input is (nearly) silent")
        return analysis

    def analyse_oracle(self, signal: np.ndarray, references: np.ndarray, seed: int = 0) -> "Analysis":
        """Pass 1 with the oracle's centres in place of k-means's (``evaluate --oracle centres``): each
        of the (k, samples) ``references``' mean embedding over the sampled bins where it is the loudest
        (:func:`clustering.oracle_centers`), speaker n the n-th reference."""
        if self.config.mask == "network":
            raise SeparationError("oracle centres replace k-means's centres, and mask='network' uses no k-means; "
                                  "use mask='soft' or 'binary'. Received: mask='network'")
        references = np.atleast_2d(np.asarray(references, np.float32))
        if references.shape[1] != len(signal):
            raise SeparationError(f"references: expected (speakers, {len(signal)}) samples, as long as the mixture. "
                                  f"Received: references of shape {references.shape}")
        analysis = self.embed_file(np.asarray(signal, np.float32), seed)
        analysis.num_speakers = k = len(references)
        segment, frame, fbin = analysis.sample_bins.T
        loudness = np.zeros((k, len(segment)), np.float32)
        for i, seg in enumerate(analysis.segments):
            at = segment == i
            spec = features.stft(references[:, seg.start:seg.start + len(seg.signal)] * analysis.gain, self.features)
            loudness[:, at] = np.abs(spec[:, frame[at], fbin[at]])
        analysis.masker.fit_oracle(analysis.samples, np.argmax(loudness, axis=0), k, analysis.sample_magnitudes)
        return analysis

    def embed_file(self, signal: np.ndarray, seed: int = 0) -> "Analysis":
        """Embed every segment of ``signal`` (in batches of equal-length segments), keep a sample of
        ``kmeans_max_bins`` active bins spread over the file, and show each segment to the masker."""
        gain = features.level_gain(signal, self.features)
        segs = split(signal, self.sample_rate, self.config.segment_seconds, self.features.window_length)
        masker = chimera.HeadMasker(self.features.hop_length) if self.config.mask == "network" else \
            KMeansMasker(self.config, seed)
        analysis = Analysis(segs, gain, len(signal), masker)
        per_segment = max(1, self.config.kmeans_max_bins // max(len(segs), 1))
        bins_total = sum(self.stft.num_frames(len(g.signal)) for g in segs) * self.features_bins
        keep = fits_cache(bins_total * self.embedding_dim)
        rng = np.random.default_rng(seed)
        samples, where, magnitudes = [], [], []
        for i, spec, active, emb, head in self.embed_segments(segs, gain):
            if keep:
                analysis.cached[i] = (spec, emb, head)
            masker.observe(i, segs[i].start, segs[i].start + len(segs[i].signal), spec, head)
            idx = np.flatnonzero(active.ravel())
            analysis.active_count += idx.size
            if idx.size > per_segment:
                idx = np.sort(rng.choice(idx, per_segment, replace=False))
            samples.append(emb.reshape(-1, emb.shape[-1])[idx])
            magnitudes.append(np.abs(spec.reshape(-1)[idx]))
            where.append(np.stack([np.full(idx.size, i), idx // spec.shape[1], idx % spec.shape[1]], axis=1))
        analysis.samples = np.concatenate(samples) if samples else np.zeros((0, self.embedding_dim), np.float32)
        analysis.sample_magnitudes = np.concatenate(magnitudes) if magnitudes else np.zeros(0, np.float32)
        analysis.sample_bins = np.concatenate(where) if where else np.zeros((0, 3), np.int64)
        return analysis

    def segment_masks(self, analysis: "Analysis") -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Pass 2: ``(segment index, spectrum (T, F), masks (k, T, F))`` for every segment, from the
        embeddings kept in pass 1 or, for a long file, from the network run again (:func:`segments.replay`)."""
        def rerun():
            return ((i, spec, emb, head) for i, spec, _, emb, head in
                    self.embed_segments(analysis.segments, analysis.gain))

        for i, spec, emb, head in replay(analysis.cached, len(analysis.segments), rerun):
            with self.timings.measure("kmeans"):
                masks = analysis.masker.masks(i, emb, head)
            yield i, spec, masks

    def render(self, analysis: "Analysis",
               observe: Callable[[Segment, np.ndarray, np.ndarray], None] | None = None) -> Separation:
        """Masks and inverse STFT of every segment, cross-faded into the separated (k, samples) sources
        (:func:`segments.overlap_add`). ``observe(segment, spectrum, masks)``, if given, sees each segment's
        masks (visualize)."""
        def pieces():
            for i, spec, masks in self.segment_masks(analysis):
                seg = analysis.segments[i]
                if observe is not None:
                    observe(seg, spec, masks)
                with self.timings.measure("istft"):
                    piece = features.reconstruct(spec, masks, len(seg.signal), self.features) / analysis.gain
                yield seg, piece

        k = analysis.num_speakers
        return Separation(overlap_add(pieces(), k, analysis.length), self.sample_rate, k, analysis.warnings)

    def _checked_count(self, num_speakers) -> int:
        if isinstance(num_speakers, bool) or not isinstance(num_speakers, (int, np.integer)) \
                or not 1 <= num_speakers <= MAX_SPEAKERS:
            raise SeparationError(f"num_speakers: expected a count from 1 to {MAX_SPEAKERS} or 'auto' (a sample rate "
                                  f"goes in sample_rate=). Received: num_speakers={num_speakers!r}")
        return int(num_speakers)

    def model_input(self, signal, sample_rate: int | None = None) -> tuple[np.ndarray, list[str]]:
        """``signal`` ((samples,) or (samples, channels) at ``sample_rate``, default the model's) as the
        network takes it, mono at the model's rate, and a note for each change made; refused with a
        :class:`SeparationError` naming what it got where it cannot be separated."""
        rate = self.sample_rate if sample_rate is None else sample_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise SeparationError(f"sample_rate: expected a positive whole number of Hz. Received: sample_rate={rate!r}")
        array = np.asarray(signal)
        if array.dtype.kind not in "fiu" or array.ndim not in (1, 2):
            raise SeparationError("signal: expected real audio of shape (samples,) or (samples, channels). "
                                  f"Received: an array of shape {array.shape} and dtype {array.dtype}")
        if array.ndim == 2 and array.shape[1] > array.shape[0]:
            raise SeparationError("signal: expected (samples, channels), and this has more channels than samples; "
                                  f"pass signal.T if it is (channels, samples). Received: shape {array.shape}")
        if array.size == 0:
            raise SeparationError(f"signal: empty; expected at least {MIN_SECONDS} s of audio. "
                                  f"Received: shape {array.shape}")
        notes = []
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise SeparationError(f"signal: {bad} samples are NaN or infinite; expected finite audio. "
                                  f"Received: shape {array.shape}")
        if array.ndim == 2:
            if array.shape[1] > 1:
                notes.append(f"{array.shape[1]} channels downmixed to mono")
            array = array.mean(axis=1)
        if len(array) < MIN_SECONDS * rate:
            raise SeparationError(f"signal: {len(array) / rate:.3f} s long; expected at least {MIN_SECONDS} s to "
                                  f"tell voices apart. Received: {len(array)} samples at {rate} Hz")
        if rate != self.sample_rate:
            notes.append(f"resampled from {rate} Hz to the model's {self.sample_rate} Hz and back"
                         + (f" (separated below {self.sample_rate // 2} Hz; above it the sources are silent)"
                            if rate > self.sample_rate else ""))
        return audio.resample(array, int(rate), self.sample_rate), notes

    def separate(self, signal, num_speakers: int | str | None = None, *, sample_rate: int | None = None,
                 seed: int = 0) -> Separation:
        """Separate ``signal``, (samples,) or (samples, channels) at ``sample_rate`` (default: the model's),
        into ``sources`` (k, samples) at that rate and length: downmix and resampling on the way in
        (:meth:`model_input`), :meth:`analyse` and :meth:`render`, resampling back on the way out.
        ``num_speakers``: a count, ``"auto"``, or None for the config's value."""
        mono, notes = self.model_input(signal, sample_rate)
        result = self.render(self.analyse(mono, num_speakers, seed))
        result.counted = (num_speakers or self.config.num_speakers) == "auto"
        result.notes = notes
        rate = self.sample_rate if sample_rate is None else int(sample_rate)
        if rate != self.sample_rate:
            result.sources = audio.resample(result.sources.T, self.sample_rate, rate).T
            result.sample_rate = rate
        result.sources = np.ascontiguousarray(audio.fit_length(result.sources, len(np.asarray(signal))), np.float32)
        return result

    def separate_file(self, path: str | Path, num_speakers: int | str | None = None, *, seed: int = 0) -> Separation:
        """:meth:`separate` on an audio file (any format libsndfile reads, at its own rate and channels):
        the sources at the file's rate and length, ``source`` the file (:func:`deepclust.save` writes them)."""
        with self.timings.measure("io"):
            signal, rate = audio.read(path, mono=False)
        result = self.separate(signal, num_speakers, sample_rate=rate, seed=seed)
        result.source = Path(path)
        return result

