"""The Festival binding: speak(), its voices, the voices it finds and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from deepclust.corpus import festival, speech_program
from deepclust.corpus.split import CorpusError

from conftest import needs_festival

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def test_every_voice_speaks_at_its_rate_the_same_samples_each_time():
    needs_festival()
    festival.require()
    rates = set()
    for voice in festival.VOICES:
        samples, rate = festival.speak(TEXT, voice)
        assert samples.dtype == np.float32 and samples.ndim == 1 and np.all(np.isfinite(samples)), voice
        assert 1.5 < len(samples) / rate < 12 and np.abs(samples).max() > 0.01, voice
        rates.add(rate)
    assert rates >= {16000, 22050, 32000}  # each voice keeps its own rate; synthesize resamples
    assert np.array_equal(festival.speak(TEXT, "czech_dita")[0], festival.speak(TEXT, "czech_dita")[0])


def test_speak_honours_the_stretch():
    needs_festival()
    plain, _ = festival.speak(TEXT, "ked_diphone")
    slow, _ = festival.speak(TEXT, "ked_diphone", duration_stretch=1.5)
    assert 1.25 < len(slow) / len(plain) < 1.7


def test_speak_refuses_bad_arguments():
    with pytest.raises(CorpusError, match=r"Received: voice='kal'"):  # Flite's, not one of these
        festival.speak(TEXT, "kal")
    with pytest.raises(CorpusError, match=r"Received: text='  '"):
        festival.speak("  ", "czech_dita")
    with pytest.raises(CorpusError, match=r"Received: duration_stretch=9"):
        festival.speak(TEXT, "czech_dita", duration_stretch=9)


def test_missing_or_failing_festival_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(speech_program.shutil, "which", lambda name: None)
    with pytest.raises(CorpusError, match="apt install festival"):
        festival.speak(TEXT, "czech_dita")
    # text2wave exits 0 and writes nothing when a voice fails to load: the message is what tells
    failing = tmp_path / "text2wave"
    failing.write_text("#!/bin/sh\necho 'SIOD ERROR: unbound variable : voice_czech_dita' >&2\nexit 0\n")
    failing.chmod(0o755)
    monkeypatch.setattr(speech_program.shutil, "which", lambda name: str(failing))
    with pytest.raises(CorpusError, match=r"Festival on voice czech_dita failed \(exit status 0\): SIOD ERROR"):
        festival.speak(TEXT, "czech_dita")
    festival.available_voices.cache_clear()
    try:
        with pytest.raises(CorpusError, match=r"lacks the voices \['czech_dita'"):
            festival.require()
    finally:
        festival.available_voices.cache_clear()
