"""The on-the-fly mixture drawer: training examples, and the batches they are drawn in.

Mixtures are drawn from a list's :class:`~deepclust.data.index.CorpusIndex`:
k distinct speakers, a random segment of one utterance of each (read from
the cache when drawn), scaled by :mod:`deepclust.dsp.mixing` and turned into
(features, targets) by :mod:`deepclust.dsp.features`, in the :class:`BatchForm` the
training objective asks for (:mod:`deepclust.training.objectives`). Every draw is a
function of the generator it is given, so a batch is the same arrays in whichever
process draws it. The validation data and the feature statistics drawn with a mixer
are :mod:`deepclust.data.validation`'s. No Keras here: worker processes
(:mod:`deepclust.data.batch_processes`) import this module
(the Keras dataset is :mod:`deepclust.data.dataset`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..config import Config
from ..dsp import features, mixing
from .augment import Augmenter
from .index import CorpusIndex, DataError, load_corpus  # noqa: F401  (mixer.load_corpus, mixer.DataError)

log = logging.getLogger(__name__)


# A target beside the labels: (source spectra (B, k, T, F), mixture spectrum (B, T, F), max_speakers)
# -> (B, T, F, ...), such as deepclust.dsp.features.mask_targets. A module-level function, so a
# worker process receives it by name.
TargetFunction = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class BatchForm:
    """What a training batch holds, as the training objective asks (its ``form``): the host's log
    magnitudes and targets, the dominant-speaker labels and after them one array per function of
    ``extra`` (one per further output of the network); or with ``sources`` the scaled sources
    (B, max_speakers, samples), their features left to the device, and a placeholder target."""

    sources: bool = False
    extra: tuple[TargetFunction, ...] = ()


def map_targets(fn, targets):
    """``fn`` applied to the targets: one array, or each array of a tuple (labels and ``BatchForm.extra``'s)."""
    return tuple(fn(t) for t in targets) if isinstance(targets, tuple) else fn(targets)


def example_of_mixture(scaled_sources: np.ndarray, config: Config, extra: tuple[TargetFunction, ...] = ()):
    """One mixture's scaled sources (k, samples) -> (log-magnitude (T, F), labels (T, F, max_speakers)),
    or with ``extra`` target functions (log-magnitude, (labels, each extra target)):
    :func:`examples_of_stack` of a stack of one."""
    feats, targets = examples_of_stack(scaled_sources[None], config, extra)
    return feats[0], map_targets(lambda t: t[0], targets)


def examples_of_stack(scaled_sources: np.ndarray, config: Config, extra: tuple[TargetFunction, ...] = ()):
    """A stack of mixtures' scaled sources (B, k, samples), zero rows for absent speakers,
    -> (log-magnitude (B, T, F), labels (B, T, F, max_speakers)); with ``extra`` target functions
    (:class:`BatchForm`) the targets are (labels, each function's array), one per output.

    One STFT of all sources of the stack; the mixture's spectrum is their sum
    (the STFT is linear), so it needs no transform of its own. The numpy form of
    what :class:`deepclust.dsp.device_features.SourceFeatures` computes on the device,
    from the same primitives of :mod:`deepclust.dsp.features`.
    """
    fcfg = config.features
    gains = np.array([features.level_gain(m, fcfg) for m in scaled_sources.sum(axis=1)], np.float32)
    source_specs = features.stft(scaled_sources * gains[:, None, None], config.stft)  # (B, k, T, F)
    spec = source_specs.sum(axis=1)
    weights = features.bin_weights(spec, fcfg)
    labels = features.dominant_labels(source_specs, weights, config.data.max_speakers)
    if not extra:
        return features.log_magnitude(spec), labels
    return features.log_magnitude(spec), (labels, *(target(source_specs, spec, config.data.max_speakers)
                                                     for target in extra))


def corpus_groups(names: list[str], weights: dict[str, float], list_file, min_speakers: int
                  ) -> list[tuple[float, np.ndarray]]:
    """``data.corpus_weights`` applied to a list's speakers: (weight, speaker indices into ``names``) of each
    corpus with a positive weight and speakers in the list; empty without weights. A speaker belongs to
    the longest prefix of its ID that is a corpus name; one that has none is refused, and so is a corpus
    with fewer speakers than ``min_speakers``. A corpus no speaker of this list belongs to is left out
    (a validation list may hold one corpus only)."""
    if not weights:
        return []
    members: dict[str, list[int]] = {name: [] for name in weights}
    for index, speaker in enumerate(names):
        owners = [name for name in weights if speaker.startswith(name)]
        if not owners:
            raise DataError(f"{list_file}: speaker {speaker!r} belongs to no corpus of data.corpus_weights; "
                            f"expected speaker IDs that start with one of {sorted(weights)} (prefix each "
                            f"corpus's IDs, add its prefix to data.corpus_weights, or set data.corpus_weights = {{}} "
                            f"to draw from the whole list alike). Received: speaker={speaker!r}")
        members[max(owners, key=len)].append(index)
    groups = []
    for name, indices in members.items():
        if not indices or not weights[name]:
            log.info("%s: corpus %r of data.corpus_weights %s; no mixtures drawn from it", list_file, name,
                     "has no speakers here" if not indices else "has weight 0")
            continue
        if len(indices) < min_speakers:
            raise DataError(f"{list_file}: corpus {name!r} of data.corpus_weights has {len(indices)} speaker(s) but "
                            f"mixtures need {min_speakers}; add speakers, give it weight 0 or lower "
                            f"data.min_speakers. Received: {name}={len(indices)} speaker(s)")
        groups.append((weights[name], np.array(indices)))
    if not groups:
        raise DataError(f"{list_file}: no speaker belongs to a corpus of data.corpus_weights with a positive weight. "
                        f"Received: corpus_weights={weights}")
    return groups


# A bucketed batch draws at most this many candidate mixtures per place before
# it takes mixtures from other buckets (and pads to the longest of them).
MAX_BUCKET_DRAWS = 50


class Mixer:
    """Draws random mixtures of distinct speakers from a corpus index, as batches of ``form``."""

    def __init__(self, corpus: CorpusIndex, config: Config, form: BatchForm = BatchForm()):
        self.config = config
        self.form = form
        self.corpus = corpus
        self.names = sorted(corpus.speakers)
        self.utterances = [corpus.speakers[n] for n in self.names]  # utterance ids per speaker
        if len(self.names) < config.data.min_speakers:
            raise DataError(
                f"{len(self.names)} speaker(s) available but data.min_speakers={config.data.min_speakers}; "
                "add speakers or lower data.min_speakers."
            )
        self.stft = config.stft
        self.chunk_samples = self.stft.samples_for_frames(config.data.chunk_frames)
        self.augmenter = Augmenter(config.augment, config.audio.sample_rate, base=corpus.list_file.parent)
        self.corpora = corpus_groups(self.names, config.data.corpus_weights, corpus.list_file,
                                     config.data.min_speakers)

    def num_speakers(self, rng: np.random.Generator, available: int | None = None) -> int:
        """How many speakers the next mixture holds, of ``available`` (default: all of the list)."""
        d = self.config.data
        # Drawn only when asked for, so configs without single voices draw the same mixtures as before.
        if d.single_speaker_fraction and rng.random() < d.single_speaker_fraction:
            return 1
        hi = min(d.max_speakers, len(self.names) if available is None else available)
        return int(rng.integers(d.min_speakers, hi + 1))

    def speaker_pool(self, rng: np.random.Generator, k: int | None = None) -> np.ndarray:
        """Where the next mixture's speakers come from (indices into ``names``): the whole list, or with
        ``data.corpus_weights`` one corpus drawn by its weight among those with at least ``k`` speakers.
        Without corpus weights nothing is drawn, so such configs draw the mixtures they drew before."""
        if not self.corpora:
            return np.arange(len(self.names))
        fit = [(w, pool) for w, pool in self.corpora if len(pool) >= (k or 1)]
        if not fit:
            raise DataError(f"{self.corpus.list_file}: no corpus of data.corpus_weights has {k} speakers for a "
                            f"{k}-speaker mixture. Received: corpus sizes "
                            f"{[len(pool) for _, pool in self.corpora]}")
        weights = np.array([w for w, _ in fit])
        return fit[int(rng.choice(len(fit), p=weights / weights.sum()))][1]

    def pick(self, rng: np.random.Generator, k: int | None = None) -> list[int]:
        """The utterance ids of one mixture: ``k`` (default: drawn) distinct speakers of one
        :meth:`speaker_pool`, one utterance each."""
        pool = self.speaker_pool(rng, k)
        k = self.num_speakers(rng, len(pool)) if k is None else k
        chosen = pool[rng.choice(len(pool), size=k, replace=False)]
        return [self.utterances[s][int(rng.integers(len(self.utterances[s])))] for s in chosen]

    def length(self, uid: int) -> int:
        return int(self.corpus.lengths[uid])

    def segment(self, uid: int, length: int, rng: np.random.Generator, augment: bool = False) -> np.ndarray:
        """A random ``length``-sample stretch of utterance ``uid``, read from the cache (zero-padded if
        short); with ``augment``, as :mod:`deepclust.data.augment` changes it (training draws; validation none)."""
        if augment and self.augmenter.active:
            return self.augmenter.source(lambda n: self.stretch(uid, n, rng), length, rng)
        return self.stretch(uid, length, rng)

    def stretch(self, uid: int, length: int, rng: np.random.Generator) -> np.ndarray:
        start, offset = mixing.segment_span(self.length(uid), length, rng)
        return mixing.place(self.corpus.read(uid, start, start + length), length, offset)

    def scaled(self, utts: list[int], length: int, rng: np.random.Generator, augment: bool = False) -> np.ndarray:
        """(k, length) sources of utterances ``utts`` as they sit in a training mixture."""
        return mixing.draw_scaled(np.stack([self.segment(u, length, rng, augment) for u in utts]), rng,
                                  self.config.data)

    def draw_sources(self, rng: np.random.Generator, length: int | None, k: int | None = None) -> np.ndarray:
        """(k, length) scaled sources; ``length=None`` uses whole utterances cut to the shortest."""
        utts = self.pick(rng, k)
        if length is None:
            length = min(self.length(u) for u in utts)
        return self.scaled(utts, length, rng)

    def chunk(self, rng: np.random.Generator):
        """One training chunk: (chunk_frames, F) features and (chunk_frames, F, C) labels."""
        feats, targets = self.batch(rng, 1)
        return feats[0], map_targets(lambda t: t[0], targets)

    def batch(self, rng: np.random.Generator, size: int):
        """``size`` chunks of ``data.chunk_frames`` frames: (size, frames, F) features and (size, frames, F, C)
        labels (with ``data.whole_utterances``, :meth:`bucketed_batch`)."""
        if self.config.data.whole_utterances:
            return self.bucketed_batch(rng, size)
        frames = self.config.data.chunk_frames
        samples = self.stft.samples_for_frames(frames)
        return self._fitted(examples_of_stack(self.scaled_stack(rng, size, samples), self.config, self.form.extra),
                            frames)

    def bucketed_batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` whole-utterance mixtures of similar length, padded to their bucket's end.

        The first mixture drawn sets the bucket (so buckets come up as often as
        their lengths do); further draws are kept if they fall in it. Only the
        choice of utterances is repeated, which costs nothing next to the STFT.
        """
        d = self.config.data
        longest = self.stft.samples_for_frames(d.max_frames)
        width = d.bucket_frames

        def frames_of(utts):
            return self.stft.num_frames(min(min(self.length(u) for u in utts), longest))

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
        sources = [self.scaled(utts, min(min(self.length(u) for u in utts), longest), rng, augment=True)
                   for utts in picks]
        return self._examples(sources, self.stft.samples_for_frames(frames), frames)

    def source_batch(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """What a batch is with features on the device: the same mixtures as :meth:`batch` draws with
        this generator, as their scaled sources (size, max_speakers, samples), zero rows for absent speakers."""
        return self.scaled_stack(rng, size, self.chunk_samples)

    def scaled_stack(self, rng: np.random.Generator, size: int, samples: int) -> np.ndarray:
        """``size`` training mixtures of ``samples`` samples as a (size, max_speakers, samples) stack of
        scaled sources: drawn one by one (the generator used in the order :meth:`draw_sources` uses
        it), scaled all at once."""
        stack = np.zeros((size, self.config.data.max_speakers, samples), np.float32)
        gains = np.zeros(stack.shape[:2])
        for b in range(size):
            utts = self.pick(rng)
            for c, uid in enumerate(utts):
                stack[b, c] = self.segment(uid, samples, rng, augment=True)
            gains[b, :len(utts)] = mixing.draw_gains(rng, len(utts), self.config.data)
        return mixing.scale(stack, gains, self.config.data)

    def stack(self, sources: list[np.ndarray], samples: int) -> np.ndarray:
        """Sources of each mixture (k_i, <= samples), zero-padded into one (B, max_speakers, samples) stack."""
        stack = np.zeros((len(sources), self.config.data.max_speakers, samples), np.float32)
        for b, scaled in enumerate(sources):
            stack[b, :scaled.shape[0], :scaled.shape[1]] = scaled
        return stack

    def _examples(self, sources: list[np.ndarray], samples: int, frames: int):
        """Sources of each mixture (k_i, <= samples), zero-padded into one stack -> features, labels of ``frames``."""
        return self._fitted(examples_of_stack(self.stack(sources, samples), self.config, self.form.extra), frames)

    @staticmethod
    def _fitted(examples, frames: int):
        """Features and targets of a stack, each cropped or zero-padded to ``frames`` frames."""
        feats, targets = examples

        return features.fit_frames(feats, frames), map_targets(lambda t: features.fit_frames(t, frames), targets)


@dataclass(frozen=True)
class BatchSpec:
    """Everything that decides one batch: worker ``shard`` = (index, count) of a multi-worker run."""

    seed: int
    shard: tuple[int, int]
    epoch: int
    index: int
    size: int


def draw_batch(mixer: Mixer, spec: BatchSpec):
    """The batch ``spec`` names: (features (B, T, F), labels (B, T, F, C)), with the mixer's extra targets
    (features, (labels, *extra)), or with the form's ``sources`` (sources (B, C, samples), placeholder targets (B,))."""
    rng = np.random.default_rng([spec.seed, spec.shard[0], spec.shard[1], spec.epoch, spec.index])
    if mixer.form.sources:
        return mixer.source_batch(rng, spec.size), np.zeros(spec.size, np.float32)
    return mixer.batch(rng, spec.size)
