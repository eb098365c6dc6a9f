"""The Flite binding: speak(), its parameters, the voices it finds and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from deepclust.corpus import flite, speech_program
from deepclust.corpus.split import CorpusError

from conftest import needs_flite
from test_voices import dominant_pitch

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


def test_speak_audio_rate_and_determinism():
    needs_flite()
    flite.require()
    samples, rate = flite.speak(TEXT, "slt")
    assert samples.dtype == np.float32 and samples.ndim == 1 and np.all(np.isfinite(samples))
    assert rate == 16000 and 1.5 < len(samples) / rate < 10 and np.abs(samples).max() > 0.01
    assert np.array_equal(samples, flite.speak(TEXT, "slt")[0])  # same arguments, same samples
    assert flite.speak(TEXT, "kal")[1] == 8000  # the 8 kHz diphone voice keeps its own rate


def test_speak_honours_pitch_and_stretch():
    needs_flite()
    low, rate = flite.speak(TEXT, "slt", f0_mean=120.0, f0_stddev=10.0)
    high, _ = flite.speak(TEXT, "slt", f0_mean=240.0, f0_stddev=10.0)
    assert dominant_pitch(high, rate) > 1.5 * dominant_pitch(low, rate)
    slow, _ = flite.speak(TEXT, "slt", duration_stretch=1.5)
    plain, _ = flite.speak(TEXT, "slt")
    assert 1.3 < len(slow) / len(plain) < 1.7


def test_speak_refuses_bad_arguments():
    with pytest.raises(CorpusError, match=r"Received: voice='nobody'"):
        flite.speak(TEXT, "nobody")
    with pytest.raises(CorpusError, match=r"Received: text='  '"):
        flite.speak("  ", "slt")
    with pytest.raises(CorpusError, match=r"Received: duration_stretch=9"):
        flite.speak(TEXT, "slt", duration_stretch=9)


def test_missing_or_failing_flite_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(speech_program.shutil, "which", lambda name: None)
    with pytest.raises(CorpusError, match="apt install flite"):
        flite.speak(TEXT, "slt")
    failing = tmp_path / "flite"
    failing.write_text("#!/bin/sh\necho 'cannot open audio' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.setattr(speech_program.shutil, "which", lambda name: str(failing))
    with pytest.raises(CorpusError, match=r"flite on voice slt failed \(exit status 3\): cannot open audio"):
        flite.speak(TEXT, "slt")
    flite.available_voices.cache_clear()
    try:
        with pytest.raises(CorpusError, match=r"lacks the voices \['awb', 'kal', 'kal16', 'rms', 'slt'\]"):
            flite.require()
    finally:
        flite.available_voices.cache_clear()
