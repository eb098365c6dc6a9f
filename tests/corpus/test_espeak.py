"""The espeak-ng binding: speak() and its errors."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from deepclust.corpus import espeak
from deepclust.corpus.split import CorpusError

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def needs_espeak():
    pytest.importorskip("espeakng_loader", reason="espeak-ng tests need the demo extra: pip install 'deepclust[demo]'")


@pytest.mark.parametrize("kwargs, received", [
    ({"pitch": 100}, "Received: pitch=100"),
    ({"pitch_range": -1}, "Received: pitch_range=-1"),
    ({"rate": 0}, "Received: rate=0"),
    ({"volume": 201}, "Received: volume=201"),
])
def test_speak_refuses_parameters_off_espeaks_scales(kwargs, received):
    with pytest.raises(CorpusError, match=received):
        espeak.speak(TEXT, "en-us", **kwargs)


def test_speak_refuses_empty_text():
    with pytest.raises(CorpusError, match=r"non-empty text\. Received: text='  '"):
        espeak.speak("  ", "en-us")


def test_speak_raw_samples_deterministic():
    needs_espeak()
    raw = espeak.speak(TEXT, "en-us+m3", pitch=40, pitch_range=50, rate=175)
    assert raw.dtype == np.int16 and raw.ndim == 1
    assert 1.5 < len(raw) / espeak.ESPEAK_RATE < 10  # one sentence at espeak's own rate
    assert np.array_equal(raw, espeak.speak(TEXT, "en-us+m3", pitch=40, pitch_range=50, rate=175))
    # volume is honoured: half the volume, clearly quieter
    quiet = espeak.speak(TEXT, "en-us+m3", pitch=40, pitch_range=50, rate=175, volume=espeak.ESPEAK_VOLUME_VALUE // 2)
    assert np.sqrt(np.mean(quiet.astype(float) ** 2)) < 0.8 * np.sqrt(np.mean(raw.astype(float) ** 2))
    # rate is honoured: a faster rate, fewer samples
    assert len(espeak.speak(TEXT, "en-us+m3", rate=260)) < 0.85 * len(raw)


def test_unknown_voice_and_missing_espeak(monkeypatch):
    needs_espeak()
    with pytest.raises(CorpusError, match=r"no voice .*Received: voice='xx-nowhere\+m1'"):
        espeak.speak(TEXT, "xx-nowhere+m1")
    real_import = builtins.__import__

    def no_espeak(name, *args, **kwargs):
        if name == "espeakng_loader":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_espeak)
    with pytest.raises(CorpusError, match=r"pip install 'deepclust\[demo\]'"):
        espeak.speak(TEXT, "en-us")
    with pytest.raises(CorpusError, match=r"pip install 'deepclust\[demo\]'"):
        espeak.require()


def test_phonemes_ipa_in_the_accent_asked_for():
    needs_espeak()
    us = espeak.phonemes("Hello there. The dog ran home!", "en-us")
    assert "oʊ" in us and "ð" in us and "ˈ" in us  # IPA with stress marks
    assert not any(c in us for c in ".!,")  # clauses joined, punctuation gone
    assert len(us.split()) == 6
    assert "əʊ" in espeak.phonemes("Hello", "en-gb-x-rp")  # the accent changes the vowels
    assert us == espeak.phonemes("Hello there. The dog ran home!", "en-us")
    with pytest.raises(CorpusError, match=r"no voice .*Received: voice='xx-nowhere'"):
        espeak.phonemes("Hello", "xx-nowhere")
    with pytest.raises(CorpusError, match=r"non-empty text\. Received: text=''"):
        espeak.phonemes("", "en-us")
