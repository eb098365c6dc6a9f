"""The demo corpus: sentences, make_corpus, its demo mixture and held-out mixture lists."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from deepclust.corpus import demo as dc, lists, voices as vc
from deepclust.corpus.split import SPLITS, CorpusError
from deepclust.dsp import mixing

from conftest import RATE, assert_utterance_level, needs_espeak, needs_festival, needs_flite, needs_kokoro, rms


# --------------------------------------------------------------- sentences --

def test_sentences_split_disjoint():
    sentences = dc.load_sentences()
    split = dc.split_sentences(sentences, seed=0)
    assert not set(split["train"]) & set(split["test"])
    assert len(split["train"]) + len(split["test"]) == len(sentences)
    assert abs(len(split["test"]) - dc.TEST_SENTENCE_FRACTION * len(sentences)) <= 1
    assert split == dc.split_sentences(sentences, seed=0) != dc.split_sentences(sentences, seed=1)


def test_sentences_shipped():
    sentences = dc.load_sentences()
    assert len(sentences) >= 300
    assert len(set(sentences)) == len(sentences)
    assert not any(s.startswith("#") for s in sentences)


# ------------------------------------------------------------- make_corpus --

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    needs_espeak()
    root = tmp_path_factory.mktemp("demo")
    summary = dc.make_corpus(root / "a", speakers=6, utterances=2, seed=3, progress=False)
    return root, summary


def test_make_corpus_lists_and_files(demo):
    root, summary = demo
    speakers = {}
    for split in SPLITS:
        entries = lists.parse_list(root / "a" / split)
        assert len(entries) == summary.utterances[split] == 2 * summary.speakers[split]
        speakers[split] = {e.speaker for e in entries}
        assert len(speakers[split]) == summary.speakers[split] >= 2  # train refuses a list of one speaker
        seconds = 0.0
        for entry in entries:
            info = sf.info(str(entry.path))
            assert info.samplerate == RATE and info.subtype == "PCM_16" and info.frames > RATE
            assert entry.path.parent == root / "a" / "data" / split / entry.speaker
            assert_utterance_level(sf.read(entry.path, dtype="float64")[0], tol=2e-3)
            seconds += info.frames / RATE
        assert summary.seconds[split] == pytest.approx(seconds)
    assert sum(summary.speakers.values()) == 6 and min(summary.speakers.values()) >= 1
    assert summary.speakers["test"] >= 2
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]
    # held-out voices are of the unlike kind (accents no training voice has)
    for split, names in speakers.items():
        accents = {summary.voices[name].voice.split("+")[0] for name in names}
        assert (accents <= set(vc.TEST_ACCENTS)) if split == "test" else not accents & set(vc.TEST_ACCENTS)


def test_held_out_mixture_lists_use_test_speakers_only(demo):
    from deepclust.evaluation.testsets import find_mixtures

    root, _ = demo
    test_speakers = {e.speaker for e in lists.parse_list(root / "a" / "test")}
    path = dc.mixture_list_path(root / "a", 2)
    mixtures = lists.read_mixture_list(path)
    assert len(mixtures) == len(find_mixtures(path)) == dc.TEST_MIXTURES
    for mixture in mixtures:
        gain = mixture.gains_db[0]
        assert len(mixture.sources) == 2 and gain >= 0 and mixture.gains_db[1] == -gain  # first up, second down
        assert all(p.is_file() for p in mixture.sources)
        speakers = {p.parent.name for p in mixture.sources}
        assert len(speakers) == 2 and speakers <= test_speakers
    assert len({m.gains_db[0] for m in mixtures}) > dc.TEST_MIXTURES // 2  # gains drawn, not fixed
    assert not dc.mixture_list_path(root / "a", 3).exists()  # 2 test speakers: no 3-speaker list
    with pytest.raises(CorpusError, match="cannot make 3-speaker"):
        dc.draw_mixture_list(root / "a", 3)


def test_draw_mixture_list_refuses_bad_requests(demo, tmp_path):
    root, _ = demo
    with pytest.raises(CorpusError, match=r"Received: num_speakers=1, count=40"):
        dc.draw_mixture_list(root / "a", 1)
    with pytest.raises(CorpusError, match=r"must lie in the corpus folder.*Received: path="):
        dc.draw_mixture_list(root / "a", 2, path=tmp_path / "elsewhere.txt")
    again = dc.draw_mixture_list(root / "a", 2, count=3, seed=1, path=root / "a" / ".valid_mix.txt")
    assert len(lists.read_mixture_list(again)) == 3


def test_make_corpus_mixture(demo):
    _, summary = demo
    mixed, rate = sf.read(summary.mixture, dtype="float64")
    s1, _ = sf.read(summary.references[0], dtype="float64")
    s2, _ = sf.read(summary.references[1], dtype="float64")
    assert rate == RATE and len(mixed) == len(s1) == len(s2) == int(dc.MIXTURE_SECONDS * RATE)
    assert np.max(np.abs(mixed - (s1 + s2))) <= 2.0 / 32768
    # wsj0-2mix scaling: the loudest sample of the mixture or a source is at MIX_PEAK
    loudest = max(np.max(np.abs(mixed)), np.max(np.abs(s1)), np.max(np.abs(s2)))
    assert loudest == pytest.approx(mixing.MIX_PEAK, abs=3.0 / 32768)
    assert rms(s1) / rms(s2) == pytest.approx(1.0, abs=0.01)  # equal levels (gains 0 dB)
    assert not np.allclose(s1, s2)


def test_make_corpus_deterministic_with_progress(demo, capsys):
    root, summary = demo
    again = dc.make_corpus(root / "b", speakers=6, utterances=2, seed=3, progress=True)
    assert "synthesising: 12/12 utterances" in capsys.readouterr().err
    for split in SPLITS:
        assert (root / "a" / split).read_bytes() == (root / "b" / split).read_bytes()
    assert dc.mixture_list_path(root / "a", 2).read_bytes() == dc.mixture_list_path(root / "b", 2).read_bytes()
    first = lists.parse_list(root / "a" / "test")[0].path
    assert first.read_bytes() == (root / "b" / first.relative_to(root / "a")).read_bytes()
    assert summary.mixture.read_bytes() == again.mixture.read_bytes()
    assert "held-out test mixtures: " + str(dc.mixture_list_path(root / "b", 2)) in again.describe()


def test_make_corpus_refuses_overwrite_and_bad_sizes(demo, tmp_path):
    root, _ = demo
    with pytest.raises(FileExistsError, match=r"train.*--force"):
        dc.make_corpus(root / "a", speakers=6, utterances=1, seed=3, progress=False)
    with pytest.raises(CorpusError, match="speakers=3"):
        dc.make_corpus(tmp_path / "c", speakers=3, utterances=1, progress=False)
    # 5 would leave one speaker for training: refused before anything is synthesised, naming the least that works
    with pytest.raises(CorpusError, match=r"leaves 1 for train.*at least 2.*--speakers 6 or more.*speakers=5"):
        dc.make_corpus(tmp_path / "c", speakers=5, utterances=1, progress=False)
    assert not (tmp_path / "c").exists()
    with pytest.raises(CorpusError, match="utterances=0"):
        dc.make_corpus(tmp_path / "c", speakers=6, utterances=0, progress=False)
    with pytest.raises(CorpusError, match="test_fraction"):
        dc.make_corpus(tmp_path / "c", speakers=6, utterances=1, test_fraction=1.5, progress=False)
    with pytest.raises(CorpusError, match=r"Received: neural_share=1\.5"):
        dc.make_corpus(tmp_path / "c", speakers=6, utterances=1, neural_share=1.5, progress=False)
    with pytest.raises(CorpusError, match=r"at most 1\. Received: neural_share=0\.6, flite_share=0\.6"):
        dc.make_corpus(tmp_path / "c", speakers=6, utterances=1, neural_share=0.6, flite_share=0.6, progress=False)
    with pytest.raises(CorpusError, match=r"flite_share and festival_share together .* Received: flite_share=0\.5, "
                                          r"festival_share=0\.6"):
        dc.make_corpus(tmp_path / "c", speakers=6, utterances=1, flite_share=0.5, festival_share=0.6, progress=False)
    assert not (tmp_path / "c").exists()  # refused before anything was written


def test_voice_groups_give_extra_voices_to_training_and_validation_speakers_only():
    split_of = dc._assign_splits({"train": 14, "valid": 3, "test": 3}, seed=0)
    assert set(dc._voice_groups(split_of, 0, {}).values()) == {"train", "test"}
    groups = dc._voice_groups(split_of, 0, {"neural": 0.5})
    assert {k for k, g in groups.items() if g == "test"} == {k for k, s in split_of.items() if s == "test"}
    assert sum(g == "neural" for g in groups.values()) == round(0.5 * 17)
    assert groups == dc._voice_groups(split_of, 0, {"neural": 0.5}) != dc._voice_groups(split_of, 1, {"neural": 0.5})
    assert set(dc._voice_groups(split_of, 0, {"neural": 1.0}).values()) == {"neural", "test"}
    both = dc._voice_groups(split_of, 0, {"neural": 0.5, "flite": 0.3})
    three = dc._voice_groups(split_of, 0, {"neural": 0.5, "flite": 0.3, "festival": 0.2})
    for kind, share in (("neural", 0.5), ("flite", 0.3), ("festival", 0.2)):
        assert sum(g == kind for g in three.values()) == round(share * 17)
    # a kind's picks do not depend on the shares of the kinds after it
    for earlier, later in ((groups, both), (both, three)):
        assert {k for k, g in later.items() if g == "neural"} == {k for k, g in earlier.items() if g == "neural"}
        assert {k for k, g in later.items() if g == "test"} == {k for k, g in earlier.items() if g == "test"}
    assert {k for k, g in three.items() if g == "flite"} == {k for k, g in both.items() if g == "flite"}


def _assert_extra_voices(folder, mixed, summary, kind, prefix: str, share: float) -> set[str]:
    """``mixed`` (written to ``folder``) gave ``share`` of its training and validation speakers voices of ``kind``
    named ``prefix...``, and its test speakers the same espeak-ng voices as ``summary`` (a corpus without them)."""
    chosen = {name for name, voice in mixed.voices.items() if isinstance(voice, kind)}
    assert chosen and all(name.startswith(prefix) for name in chosen)
    assert len(chosen) == round(share * (mixed.speakers["train"] + mixed.speakers["valid"]))
    assert f"{len(chosen)} of the training and validation speakers" in mixed.describe()
    assert prefix not in summary.describe()
    test_speakers = {entry.speaker for entry in lists.parse_list(folder / "test")}
    assert not test_speakers & chosen
    for name in test_speakers:  # the held-out espeak-ng voices are the ones the corpus has without the others
        assert mixed.voices[name] == summary.voices[name]
    for entry in lists.parse_list(folder / "train"):
        assert_utterance_level(sf.read(folder / entry.path, dtype="float32")[0])
    return chosen


def test_make_corpus_with_neural_voices(demo, tmp_path):
    needs_kokoro()
    _, summary = demo
    mixed = dc.make_corpus(tmp_path / "n", speakers=6, utterances=1, seed=3, progress=False, neural_share=0.5)
    _assert_extra_voices(tmp_path / "n", mixed, summary, vc.NeuralVoiceSpec, "neu", 0.5)


def test_make_corpus_with_flite_voices(demo, tmp_path):
    needs_flite()
    root, summary = demo
    mixed = dc.make_corpus(tmp_path / "f", speakers=6, utterances=2, seed=3, progress=False, flite_share=0.5)
    _assert_extra_voices(tmp_path / "f", mixed, summary, vc.FliteVoiceSpec, "fli", 0.5)
    assert "Flite voices (names fli...)" in mixed.describe()
    assert (tmp_path / "f" / "test_mix_2spk.txt").read_text() == (root / "a" / "test_mix_2spk.txt").read_text()


def test_make_corpus_with_festival_voices(demo, tmp_path):
    needs_festival()
    root, summary = demo
    mixed = dc.make_corpus(tmp_path / "s", speakers=6, utterances=2, seed=3, progress=False, festival_share=0.5)
    _assert_extra_voices(tmp_path / "s", mixed, summary, vc.FestivalVoiceSpec, "fes", 0.5)
    assert (tmp_path / "s" / "test").read_bytes() == (root / "a" / "test").read_bytes()


def test_make_corpus_command_passes_the_shares(tmp_path, capsys):
    needs_flite()
    needs_festival()
    needs_espeak()
    from deepclust import cli

    assert cli.main(["make-corpus", str(tmp_path / "c"), "--speakers", "6", "--utterances", "1", "--seed", "3",
                     "--flite-share", "0.5", "--festival-share", "0.5"]) == 0
    speakers = {entry.speaker for split in ("train", "valid") for entry in lists.parse_list(tmp_path / "c" / split)}
    out = capsys.readouterr().out
    assert "Flite voices (names fli...): 2 of the training and validation speakers" in out
    assert "Festival voices (names fes...): 2 of the training and validation speakers" in out
    assert {name[:3] for name in speakers} == {"fli", "fes"}
