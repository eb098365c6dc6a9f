"""The Festival binding: text and voice in, raw samples out.

Festival (the University of Edinburgh's speech synthesis system; Debian
main) has voices recorded from real people in several languages; the ten
in :data:`VOICES` read English text with their own language's letter
rules, which for separation is what matters: ten more human vocal tracts
(four women, a boy and five men, none of them Flite's) than espeak-ng's
formant voices and Flite's five. Their licences (each package's
``/usr/share/doc/PACKAGE/copyright``): the Czech voices GPL-3+, the Italian
GPL-2+, the Catalan and Finnish LGPL-2.1, ``ked`` Festival's own free
licence; like espeak-ng's, the audio they speak is not the program. It is a
system program (``apt install festival`` and the packages of
:data:`PACKAGES`; ``scripts/setup.sh`` installs them as root), its
``text2wave`` run once per utterance by ``speech_program``. :func:`speak` is
the one entry point; which voices to speak with is ``voices``'s job. Errors
are :class:`~deepclust.corpus.split.CorpusError`, the demo corpus's.
"""

from __future__ import annotations

import functools
import subprocess

import numpy as np

from . import speech_program
from .split import CorpusError

# Festival voice name -> who speaks (f: a woman or a child, m: a man). The HTS voice (upc_ca_ona_hts)
# keeps its own tempo whatever duration_stretch says.
VOICES = {"czech_dita": "f", "czech_krb": "f", "upc_ca_ona_hts": "f", "suo_fi_lj_diphone": "f", "lp_diphone": "f",
          "czech_machac": "m", "czech_ph": "m", "hy_fi_mv_diphone": "m", "pc_diphone": "m", "ked_diphone": "m"}
PACKAGES = ("festival", "festvox-czech-dita", "festvox-czech-krb", "festvox-czech-machac", "festvox-czech-ph",
            "festvox-ca-ona-hts", "festvox-suopuhe-lj", "festvox-suopuhe-mv", "festvox-italp16k",
            "festvox-itapc16k", "festvox-kdlpc16k")
INSTALL_HINT = "install Festival and its voices: apt install " + " ".join(PACKAGES) + " (Debian/Ubuntu)"
# text2wave exits 0 when a voice fails to load; its Scheme interpreter says this instead.
ERROR_MARKER = "SIOD ERROR"


def _program(name: str = "text2wave") -> str:
    return speech_program.find_program(name, "Festival", INSTALL_HINT)


@functools.lru_cache(maxsize=1)
def available_voices() -> tuple[str, ...]:
    """The voices of :data:`VOICES` this Festival has (``(voice.list)``)."""
    listing = subprocess.run([_program("festival"), "-b", "(print (voice.list))"], capture_output=True, text=True,
                             timeout=speech_program.TIMEOUT_SECONDS)
    named = set(listing.stdout.replace("(", " ").replace(")", " ").split())
    return tuple(v for v in VOICES if v in named)


def require() -> None:
    """Raise :class:`CorpusError` with the install hint now if Festival or its voices are missing."""
    _program()
    missing = sorted(set(VOICES) - set(available_voices()))
    if missing:
        raise CorpusError(f"this Festival lacks the voices {missing} (it has {list(available_voices())}): "
                          f"{INSTALL_HINT}")


def speak(text: str, voice: str, duration_stretch: float = 1.0) -> tuple[np.ndarray, int]:
    """``text`` spoken by Festival's ``voice``: float32 samples and their rate (16000 to 44100 Hz, the voice's).

    ``duration_stretch`` > 1 speaks slower. The same arguments give the same
    samples on every call.
    """
    if voice not in VOICES:
        raise CorpusError(f"voice must be one of the Festival voices {list(VOICES)}. Received: voice={voice!r}")
    speech_program.check_text_and_stretch(text, duration_stretch)
    command = [_program(), "-eval", f"(voice_{voice})", "-eval", f"(Parameter.set 'Duration_Stretch "
               f"{duration_stretch:.4f})", speech_program.TEXT, "-o", speech_program.WAV]
    return speech_program.speak_file(command, text, f"Festival on voice {voice}", error_marker=ERROR_MARKER)
