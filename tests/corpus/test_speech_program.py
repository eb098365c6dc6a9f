"""Running a command-line synthesiser: the files it is given, what it writes back, and its failures."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from deepclust.corpus import speech_program
from deepclust.corpus.split import CorpusError


def fake_program(tmp_path, body: str):
    """A shell script standing in for a synthesiser: ``$1`` is the text file, ``$2`` the WAV file to write."""
    program = tmp_path / "synth"
    program.write_text("#!/bin/sh\n" + body + "\n")
    program.chmod(0o755)
    return [str(program), speech_program.TEXT, speech_program.WAV]


def test_the_program_reads_the_text_and_its_wav_comes_back(tmp_path):
    sound = np.stack([np.linspace(-0.5, 0.5, 800), np.zeros(800)], axis=1)  # stereo: the first channel is kept
    sf.write(tmp_path / "said.wav", sound, 16000, subtype="FLOAT")
    command = fake_program(tmp_path, f'grep -q "hello there" "$1" && cp {tmp_path / "said.wav"} "$2"')
    samples, rate = speech_program.speak_file(command, "hello there", "fake")
    assert rate == 16000 and samples.dtype == np.float32 and np.allclose(samples, sound[:, 0])
    with pytest.raises(CorpusError, match=r"fake failed \(exit status 1\)"):  # the text was not what it read
        speech_program.speak_file(command, "goodbye", "fake")


def test_an_empty_wav_or_the_error_marker_is_a_failure_even_at_exit_status_0(tmp_path):
    empty = fake_program(tmp_path, ': > "$2"')
    with pytest.raises(CorpusError, match=r"fake failed \(exit status 0\): no message\. Received: text='hi'"):
        speech_program.speak_file(empty, "hi", "fake")
    sf.write(tmp_path / "said.wav", np.zeros(80), 8000)
    marked = fake_program(tmp_path, f'cp {tmp_path / "said.wav"} "$2"; echo "BAD THING happened" >&2')
    assert speech_program.speak_file(marked, "hi", "fake")[1] == 8000  # no marker asked for: a message is fine
    with pytest.raises(CorpusError, match="BAD THING happened"):
        speech_program.speak_file(marked, "hi", "fake", error_marker="BAD THING")


def test_bad_text_or_stretch_is_refused():
    with pytest.raises(CorpusError, match=r"Received: text=''"):
        speech_program.check_text_and_stretch("", 1.0)
    with pytest.raises(CorpusError, match=r"Received: duration_stretch=0\.1"):
        speech_program.check_text_and_stretch("hi", 0.1)
    speech_program.check_text_and_stretch("hi", 1.0)


def test_a_program_that_hangs_is_stopped_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(speech_program, "TIMEOUT_SECONDS", 0.5)
    with pytest.raises(CorpusError, match=r"fake took more than 0\.5 s on one text .* Received: text='hi'"):
        speech_program.speak_file(fake_program(tmp_path, "sleep 5"), "hi", "fake")
