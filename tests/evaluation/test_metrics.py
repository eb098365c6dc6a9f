"""Metrics: SI-SDR, BSS-eval, permutation solving and the per-mixture score on hand-made signals."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import RATE, synth_voice
from deepclust.evaluation import metrics
from evaluation_data import SECONDS, voices


def test_si_sdr_matches_definition_and_ignores_scale_and_offset():
    rng = np.random.default_rng(0)
    s = synth_voice(140.0, SECONDS, 0).astype(np.float64)
    s -= s.mean()
    noise = rng.standard_normal(s.size)
    noise -= noise.mean()
    noise -= noise @ s / (s @ s) * s  # orthogonal to s: SI-SDR is then exactly the energy ratio
    noise *= 0.1 * np.linalg.norm(s) / np.linalg.norm(noise)  # 20 dB
    estimate = s + noise
    assert metrics.si_sdr(s, estimate) == pytest.approx(20.0, abs=1e-3)
    assert metrics.si_sdr(s, 0.05 * estimate + 0.3) == pytest.approx(20.0, abs=1e-3)
    assert metrics.si_sdr(s + 0.2, estimate) == pytest.approx(20.0, abs=1e-3)  # both are made zero-mean
    assert metrics.si_sdr(s, s) > 60.0
    assert metrics.si_sdr(s, -s) > 60.0  # polarity is a scale too
    assert metrics.si_sdr(s, noise) < -30.0


def test_best_permutation_contract():
    # pairwise[i, j] scores estimate j against reference i; perm[i] = the estimate for reference i.
    pairwise = np.array([[0.0, 5.0, 1.0],
                         [4.0, 0.0, 0.0],
                         [0.0, 1.0, 3.0]])
    assert metrics.best_permutation(pairwise) == (1, 0, 2)
    assert metrics.best_permutation(np.eye(2)) == (0, 1)
    assert metrics.best_permutation(np.array([[7.0]])) == (0,)
    with pytest.raises(ValueError, match=r"square.*shape \(2, 3\)"):
        metrics.best_permutation(np.zeros((2, 3)))


@pytest.mark.parametrize("k", [4, metrics.MAX_EXHAUSTIVE_SOURCES, metrics.MAX_EXHAUSTIVE_SOURCES + 2])
def test_best_permutation_maximises_the_sum_exhaustive_and_hungarian(k):
    rng = np.random.default_rng(k)
    pairwise = rng.standard_normal((k, k))
    perm = metrics.best_permutation(pairwise)
    assert sorted(perm) == list(range(k))
    best = max(pairwise[np.arange(k), list(p)].sum() for p in itertools.permutations(range(k)))
    assert pairwise[np.arange(k), list(perm)].sum() == pytest.approx(best)


def test_si_sdr_pit_finds_the_swap():
    refs = voices([110.0, 190.0], seed=2)
    values, perm = metrics.si_sdr_pit(refs, refs[::-1] + 1e-3)
    assert perm == (1, 0) and np.all(values > 40.0)


def test_bss_eval_perfect_estimate_is_very_high():
    refs = voices([110.0, 190.0])
    result = metrics.bss_eval(refs, refs)
    assert np.all(result["sdr"] > 60.0) and np.all(result["sir"] > 60.0)
    assert result["permutation"] == (0, 1)


def test_silent_estimate_is_scored_as_faint_noise():
    refs = voices([110.0, 190.0])
    estimates = refs.copy()
    estimates[1] = 0.0
    dithered, silent = metrics._dither_silent(estimates)
    assert silent == [1] and np.any(dithered[1]) and np.all(estimates[1] == 0)  # the input is left alone
    assert np.sqrt(np.mean(dithered[1] ** 2)) == pytest.approx(metrics.SILENT_ESTIMATE_DITHER_RMS, rel=0.1)
    result = metrics.bss_eval(refs, estimates)
    assert result["sdr"][0] > 30.0 and result["sdr"][1] < -10.0
    with pytest.raises(ValueError, match="same"):
        metrics.bss_eval(refs, refs[:, :100])


def test_mixture_as_estimate_improves_nothing_and_swaps_do_not_matter():
    rng = np.random.default_rng(1)
    refs = voices([110.0, 190.0], seed=2)
    mixture = refs.sum(axis=0)
    base = metrics.score(refs, np.stack([mixture, mixture]), mixture, RATE)
    assert abs(base["sdri"]) < 1e-6 and abs(base["si_sdri"]) < 1e-6
    assert base["sdr"] < 5.0  # equal-level voices: the mixture is about 0 dB

    estimates = refs + 0.05 * rng.standard_normal(refs.shape)
    straight = metrics.score(refs, estimates, mixture, RATE)
    swapped = metrics.score(refs, estimates[::-1], mixture, RATE)
    assert straight["permutation"] == [0, 1] and swapped["permutation"] == [1, 0]
    assert swapped["si_sdr_permutation"] == [1, 0]
    reported = [m for m in metrics.METRICS if m != "stoi" or metrics.stoi_available()]
    for metric in reported:
        assert swapped[metric] == pytest.approx(straight[metric], abs=1e-6), metric
        assert swapped[f"{metric}_sources"] == pytest.approx(straight[f"{metric}_sources"], abs=1e-6)
    assert straight["sdri"] > 10.0 and straight["si_sdri"] > 10.0
    with pytest.raises(ValueError, match=r"score: expected.*mixture \(100,\)"):
        metrics.score(refs, estimates, mixture[:100], RATE)


@pytest.mark.skipif(not metrics.stoi_available(), reason="pystoi not installed")
def test_stoi_reported_where_pystoi_is_installed():
    refs = voices([110.0, 190.0], seed=2)
    result = metrics.score(refs, refs[::-1], refs.sum(axis=0), RATE)
    assert 0.9 < result["stoi"] <= 1.0 and len(result["stoi_sources"]) == 2  # BSS-eval's permutation
    assert "stoi" not in metrics.score(refs, refs, refs.sum(axis=0))  # no rate, no STOI


def test_no_stoi_without_pystoi(monkeypatch):
    monkeypatch.setattr(metrics, "_stoi", None)
    assert not metrics.stoi_available()
    refs = voices([110.0, 190.0], seed=2)
    result = metrics.score(refs, refs, refs.sum(axis=0), RATE)
    assert "stoi" not in result and "stoi_sources" not in result and "sdr" in result


def test_bss_eval_gives_mir_evals_numbers_and_permutation():
    """fast_bss_eval in place of mir_eval's bss_eval_sources (BSS-eval v3, the papers' metric): the same
    SDR, SIR, SAR to 0.01 dB and the same permutation, on real speech (the example's two speakers, three
    seconds) with estimates that are filtered, leaky, noisy and swapped. (On synthetic harmonic tones the
    512-tap systems are ill-conditioned and the two solvers part: real speech is what is scored.)"""
    import warnings
    from pathlib import Path

    import mir_eval
    import soundfile as sf
    from scipy.signal import lfilter

    examples = Path(__file__).resolve().parents[2] / "examples"
    refs = np.stack([sf.read(examples / f"speechocean762_2spk_s{n}.wav")[0][8000:32000] for n in (1, 2)])
    rng = np.random.default_rng(3)
    estimates = np.stack([refs[1] + 0.3 * refs[0] + 0.05 * rng.standard_normal(refs.shape[1]),
                          lfilter([1.0, 0.5], [1.0], refs[0]) + 0.2 * refs[1]])
    mixture = refs.sum(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, perm = mir_eval.separation.bss_eval_sources(refs, estimates)
        base = mir_eval.separation.bss_eval_sources(refs, np.stack([mixture, mixture]), False)[0]
    ours = metrics.bss_eval(refs, estimates)
    assert ours["permutation"] == tuple(perm) == (1, 0)
    for name, theirs in (("sdr", sdr), ("sir", sir), ("sar", sar)):
        np.testing.assert_allclose(ours[name], theirs, atol=0.01)
    np.testing.assert_allclose(metrics.mixture_sdr(refs, mixture), base, atol=0.01)
