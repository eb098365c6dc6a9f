"""The Flite binding: text and voice parameters in, raw samples out.

Flite (CMU's small speech synthesiser, BSD-style licence) ships voices built
from recordings of real people: ``slt`` (a US woman), ``rms`` (a US man) and
``awb`` (a Scottish man), statistical parametric voices trained on the CMU
ARCTIC recordings, and ``kal``/``kal16`` (a US man, diphones at 8 and 16
kHz). Their spectra come from human vocal tracts, which espeak-ng's formant
voices' do not. It is a system program (``apt install flite`` on Debian and
Ubuntu, ``brew install flite`` on macOS; ``scripts/setup.sh`` installs it as
root), run once per utterance. :func:`speak` is the one entry point; which
voices to speak with is ``voices``'s job. Errors are
:class:`~deepclust.prepare.CorpusError`, the demo corpus's.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .prepare import CorpusError

# Voices compiled into Debian's and Homebrew's flite that read English text (awb_time only says the time).
VOICES = ("awb", "kal", "kal16", "rms", "slt")
INSTALL_HINT = "install the flite program: apt install flite (Debian/Ubuntu) or brew install flite (macOS)"
# Seconds one call may take (a few sentences take well under one).
TIMEOUT_SECONDS = 60


def _program() -> str:
    path = shutil.which("flite")
    if path is None:
        raise CorpusError(f"Flite voices need the flite program, which was not found on PATH: {INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=1)
def available_voices() -> tuple[str, ...]:
    """The voices of :data:`VOICES` this flite has (``flite -lv``)."""
    listing = subprocess.run([_program(), "-lv"], capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    named = set(listing.stdout.replace("Voices available:", " ").split())
    return tuple(v for v in VOICES if v in named)


def require() -> None:
    """Raise :class:`CorpusError` with the install hint now if flite or its voices are missing."""
    missing = sorted(set(VOICES) - set(available_voices()))
    if missing:
        raise CorpusError(f"this flite lacks the voices {missing} (it has {list(available_voices())}); "
                          f"expected Debian's or Homebrew's build: {INSTALL_HINT}")


def speak(text: str, voice: str, f0_mean: float | None = None, f0_stddev: float | None = None,
          duration_stretch: float = 1.0) -> tuple[np.ndarray, int]:
    """``text`` spoken by flite's ``voice``: float32 samples and their rate (8000 or 16000 Hz).

    ``f0_mean`` and ``f0_stddev`` (Hz) set the intonation model's target
    pitch and its spread (None: the voice's own; ``rms`` ignores them);
    ``duration_stretch`` > 1 speaks slower. The same arguments give the same
    samples on every call.
    """
    if voice not in VOICES:
        raise CorpusError(f"voice must be one of flite's English voices {list(VOICES)}. Received: voice={voice!r}")
    if not text.strip():
        raise CorpusError(f"nothing to speak. Received: text={text!r}")
    if not 0.25 <= duration_stretch <= 4.0:
        raise CorpusError(f"duration_stretch scales the speaking time (1 = the voice's own) and must be in "
                          f"[0.25, 4]. Received: duration_stretch={duration_stretch}")
    settings = [("duration_stretch", duration_stretch), ("int_f0_target_mean", f0_mean),
                ("int_f0_target_stddev", f0_stddev)]
    options = [arg for name, value in settings if value is not None for arg in ("--setf", f"{name}={value:.4f}")]
    with tempfile.TemporaryDirectory(prefix="deepclust-flite-") as folder:
        text_path, wav_path = Path(folder, "text.txt"), Path(folder, "out.wav")
        text_path.write_text(text, encoding="utf-8")
        done = subprocess.run([_program(), "-voice", voice, *options, "-f", str(text_path), "-o", str(wav_path)],
                              capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        if done.returncode != 0 or not wav_path.is_file():
            raise CorpusError(f"flite failed on voice {voice} (exit status {done.returncode}): "
                              f"{done.stderr.strip()[-300:] or 'no message'}. Received: text={text[:60]!r}")
        samples, rate = sf.read(wav_path, dtype="float32")
    return np.asarray(samples, np.float32).reshape(-1), int(rate)
