"""What a run draws once from a mixer besides its batches: the fixed validation data and the feature statistics.

The validation mixtures are whole-utterance mixtures drawn with ``data.valid_seed``
and cut into training-chunk lengths, as examples (:func:`validation_set`) or,
for features on the device, as scaled sources (:func:`validation_sources`); the
training objective (:mod:`deepclust.training.objectives`) picks which a run gets.
The per-bin feature statistics the network normalises with come from training
chunks (:func:`feature_statistics`). No Keras here, as in :mod:`deepclust.data.mixer`.
"""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..dsp import audio
from .mixer import Mixer, example_of_mixture, map_targets


def chunks_of(array: np.ndarray, frames: int, hop: int) -> list[np.ndarray]:
    """Cut (T, ...) into ``frames``-long pieces every ``hop`` frames, the last one padded."""
    starts = list(range(0, max(array.shape[0] - frames, 0) + 1, hop))
    if starts[-1] + frames < array.shape[0]:
        starts.append(array.shape[0] - frames)
    return [audio.fit_length(array[s:s + frames], frames, axis=0) for s in starts]


def validation_set(mixer: Mixer, config: Config):
    """Fixed validation chunks: whole-utterance mixtures drawn once with ``valid_seed``,
    cut into ``chunk_frames`` chunks every ``chunk_hop`` frames (as the original did).
    Returns (features, labels), or with the mixer's extra targets (``mixer.form.extra``: a mask
    head's) (features, (labels, *extra))."""
    d = config.data
    extra = mixer.form.extra
    rng = np.random.default_rng(d.valid_seed)
    xs, ys = [], []
    for _ in range(d.valid_mixtures):
        feats, targets = example_of_mixture(mixer.draw_sources(rng, None), config, extra)
        xs += chunks_of(feats, d.chunk_frames, d.chunk_hop)
        ys.append(map_targets(lambda t: chunks_of(t, d.chunk_frames, d.chunk_hop), targets))
    if extra:
        return np.stack(xs), tuple(np.stack([c for y in ys for c in y[i]]) for i in range(1 + len(extra)))
    return np.stack(xs), np.stack([c for y in ys for c in y])


def validation_sources(mixer: Mixer, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The validation mixtures of :func:`validation_set` for features on the device: each whole-utterance
    mixture's scaled sources cut into training-chunk lengths of samples, a chunk every ``chunk_hop``
    frames' worth, the last padded; (N, max_speakers, samples) and a placeholder target per chunk.
    Each chunk is level-normalised on its own (the host path normalises whole mixtures), so val_loss
    is not comparable across the two paths."""
    d, f = config.data, config.features
    samples = config.stft.samples_for_frames(d.chunk_frames)
    rng = np.random.default_rng(d.valid_seed)
    chunks = []
    for _ in range(d.valid_mixtures):
        sources = mixer.draw_sources(rng, None)
        chunks += [c.T for c in chunks_of(sources.T, samples, d.chunk_hop * f.hop_length)]
    return mixer.stack(chunks, samples), np.zeros(len(chunks), np.float32)


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
