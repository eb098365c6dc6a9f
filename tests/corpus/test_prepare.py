"""prepare() for a user's own audio tree: layouts, speakers, skipped files, Kaldi directories, strung clips."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepclust.corpus import prepare as pr
from deepclust.corpus.lists import parse_list

RATE = 8000


def tone(seconds: float = 0.25, rate: int = RATE) -> np.ndarray:
    return (0.1 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def write_tree(root: Path, layout: str, speakers: int = 6, files: int = 2) -> dict[str, str]:
    """A tiny corpus in ``layout``; returns file name -> speaker."""
    truth = {}
    for s in range(speakers):
        for f in range(files):
            if layout == "librispeech":
                spk, chapter = str(100 + s), str(2000 + s)
                path = root / "train-clean-100" / spk / chapter / f"{spk}-{chapter}-{f:04d}.flac"
            elif layout == "vctk":
                spk = f"p{225 + s}"
                path = root / "wav48" / spk / f"{spk}_{f:03d}.wav"
            else:  # wsj0
                spk = f"0{s}a"
                path = root / "si_tr_s" / spk / f"{spk}c{f:04d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(), RATE)
            truth[path.name] = spk
    return truth


@pytest.mark.parametrize("layout", ["librispeech", "vctk", "wsj0"])
@pytest.mark.parametrize("named", [True, False])
def test_prepare_layouts(tmp_path, layout, named):
    truth = write_tree(tmp_path / "audio", layout)
    summary = pr.prepare(tmp_path / "audio", tmp_path / "lists", layout=layout if named else "auto", seed=1)
    assert summary.speaker_level == pr.LAYOUT_LEVELS[layout]
    assert summary.layout == (layout if named else "auto")
    seen = {}
    for split in pr.SPLITS:
        entries = parse_list(tmp_path / "lists" / split)
        assert summary.lists[split] == tmp_path / "lists" / split
        assert len(entries) == summary.files[split] == 2 * summary.speakers[split]
        assert summary.speakers[split] >= 1
        for entry in entries:
            assert entry.path.is_absolute() and entry.path.is_file()
            assert entry.speaker == truth[entry.path.name]
            assert seen.setdefault(entry.speaker, split) == split  # each speaker in one split only
    assert len(seen) == 6 and sum(summary.files.values()) == 12
    assert sum(summary.hours.values()) == pytest.approx(12 * 0.25 / 3600)
    assert summary.skipped == []
    assert "skipped 0 unreadable file(s)" in summary.describe()


def test_prepare_speaker_level_and_seed(tmp_path):
    write_tree(tmp_path / "audio", "librispeech", speakers=10)
    a = pr.prepare(tmp_path / "audio", tmp_path / "a", speaker_level=2, seed=5)
    pr.prepare(tmp_path / "audio", tmp_path / "b", speaker_level=2, seed=5)
    assert a.layout == "custom" and a.speakers == {"train": 8, "valid": 1, "test": 1}
    for split in pr.SPLITS:
        a_lines = (tmp_path / "a" / split).read_text().splitlines()[1:]  # line 1 names the seed and folder
        assert a_lines == (tmp_path / "b" / split).read_text().splitlines()[1:]
    other = pr.prepare(tmp_path / "audio", tmp_path / "d", speaker_level=2, seed=6)
    assert [parse_list(tmp_path / "d" / s) for s in pr.SPLITS] != [parse_list(tmp_path / "a" / s) for s in pr.SPLITS]
    assert other.speakers == a.speakers
    chapters = pr.prepare(tmp_path / "audio", tmp_path / "c", speaker_level=1)  # chapter folders as "speakers"
    assert sum(chapters.speakers.values()) == 10
    assert {e.speaker for s in pr.SPLITS for e in parse_list(tmp_path / "c" / s)} == {str(2000 + s) for s in range(10)}
    with pytest.raises(pr.CorpusError, match="Received: speaker_level=0"):
        pr.prepare(tmp_path / "audio", tmp_path / "e", speaker_level=0)


def test_prepare_skips_unreadable(tmp_path, caplog):
    write_tree(tmp_path / "audio", "vctk", speakers=4)
    garbage = tmp_path / "audio" / "wav48" / "p225" / "p225_999.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    with caplog.at_level(logging.WARNING, logger="deepclust.corpus.prepare"):
        summary = pr.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    assert [p.name for p, _ in summary.skipped] == ["p225_999.wav"]
    assert sum(summary.files.values()) == 8
    assert "p225_999.wav" in caplog.text
    listed = "".join((tmp_path / "lists" / s).read_text() for s in pr.SPLITS)
    assert "p225_999" not in listed


def test_prepare_skips_paths_a_list_cannot_hold(tmp_path):
    write_tree(tmp_path / "audio", "vctk", speakers=3)
    commented = tmp_path / "audio" / "wav48" / "p225" / "p225 #2.wav"  # ' #' would start a comment in a list
    sf.write(commented, tone(), RATE)
    summary = pr.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    assert [(p.name, "comment" in why) for p, why in summary.skipped] == [("p225 #2.wav", True)]
    assert sum(len(parse_list(tmp_path / "lists" / s)) for s in pr.SPLITS) == 6  # the lists still parse


def test_prepare_errors(tmp_path):
    write_tree(tmp_path / "audio", "vctk", speakers=2)
    with pytest.raises(pr.CorpusError, match=r"3-way .*split"):
        pr.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    write_tree(tmp_path / "audio", "vctk", speakers=3)
    pr.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    with pytest.raises(FileExistsError, match="--force"):
        pr.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    pr.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk", overwrite=True)
    with pytest.raises(pr.CorpusError, match="layout='timit'"):
        pr.prepare(tmp_path / "audio", tmp_path / "other", layout="timit")
    with pytest.raises(pr.CorpusError, match="not a folder"):
        pr.prepare(tmp_path / "missing", tmp_path / "other")
    with pytest.raises(pr.CorpusError, match=r"no audio files found.*Received: extensions=\('\.mp3',\)"):
        pr.prepare(tmp_path / "audio", tmp_path / "other", extensions=(".mp3",))


# -- Kaldi data directories ------------------------------------------------------------
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "speechocean762"


def _kaldi_dir(root: Path) -> Path:
    """A recipe's layout: data/train/{wav.scp,utt2spk} with paths relative to the recipe folder (root)."""
    import soundfile as sf

    from conftest import synth_voice

    (root / "wav").mkdir(parents=True)
    scp, spk = [], []
    for s in range(4):
        for u in range(3):
            name = f"s{s}u{u}"
            sf.write(root / "wav" / f"{name}.wav", synth_voice(100 + 40 * s, 0.5, 10 * s + u), 8000)
            scp.append(f"{name} wav/{name}.wav")
            spk.append(f"{name} spk{s}")
    scp += ["piped sph2pipe -f wav wav/x.sph |", "orphan wav/s0u0.wav"]
    data = root / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("\n".join(scp) + "\n")
    (data / "utt2spk").write_text("\n".join(spk + ["piped spk0"]) + "\n")
    return data


def test_a_kaldi_data_directory_gives_speaker_disjoint_lists(tmp_path, caplog):
    from deepclust.corpus.lists import parse_list
    from deepclust.corpus.prepare import prepare

    data = _kaldi_dir(tmp_path / "recipe")
    summary = prepare(data, tmp_path / "base", valid_fraction=0.25, test_fraction=0.0)
    assert summary.layout == "kaldi" and set(summary.lists) == {"train", "valid"}
    assert not (tmp_path / "base" / "test").exists()
    train, valid = (parse_list(tmp_path / "base" / s) for s in ("train", "valid"))
    assert len(train) + len(valid) == 12 and {e.speaker for e in train}.isdisjoint(e.speaker for e in valid)
    assert all(e.path.is_file() for e in train + valid)  # relative to the recipe folder, found there
    assert "wav.scp:13: skipped: a piped command" in caplog.text and "sph2pipe" in caplog.text
    assert "wav.scp:14: skipped: utterance 'orphan' has no speaker in utt2spk" in caplog.text
    assert len(summary.skipped) == 2


def test_kaldi_segments_and_unfindable_paths_are_explained(tmp_path):
    from deepclust.corpus.lists import ListFormatError, read_kaldi_dir

    data = _kaldi_dir(tmp_path / "recipe")
    (tmp_path / "recipe" / "wav" / "s0u0.wav").rename(tmp_path / "moved.wav")
    with pytest.raises(ListFormatError, match=r"relative paths such as 'wav/s0u0.wav' are found under none of"):
        read_kaldi_dir(data)
    (data / "segments").write_text("a rec 0.0 1.0\n")
    with pytest.raises(ListFormatError, match="segments.*not supported"):
        read_kaldi_dir(data)


@pytest.mark.skipif(not (SHARED / "train" / "wav.scp").is_file(), reason="speechocean762 is not beside the checkout")
def test_speechocean762_train_prepares_without_its_test_speakers(tmp_path):
    from deepclust.corpus.lists import parse_list
    from deepclust.corpus.prepare import prepare

    summary = prepare(SHARED / "train", tmp_path / "so", valid_fraction=0.1, test_fraction=0.0)
    listed = [e for s in ("train", "valid") for e in parse_list(tmp_path / "so" / s)]
    assert len(listed) == 2500 and len({e.speaker for e in listed}) == 125 and not summary.skipped
    test_speakers = {line.split()[1] for line in (SHARED / "test" / "utt2spk").read_text().splitlines() if line}
    assert test_speakers.isdisjoint(e.speaker for e in listed)  # never a test speaker in a training list


def test_every_format_libsndfile_reads_is_found(tmp_path: Path):
    """prepare used to look for .wav, .flac, .ogg and .sph only, skipping .mp3 and .opus files that read fine."""
    from deepclust.dsp import audio

    written = {"wav": {}, "flac": {}, "ogg": {"subtype": "VORBIS"}, "opus": {"format": "OGG", "subtype": "OPUS"},
               "mp3": {}, "aiff": {}}
    made = []
    for s, (ext, options) in enumerate(written.items()):
        if f".{ext}" not in audio.extensions():
            continue
        for spk in (f"a{s}", f"b{s}"):
            path = tmp_path / "audio" / spk / f"{spk}_0.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(), RATE, **options)
            made.append(path)
    assert {".mp3", ".opus"} <= set(audio.extensions())
    summary = pr.prepare(tmp_path / "audio", tmp_path / "lists", speaker_level=1, valid_fraction=0.2,
                         test_fraction=0.2)
    listed = {entry.path for split in summary.lists.values() for entry in parse_list(split)}
    assert listed == set(made) and not summary.skipped


def test_string_clips_lists_strings_of_each_speakers_clips(tmp_path):
    """A keyword corpus as a Kaldi directory: the lists name strings of several clips, speakers still disjoint."""
    from deepclust.corpus.clipstrings import ClipCount
    from deepclust.corpus.lists import parse_list
    from deepclust.corpus.prepare import STRINGS_FOLDER, prepare

    data = _kaldi_dir(tmp_path / "recipe")  # 4 speakers of 3 half-second clips
    summary = prepare(data, tmp_path / "base", valid_fraction=0.25, test_fraction=0.0, string_clips=ClipCount(2, 3))
    train, valid = (parse_list(tmp_path / "base" / s) for s in ("train", "valid"))
    assert len(train) == 3 and len(valid) == 1  # one string per speaker
    assert {e.speaker for e in train}.isdisjoint(e.speaker for e in valid)
    assert all(e.path.parent.parent == tmp_path / "base" / STRINGS_FOLDER for e in train + valid)
    assert all(sf_seconds(e.path) > 0.5 for e in train + valid)  # longer than any clip
    assert summary.files == {"train": 3, "valid": 1}


def sf_seconds(path) -> float:
    import soundfile as sf

    return sf.info(str(path)).duration
