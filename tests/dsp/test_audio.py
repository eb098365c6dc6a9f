"""Audio files: read as float32 (downmixed, resampled) and written atomically; bad files named with the fix; a
signal cut or padded to a length."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from deepclust.dsp import audio


def test_a_written_file_reads_back_and_is_not_overwritten(tmp_path):
    signal = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32)
    path = audio.write(tmp_path / "tone.wav", signal, 8000)
    back, rate = audio.read(path)
    assert rate == 8000 and back.dtype == np.float32 and np.max(np.abs(back - signal)) < 1e-4
    with pytest.raises(FileExistsError):
        audio.write(path, signal, 8000)
    audio.write(path, -signal, 8000, overwrite=True)
    assert audio.read(path)[0][100] == pytest.approx(-signal[100], abs=1e-4)
    assert audio.readable_seconds(path) == (1.0, "")


def test_channels_are_averaged_and_the_rate_converted(tmp_path):
    stereo = np.stack([np.full(16000, 0.2), np.full(16000, 0.6)], axis=1).astype(np.float32)
    sf.write(tmp_path / "s.wav", stereo, 16000, subtype="FLOAT")
    mono, rate = audio.read(tmp_path / "s.wav", 8000)
    assert rate == 8000 and mono.shape == (8000,)
    assert np.allclose(mono[1000:-1000], 0.4, atol=1e-3)  # the ends carry the resampling filter's edges
    both, _ = audio.read(tmp_path / "s.wav", mono=False)
    assert both.shape == (16000, 2)
    assert audio.resample(mono, 8000, 8000) is mono


def test_bad_files_are_named_with_the_reason(tmp_path):
    with pytest.raises(audio.AudioError, match=r"nothing\.wav: file not found"):
        audio.read(tmp_path / "nothing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(audio.AudioError, match=r"text\.wav: cannot read audio"):
        audio.read(tmp_path / "text.wav")
    seconds, why = audio.readable_seconds(tmp_path / "text.wav")
    assert seconds is None and "cannot read audio" in why
    sf.write(tmp_path / "nan.wav", np.array([0.0, np.nan, 0.1], np.float32), 8000, subtype="FLOAT")
    with pytest.raises(audio.AudioError, match=r"1 samples are NaN or infinite"):
        audio.read(tmp_path / "nan.wav")


def test_audio_names_and_peak_safety():
    assert audio.is_audio_name("a/B.WAV") and audio.is_audio_name("x.flac") and not audio.is_audio_name("x.txt")
    loud = np.array([[0.5, -2.0], [1.0, 0.25]])
    assert np.max(np.abs(audio.peak_safe(loud))) == pytest.approx(0.999)
    quiet = np.array([0.1, -0.2])
    assert audio.peak_safe(quiet) is quiet


def test_fit_length_cuts_or_pads_the_end_of_one_axis():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(audio.fit_length(x, 2), [[1, 2], [4, 5]])
    padded = audio.fit_length(x, 5)
    assert padded.dtype == np.float32 and np.array_equal(padded, [[1, 2, 3, 0, 0], [4, 5, 6, 0, 0]])
    assert np.array_equal(audio.fit_length(x, 1, axis=0), x[:1]) and audio.fit_length(x, 4, axis=0).shape == (4, 3)
    assert np.array_equal(audio.fit_length(x, 3), x) and np.shares_memory(audio.fit_length(x, 2), x)  # cut: a view
    assert audio.fit_length(np.ones(3), 0).shape == (0,)
