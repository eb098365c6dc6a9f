"""The demo corpus (espeak-ng voices, make_corpus) and prepare() for a user's own audio tree."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepclust import corpus
from deepclust.data import parse_list

RATE = 8000
TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def needs_espeak():
    pytest.importorskip("espeakng_loader", reason="espeak-ng tests need the demo extra: pip install 'deepclust[demo]'")


# ------------------------------------------------------------------ voices --

def test_voice_specs_are_distinct_and_seeded():
    voices = corpus.make_voices(40, seed=0)
    assert len({v.voice for v in voices}) == 40
    assert len({v.name for v in voices}) == 40
    assert voices == corpus.make_voices(40, seed=0)
    assert voices != corpus.make_voices(40, seed=1)
    for v in voices:
        assert corpus.WARP[0] - 0.01 <= v.warp <= corpus.WARP[1] + 0.01
        assert 0 <= v.pitch <= 99 and 0 <= v.pitch_range <= 99
    with pytest.raises(corpus.CorpusError, match="Received: group='valid'"):
        corpus.make_voices(2, group="valid")


def _final_rate_and_shift(v: corpus.VoiceSpec) -> tuple[float, float]:
    """Undo make_voices' warp compensation: the rate (wpm) and pitch shift (octaves) the listener hears."""
    import math
    return v.rate * v.warp, (v.pitch - corpus.PITCH_CENTRE) / corpus.PITCH_UNITS_PER_OCTAVE + math.log2(v.warp)


def test_test_voices_unlike_training_voices():
    train, test = corpus.make_voices(120, seed=0), corpus.make_voices(40, seed=0, group="test")
    train_accents = {v.voice.split("+")[0] for v in train}
    test_accents = {v.voice.split("+")[0] for v in test}
    assert test_accents <= set(corpus.TEST_ACCENTS) and not train_accents & test_accents
    train_rates, train_shifts = zip(*map(_final_rate_and_shift, train))
    test_rates, test_shifts = zip(*map(_final_rate_and_shift, test))
    slack = 3  # words/min of rounding
    assert all(r < min(train_rates) - slack or r > max(train_rates) + slack for r in test_rates)
    assert min(test_rates) < min(train_rates) and max(test_rates) > max(train_rates)  # both bands used
    assert all(abs(s) > max(map(abs, train_shifts)) for s in test_shifts)
    train_ranges = [v.pitch_range for v in train]
    assert all(r < min(train_ranges) or r > max(train_ranges) for r in (v.pitch_range for v in test))


def test_sentences_split_disjoint():
    sentences = corpus.load_sentences()
    split = corpus.split_sentences(sentences, seed=0)
    assert not set(split["train"]) & set(split["test"])
    assert len(split["train"]) + len(split["test"]) == len(sentences)
    assert abs(len(split["test"]) - corpus.TEST_SENTENCE_FRACTION * len(sentences)) <= 1
    assert split == corpus.split_sentences(sentences, seed=0) != corpus.split_sentences(sentences, seed=1)


def test_sentences_shipped():
    sentences = corpus.load_sentences()
    assert len(sentences) >= 300
    assert len(set(sentences)) == len(sentences)


def dominant_pitch(signal: np.ndarray, rate: int = RATE) -> float:
    """Median autocorrelation pitch (Hz) over the loud frames."""
    frame, hop = int(0.04 * rate), int(0.02 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    pitches = []
    threshold = 0.3 * np.sqrt(np.mean(signal ** 2))
    for start in range(0, len(signal) - frame, hop):
        x = signal[start:start + frame] - signal[start:start + frame].mean()
        if np.sqrt(np.mean(x ** 2)) < threshold:
            continue
        ac = np.correlate(x, x, "full")[frame - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


def test_synthesize_audio_and_determinism():
    needs_espeak()
    low = corpus.VoiceSpec("low", "en-us+m3", pitch=30, pitch_range=50, rate=175, warp=0.9)
    high = corpus.VoiceSpec("high", "en-gb-scotland+f3", pitch=70, pitch_range=50, rate=175, warp=1.1)
    a = corpus.synthesize(TEXT, low, RATE)
    b = corpus.synthesize(TEXT, high, RATE)
    for x in (a, b):
        assert x.dtype == np.float32 and x.ndim == 1
        assert np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 1.0
        assert 1.5 < len(x) / RATE < 10  # a sentence, silence trimmed
        assert np.sqrt(np.mean(x ** 2)) > 0.01
    assert np.array_equal(a, corpus.synthesize(TEXT, low, RATE))  # same voice and text: same samples
    assert dominant_pitch(b) > 1.5 * dominant_pitch(a)
    # the rate argument is honoured: twice the rate, about twice the samples
    wide = corpus.synthesize(TEXT, low, 2 * RATE)
    assert abs(len(wide) / (2 * len(a)) - 1) < 0.01


def test_warp_moves_formants():
    needs_espeak()
    base = corpus.VoiceSpec("v", "en-us+m1", pitch=50, rate=175, warp=1.0)

    def centroid(x):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        return float(np.sum(spectrum * np.fft.rfftfreq(len(x), 1 / RATE)) / np.sum(spectrum))

    low = corpus.synthesize(TEXT, corpus.VoiceSpec("v", "en-us+m1", warp=0.85), RATE)
    high = corpus.synthesize(TEXT, corpus.VoiceSpec("v", "en-us+m1", warp=1.15), RATE)
    assert centroid(high) > 1.1 * centroid(low)
    assert len(high) < len(low)  # the warp speeds speech up too; make_voices compensates the rate
    assert corpus.synthesize(TEXT, base, RATE).size


def test_unknown_voice_and_missing_espeak(monkeypatch):
    needs_espeak()
    with pytest.raises(corpus.CorpusError, match="no voice"):
        corpus.synthesize(TEXT, corpus.VoiceSpec("x", "xx-nowhere+m1"), RATE)
    import builtins

    real_import = builtins.__import__

    def no_espeak(name, *args, **kwargs):
        if name == "espeakng_loader":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_espeak)
    with pytest.raises(corpus.CorpusError, match=r"pip install 'deepclust\[demo\]'"):
        corpus.synthesize(TEXT, corpus.VoiceSpec("x", "en-us"), RATE)


# ------------------------------------------------------------- make_corpus --

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    needs_espeak()
    root = tmp_path_factory.mktemp("demo")
    summary = corpus.make_corpus(root / "a", speakers=6, utterances=2, seed=3, progress=False)
    return root, summary


def test_make_corpus_lists_and_files(demo):
    root, summary = demo
    speakers = {}
    for split in corpus.SPLITS:
        entries = parse_list(root / "a" / split)
        assert len(entries) == summary.utterances[split] == 2 * summary.speakers[split]
        speakers[split] = {e.speaker for e in entries}
        assert len(speakers[split]) == summary.speakers[split]
        for entry in entries:
            info = sf.info(str(entry.path))
            assert info.samplerate == RATE and info.subtype == "PCM_16" and info.frames > RATE
            assert entry.path.relative_to(root / "a" / "data" / split)
    assert sum(summary.speakers.values()) == 6 and min(summary.speakers.values()) >= 1
    assert summary.speakers["test"] >= 2
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]
    assert summary.seconds["train"] > 0
    # held-out voices are of the unlike kind (accents no training voice has)
    for split, names in speakers.items():
        accents = {summary.voices[name].voice.split("+")[0] for name in names}
        assert (accents <= set(corpus.TEST_ACCENTS)) if split == "test" else not accents & set(corpus.TEST_ACCENTS)


def test_held_out_mixture_lists_use_test_speakers_only(demo):
    from deepclust.evaluate import read_mixture_list

    root, _ = demo
    test_speakers = {e.speaker for e in parse_list(root / "a" / "test")}
    path = corpus.mixture_list_path(root / "a", 2)
    assert path.is_file()
    specs = read_mixture_list(path)
    assert len(specs) == corpus.TEST_MIXTURES
    for line in path.read_text().splitlines():
        fields = line.split()
        paths, gains = fields[0::2], [float(g) for g in fields[1::2]]
        assert len(paths) == 2 and gains[0] == -gains[1] and 0 <= gains[0] <= corpus.TEST_MIXTURE_GAIN_DB
        speakers = {Path(p).parent.name for p in paths}
        assert len(speakers) == 2 and speakers <= test_speakers
    if len(test_speakers) < 3:
        with pytest.raises(corpus.CorpusError, match="cannot make 3-speaker"):
            corpus.write_mixture_list(root / "a", 3)


def test_make_corpus_mixture(demo):
    root, summary = demo
    mixed, rate = sf.read(summary.mixture, dtype="float64")
    s1, _ = sf.read(summary.references[0], dtype="float64")
    s2, _ = sf.read(summary.references[1], dtype="float64")
    assert rate == RATE and 3.0 <= len(mixed) / RATE <= 4.0
    assert len(mixed) == len(s1) == len(s2)
    assert np.max(np.abs(mixed - (s1 + s2))) <= 2.0 / 32768
    assert np.max(np.abs(mixed)) < 0.9
    rms1, rms2 = np.sqrt(np.mean(s1 ** 2)), np.sqrt(np.mean(s2 ** 2))
    assert abs(rms1 / rms2 - 1) < 0.01
    assert not np.allclose(s1, s2)


def test_make_corpus_deterministic(demo):
    root, summary = demo
    again = corpus.make_corpus(root / "b", speakers=6, utterances=2, seed=3, progress=False)
    for split in corpus.SPLITS:
        assert (root / "a" / split).read_bytes() == (root / "b" / split).read_bytes()
    first = parse_list(root / "a" / "test")[0].path
    assert first.read_bytes() == (root / "b" / first.relative_to(root / "a")).read_bytes()
    assert summary.mixture.read_bytes() == again.mixture.read_bytes()


def test_make_corpus_refuses_overwrite_and_bad_sizes(demo, tmp_path):
    root, _ = demo
    with pytest.raises(FileExistsError, match=r"train.*--force"):
        corpus.make_corpus(root / "a", speakers=6, utterances=1, seed=3, progress=False)
    with pytest.raises(corpus.CorpusError, match="speakers=3"):
        corpus.make_corpus(tmp_path / "c", speakers=3, utterances=1, progress=False)
    with pytest.raises(corpus.CorpusError, match="test_fraction"):
        corpus.make_corpus(tmp_path / "c", speakers=6, utterances=1, test_fraction=1.5, progress=False)


# ----------------------------------------------------------------- prepare --

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
    summary = corpus.prepare(tmp_path / "audio", tmp_path / "lists", layout=layout if named else "auto", seed=1)
    assert summary.speaker_level == corpus.LAYOUT_LEVELS[layout]
    seen = {}
    for split in corpus.SPLITS:
        entries = parse_list(tmp_path / "lists" / split)
        assert len(entries) == summary.files[split] == 2 * summary.speakers[split]
        assert summary.speakers[split] >= 1
        for entry in entries:
            assert entry.path.is_absolute() and entry.path.is_file()
            assert entry.speaker == truth[entry.path.name]
            assert seen.setdefault(entry.speaker, split) == split  # each speaker in one split only
    assert len(seen) == 6 and sum(summary.files.values()) == 12
    assert sum(summary.hours.values()) == pytest.approx(12 * 0.25 / 3600)
    assert summary.skipped == []


def test_prepare_speaker_level_and_seed(tmp_path):
    write_tree(tmp_path / "audio", "librispeech", speakers=10)
    a = corpus.prepare(tmp_path / "audio", tmp_path / "a", speaker_level=2, seed=5)
    b = corpus.prepare(tmp_path / "audio", tmp_path / "b", speaker_level=2, seed=5)
    assert a.layout == "custom" and a.speakers == {"train": 8, "valid": 1, "test": 1}
    for split in corpus.SPLITS:
        a_lines = (tmp_path / "a" / split).read_text().splitlines()[1:]  # line 1 names the seed and folder
        assert a_lines == (tmp_path / "b" / split).read_text().splitlines()[1:]
    chapters = corpus.prepare(tmp_path / "audio", tmp_path / "c", speaker_level=1)  # chapter folders as "speakers"
    assert sum(chapters.speakers.values()) == 10


def test_prepare_skips_unreadable(tmp_path, caplog):
    write_tree(tmp_path / "audio", "vctk", speakers=4)
    garbage = tmp_path / "audio" / "wav48" / "p225" / "p225_999.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    with caplog.at_level(logging.WARNING, logger="deepclust.corpus"):
        summary = corpus.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    assert [p.name for p, _ in summary.skipped] == ["p225_999.wav"]
    assert sum(summary.files.values()) == 8
    assert "p225_999.wav" in caplog.text
    listed = "".join((tmp_path / "lists" / s).read_text() for s in corpus.SPLITS)
    assert "p225_999" not in listed


def test_prepare_errors(tmp_path):
    write_tree(tmp_path / "audio", "vctk", speakers=2)
    with pytest.raises(corpus.CorpusError, match=r"3-way .*split"):
        corpus.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    write_tree(tmp_path / "audio", "vctk", speakers=3)
    corpus.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    with pytest.raises(FileExistsError, match="--force"):
        corpus.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk")
    corpus.prepare(tmp_path / "audio", tmp_path / "lists", layout="vctk", overwrite=True)
    with pytest.raises(corpus.CorpusError, match="layout='timit'"):
        corpus.prepare(tmp_path / "audio", tmp_path / "other", layout="timit")
    with pytest.raises(corpus.CorpusError, match="not a folder"):
        corpus.prepare(tmp_path / "missing", tmp_path / "other")
