"""deepclust.corpus.clipstrings: short clips trimmed to their speech and strung into utterances of one speaker."""

from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

from conftest import synth_voice
from deepclust.corpus import clipstrings
from deepclust.corpus.clipstrings import ClipCount

RATE = 8000


def clip(f0: float, seed: int, before: float = 0.3, word: float = 0.4, after: float = 0.3) -> np.ndarray:
    """A word of ``word`` seconds with silence (a faint noise floor) around it, as a keyword corpus holds."""
    floor = 1e-4 * np.random.default_rng(seed).standard_normal(int((before + word + after) * RATE))
    start = int(before * RATE)
    floor[start:start + int(word * RATE)] += synth_voice(f0, word, seed)
    return floor.astype(np.float32)


def test_trim_keeps_the_word_and_little_else():
    x = clip(150, 1)
    out = clipstrings.trim(x, RATE)
    word = int(0.4 * RATE)
    assert word <= len(out) <= word + 2 * int((clipstrings.MARGIN_S + clipstrings.TRIM_FRAME_S) * RATE)
    assert np.sum(out**2) > 0.99 * np.sum(x**2)  # the energy is the word's
    assert abs(out[0]) < 1e-4 and abs(out[-1]) < 1e-4  # faded: no click at the cuts
    assert clipstrings.trim(np.zeros(4000, np.float32), RATE).size == 0


@pytest.mark.parametrize("count", [1, 3, 4, 9, 23])
def test_groups_use_every_clip_once(count):
    groups = clipstrings.groups(count, ClipCount(4, 7), np.random.default_rng(count))
    assert [i for g in groups for i in g] == list(range(count))
    assert all(len(g) >= 4 for g in groups) or len(groups) == 1  # a short remainder joins its neighbour


def test_clip_count_parses_and_refuses():
    assert ClipCount.parse("4-7") == ClipCount(4, 7) and ClipCount.parse("5") == ClipCount(5, 5)
    for bad in ("7-4", "0", "a-b", "1-2-3"):
        with pytest.raises(ValueError, match=rf"LOW-HIGH.*Received: string_clips='{bad}'"):
            ClipCount.parse(bad)


def test_string_clips_writes_each_speakers_words_once(tmp_path, caplog):
    clips = {}
    for s, f0 in enumerate((120, 220)):
        clips[f"spk/{s}"] = []
        for u in range(9):
            path = tmp_path / "in" / f"{s}_{u}.wav"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, clip(f0, 10 * s + u), RATE)
            clips[f"spk/{s}"].append(path)
    silent = tmp_path / "in" / "silent.wav"
    sf.write(silent, np.zeros(RATE, np.float32), RATE)
    clips["spk/1"].append(silent)
    written, skipped = clipstrings.string_clips(clips, tmp_path / "out", ClipCount(4, 5), np.random.default_rng(0))
    assert skipped == [(silent, "silent: no sample above zero")]
    assert {speaker for _, speaker in written} == {"spk/0", "spk/1"}
    assert all(path.parent.name in ("spk_0", "spk_1") for path, _ in written)  # no folder from the '/'
    for speaker in ("spk/0", "spk/1"):
        strings = [sf.read(p)[0] for p, s in written if s == speaker]
        assert len(strings) == 2  # 9 words in 4-5 word strings
        total = sum(len(x) for x in strings)
        words, pauses = 9 * 0.4 * RATE, 7 * np.array(clipstrings.PAUSE_S) * RATE
        assert words + pauses[0] <= total <= words + pauses[1] + 9 * 2 * (0.07 * RATE)  # the silence around is gone
        assert all(sf.info(p).samplerate == RATE for p, _ in written)
