"""The espeak-ng binding: text and voice parameters in, raw samples out.

The library and its data come from the PyPI package ``espeakng-loader``
(``pip install 'deepclust[demo]'``) and are driven through ctypes, so nothing
needs installing system-wide. :func:`speak` turns text into samples and
:func:`phonemes` into IPA (the neural voices' front end, ``kokoro``); what
voices to speak with and what to do with the samples is ``voices``'s job.
Errors are :class:`~deepclust.corpus.split.CorpusError`, the demo corpus's.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import functools
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from .split import CorpusError

# espeak-ng synthesises at this rate (Hz) whatever the voice.
ESPEAK_RATE = 22050
# espeak_AUDIO_OUTPUT: samples are handed to our callback, synth returns when done.
AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_Initialize option: return an error instead of calling exit().
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
# espeak_POSITION_TYPE and espeak_Synth flags.
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
# espeak_TextToPhonemes' phoneme mode: IPA symbols.
ESPEAK_PHONEMES_IPA = 0x02
# espeak_PARAMETER ids.
ESPEAK_RATE_PARAM, ESPEAK_VOLUME, ESPEAK_PITCH, ESPEAK_RANGE = 1, 2, 3, 4
# espeak volume (0-200, 100 = default); below default so loud variants do not clip int16.
ESPEAK_VOLUME_VALUE = 60
ESPEAK_VOLUME_MAX = 200
# espeakPITCH and espeakRANGE run 0-99 (50 = the variant's default).
ESPEAK_PARAMETER_MAX = 99
# Seed for espeak's noise generators (its own and libc's): fixed, so output is reproducible.
ESPEAK_NOISE_SEED = 1
# espeakPITCH spans one octave either side of the voice's base: factor 2 ** ((p - 50) / 50).
PITCH_UNITS_PER_OCTAVE = 50
PITCH_CENTRE = 50

_LOCK = threading.Lock()
_LIBRARY_COPY: list[str] = []
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _loader():
    try:
        import espeakng_loader
    except ImportError:
        raise CorpusError("the demo corpus needs espeak-ng: pip install 'deepclust[demo]'") from None
    return espeakng_loader


def require() -> None:
    """Raise :class:`CorpusError` with the install hint now if espeak-ng is missing (before any long work)."""
    _loader()


def _private_library(loader) -> str:
    """A process-private copy of libespeak-ng, so loading and unloading it resets all its state.

    espeak-ng keeps synthesis state in C statics (gain control, phase,
    flutter, echo buffer) that survive espeak_Terminate, so the same text
    comes out slightly different on every call. Unloading the library and
    loading it afresh gives every utterance the same start; the private copy
    keeps that from disturbing anyone else in the process who loaded
    espeakng_loader's library.
    """
    if not _LIBRARY_COPY:
        folder = tempfile.mkdtemp(prefix="deepclust-espeak-")
        atexit.register(shutil.rmtree, folder, True)
        source = Path(loader.get_library_path())
        target = Path(folder) / source.name
        shutil.copyfile(source, target)
        _LIBRARY_COPY.append(str(target))
    return _LIBRARY_COPY[0]


def _unload(lib: ctypes.CDLL) -> None:
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None)
    except (OSError, TypeError):  # no C library to reach (e.g. Windows)
        return None


def _seed_libc_rand(seed: int) -> None:
    """espeak's voicing noise also draws on libc rand(); seed it for reproducible output."""
    libc = _libc()
    if libc is not None and hasattr(libc, "srand"):
        libc.srand(ctypes.c_uint(seed))


def _open_espeak() -> ctypes.CDLL:
    """Load a fresh libespeak-ng and initialise it for synchronous synthesis."""
    loader = _loader()
    try:
        lib = ctypes.CDLL(_private_library(loader))
    except OSError:  # e.g. a temp folder mounted noexec: use the package's own copy
        lib = ctypes.CDLL(loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    data = loader.get_data_path()
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), ESPEAK_INITIALIZE_DONT_EXIT)
    if rate <= 0:
        _unload(lib)
        raise CorpusError(f"{data}: espeak-ng failed to initialise (returned {rate}); "
                          "expected espeakng-loader's data folder. Reinstall with pip install 'deepclust[demo]'.")
    return lib


@contextlib.contextmanager
def _espeak_session():
    """A freshly loaded library for one call (speech or phonemes), one call at a time, unloaded after."""
    with _LOCK:
        lib = _open_espeak()
        try:
            yield lib
        finally:
            lib.espeak_Terminate()
            _unload(lib)


def _check_text(text: str) -> None:
    if not text.strip():
        raise CorpusError(f"nothing to speak; expected non-empty text. Received: text={text!r}")


def _check_parameters(text: str, pitch: int, pitch_range: int, rate: int, volume: int) -> None:
    _check_text(text)
    for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
        if not 0 <= value <= ESPEAK_PARAMETER_MAX:
            raise CorpusError(f"{name} is espeak's 0-{ESPEAK_PARAMETER_MAX} scale (50 = the voice's default). "
                              f"Received: {name}={value}")
    if rate <= 0:
        raise CorpusError(f"rate is espeak's speaking rate in words per minute and must be positive. "
                          f"Received: rate={rate}")
    if not 0 <= volume <= ESPEAK_VOLUME_MAX:
        raise CorpusError(f"volume is espeak's 0-{ESPEAK_VOLUME_MAX} scale (100 = default). Received: volume={volume}")


def _set_voice(lib: ctypes.CDLL, voice: str) -> None:
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise CorpusError(f"espeak-ng has no voice {voice!r}; expected 'language' or 'language+variant' such as "
                          f"'en-us' or 'en-us+f3'. Received: voice={voice!r}")


def _synthesise(lib: ctypes.CDLL, text: str, voice: str, parameters: tuple[tuple[int, int], ...]) -> None:
    """One utterance through an opened library; samples go to the callback already set."""
    _set_voice(lib, voice)
    for param, value in parameters:
        lib.espeak_SetParameter(param, int(value), 0)
    lib.espeak_ng_SetRandSeed(ctypes.c_long(ESPEAK_NOISE_SEED))
    _seed_libc_rand(ESPEAK_NOISE_SEED)
    encoded = text.encode("utf-8")
    status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
    if status != 0:
        raise CorpusError(f"espeak-ng failed to speak (error {status}). Received: text={text[:60]!r}, "
                          f"voice={voice!r}")
    lib.espeak_Synchronize()


def speak(text: str, voice: str, pitch: int = PITCH_CENTRE, pitch_range: int = PITCH_CENTRE, rate: int = 175,
          volume: int = ESPEAK_VOLUME_VALUE) -> np.ndarray:
    """``text`` spoken by espeak-ng: raw int16 samples at :data:`ESPEAK_RATE`.

    ``voice`` is ``language+variant`` (``en-us+f3``); ``pitch`` and
    ``pitch_range`` are espeakPITCH / espeakRANGE (0-99, 50 = the variant's
    default); ``rate`` is words per minute; ``volume`` 0-200. Every call
    loads the library afresh (see ``_private_library``), so the same
    arguments give the same samples.
    """
    _check_parameters(text, pitch, pitch_range, rate, volume)
    chunks: list[np.ndarray] = []

    def collect(wav, count, events):
        if count > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    callback = _CALLBACK(collect)
    parameters = ((ESPEAK_RATE_PARAM, rate), (ESPEAK_PITCH, pitch), (ESPEAK_RANGE, pitch_range),
                  (ESPEAK_VOLUME, volume))
    with _espeak_session() as lib:
        lib.espeak_SetSynthCallback(callback)
        _synthesise(lib, text, voice, parameters)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def phonemes(text: str, voice: str = "en-us") -> str:
    """``text`` as espeak-ng's IPA phonemes in ``voice``'s accent, one clause after another, space separated.

    espeak returns one clause per call and moves the text pointer on; its
    stress marks stay in, punctuation does not.
    """
    _check_text(text)
    clauses: list[str] = []
    with _espeak_session() as lib:
        _set_voice(lib, voice)
        remaining = ctypes.c_char_p(text.encode("utf-8"))
        while remaining.value:
            clause = lib.espeak_TextToPhonemes(ctypes.byref(remaining), ESPEAK_CHARS_UTF8, ESPEAK_PHONEMES_IPA)
            clauses.append((clause or b"").decode("utf-8").strip())
    return " ".join(c for c in clauses if c)
