"""The Flite binding: text and voice parameters in, raw samples out.

Flite (CMU's small speech synthesiser, BSD-style licence) ships voices built
from recordings of real people: ``slt`` (a US woman), ``rms`` (a US man) and
``awb`` (a Scottish man), statistical parametric voices trained on the CMU
ARCTIC recordings, and ``kal``/``kal16`` (a US man, diphones at 8 and 16
kHz). Their spectra come from human vocal tracts, which espeak-ng's formant
voices' do not. It is a system program (``apt install flite`` on Debian and
Ubuntu, ``brew install flite`` on macOS; ``scripts/setup.sh`` installs it as
root), run once per utterance by ``speech_program``. :func:`speak` is the
one entry point; which voices to speak with is ``voices``'s job. Errors are
:class:`~deepclust.corpus.split.CorpusError`, the demo corpus's.
"""

from __future__ import annotations

import functools
import subprocess

import numpy as np

from . import speech_program
from .split import CorpusError

# Voices compiled into Debian's and Homebrew's flite that read English text (awb_time only says the time).
VOICES = ("awb", "kal", "kal16", "rms", "slt")
INSTALL_HINT = "install the flite program: apt install flite (Debian/Ubuntu) or brew install flite (macOS)"


def _program() -> str:
    return speech_program.find_program("flite", "Flite", INSTALL_HINT)


@functools.lru_cache(maxsize=1)
def available_voices() -> tuple[str, ...]:
    """The voices of :data:`VOICES` this flite has (``flite -lv``)."""
    listing = subprocess.run([_program(), "-lv"], capture_output=True, text=True, timeout=speech_program.TIMEOUT_SECONDS)
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
    speech_program.check_text_and_stretch(text, duration_stretch)
    settings = [("duration_stretch", duration_stretch), ("int_f0_target_mean", f0_mean),
                ("int_f0_target_stddev", f0_stddev)]
    options = [arg for name, value in settings if value is not None for arg in ("--setf", f"{name}={value:.4f}")]
    command = [_program(), "-voice", voice, *options, "-f", speech_program.TEXT, "-o", speech_program.WAV]
    return speech_program.speak_file(command, text, f"flite on voice {voice}")
