"""The evaluation runner: oracle bounds on both test-set forms, serial and parallel, a model, bad arguments."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import RATE, synth_voice
from deepclust.config import FeatureConfig
from deepclust.corpus.lists import ListFormatError
from deepclust.dsp import features
from deepclust.evaluation import evaluate as ev, metrics
from deepclust.evaluation.evaluate import EvaluationError
from evaluation_data import voices


# -- oracle masks ----------------------------------------------------------------------------


def test_ideal_masks_partition_the_mixture():
    rng = np.random.default_rng(2)
    spec = rng.standard_normal((3, 5, 7)) + 1j * np.random.default_rng(3).standard_normal((3, 5, 7))
    spec[:, 0, 0] = 0  # a bin where all sources are silent
    ibm, irm = features.ideal_masks(spec, "ibm"), features.ideal_masks(spec, "irm")
    assert ibm.shape == irm.shape == spec.shape and ibm.dtype == irm.dtype == np.float32
    assert set(np.unique(ibm)) == {0.0, 1.0}
    np.testing.assert_allclose(ibm.sum(axis=0), 1.0)
    np.testing.assert_allclose(irm.sum(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(irm[:, 0, 0], 1.0 / 3)  # silent bins shared equally
    assert np.all(np.argmax(irm, axis=0)[1:] == np.argmax(ibm, axis=0)[1:])
    # a stack (..., k, T, F): each item's own masks
    stack = np.stack([spec, spec[::-1]])
    np.testing.assert_array_equal(features.ideal_masks(stack, "ibm")[1][:, 1:], ibm[::-1][:, 1:])
    np.testing.assert_array_equal(features.ideal_masks(stack, "ibm")[0], ibm)
    np.testing.assert_allclose(features.ideal_masks(stack, "irm")[0], irm)
    with pytest.raises(ValueError, match="Received: kind='wiener'"):
        features.ideal_masks(spec, "wiener")


def test_training_labels_are_the_ideal_binary_mask():
    rng = np.random.default_rng(4)
    specs = rng.standard_normal((2, 3, 6, 9)) + 1j * rng.standard_normal((2, 3, 6, 9))
    labels = features.dominant_labels(specs, np.ones((2, 6, 9), np.float32), max_speakers=4)
    np.testing.assert_array_equal(np.moveaxis(labels[..., :3], -1, -3), features.ideal_masks(specs, "ibm"))
    assert np.all(labels[..., 3] == 0)


def test_oracle_separate_sums_to_the_mixture():
    cfg = FeatureConfig()
    refs = voices([110.0, 190.0], seed=2)
    mixture = refs.sum(axis=0)
    irm = ev.oracle_separate(mixture, refs, "irm", cfg)
    assert irm.shape == refs.shape
    np.testing.assert_allclose(irm.sum(axis=0), mixture, atol=1e-4)
    ibm = ev.oracle_separate(mixture, refs, "ibm", cfg)
    assert all(metrics.si_sdr(refs[i], ibm[i]) > 8.0 for i in range(2))


# -- running ---------------------------------------------------------------------------------


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
    assert summary["method"]["oracle"] == "ideal binary mask" and summary["speaker_count"] is None
    if metrics.stoi_available():
        assert summary["overall"]["stoi"]["count"] == 4 and summary["method"]["stoi"].startswith("pystoi")
    else:
        assert "stoi" not in summary["overall"] and "unavailable" in summary["method"]["stoi"]

    with open(out / "per_mixture.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ids
    assert [int(r["num_speakers"]) for r in rows] == [2, 2, 3, 2]
    assert len(rows[2]["sdr_sources"].split(";")) == 3
    assert float(rows[0]["sdr"]) == pytest.approx(report.rows[0]["sdr"], abs=1e-3)
    assert ("stoi" in rows[0]) == metrics.stoi_available()
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
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_serial_and_parallel_give_the_same_rows(mixture_list: Path, tmp_path: Path):
    serial = ev.evaluate(mixture_list, oracle="ibm", out=tmp_path / "a", progress=False)
    parallel = ev.evaluate(mixture_list, oracle="ibm", out=tmp_path / "b", jobs=2, progress=False)
    assert [r["id"] for r in serial.rows] == [r["id"] for r in parallel.rows]
    for a, b in zip(serial.rows, parallel.rows):
        assert a["sdr"] == pytest.approx(b["sdr"], abs=1e-9)


def test_a_failing_job_skips_its_mixture():
    def broken(*_):
        raise ValueError("non-finite estimates")

    assert ev._call(broken) == {"skip": "scoring failed (ValueError: non-finite estimates)"}
    assert ev._call(lambda: {"id": "x"}) == {"id": "x"}


# -- bad input -------------------------------------------------------------------------------


def test_bad_test_paths_and_lists(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match=r"empty: no mixture folder.*expected a folder holding mix/"):
        ev.evaluate(tmp_path / "empty", oracle="ibm")
    with pytest.raises(EvaluationError, match="not found"):
        ev.evaluate(tmp_path / "nowhere", oracle="irm")
    path = tmp_path / "list.txt"
    path.write_text("# nothing\n\n")
    with pytest.raises(ListFormatError, match=r"list.txt: no mixtures"):
        ev.evaluate(path, oracle="ibm")
    path.write_text("wav/a.wav 0 wav/b.wav 0\nwav/a.wav 0 wav/b.wav\n")
    with pytest.raises(ListFormatError, match=r"list.txt:2: expected 'path1 gain_dB path2 gain_dB.*3 fields"):
        ev.evaluate(path, oracle="ibm", progress=False)


def test_bad_arguments(wsj0_folder: Path):
    with pytest.raises(EvaluationError, match="Received: oracle='ideal'"):
        ev.evaluate(wsj0_folder, oracle="ideal")
    with pytest.raises(EvaluationError, match="Received: jobs=0"):
        ev.evaluate(wsj0_folder, oracle="ibm", jobs=0)
    with pytest.raises(EvaluationError, match="Received: num_speakers=0"):
        ev.evaluate(wsj0_folder, oracle="ibm", num_speakers=0)


# -- with a (tiny, untrained) model ----------------------------------------------------------


def _untrained_run(tmp_path: Path) -> tuple[Path, Path]:
    """A training folder with the tiny config's untrained model, and a list of one good mixture and one
    with a missing file."""
    from deepclust.config import load_config
    from deepclust.nn.model import build_model

    config = load_config("tiny")  # its [separate] section keeps k-means cheap
    train = tmp_path / "train"
    train.mkdir()
    build_model(config).save(train / "model.keras")
    (train / "config.toml").write_text(config.to_toml())
    for name, f0, seed in [("a", 110.0, 1), ("b", 200.0, 2)]:  # short: the network runs eagerly
        sf.write(tmp_path / f"{name}.wav", synth_voice(f0, 0.5, seed), RATE)
    listing = tmp_path / "list.txt"
    listing.write_text("a.wav 1 b.wav -1\nmissing.wav 0 b.wav 0\n")
    return train, listing


def test_without_a_model_the_shipped_one_is_evaluated_and_named_first(tmp_path: Path, monkeypatch, capsys):
    """As separate and visualize: no --base, --model or $DEEPC_BASE is the shipped model, said on the first line
    (evaluate used to stop with 'no model given')."""
    from deepclust import cli, paths

    train, listing = _untrained_run(tmp_path)
    monkeypatch.setattr(paths, "SHIPPED_DIR", train)
    monkeypatch.delenv("DEEPC_BASE", raising=False)
    assert cli.main(["evaluate", str(listing), "--out", str(tmp_path / "ev")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("no --base, --model or $DEEPC_BASE given: using the pretrained model shipped")
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["model"] == str(train / "model.keras")
    ev.evaluate(listing, out=tmp_path / "ev2", progress=False)  # the library falls back alike
    assert json.loads((tmp_path / "ev2" / "summary.json").read_text())["model"] == str(train / "model.keras")


def test_untrained_model_writes_a_report(tmp_path: Path):
    """Only the plumbing: an untrained network's scores mean nothing."""
    train, listing = _untrained_run(tmp_path)
    report = ev.evaluate(listing, base=train, out=tmp_path / "ev", progress=False)
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["num_scored"] == 1 and summary["num_skipped"] == 1
    assert summary["stft"] == {"window_length": 128, "hop_length": 32}
    assert summary["model"] == str(train / "model.keras") and summary["oracle"] is None
    assert len(report.rows) == 1 and np.isfinite(report.rows[0]["sdr"])
    # a model's rate is the evaluation rate; another is refused
    with pytest.raises(EvaluationError, match="leave sample_rate unset"):
        ev.evaluate(listing, base=train, out=tmp_path / "ev_rate", progress=False, sample_rate=16000)
    # a fixed speaker count skips mixtures with another count
    three = ev.evaluate(listing, base=train, out=tmp_path / "ev_3", progress=False, num_speakers=3)
    assert not three.rows and "num_speakers=3" in three.skipped[0]["reason"]
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


def test_oracle_centres_score_the_model_with_centres_from_the_references(tmp_path: Path):
    from deepclust.separation.separator import SeparationError, Separator

    train, listing = _untrained_run(tmp_path)
    report = ev.evaluate(listing, base=train, oracle="centres", out=tmp_path / "ev", progress=False)
    assert report.summary["oracle"] == "centres" and report.summary["model"] == str(train / "model.keras")
    assert "mean embedding" in report.summary["method"]["oracle"]
    assert len(report.rows) == 1 and np.isfinite(report.rows[0]["sdri"])
    # Speaker n is reference n's voice: the references in the other order give the outputs in the other order.
    separator = Separator.from_path(train)
    mixture = sf.read(tmp_path / "a.wav")[0][:3000] + sf.read(tmp_path / "b.wav")[0][:3000]
    refs = np.stack([sf.read(tmp_path / "a.wav")[0][:3000], sf.read(tmp_path / "b.wav")[0][:3000]])
    ab = separator.render(separator.analyse_oracle(mixture, refs)).sources
    ba = separator.render(separator.analyse_oracle(mixture, refs[::-1])).sources
    np.testing.assert_allclose(ab, ba[::-1], atol=1e-5)
    assert not np.allclose(ab[0], ab[1], atol=1e-3)
    with pytest.raises(SeparationError, match="as long as the mixture"):
        separator.analyse_oracle(mixture, refs[:, :100])
    with pytest.raises(EvaluationError, match="Received: num_speakers='auto'"):
        ev.evaluate(listing, base=train, oracle="centres", num_speakers="auto")
