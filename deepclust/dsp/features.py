"""Spectra: the STFT settings, STFT / iSTFT, reconstruction from masks, log-magnitude features, silence,
level, labels and loss weights; each training-feature primitive in numpy and, beside it, in ``keras.ops``.

Arrays are laid out (frames, bins) = (T, F), the layout the network reads.
:class:`Stft` holds the STFT settings and their frame arithmetic once, for
the config, the model file and both forms. The ``*_ops`` functions are the
numpy function of their name in ``keras.ops`` (Keras imported on first use),
which :mod:`deepclust.dsp.device_features` computes inside the training step;
tests/dsp/test_device_features.py checks the two forms give the same numbers.
The STFT is scipy's ``ShortTimeFFT`` with a periodic sqrt-Hann window: its
frames run past both ends of the signal and its inverse uses the dual window,
so ``istft(stft(x), len(x))`` reproduces ``x`` to rounding error, first and
last samples included (the original lost its edge frames).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import ShortTimeFFT
from scipy.signal.windows import hann

from . import audio

if TYPE_CHECKING:  # only annotations: dsp is the layer below the config, which imports it (Config.stft)
    from ..config import FeatureConfig

# Magnitudes are floored here before the log, so digital silence gives a
# finite feature (-18.4 in natural-log units) rather than -inf.
LOG_FLOOR = 1e-8


def _ops():
    """``keras.ops``, imported on first use: worker processes draw batches with this module and no Keras."""
    from keras import ops

    return ops


@functools.lru_cache(maxsize=8)
def stft_transform(window_length: int, hop_length: int) -> ShortTimeFFT:
    """scipy's STFT of every feature here: a periodic root-Hann window, ``hop_length`` apart (cached)."""
    window = np.sqrt(hann(window_length, sym=False))
    return ShortTimeFFT(window, hop=hop_length, fs=1.0, fft_mode="onesided", mfft=window_length)


@dataclass(frozen=True)
class Stft:
    """The STFT settings, held once: window and hop in samples, the sample rate they count at (None
    where only the frames matter), and what follows from them: the bins, the frames of a signal length
    and back, and the zeros that frame a signal as scipy's ``ShortTimeFFT`` frames it (past both ends).

    Built from a config (``Config.stft``), read from a model (its ``FeatureSpec`` layer's ``stft``);
    the numpy and ``keras.ops`` features below both frame signals by it.
    """

    window_length: int = 256
    hop_length: int = 64
    sample_rate: int | None = None

    @property
    def num_bins(self) -> int:
        """Frequency bins of the one-sided spectrum (FFT length = window)."""
        return self.window_length // 2 + 1

    @property
    def transform(self) -> ShortTimeFFT:
        return stft_transform(self.window_length, self.hop_length)

    def padded_length(self, num_samples: int) -> int:
        """scipy needs at least half a window of signal; shorter signals are zero-padded to one window
        (and cropped again after the inverse)."""
        return max(int(num_samples), self.window_length)

    def num_frames(self, num_samples: int) -> int:
        sft = self.transform
        return sft.p_max(self.padded_length(num_samples)) - sft.p_min

    def samples_for_frames(self, frames: int) -> int:
        """The largest signal length whose STFT has at most ``frames`` frames."""
        # p_max grows by one frame every hop samples; step back from an estimate.
        n = max(1, (frames - 3) * self.hop_length)
        while self.num_frames(n + self.hop_length) <= frames:
            n += self.hop_length
        while self.num_frames(n + 1) <= frames:
            n += 1
        return n

    def padding(self, num_samples: int) -> tuple[int, int]:
        """Zeros before and after ``num_samples`` samples so that windows every hop from the first sample
        on are scipy's frames of them (frame p centred on sample p * hop, from p_min to p_max)."""
        sft = self.transform
        first, last = sft.p_min, sft.p_max(self.padded_length(num_samples))
        start = first * sft.hop - sft.m_num_mid
        stop = start + (last - first - 1) * sft.hop + sft.m_num
        return -start, max(stop - int(num_samples), 0)


def stft_settings(cfg) -> Stft:
    """``cfg`` as :class:`Stft`: itself, or a ``FeatureConfig``'s window and hop (the features below take either)."""
    return cfg if isinstance(cfg, Stft) else Stft(cfg.window_length, cfg.hop_length)


def stft(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Complex STFT, (T, F) complex64. ``signal`` is 1-D, or (..., samples) for a stack.

    The same numbers as ``ShortTimeFFT.stft`` (tested), computed on all frames
    of the whole stack at once: scipy transforms one frame per call, which made
    the STFT most of the training data pipeline's time.
    """
    settings = stft_settings(cfg)
    sft = settings.transform
    signal = np.asarray(signal, dtype=np.float32)
    pad = [(0, 0)] * (signal.ndim - 1) + [settings.padding(signal.shape[-1])]
    frames = sliding_window_view(np.pad(signal, pad), sft.m_num, axis=-1)[..., ::sft.hop, :]
    # scipy's phase convention (phase_shift=0): each frame rotated so its centre sits at index 0.
    order = (np.arange(sft.m_num) + sft.m_num_mid) % sft.m_num
    window = sft.win.astype(np.float32)
    return scipy.fft.rfft(frames[..., order] * window[order], n=sft.mfft, axis=-1).astype(np.complex64, copy=False)


def stft_ops(sources, cfg):
    """:func:`stft`'s frames in ``keras.ops``: real and imaginary parts, (..., T, F) each, of a
    (..., samples) stack (the signal padded as scipy pads it, then ``keras.ops.stft`` without centring).
    Magnitudes only: stft's phase rotation is left out."""
    ops = _ops()
    settings = stft_settings(cfg)
    pad = [(0, 0)] * (len(sources.shape) - 1) + [settings.padding(sources.shape[-1])]
    window = ops.convert_to_tensor(settings.transform.win.astype("float32"))
    return ops.stft(ops.pad(sources, pad), settings.window_length, settings.hop_length, settings.window_length,
                    window=window, center=False)

def istft(spec: np.ndarray, length: int, cfg: FeatureConfig) -> np.ndarray:
    """Inverse of :func:`stft` for (T, F) or (..., T, F); returns (..., length) float32.

    ``ShortTimeFFT.istft``'s numbers (tested), with the overlap-add done as
    window/hop shifted sums of all frames at once instead of a loop over frames.
    """
    settings = stft_settings(cfg)
    sft = settings.transform
    spec = np.asarray(spec)
    if sft.m_num % sft.hop or sft.mfft != sft.m_num or spec.shape[-2] != settings.num_frames(length):
        padded = settings.padded_length(length)
        signal = sft.istft(np.swapaxes(spec, -1, -2), k1=padded, f_axis=-2, t_axis=-1)
        return signal[..., : int(length)].astype(np.float32)
    frames = scipy.fft.irfft(spec, n=sft.mfft, axis=-1)  # (..., T, window)
    order = (np.arange(sft.m_num) - sft.m_num_mid) % sft.m_num  # undo stft's rotation
    frames = frames[..., order] * sft.dual_win.astype(frames.dtype)
    out = overlap_add(frames, sft.hop)
    first = sft.m_num_mid - sft.p_min * sft.hop  # index of sample 0: frame p_min starts at p_min * hop - m_num_mid
    return out[..., first:first + int(length)].astype(np.float32)


def overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """(..., T, window) frames, frame t starting at sample t * hop, summed into (..., (T - 1) * hop + window)
    samples, as window/hop shifted sums of all frames at once (``window`` a multiple of ``hop``)."""
    count, width = frames.shape[-2], frames.shape[-1]
    out = np.zeros(frames.shape[:-2] + ((count - 1) * hop + width,), frames.dtype)
    for j in range(width // hop):  # piece j of every frame lands j hops after its frame's start
        out[..., j * hop:(j + count) * hop] += frames[..., j * hop:(j + 1) * hop].reshape(frames.shape[:-2] + (-1,))
    return out


def reconstruct(mixture_spec: np.ndarray, masks: np.ndarray, length: int, cfg: FeatureConfig) -> np.ndarray:
    """(k, length) sources from the mixture's (T, F) spectrum and (k, T, F) masks: each masked spectrum
    inverted with the mixture's phase."""
    return istft(masks * mixture_spec[None], length, cfg)


def level_gain(mixture: np.ndarray, cfg: FeatureConfig) -> float:
    """The gain that brings ``mixture`` to ``cfg.input_level_db`` RMS (1.0 for silence)."""
    rms = float(np.sqrt(np.mean(np.square(mixture, dtype=np.float64)))) if mixture.size else 0.0
    if rms < audio.SILENT_RMS:
        return 1.0
    return float(10.0 ** (cfg.input_level_db / 20.0) / rms)


def level_gain_ops(mixtures, cfg):
    """:func:`level_gain` in ``keras.ops`` for a (B, samples) stack: (B, 1) gains."""
    ops = _ops()
    rms = ops.sqrt(ops.mean(ops.square(mixtures), axis=-1, keepdims=True))
    target = 10.0 ** (cfg.input_level_db / 20.0)
    return ops.where(rms < audio.SILENT_RMS, 1.0, target / ops.maximum(rms, audio.SILENT_RMS))

def log_magnitude(spec: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.abs(spec), LOG_FLOOR)).astype(np.float32)


def log_magnitude_ops(magnitude):
    """:func:`log_magnitude` in ``keras.ops``, from magnitudes."""
    ops = _ops()
    return ops.log(ops.maximum(magnitude, LOG_FLOOR))

def active_bins(spec: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Boolean (T, F): bins within ``silence_db`` of the loudest bin of ``spec``.

    Computed per item over the last two axes, so a stack of chunks gets each
    chunk's own threshold.
    """
    db = 20.0 * np.log10(np.maximum(np.abs(spec), LOG_FLOOR))
    loudest = db.max(axis=(-2, -1), keepdims=True)
    return (db > loudest - cfg.silence_db) & (db > 20.0 * np.log10(LOG_FLOOR) + 1.0)


def active_bins_ops(log_magnitude, cfg):
    """:func:`active_bins` in ``keras.ops``, from natural-log magnitudes (..., T, F)."""
    ops = _ops()
    db = log_magnitude * (20.0 / math.log(10.0))
    loudest = ops.max(db, axis=(-2, -1), keepdims=True)
    return ops.logical_and(db > loudest - cfg.silence_db, db > 20.0 * math.log10(LOG_FLOOR) + 1.0)

def bin_weights(spec: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Loss weight per bin, (T, F) float32, zero at silent bins.

    ``binary``: 1 at every active bin (the original). ``magnitude``: the
    mixture magnitude over its mean on active bins (Wang, Le Roux, Hershey
    2018), so loud bins, which decide what is heard, count more.
    """
    active = active_bins(spec, cfg)
    if cfg.weighting == "binary":
        return active.astype(np.float32)
    magnitude = np.abs(spec) * active
    mean = magnitude.sum(axis=(-2, -1), keepdims=True) / np.maximum(active.sum(axis=(-2, -1), keepdims=True), 1)
    return (magnitude / np.maximum(mean, LOG_FLOOR)).astype(np.float32)


def bin_weights_ops(magnitude, log_magnitude, cfg):
    """:func:`bin_weights` in ``keras.ops``, from the magnitudes and their :func:`log_magnitude_ops`."""
    ops = _ops()
    active = ops.cast(active_bins_ops(log_magnitude, cfg), "float32")
    if cfg.weighting == "binary":
        return active
    weighted = magnitude * active
    mean = ops.sum(weighted, axis=(-2, -1), keepdims=True) / ops.maximum(
        ops.sum(active, axis=(-2, -1), keepdims=True), 1.0)
    return weighted / ops.maximum(mean, LOG_FLOOR)


def fit_frames(array: np.ndarray, frames: int) -> np.ndarray:
    """A stack's frame axis (1) cropped or zero-padded to ``frames`` (a training chunk's length)."""
    return audio.fit_length(array, frames, axis=1)


def fit_frames_ops(array, frames: int):
    """:func:`fit_frames` in ``keras.ops``."""
    ops = _ops()
    have = array.shape[1]
    if have >= frames:
        return array[:, :frames]
    return ops.pad(array, [(0, 0), (0, frames - have)] + [(0, 0)] * (len(array.shape) - 2))

IDEAL_MASKS = ("ibm", "irm")


def ideal_masks(source_specs: np.ndarray, kind: str) -> np.ndarray:
    """Ideal masks from the sources' STFTs as they sit in the mixture, float32 of their shape.

    ``source_specs`` is (k, T, F), or (..., k, T, F) for a stack; the masks
    share that layout (source axis -3). ``ibm``: one-hot on the loudest source
    of each bin (ties and all-silent bins go to the first), which is also the
    training target of :func:`dominant_labels`, so the bound a perfect
    clustering reaches. ``irm``: the magnitude ratio |S_i| / sum_j |S_j| (sums
    to one, so the estimates add up to the mixture; not the power-ratio
    variant); bins where every source is silent are shared equally.
    """
    magnitude = np.abs(np.asarray(source_specs))
    if magnitude.ndim < 3:
        raise ValueError(f"ideal_masks: expected (..., k, T, F) source spectra. Received: shape {magnitude.shape}")
    if kind == "ibm":
        masks = np.zeros(magnitude.shape, np.float32)
        np.put_along_axis(masks, np.argmax(magnitude, axis=-3)[..., None, :, :], 1.0, axis=-3)
        return masks
    if kind == "irm":
        total = magnitude.sum(axis=-3, keepdims=True)
        safe = np.where(total > 0, total, 1.0)
        return np.where(total > 0, magnitude / safe, 1.0 / magnitude.shape[-3]).astype(np.float32)
    raise ValueError(f"ideal_masks: expected kind one of {', '.join(IDEAL_MASKS)}. Received: kind={kind!r}")


def dominant_labels(source_specs: np.ndarray, weights: np.ndarray, max_speakers: int) -> np.ndarray:
    """Training targets, (T, F, max_speakers) float32.

    ``source_specs`` is (k, T, F), or (..., k, T, F) for a stack: each source's
    STFT as it sits in the mixture (all-zero rows for absent speakers never win).
    Each bin is one-hot on the loudest source (the ideal binary mask,
    :func:`ideal_masks`) and scaled by sqrt(weight): the
    loss reads a bin's weight back as its label's squared norm, so silent bins
    (weight 0) are all zero and drop out. Columns k .. max_speakers-1 stay zero
    (labels padded to the largest speaker count, as the original did).
    """
    k = source_specs.shape[-3]
    if k > max_speakers:
        raise ValueError(f"a mixture of {k} sources does not fit labels of width max_speakers={max_speakers}")
    ibm = ideal_masks(source_specs, "ibm")  # (..., k, T, F)
    labels = np.zeros(ibm.shape[:-3] + ibm.shape[-2:] + (max_speakers,), dtype=np.float32)
    labels[..., :k] = np.moveaxis(ibm, -3, -1)
    return labels * np.sqrt(weights)[..., None]


def dominant_labels_ops(source_power, weights):
    """:func:`dominant_labels` in ``keras.ops``, from each source's power |S|^2 (B, C, T, F) and the bin
    weights (B, T, F): (B, T, F, C), one column per source row (zero rows for absent speakers never win)."""
    ops = _ops()
    winner = ops.argmax(source_power, axis=1)  # the loudest source of each bin (B, T, F)
    return ops.one_hot(winner, source_power.shape[1], dtype="float32") * ops.sqrt(weights)[..., None]


def mask_targets(source_specs: np.ndarray, spec: np.ndarray, max_speakers: int) -> np.ndarray:
    """Mask-inference targets (Chimera++), (..., T, F, max_speakers + 1) float32.

    ``source_specs`` (..., k, T, F) are the sources as they sit in the mixture ``spec``
    (..., T, F). Channels 0 .. k-1 hold each source's truncated phase-sensitive
    magnitude, |S_c| cos(angle X - angle S_c) clipped to [0, |X|] (Erdogan et al.
    2015): what a real mask on the mixture can reach, so the mask learns where
    sources cancel. Channels k .. max_speakers-1 are zero (absent speakers); the
    last channel holds |X|, which the loss multiplies the masks by.
    """
    k = source_specs.shape[-3]
    if k > max_speakers:
        raise ValueError(f"a mixture of {k} sources does not fit targets of width max_speakers={max_speakers}")
    magnitude = np.abs(spec)
    # |S| cos(dphi) = Re(S conj(X)) / |X|
    psa = np.real(source_specs * np.conj(spec)[..., None, :, :]) / np.maximum(magnitude, LOG_FLOOR)[..., None, :, :]
    psa = np.clip(psa, 0.0, magnitude[..., None, :, :])
    out = np.zeros(spec.shape + (max_speakers + 1,), np.float32)
    out[..., :k] = np.moveaxis(psa, -3, -1)
    out[..., -1] = magnitude
    return out


def mixture_features(mixture: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Level-normalised mixture -> (log-magnitude (T, F), complex STFT (T, F), gain applied)."""
    gain = level_gain(mixture, cfg)
    spec = stft(mixture * gain, cfg)
    return log_magnitude(spec), spec, gain
