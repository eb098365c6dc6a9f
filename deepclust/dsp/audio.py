"""Audio in and out: read, downmix, resample, write; a signal cut or padded to a length. Nothing about spectra here."""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .. import atomic

# Below this RMS a signal is digital silence: not level-normalised (it would blow up), not scorable.
SILENT_RMS = 1e-6
# Largest denominator accepted when turning a rate ratio into up/down factors;
# any two integer rates give an exact ratio far below this.
MAX_RESAMPLE_FACTOR = 1 << 16


# libsndfile's formats (soundfile.available_formats()) and the endings of their files' names; RAW is
# left out: it needs its rate and encoding given.
FORMAT_EXTENSIONS = {
    "WAV": (".wav",), "WAVEX": (".wav",), "FLAC": (".flac",), "OGG": (".ogg", ".oga", ".opus"),
    "MP3": (".mp3",), "AIFF": (".aiff", ".aif", ".aifc"), "AU": (".au", ".snd"), "CAF": (".caf",),
    "W64": (".w64",), "RF64": (".rf64",), "NIST": (".nist", ".sph"), "VOC": (".voc",), "IRCAM": (".sf",),
    "PAF": (".paf",), "SVX": (".svx", ".8svx"), "MAT4": (".mat",), "MAT5": (".mat",), "PVF": (".pvf",),
    "XI": (".xi",), "HTK": (".htk",), "SDS": (".sds",), "AVR": (".avr",), "SD2": (".sd2",),
    "WVE": (".wve",), "MPC2K": (".mpc",),
}


@functools.lru_cache(maxsize=1)
def extensions() -> tuple[str, ...]:
    """The name endings (lower case, with the dot) of every audio format this install's libsndfile reads."""
    formats = sf.available_formats()
    return tuple(sorted({e for name, endings in FORMAT_EXTENSIONS.items() if name in formats for e in endings}))


def is_audio_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in extensions()


class AudioError(ValueError):
    """An audio file cannot be used; the message names the file and the fix."""


def readable_seconds(path: str | Path) -> tuple[float | None, str]:
    """Duration in seconds from the header, or None and the reason the file cannot be used (the reason
    alone: the caller names the file)."""
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError (its reason in error_string), RuntimeError, TypeError
        hint = " (SPHERE files are often shorten-compressed: convert them with sph2pipe)" \
            if path.suffix.lower() == ".sph" else ""
        return None, f"cannot read audio ({getattr(exc, 'error_string', exc)}){hint}; expected a file libsndfile reads"
    if info.frames <= 0:
        return None, "the file holds no audio (0 samples)"
    return info.frames / info.samplerate, ""


def resample(signal: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy) along the first axis; exact rational ratio."""
    if orig_rate == target_rate:
        return signal
    ratio = Fraction(int(target_rate), int(orig_rate)).limit_denominator(MAX_RESAMPLE_FACTOR)
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=0).astype(np.float32)


def read(path: str | Path, sample_rate: int | None = None, *, start: int = 0, stop: int | None = None,
         mono: bool = True) -> tuple[np.ndarray, int]:
    """Read ``path`` as mono float32 in [-1, 1], resampled to ``sample_rate`` if given.

    Returns ``(signal, rate)``. Multichannel files are averaged to mono (kept as
    (samples, channels) with ``mono=False``); any
    integer or float encoding libsndfile reads is converted. NaN or infinite
    samples are refused, since they would poison every spectrum they touch.
    """
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True, start=start, stop=stop)
    except Exception as exc:
        if not Path(path).exists():
            raise AudioError(f"{path}: file not found; check the path.") from None
        raise AudioError(
            f"{path}: cannot read audio ({exc}); expected a file libsndfile reads (wav, flac, ogg ...)."
        ) from None
    signal = data if not mono else data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(signal)):
        bad = int(np.size(signal) - np.count_nonzero(np.isfinite(signal)))
        raise AudioError(f"{path}: {bad} samples are NaN or infinite; expected finite audio. Repair or remove the file.")
    if sample_rate is not None and rate != sample_rate:
        signal = resample(signal, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(signal, dtype=np.float32), int(rate)


def write(path: str | Path, signal: np.ndarray, sample_rate: int, *, subtype: str = "PCM_16", overwrite: bool = False) -> Path:
    """Write a mono or (frames, channels) signal as WAV, atomically.

    The file appears complete or not at all (temporary file, then rename);
    an existing file is refused unless ``overwrite``.
    """
    with atomic.replacing(path, suffix=".wav", overwrite=overwrite) as tmp:
        sf.write(tmp, np.asarray(signal, dtype=np.float32), int(sample_rate), subtype=subtype, format="WAV")
    return Path(path)


def fit_length(signal: np.ndarray, length: int, axis: int = -1) -> np.ndarray:
    """``signal`` cut, or zero-padded at the end, to ``length`` samples along ``axis`` (a view when cut)."""
    have = signal.shape[axis]
    if have >= length:
        return signal[(slice(None),) * (axis % signal.ndim) + (slice(0, int(length)),)]
    pad = [(0, 0)] * signal.ndim
    pad[axis] = (0, int(length) - have)
    return np.pad(signal, pad)


def peak_safe(signals: np.ndarray, limit: float = 0.999) -> np.ndarray:
    """Scale ``signals`` down together (by max-abs) if any sample would clip."""
    peak = float(np.max(np.abs(signals))) if signals.size else 0.0
    return signals * (limit / peak) if peak > limit else signals
