"""Augmentation: what happens to one training source between the corpus and the mixer's levels.

:class:`Augmenter` turns a stretch of one utterance into the source as a
different voice on a different channel might have given it: speed
perturbation, vocal-tract-length warping, spectral tilt and a peaking EQ band,
telephone band-limiting, G.711 mu-law, a room, a noise floor, each as
``[augment]`` asks (:class:`deepclust.config.AugmentConfig`), in that order.
The room and the noise are synthetic, or drawn from recordings (``rir_list``,
``noise_list``: a list file or a Kaldi data directory, as SpeechBrain's and
ESPnet's noise lists), held by a :class:`ClipBank`.
Levels are left to :mod:`deepclust.dsp.mixing`, which brings every source to its
level afterwards. Every draw comes from the generator it is given and only for
what is switched on, so a config without augmentation draws the mixtures it
drew before, and a batch is the same arrays in whichever process draws it.
"""

from __future__ import annotations

import functools
import logging
import math
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.fft
import scipy.signal

from ..config import AugmentConfig
from ..dsp import audio, features

TELEPHONE_LOW_HZ = (200.0, 400.0)  # high-pass corner, uniform in this band
TELEPHONE_HIGH_HZ = (3000.0, 3600.0)  # low-pass corner (at most 0.9 x Nyquist)
MU = 255.0  # G.711 mu-law
TILT_PIVOT_HZ = 1000.0
EQ_Q = (0.7, 2.0)
DIRECT_TO_REVERB_DB = (0.0, 10.0)
VTLP_BOUNDARY = 0.8  # of Nyquist: the warp is linear below it, then meets Nyquist (Jaitly & Hinton 2013)
SPEED_DENOMINATOR = 40  # speed factors are rationals p/q with q <= this (resample_poly needs integers)
log = logging.getLogger(__name__)

WINDOW = 256  # samples of the STFT that applies tilt, EQ and VTLP (32 ms at 8 kHz)


class Augmenter:
    """Draws and applies the ``[augment]`` changes to one source at a time, at ``sample_rate``."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int, base: Path | None = None):
        """``base``: the folder relative paths of ``noise_list`` and ``rir_list`` start from (the lists')."""
        self.cfg = cfg
        self.rate = sample_rate
        self.active = cfg.active
        self.noises = ClipBank("augment.noise_list", cfg.noise_list, sample_rate, base) if cfg.noise_list else None
        self.rooms = ClipBank("augment.rir_list", cfg.rir_list, sample_rate, base) if cfg.rir_list else None

    def source(self, read: Callable[[int], np.ndarray], length: int, rng: np.random.Generator) -> np.ndarray:
        """A ``length``-sample source: ``read(n)`` gives ``n`` samples of the utterance (the mixer's random
        stretch, zero-padded where short); speed perturbation reads more or fewer and resamples."""
        c = self.cfg
        if c.speed:
            factor = Fraction(float(rng.uniform(1 - c.speed, 1 + c.speed))).limit_denominator(SPEED_DENOMINATOR)
            x = speed(read(int(np.ceil(length * factor))), factor, length)
        else:
            x = read(length)
        x = np.asarray(x, np.float64)
        if c.vtlp or c.tilt_db or c.eq_db:
            x = self.spectral(x, rng)
        if c.band_limit and rng.random() < c.band_limit:
            x = band_limit(x, self.rate, rng.uniform(*TELEPHONE_LOW_HZ),
                           min(rng.uniform(*TELEPHONE_HIGH_HZ), 0.45 * self.rate))
        if c.codec and rng.random() < c.codec:
            x = mu_law(x)
        if c.reverb and rng.random() < c.reverb:
            x = reverberate(x, recorded_response(self.rooms.draw(rng)) if self.rooms else
                            room_response(rng, self.rate, rng.uniform(c.rt60_min, c.rt60_max)))
        if c.noise and rng.random() < c.noise:
            noise = self.noises.excerpt(rng, len(x)) if self.noises else None
            x = add_noise(x, rng, rng.uniform(c.snr_min_db, c.snr_max_db), noise)
        return x.astype(np.float32)

    def spectral(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """VTLP, tilt and EQ in one STFT: the magnitude warped and shaped, the phase of each bin kept."""
        c = self.cfg
        freqs = np.fft.rfftfreq(WINDOW, 1.0 / self.rate)
        alpha = rng.uniform(1 - c.vtlp, 1 + c.vtlp) if c.vtlp else 1.0
        gain_db = np.zeros_like(freqs)
        if c.tilt_db:
            gain_db += rng.uniform(-c.tilt_db, c.tilt_db) * np.log2(np.maximum(freqs, 50.0) / TILT_PIVOT_HZ)
        if c.eq_db:
            centre = np.exp(rng.uniform(np.log(200.0), np.log(0.4 * self.rate)))
            gain_db += peaking_db(freqs, centre, rng.uniform(-c.eq_db, c.eq_db), rng.uniform(*EQ_Q))
        return shape_spectrum(x, self.rate, vtlp_source_bins(freqs, alpha, self.rate), 10.0 ** (gain_db / 20))


def speed(x: np.ndarray, factor: Fraction, length: int) -> np.ndarray:
    """``x`` played ``factor`` times as fast (resampled by 1/factor), cut or padded to ``length``."""
    x = np.asarray(x, np.float64)
    up, down = factor.denominator, factor.numerator
    y = x if up == down else scipy.signal.resample_poly(x, up, down, window=resampling_filter(up, down))
    return audio.fit_length(y, length)


@functools.lru_cache(maxsize=None)
def resampling_filter(up: int, down: int) -> np.ndarray:
    """The low-pass filter ``resample_poly`` designs for ``up``/``down`` (its default Kaiser window),
    designed once per factor: designing it anew for every source cost a tenth of the augmentation.
    Read-only, as the cache shares it (resample_poly copies what it is given)."""
    rate = max(up, down) // math.gcd(up, down)
    taps = scipy.signal.firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))
    taps.flags.writeable = False
    return taps


def vtlp_source_bins(freqs: np.ndarray, alpha: float, rate: float) -> np.ndarray:
    """For each output frequency, the input frequency VTLP's piecewise-linear warp f -> alpha f brings
    there (in bins of ``freqs``): linear up to a boundary, then a line to Nyquist, so Nyquist stays."""
    nyquist = rate / 2
    boundary = VTLP_BOUNDARY * nyquist * min(alpha, 1.0)  # output frequency where the slope changes
    below = freqs <= boundary
    source = np.where(below, freqs / alpha,
                      nyquist - (nyquist - freqs) * (nyquist - boundary / alpha) / (nyquist - boundary))
    return source / (freqs[1] - freqs[0])


def shape_spectrum(x: np.ndarray, rate: float, source_bins: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``x`` with each STFT bin's magnitude read at ``source_bins`` (interpolated) times ``gain``."""
    if len(x) < WINDOW:
        return x
    window = scipy.signal.windows.hann(WINDOW, sym=False)
    _, _, spec = scipy.signal.stft(x, rate, window=window, nperseg=WINDOW, noverlap=3 * WINDOW // 4)
    magnitude = np.abs(spec)
    position = np.clip(source_bins, 0, magnitude.shape[0] - 1)
    low = np.minimum(position.astype(int), magnitude.shape[0] - 2)
    weight = (position - low)[:, None]
    warped = magnitude[low] * (1 - weight) + magnitude[low + 1] * weight  # linear interpolation across bins
    # Each bin's phase as a unit phasor, by division: exp(1j * angle) cost more than all the rest of
    # the shaping. A silent bin has no phase and takes phase 0.
    phase = np.divide(spec, magnitude, out=np.ones_like(spec), where=magnitude > 0)
    return inverse_stft(warped * gain[:, None] * phase, window, len(x))


def inverse_stft(spec: np.ndarray, window: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` samples of ``scipy.signal.istft`` of ``spec`` (bins x frames, one-sided, as
    ``scipy.signal.stft`` made it with ``window`` and a hop of a quarter of it): the same least-squares
    overlap-add, done by :func:`deepclust.dsp.features.overlap_add` rather than scipy's Python loop over
    frames, which cost more than all the FFTs of the augmentation. (Not the features' own STFT: its
    sqrt-Hann window leaks more, and VTLP kept each bin's phase would then keep a sine's frequency.)"""
    hop = len(window) // 4
    frames = scipy.fft.irfft(spec, n=len(window), axis=0).T * window.sum()  # undoes stft's scaling="spectrum"
    y = features.overlap_add(frames * window, hop)
    norm = features.overlap_add(np.broadcast_to(window**2, frames.shape), hop)
    return audio.fit_length((y / np.where(norm > 1e-10, norm, 1.0))[len(window) // 2:], length)  # stft's boundary


def peaking_db(freqs: np.ndarray, centre: float, gain_db: float, q: float) -> np.ndarray:
    """A peaking EQ band's gain in dB over ``freqs``: ``gain_db`` at ``centre``, falling off in octaves by ``q``."""
    octaves = np.log2(np.maximum(freqs, 1.0) / centre)
    return gain_db / (1.0 + (octaves * q * 2) ** 2)


def band_limit(x: np.ndarray, rate: float, low_hz: float, high_hz: float) -> np.ndarray:
    """``x`` through a 4th-order Butterworth band-pass from ``low_hz`` to ``high_hz`` (a telephone channel)."""
    sos = scipy.signal.butter(4, [low_hz, high_hz], btype="bandpass", fs=rate, output="sos")
    return scipy.signal.sosfilt(sos, x)


def mu_law(x: np.ndarray) -> np.ndarray:
    """``x`` encoded and decoded by G.711 mu-law: companded to 8 bits at the signal's own peak."""
    peak = np.max(np.abs(x), initial=0.0)
    if peak == 0:
        return x
    companded = np.sign(x) * np.log1p(MU * np.abs(x) / peak) / np.log1p(MU)
    quantised = np.round(companded * 127.5 - 0.5) + 0.5
    y = quantised / 127.5
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU * peak


def room_response(rng: np.random.Generator, rate: float, rt60: float) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then Gaussian noise decaying by 60 dB in ``rt60``
    seconds, the tail's energy below the direct path's by a direct-to-reverberant ratio drawn in dB."""
    n = max(2, int(rt60 * rate))
    tail = rng.standard_normal(n) * np.exp(-6.908 * np.arange(n) / (rt60 * rate))  # ln(1000): 60 dB
    tail[0] = 0.0
    drr_db = rng.uniform(*DIRECT_TO_REVERB_DB)
    tail *= np.sqrt(10.0 ** (-drr_db / 10) / max(np.sum(tail**2), 1e-12))
    tail[0] = 1.0
    return tail


def recorded_response(response: np.ndarray) -> np.ndarray:
    """A recorded room impulse response as ``reverberate`` takes it: from its direct path (the largest
    sample) on, that path scaled to 1 like the synthetic one's."""
    peak = int(np.argmax(np.abs(response)))
    return np.asarray(response[peak:], np.float64) / response[peak]


def reverberate(x: np.ndarray, response: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``response``, as long as ``x`` (the reverberant image is the source)."""
    return scipy.signal.fftconvolve(x, response)[:len(x)]


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: float, noise: np.ndarray | None = None) -> np.ndarray:
    """``x`` plus ``noise`` (as long as ``x``; None: coloured between white and pink (1/f) at random)
    scaled to ``snr_db`` below the RMS of ``x``."""
    rms = np.sqrt(np.mean(x**2)) if len(x) else 0.0
    if rms == 0:
        return x
    if noise is not None:
        level = np.sqrt(np.mean(np.square(noise, dtype=np.float64)))
        return x + noise * (rms * 10.0 ** (-snr_db / 20) / level) if level > 0 else x
    # Coloured at a length the FFT is fast for (a source's length may have large prime factors, which
    # made this the costliest augmentation), then cut back.
    size = scipy.fft.next_fast_len(len(x), real=True)
    spectrum = scipy.fft.rfft(rng.standard_normal(len(x)), n=size)
    slope = rng.uniform(0.0, 1.0)  # 0: white, 1: pink
    spectrum *= np.maximum(np.arange(len(spectrum)), 1.0) ** (-slope / 2)
    noise = scipy.fft.irfft(spectrum, n=size)[:len(x)]
    noise *= rms * 10.0 ** (-snr_db / 20) / max(np.sqrt(np.mean(noise**2)), 1e-12)
    return x + noise


class ClipBank:
    """The recordings of a noise or room list (``path [label]`` lines, or a Kaldi data directory), read
    on first use at the augmenter's rate and kept. Unreadable or silent files are left out with one
    warning; a list with none left is refused when training starts, naming the config key."""

    def __init__(self, key: str, where: str, rate: int, base: Path | None = None):
        self.rate = rate
        path = Path(where).expanduser()
        path = path if path.is_absolute() or base is None else base / path
        entries, problems = _listed(key, where, path)
        self.paths, left_out = [], list(problems)
        for p in entries:
            seconds, why = audio.readable_seconds(p)
            if seconds:
                self.paths.append(p)
            else:
                left_out.append((str(p), why))
        if left_out:
            log.warning("%s: %d of the files %s lists left out, the first: %s: %s", key, len(left_out), path,
                        *left_out[0])
        if not self.paths:
            raise ValueError(f"{key}: {path} lists no readable audio; expected lines 'path/to/audio [label]' or a Kaldi "
                             f"data directory of noise or impulse-response recordings. Received: {key}={where!r}")
        self.clips: dict[int, np.ndarray] = {}

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One recording, whole, at random."""
        i = int(rng.integers(len(self.paths)))
        if i not in self.clips:
            self.clips[i] = audio.read(self.paths[i], self.rate)[0].astype(np.float64)
        return self.clips[i]

    def excerpt(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """``length`` samples of one recording from a random place, looped where it is shorter."""
        clip = self.draw(rng)
        return np.resize(np.roll(clip, -int(rng.integers(len(clip)))), length)


def _listed(key: str, where: str, path: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    from ..corpus import lists

    if (path / "wav.scp").is_file():
        entries, problems = lists.read_kaldi_dir(path)
        return [e.path for e in entries], problems
    if path.is_file():
        found = []
        for _, content, _ in lists.lines(path, "path/to/audio [label]"):
            whole = lists.resolve(path, content)  # a path alone (it may hold spaces), else the label is last
            found.append(whole if whole.is_file() else lists.resolve(path, content.rsplit(None, 1)[0]))
        return found, []
    raise ValueError(f"{key}: {path}: no such list file or Kaldi data directory; expected a file of "
                     f"'path/to/audio [label]' lines (relative paths from the list's folder) or a folder with "
                     f"wav.scp. Received: {key}={where!r}")
