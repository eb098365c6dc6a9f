"""Mixing: sources scaled into a mixture the wsj0-2mix way, or the original project's way.

One mixer serves training (gains drawn at random), ``evaluate``'s mixture
lists (gains from the list) and ``make-corpus`` (its demo mixture and test
lists). wsj0-2mix (``create_wav_2speakers.m``, min mode): every source to the
same level, a gain in dB per source, all cut to the shortest, and the
mixture and sources scaled together so that the loudest sample of any of
them is at ``MIX_PEAK``. RMS stands in for the ITU-T P.56 active speech level
the script uses (RMS counts pauses too, so levels differ slightly from the
published files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .audio import SILENT_RMS

if TYPE_CHECKING:  # only annotations: dsp is the layer below the config, which imports it (Config.stft)
    from ..config import DataConfig

# wsj0-2mix scales a mixture and its sources together so that no sample of any of them exceeds this.
MIX_PEAK = 0.9


def limit_peak(scaled: np.ndarray, peak: float = MIX_PEAK) -> np.ndarray:
    """(..., k, n) scaled sources, each mixture's scaled together so the loudest sample of the
    mixture or of any of its sources is ``peak`` (all-silent ones stay silent)."""
    loudest = np.maximum(np.max(np.abs(scaled), axis=(-2, -1), initial=0.0),
                         np.max(np.abs(scaled.sum(axis=-2)), axis=-1, initial=0.0))
    factor = np.where(loudest > 0, peak / np.maximum(loudest, 1e-30), 1.0)
    return scaled * np.asarray(factor, scaled.dtype)[..., None, None]


def _levels(sources: np.ndarray) -> np.ndarray:
    """RMS of each source of (..., k, n), accumulated in float64."""
    if not sources.shape[-1]:
        return np.zeros(sources.shape[:-1])
    return np.sqrt(np.mean(np.square(sources, dtype=np.float64), axis=-1))


def wsj0_level(rms, gains_db) -> np.ndarray:
    """The factor that brings a source of RMS ``rms`` to its wsj0-2mix level: unit RMS times
    ``10 ** (gain / 20)``, float64; 0 for a silent source (RMS at most ``SILENT_RMS``), which stays silent."""
    rms = np.asarray(rms, np.float64)
    return np.where(rms > SILENT_RMS, 1.0 / np.maximum(rms, SILENT_RMS), 0.0) * 10.0 ** (np.asarray(gains_db) / 20.0)


def _check_gains(sources: np.ndarray, gains: np.ndarray) -> None:
    if sources.ndim < 2 or gains.shape != sources.shape[:-1]:
        raise ValueError(f"expected (..., sources, samples) and one gain per source. "
                         f"Received: sources {sources.shape}, gains {gains.shape}")


def wsj0_scale(sources: np.ndarray, gains_db) -> np.ndarray:
    """(..., k, n) sources -> float32 sources as they sit in their mixtures: each at its :func:`wsj0_level`,
    then :func:`limit_peak`. A mixture is their sum."""
    sources = np.asarray(sources, np.float32)
    gains_db = np.asarray(gains_db, np.float64)
    _check_gains(sources, gains_db)
    scale = wsj0_level(_levels(sources), gains_db)
    return limit_peak(sources * scale.astype(np.float32)[..., None])


def peak_scale(sources: np.ndarray, gains) -> np.ndarray:
    """The original project's mixing: each source to unit peak times a linear gain, then :func:`limit_peak`."""
    sources = np.asarray(sources, np.float32)
    gains = np.asarray(gains, np.float64)
    _check_gains(sources, gains)
    peak = np.max(np.abs(sources), axis=-1, initial=0.0)
    scale = np.where(peak > 0, 1.0 / np.maximum(peak, 1e-12), 0.0) * gains
    return limit_peak(sources * scale.astype(np.float32)[..., None])


def mix_wsj0(sources: Sequence[np.ndarray], gains_db: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Whole utterances mixed as wsj0-2mix: each whole utterance brought to its :func:`wsj0_level`, then all cut
    to the shortest and :func:`limit_peak`ed together. Returns (mixture (n,), scaled sources (k, n))."""
    if not len(sources):
        raise ValueError("mix_wsj0: expected at least one source. Received: 0 sources")
    if len(gains_db) != len(sources):
        raise ValueError(f"mix_wsj0: expected one gain per source. Received: {len(sources)} sources, "
                         f"{len(gains_db)} gains")
    scales = wsj0_level([_levels(np.asarray(s, np.float64)[None])[0] for s in sources], gains_db)
    length = min(len(s) for s in sources)
    scaled = limit_peak(np.stack([np.asarray(s, np.float64)[:length] * g for s, g in zip(sources, scales)]))
    scaled = scaled.astype(np.float32)
    return scaled.sum(axis=0), scaled


def draw_gains(rng: np.random.Generator, k: int, cfg: DataConfig) -> np.ndarray:
    """The gains of one training mixture of ``k`` sources, as ``data.mixing`` says: ``wsj0``: dB
    uniform in [-level_db, level_db]; ``peak``: linear, uniform in [peak_gain_min, peak_gain_max)."""
    if cfg.mixing == "wsj0":
        return rng.uniform(-cfg.level_db, cfg.level_db, size=k)
    return rng.uniform(cfg.peak_gain_min, cfg.peak_gain_max, size=k)


def scale(sources: np.ndarray, gains: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """(..., k, n) sources scaled by their (..., k) gains the ``data.mixing`` way (zero rows stay zero)."""
    return wsj0_scale(sources, gains) if cfg.mixing == "wsj0" else peak_scale(sources, gains)


def draw_scaled(sources: np.ndarray, rng: np.random.Generator, cfg: DataConfig) -> np.ndarray:
    """Training mixtures: (k, n) sources scaled with gains drawn at random (:func:`draw_gains`)."""
    return scale(sources, draw_gains(rng, len(sources), cfg), cfg)


def segment_span(available: int, length: int, rng: np.random.Generator) -> tuple[int, int]:
    """Where a random ``length``-sample stretch of a signal of ``available`` samples comes from:
    ``(start, offset)``: read from ``start``; a short signal (all of it) goes at ``offset`` in the
    zero-padded stretch. One draw from ``rng`` either way."""
    if available >= length:
        return int(rng.integers(0, available - length + 1)), 0
    return 0, int(rng.integers(0, length - available + 1))


def segment(signal: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample stretch of ``signal``; a short one is zero-padded at a random offset."""
    start, offset = segment_span(len(signal), length, rng)
    return place(signal[start:start + length], length, offset)


def place(piece: np.ndarray, length: int, offset: int) -> np.ndarray:
    """``piece`` in a ``length``-sample stretch at ``offset`` (itself when it fills the stretch)."""
    if len(piece) == length:
        return piece
    out = np.zeros(length, np.float32)
    out[offset:offset + len(piece)] = piece
    return out
