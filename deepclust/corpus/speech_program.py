"""Running a command-line speech synthesiser on one text: its files, its time limit and its errors.

Flite (``flite``) and Festival (``text2wave``) both read a text file and
write a WAV file; :func:`speak_file` runs one such program once, in a
temporary folder, and returns the samples, so ``flite`` and ``festival``
hold only what differs: the program, its voices and its arguments. Errors
are :class:`~deepclust.corpus.split.CorpusError`, the demo corpus's.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .split import CorpusError

# Seconds one call may take (a few sentences take well under one).
TIMEOUT_SECONDS = 60
TEXT, WAV = "{text}", "{wav}"  # placeholders in the command for the two files' paths


def find_program(name: str, who: str, hint: str) -> str:
    """The path of the program ``name``, or a :class:`CorpusError` saying ``who``'s voices need it and ``hint``."""
    path = shutil.which(name)
    if path is None:
        raise CorpusError(f"{who} voices need the {name} program, which was not found on PATH: {hint}")
    return path


def check_text_and_stretch(text: str, duration_stretch: float) -> None:
    """Raise :class:`CorpusError` for an empty text or a speaking-time factor outside [0.25, 4]."""
    if not text.strip():
        raise CorpusError(f"nothing to speak. Received: text={text!r}")
    if not 0.25 <= duration_stretch <= 4.0:
        raise CorpusError(f"duration_stretch scales the speaking time (1 = the voice's own) and must be in "
                          f"[0.25, 4]. Received: duration_stretch={duration_stretch}")


def speak_file(command: list[str], text: str, what: str, error_marker: str | None = None) -> tuple[np.ndarray, int]:
    """Run ``command`` (``TEXT`` and ``WAV`` standing for the input text file and the output WAV file) on
    ``text``: float32 mono samples and their rate.

    ``what`` names the program and voice in errors. A non-zero exit, a
    missing or empty WAV file, or ``error_marker`` in the program's messages
    (for programs that exit 0 on a failed voice) is a :class:`CorpusError`.
    """
    with tempfile.TemporaryDirectory(prefix="deepclust-speech-") as folder:
        text_path, wav_path = Path(folder, "text.txt"), Path(folder, "out.wav")
        text_path.write_text(text, encoding="utf-8")
        argv = [str(text_path) if a == TEXT else str(wav_path) if a == WAV else a for a in command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise CorpusError(f"{what} took more than {TIMEOUT_SECONDS} s on one text (a few sentences take "
                              f"well under one): is the machine overloaded? Received: text={text[:60]!r}") from None
        failed = done.returncode != 0 or not wav_path.is_file() or wav_path.stat().st_size == 0
        if failed or (error_marker is not None and error_marker in done.stderr):
            raise CorpusError(f"{what} failed (exit status {done.returncode}): "
                              f"{done.stderr.strip()[-300:] or 'no message'}. Received: text={text[:60]!r}")
        samples, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    return np.asarray(samples[:, 0], np.float32), int(rate)
