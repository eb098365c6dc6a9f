"""Test sets: both forms (wsj0-2mix folders and mixture lists), loading for scoring, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import RATE, synth_voice
from deepclust.corpus.lists import ListFormatError
from deepclust.dsp import mixing
from deepclust.evaluation import testsets
from deepclust.evaluation.testsets import EvaluationError, SkipMixture
from evaluation_data import voices, write_mixture


def test_folder_mixtures_count_speakers_and_mark_missing_sources(wsj0_folder: Path):
    specs = testsets.find_mixtures(wsj0_folder)
    assert [s.id for s in specs] == ["a", "b", "c3", "d_short", "e_missing", "f_long"]
    by_id = {s.id: s for s in specs}
    assert [by_id[i].num_speakers for i in ("a", "b", "c3", "d_short")] == [2, 2, 3, 2]
    assert by_id["a"].mixture == wsj0_folder / "mix" / "a.wav"
    assert by_id["a"].sources == (wsj0_folder / "s1" / "a.wav", wsj0_folder / "s2" / "a.wav")
    assert "s2/e_missing.wav" in by_id["e_missing"].missing and not by_id["a"].missing
    with pytest.raises(SkipMixture, match="s2/e_missing.wav"):
        testsets.load_mixture(by_id["e_missing"], RATE)
    # the mixture folder itself may be given
    assert [s.id for s in testsets.find_mixtures(wsj0_folder / "mix")] == [s.id for s in specs]


def test_lengths_within_tolerance_are_cut_beyond_are_skipped(wsj0_folder: Path):
    by_id = {s.id: s for s in testsets.find_mixtures(wsj0_folder)}
    mixture, references, notes = testsets.load_mixture(by_id["d_short"], RATE)
    assert mixture.shape == (RATE - 40,) and references.shape == (2, RATE - 40)
    assert any("cut to the shortest" in n for n in notes)
    with pytest.raises(SkipMixture, match="lengths differ by 4000 samples"):
        testsets.load_mixture(by_id["f_long"], RATE)


def test_other_mixture_folder_names(tmp_path: Path):
    root = tmp_path / "libri"
    write_mixture(root, "x.wav", 0.5 * voices([110.0, 190.0]), mix_folder="mix_both")
    assert [s.id for s in testsets.find_mixtures(root)] == ["x"]  # the only mix* folder
    write_mixture(root, "x.wav", 0.5 * voices([110.0, 190.0]), mix_folder="mix_single")
    with pytest.raises(EvaluationError, match=r"several mixture folders \(mix_both, mix_single\)"):
        testsets.find_mixtures(root)
    write_mixture(root, "x.wav", 0.5 * voices([110.0, 190.0]), mix_folder="mix_clean")
    assert testsets.find_mixtures(root)[0].mixture == root / "mix_clean" / "x.wav"


def test_list_mixing_is_deterministic(mixture_list: Path):
    spec = testsets.find_mixtures(mixture_list)[0]
    assert isinstance(spec, testsets.MixtureSpec) and spec.mixture is None
    assert spec.id == "spkA_01_1.5_spkB_01_-1.5"
    assert spec.sources == (mixture_list.parent / "wav" / "spkA_01.wav", mixture_list.parent / "wav" / "spkB_01.wav")
    assert spec.gains_db == (1.5, -1.5) and spec.where.endswith(":2")
    first, refs1, _ = testsets.load_mixture(spec, RATE)
    second, refs2, _ = testsets.load_mixture(spec, RATE)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(refs1, refs2)
    assert refs1.shape == (2, int(1.1 * RATE))  # cut to the shorter source (1.1 s and 1.2 s)
    assert np.abs(first).max() <= mixing.MIX_PEAK + 1e-6
    np.testing.assert_allclose(first, refs1.sum(axis=0), atol=1e-6)
    missing = testsets.find_mixtures(mixture_list)[2]
    with pytest.raises(SkipMixture, match="nobody.wav"):
        testsets.load_mixture(missing, RATE)


def test_silent_reference_is_skipped(tmp_path: Path):
    (tmp_path / "wav").mkdir()
    import soundfile as sf

    sf.write(tmp_path / "wav" / "a.wav", synth_voice(110.0, 0.5, 0), RATE)
    sf.write(tmp_path / "wav" / "quiet.wav", np.zeros(RATE // 2, np.float32), RATE)
    listing = tmp_path / "list.txt"
    listing.write_text("wav/a.wav 0 wav/quiet.wav 0\n")
    with pytest.raises(SkipMixture, match=r"reference source\(s\) \[2\] are silent"):
        testsets.load_mixture(testsets.find_mixtures(listing)[0], RATE)


# -- bad input -------------------------------------------------------------------------------


def test_empty_folder_is_a_clear_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match=r"empty: no mixture folder.*expected a folder holding mix/") as info:
        testsets.find_mixtures(tmp_path / "empty")
    assert "Received: subfolders []" in str(info.value)
    for d in ("mix", "s1", "s2"):
        (tmp_path / "tt" / d).mkdir(parents=True)
    with pytest.raises(EvaluationError, match=r"tt/mix: no audio files.*Received: an empty mixture folder"):
        testsets.find_mixtures(tmp_path / "tt")
    with pytest.raises(EvaluationError, match=r"nowhere: not found; expected a folder.*or a mixture list"):
        testsets.find_mixtures(tmp_path / "nowhere")
    with pytest.raises(EvaluationError, match="not a folder"):
        testsets.find_folder_mixtures(tmp_path / "nowhere")


@pytest.mark.parametrize("line, problem", [
    ("wav/a.wav 0 wav/b.wav", "3 fields"),
    ("wav/a.wav zero wav/b.wav 0", "gains ['zero', '0']"),
    ("wav/a.wav inf wav/b.wav 0", "finite gains"),
])
def test_malformed_list_line_names_file_and_line(tmp_path: Path, line: str, problem: str):
    path = tmp_path / "list.txt"
    path.write_text("wav/a.wav 0 wav/b.wav 0\n" + line + "\n")
    with pytest.raises(ListFormatError) as info:
        testsets.find_mixtures(path)
    message = str(info.value)
    assert f"{path}:2" in message and problem in message
    if problem != "finite gains":
        assert "path1 gain_dB path2 gain_dB" in message and "Received:" in message


def test_empty_list(tmp_path: Path):
    path = tmp_path / "list.txt"
    path.write_text("# nothing\n\n")
    with pytest.raises(ListFormatError, match=r"list.txt: no mixtures"):
        testsets.find_mixtures(path)
