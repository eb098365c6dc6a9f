"""Evaluation: metric functions on hand-made signals, both test-set forms, oracle bounds, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import RATE, synth_voice
from deepclust import evaluate as ev
from deepclust.evaluate import EvaluationError

SECONDS = 1.0


def _voices(f0s, seed=0, seconds=SECONDS):
    return np.stack([synth_voice(f0, seconds, seed + i) for i, f0 in enumerate(f0s)])


def _write_mixture(root: Path, name: str, sources: np.ndarray, mixture: np.ndarray | None = None) -> None:
    mixture = sources.sum(axis=0) if mixture is None else mixture
    sf.write(root / "mix" / name, mixture, RATE, subtype="FLOAT")
    for i, s in enumerate(sources, start=1):
        (root / f"s{i}").mkdir(exist_ok=True)
        sf.write(root / f"s{i}" / name, s, RATE, subtype="FLOAT")


@pytest.fixture
def wsj0_folder(tmp_path: Path) -> Path:
    """tt/ with two good 2-speaker mixtures, one 3-speaker, one short by 40 samples (kept),
    one missing its s2 file, one whose mixture is 0.5 s longer than its sources (skipped)."""
    root = tmp_path / "tt"
    (root / "mix").mkdir(parents=True)
    _write_mixture(root, "a.wav", 0.5 * _voices([110.0, 190.0], seed=1))
    _write_mixture(root, "b.wav", 0.5 * _voices([150.0, 260.0], seed=3))
    _write_mixture(root, "c3.wav", 0.4 * _voices([105.0, 170.0, 280.0], seed=5))
    short = 0.5 * _voices([120.0, 210.0], seed=8)
    _write_mixture(root, "d_short.wav", short, short.sum(axis=0)[:-40])
    lonely = 0.5 * _voices([130.0, 230.0], seed=10)
    _write_mixture(root, "e_missing.wav", lonely)
    (root / "s2" / "e_missing.wav").unlink()
    long_mix = np.concatenate([lonely.sum(axis=0), np.zeros(RATE // 2, np.float32)])
    _write_mixture(root, "f_long.wav", lonely, long_mix)
    return root


@pytest.fixture
def mixture_list(tmp_path: Path) -> Path:
    """A wsj0-2mix list with relative paths: two mixtures and one naming a missing file."""
    wav = tmp_path / "wsj" / "wav"
    wav.mkdir(parents=True)
    for name, f0, seed in [("spkA_01", 110.0, 1), ("spkB_01", 200.0, 2), ("spkC_01", 150.0, 3), ("spkD_01", 250.0, 4)]:
        sf.write(wav / f"{name}.wav", synth_voice(f0, SECONDS + 0.1 * seed, seed), RATE)
    path = tmp_path / "wsj" / "mix_2_spk_tt.txt"
    path.write_text(
        "# wsj0-2mix style\n"
        "wav/spkA_01.wav 1.5 wav/spkB_01.wav -1.5\n"
        "\n"
        "wav/spkC_01.wav 0 wav/spkD_01.wav 0\n"
        "wav/nobody.wav 0.5 wav/spkD_01.wav -0.5\n"
    )
    return path


# -- metrics -----------------------------------------------------------------------------------


def test_si_sdr_matches_definition_and_ignores_scale_and_offset():
    rng = np.random.default_rng(0)
    s = synth_voice(140.0, SECONDS, 0).astype(np.float64)
    s -= s.mean()
    noise = rng.standard_normal(s.size)
    noise -= noise.mean()
    noise -= noise @ s / (s @ s) * s  # orthogonal to s: SI-SDR is then exactly the energy ratio
    noise *= 0.1 * np.linalg.norm(s) / np.linalg.norm(noise)  # 20 dB
    estimate = s + noise
    assert ev.si_sdr(s, estimate) == pytest.approx(20.0, abs=1e-3)
    assert ev.si_sdr(s, 0.05 * estimate + 0.3) == pytest.approx(20.0, abs=1e-3)
    assert ev.si_sdr(s + 0.2, estimate) == pytest.approx(20.0, abs=1e-3)  # both are made zero-mean
    assert ev.si_sdr(s, s) > 60.0
    assert ev.si_sdr(s, -s) > 60.0  # polarity is a scale too
    assert ev.si_sdr(s, noise) < -30.0


def test_bss_eval_perfect_estimate_is_very_high():
    refs = _voices([110.0, 190.0])
    result = ev.bss_eval(refs, refs)
    assert np.all(result["sdr"] > 60.0) and np.all(result["sir"] > 60.0)
    assert result["permutation"] == (0, 1)


def test_mixture_as_estimate_improves_nothing_and_swaps_do_not_matter():
    rng = np.random.default_rng(1)
    refs = _voices([110.0, 190.0], seed=2)
    mixture = refs.sum(axis=0)
    base = ev.score(refs, np.stack([mixture, mixture]), mixture, RATE)
    assert abs(base["sdri"]) < 1e-6 and abs(base["si_sdri"]) < 1e-6
    assert base["sdr"] < 5.0  # equal-level voices: the mixture is about 0 dB

    estimates = refs + 0.05 * rng.standard_normal(refs.shape)
    straight = ev.score(refs, estimates, mixture, RATE)
    swapped = ev.score(refs, estimates[::-1], mixture, RATE)
    assert straight["permutation"] == [0, 1] and swapped["permutation"] == [1, 0]
    assert swapped["si_sdr_permutation"] == [1, 0]
    for metric in ("sdr", "sir", "sar", "sdri", "si_sdr", "si_sdri", "stoi"):
        assert swapped[metric] == pytest.approx(straight[metric], abs=1e-6), metric
        assert swapped[f"{metric}_sources"] == pytest.approx(straight[f"{metric}_sources"], abs=1e-6)
    assert straight["sdri"] > 10.0 and straight["si_sdri"] > 10.0


def test_oracle_masks_partition_the_mixture():
    spec = np.random.default_rng(2).standard_normal((3, 5, 7)) + 1j * np.random.default_rng(3).standard_normal((3, 5, 7))
    spec[:, 0, 0] = 0  # a bin where all sources are silent
    ibm, irm = ev.oracle_masks(spec, "ibm"), ev.oracle_masks(spec, "irm")
    assert set(np.unique(ibm)) == {0.0, 1.0}
    np.testing.assert_allclose(ibm.sum(axis=0), 1.0)
    np.testing.assert_allclose(irm.sum(axis=0), 1.0, rtol=1e-6)
    assert np.all(np.argmax(irm, axis=0)[1:] == np.argmax(ibm, axis=0)[1:])
    with pytest.raises(EvaluationError, match="Received: oracle='wiener'"):
        ev.oracle_masks(spec, "wiener")


def test_mix_wsj0_levels_length_and_peak():
    a = synth_voice(110.0, 1.2, 0)
    b = 0.01 * synth_voice(200.0, 0.8, 1)  # much quieter and shorter
    mixture, scaled = ev.mix_wsj0([a, b], [2.0, -2.0])
    assert mixture.shape == (len(b),) and scaled.shape == (2, len(b))
    np.testing.assert_allclose(mixture, scaled.sum(axis=0), atol=1e-6)
    assert max(np.abs(mixture).max(), np.abs(scaled).max()) == pytest.approx(ev.MIX_PEAK, rel=1e-5)
    # equal RMS over each whole source (before the cut), then the gains: 2 - (-2) = 4 dB apart
    n = len(b)
    gain = [float(scaled[i] @ raw[:n] / (raw[:n] @ raw[:n])) for i, raw in enumerate((a, b))]
    rms = [float(np.sqrt(np.mean(np.square(raw, dtype=np.float64)))) for raw in (a, b)]
    assert 20 * np.log10(gain[0] * rms[0] / (gain[1] * rms[1])) == pytest.approx(4.0, abs=0.01)


# -- test sets -------------------------------------------------------------------------------


def test_folder_with_ibm_oracle(wsj0_folder: Path, capsys):
    report = ev.evaluate(wsj0_folder, oracle="ibm")
    out = wsj0_folder.parent / "eval_tt_ibm"
    assert report.out == out

    ids = [r["id"] for r in report.rows]
    assert ids == ["a", "b", "c3", "d_short"]
    assert {s["id"]: s["reason"] for s in report.skipped}.keys() == {"e_missing", "f_long"}
    reasons = {s["id"]: s["reason"] for s in report.skipped}
    assert "s2/e_missing.wav" in reasons["e_missing"]
    assert "lengths differ by 4000 samples" in reasons["f_long"]
    short = next(r for r in report.rows if r["id"] == "d_short")
    assert any("cut to the shortest" in w for w in short["warnings"])

    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_mixtures"] == 6 and summary["num_scored"] == 4 and summary["num_skipped"] == 2
    assert summary["by_num_speakers"]["2"]["sdr"]["count"] == 3
    assert summary["by_num_speakers"]["3"]["sdr"]["count"] == 1
    assert summary["overall"]["sdri"]["count"] == 4
    assert summary["overall"]["sdri"]["mean"] > 8.0  # the ideal binary mask: an upper bound
    assert summary["overall"]["si_sdri"]["mean"] > 8.0
    assert summary["stft"] == {"window_length": 256, "hop_length": 64} and summary["sample_rate"] == RATE

    with open(out / "per_mixture.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ids
    assert [int(r["num_speakers"]) for r in rows] == [2, 2, 3, 2]
    assert len(rows[2]["sdr_sources"].split(";")) == 3
    assert float(rows[0]["sdr"]) == pytest.approx(report.rows[0]["sdr"], abs=1e-3)
    printed = capsys.readouterr()
    assert "SDRi" in printed.out and "3 spk" in printed.out
    assert "6/6 mixtures, 2 skipped" in printed.err


def test_list_with_irm_oracle_in_parallel(mixture_list: Path, tmp_path: Path):
    out = tmp_path / "results"
    report = ev.evaluate(mixture_list, oracle="irm", out=out, jobs=2, save_audio=True, progress=False)
    assert [r["id"] for r in report.rows] == ["spkA_01_1.5_spkB_01_-1.5", "spkC_01_0_spkD_01_0"]
    assert len(report.skipped) == 1 and "nobody.wav" in report.skipped[0]["reason"]
    assert report.skipped[0]["where"].endswith("mix_2_spk_tt.txt:5")
    assert report.summary["overall"]["sdri"]["mean"] > 8.0
    for r in report.rows:
        for n in (1, 2):
            written, rate = sf.read(out / "audio" / r["id"] / f"est_{n}.wav")
            assert rate == RATE and written.ndim == 1
    assert (out / "per_mixture.csv").is_file() and (out / "summary.json").is_file()


def test_list_mixing_is_deterministic(mixture_list: Path):
    spec = ev.read_mixture_list(mixture_list)[0]
    assert spec.gains_db == (1.5, -1.5) and spec.where.endswith(":2")
    first, refs1, _ = ev.load_mixture(spec, RATE)
    second, refs2, _ = ev.load_mixture(spec, RATE)
    np.testing.assert_array_equal(first, second)
    assert refs1.shape == (2, int(1.1 * RATE))  # cut to the shorter source (1.1 s and 1.2 s)
    assert np.abs(first).max() <= ev.MIX_PEAK + 1e-6


# -- bad input -------------------------------------------------------------------------------


def test_empty_folder_is_a_clear_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match=r"empty: no mixture folder.*expected a folder holding mix/") as info:
        ev.evaluate(tmp_path / "empty", oracle="ibm")
    assert "Received: subfolders []" in str(info.value)
    for d in ("mix", "s1", "s2"):
        (tmp_path / "tt" / d).mkdir(parents=True)
    with pytest.raises(EvaluationError, match=r"tt/mix: no audio files.*Received: an empty mixture folder"):
        ev.evaluate(tmp_path / "tt", oracle="irm")
    with pytest.raises(EvaluationError, match="not found"):
        ev.evaluate(tmp_path / "nowhere", oracle="irm")


@pytest.mark.parametrize("line, problem", [
    ("wav/a.wav 0 wav/b.wav", "3 fields"),
    ("wav/a.wav zero wav/b.wav 0", "gains ['zero', '0']"),
])
def test_malformed_list_line_names_file_and_line(tmp_path: Path, line: str, problem: str):
    path = tmp_path / "list.txt"
    path.write_text("wav/a.wav 0 wav/b.wav 0\n" + line + "\n")
    with pytest.raises(EvaluationError) as info:
        ev.evaluate(path, oracle="ibm", progress=False)
    message = str(info.value)
    assert f"{path}:2" in message and "path1 gain_dB path2 gain_dB" in message
    assert "Received:" in message and problem in message


def test_empty_list_and_bad_arguments(tmp_path: Path, wsj0_folder: Path):
    path = tmp_path / "list.txt"
    path.write_text("# nothing\n\n")
    with pytest.raises(EvaluationError, match=r"list.txt: no mixtures"):
        ev.evaluate(path, oracle="ibm")
    with pytest.raises(EvaluationError, match="Received: oracle='ideal'"):
        ev.evaluate(wsj0_folder, oracle="ideal")
    with pytest.raises(EvaluationError, match="Received: jobs=0"):
        ev.evaluate(wsj0_folder, oracle="ibm", jobs=0)


# -- with a (tiny, untrained) model ----------------------------------------------------------


def test_untrained_model_writes_a_report(tmp_path: Path):
    """Only the plumbing: an untrained network's scores mean nothing."""
    from deepclust.config import load_config
    from deepclust.model import build_model

    config = load_config("tiny")  # its [separate] section keeps k-means cheap
    train = tmp_path / "train"
    train.mkdir()
    build_model(config).save(train / "model.keras")
    (train / "config.toml").write_text(config.to_toml())
    for name, f0, seed in [("a", 110.0, 1), ("b", 200.0, 2)]:  # short: the network runs eagerly
        sf.write(tmp_path / f"{name}.wav", synth_voice(f0, 0.5, seed), RATE)
    listing = tmp_path / "list.txt"
    listing.write_text("a.wav 1 b.wav -1\nmissing.wav 0 b.wav 0\n")
    report = ev.evaluate(listing, base=train, out=tmp_path / "ev", progress=False)
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["num_scored"] == 1 and summary["num_skipped"] == 1
    assert summary["stft"] == {"window_length": 128, "hop_length": 32}
    assert summary["model"] == str(train / "model.keras") and summary["oracle"] is None
    assert len(report.rows) == 1 and np.isfinite(report.rows[0]["sdr"])
    # --num-speakers auto: the count is estimated, recorded and its accuracy summarised;
    # the scores still come from a separation with the true count.
    auto = ev.evaluate(listing, base=train, out=tmp_path / "ev_auto", progress=False, num_speakers="auto")
    count = auto.summary["speaker_count"]
    assert count["count"] == 1 and count["accuracy"] in (0.0, 1.0)
    assert auto.rows[0]["estimated_speakers"] in (1, 2, 3)
    assert (auto.rows[0]["estimated_speakers"] == 2) == (count["accuracy"] == 1.0)
    assert np.isfinite(auto.rows[0]["sdr"])
    header = (tmp_path / "ev_auto" / "per_mixture.csv").read_text().splitlines()[0]
    assert "estimated_speakers" in header
