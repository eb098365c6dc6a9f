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

from typing import Sequence

import numpy as np

from .audio import SILENT_RMS
from .config import DataConfig

# wsj0-2mix scales a mixture and its sources together so that no sample of any of them exceeds this.
MIX_PEAK = 0.9


def limit_peak(scaled: np.ndarray, peak: float = MIX_PEAK) -> np.ndarray:
    """(k, n) scaled sources, all scaled together so the loudest sample of the mixture or of any source is ``peak``."""
    loudest = max(float(np.max(np.abs(scaled), initial=0.0)), float(np.max(np.abs(scaled.sum(axis=0)), initial=0.0)))
    return scaled * (peak / loudest) if loudest > 0 else scaled


def _unit_rms_scales(sources: Sequence[np.ndarray], gains_db: Sequence[float]) -> np.ndarray:
    """Per source: the factor that brings it to unit RMS times ``10 ** (gain / 20)`` (0 for a silent one)."""
    if len(gains_db) != len(sources):
        raise ValueError(f"expected one gain per source. Received: {len(sources)} sources, {len(gains_db)} gains")
    rms = np.array([np.sqrt(np.mean(np.square(np.asarray(s, np.float64)))) if len(s) else 0.0 for s in sources])
    scale = np.where(rms > SILENT_RMS, 1.0 / np.maximum(rms, SILENT_RMS), 0.0)  # silent sources stay silent
    return scale * 10.0 ** (np.asarray(gains_db, np.float64) / 20.0)


def wsj0_scale(sources: np.ndarray, gains_db: Sequence[float]) -> np.ndarray:
    """(k, n) sources -> (k, n) float32 sources as they sit in the mixture: each at unit RMS
    times ``10 ** (gain / 20)``, then :func:`limit_peak`. The mixture is their sum."""
    sources = np.asarray(sources, np.float64)
    if sources.ndim != 2:
        raise ValueError(f"wsj0_scale: expected (sources, samples). Received: sources {sources.shape}")
    return limit_peak(sources * _unit_rms_scales(sources, gains_db)[:, None]).astype(np.float32)


def peak_scale(sources: np.ndarray, gains: Sequence[float]) -> np.ndarray:
    """The original project's mixing: each source to unit peak times a linear gain, then :func:`limit_peak`."""
    sources = np.asarray(sources, np.float64)
    peak = np.max(np.abs(sources), axis=1) if sources.shape[1] else np.zeros(sources.shape[0])
    scale = np.where(peak > 0, 1.0 / np.maximum(peak, 1e-12), 0.0) * np.asarray(gains, np.float64)
    return limit_peak(sources * scale[:, None]).astype(np.float32)


def mix_wsj0(sources: Sequence[np.ndarray], gains_db: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Whole utterances mixed as wsj0-2mix: each whole utterance brought to its level, then all cut
    to the shortest and :func:`limit_peak`ed together. Returns (mixture (n,), scaled sources (k, n))."""
    if not len(sources):
        raise ValueError("mix_wsj0: expected at least one source. Received: 0 sources")
    scales = _unit_rms_scales(sources, gains_db)
    length = min(len(s) for s in sources)
    scaled = limit_peak(np.stack([np.asarray(s, np.float64)[:length] * g for s, g in zip(sources, scales)]))
    scaled = scaled.astype(np.float32)
    return scaled.sum(axis=0), scaled


def draw_scaled(sources: np.ndarray, rng: np.random.Generator, cfg: DataConfig) -> np.ndarray:
    """Training mixtures: (k, n) sources scaled with gains drawn at random, as ``data.mixing`` says.

    ``wsj0``: gains uniform in [-level_db, level_db] dB; ``peak``: linear gains
    uniform in [peak_gain_min, peak_gain_max) (the original).
    """
    k = len(sources)
    if cfg.mixing == "wsj0":
        return wsj0_scale(sources, rng.uniform(-cfg.level_db, cfg.level_db, size=k))
    return peak_scale(sources, rng.uniform(cfg.peak_gain_min, cfg.peak_gain_max, size=k))


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
