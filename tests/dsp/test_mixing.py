"""mixing: the wsj0-2mix mixer (levels, peak, cut, silence), the original's peak mixing, segments."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import synth_voice
from deepclust.dsp import mixing


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64))))


def _loudest(scaled: np.ndarray) -> float:
    return max(float(np.abs(scaled).max()), float(np.abs(scaled.sum(axis=0)).max()))


def test_wsj0_scale_levels_are_the_gains_and_peak_is_mix_peak():
    sources = np.stack([synth_voice(110.0, 1.0, 0), 0.01 * synth_voice(200.0, 1.0, 1), 3 * synth_voice(300.0, 1.0, 2)])
    gains = [2.0, -2.0, 0.5]
    scaled = mixing.wsj0_scale(sources, gains)
    assert scaled.shape == sources.shape and scaled.dtype == np.float32
    assert _db(scaled[0]) - _db(scaled[1]) == pytest.approx(4.0, abs=1e-3)
    assert _db(scaled[2]) - _db(scaled[1]) == pytest.approx(2.5, abs=1e-3)
    assert _loudest(scaled) == pytest.approx(mixing.MIX_PEAK, rel=1e-6)
    # the peak may be a source's rather than the mixture's: then that source sits at MIX_PEAK
    opposed = np.stack([synth_voice(150.0, 0.5, 3), -synth_voice(150.0, 0.5, 3)])
    scaled = mixing.wsj0_scale(opposed, [0.0, 0.0])
    assert float(np.abs(scaled).max()) == pytest.approx(mixing.MIX_PEAK, rel=1e-6)
    assert float(np.abs(scaled.sum(axis=0)).max()) < 1e-6


def test_wsj0_level_is_unit_rms_times_the_gain_and_zero_for_silence():
    np.testing.assert_allclose(mixing.wsj0_level([0.5, 2.0, 1e-7], [0.0, 20.0, 5.0]), [2.0, 5.0, 0.0], rtol=1e-12)
    x = synth_voice(110.0, 0.5, 0)
    a, b = mixing.wsj0_scale(np.stack([x, x]), [3.0, -3.0]), mixing.mix_wsj0([x, x], [3.0, -3.0])[1]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # both mixers bring an utterance to one level


def test_wsj0_scale_silent_source_stays_zero():
    sources = np.stack([synth_voice(110.0, 0.5, 0), np.zeros(4000), np.full(4000, 1e-8)])
    scaled = mixing.wsj0_scale(sources, [0.0, 10.0, 10.0])
    assert np.all(scaled[1] == 0) and np.all(scaled[2] == 0)
    assert _loudest(scaled) == pytest.approx(mixing.MIX_PEAK, rel=1e-6)
    assert np.all(mixing.wsj0_scale(np.zeros((2, 100)), [0.0, 0.0]) == 0)  # all silent: no division by zero
    with pytest.raises(ValueError, match="one gain per source"):
        mixing.wsj0_scale(sources, [0.0, 0.0])


def test_mix_wsj0_cuts_to_the_shortest():
    a = synth_voice(110.0, 1.2, 0) * np.linspace(0.2, 1.0, 9600, dtype=np.float32)  # louder at its end
    b = 0.01 * synth_voice(200.0, 0.8, 1)  # much quieter and shorter
    mixture, scaled = mixing.mix_wsj0([a, b], [2.0, -2.0])
    assert mixture.shape == (len(b),) and scaled.shape == (2, len(b))
    assert mixture.dtype == scaled.dtype == np.float32
    np.testing.assert_allclose(mixture, scaled.sum(axis=0), atol=1e-6)
    assert max(np.abs(mixture).max(), np.abs(scaled).max()) == pytest.approx(mixing.MIX_PEAK, rel=1e-5)
    # As create_wav_2speakers.m: levels are set on the whole utterances, then they are cut.
    whole = _db(a[:len(b)]) - _db(a)  # how much louder the kept part of a is than all of a
    assert _db(scaled[0]) - _db(scaled[1]) == pytest.approx(4.0 + whole, abs=0.01)
    assert abs(whole) > 0.05  # the test tells the two orders apart
    with pytest.raises(ValueError, match="one gain per source"):
        mixing.mix_wsj0([a, b], [0.0])
    with pytest.raises(ValueError, match="at least one source"):
        mixing.mix_wsj0([], [])


def test_peak_scale_gains():
    sources = np.stack([0.2 * synth_voice(110.0, 0.5, 0), 3.0 * synth_voice(200.0, 0.5, 1)])
    scaled = mixing.peak_scale(sources, [0.5, 0.25])
    peaks = np.abs(scaled).max(axis=1)
    assert peaks[0] / peaks[1] == pytest.approx(2.0, rel=1e-5)  # unit peaks times the linear gains
    assert _loudest(scaled) == pytest.approx(mixing.MIX_PEAK, rel=1e-6)
    np.testing.assert_allclose(mixing.peak_scale(0.001 * sources, [0.5, 0.25]), scaled, rtol=1e-5, atol=1e-7)
    assert np.all(mixing.peak_scale(np.zeros((2, 10)), [0.5, 0.5]) == 0)


def test_segment_cuts_long_and_pads_short_signals():
    rng = np.random.default_rng(0)
    signal = np.arange(1, 101, dtype=np.float32)
    cut = mixing.segment(signal, 30, rng)
    assert cut.shape == (30,) and np.all(np.diff(cut) == 1)  # a contiguous stretch
    padded = mixing.segment(signal[:10], 25, rng)
    assert padded.shape == (25,) and padded.dtype == np.float32
    nonzero = np.flatnonzero(padded)
    assert len(nonzero) == 10 and np.array_equal(padded[nonzero], signal[:10])
    assert np.array_equal(mixing.segment(signal, 100, rng), signal)
