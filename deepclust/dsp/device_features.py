"""The training features in ``keras.ops``, computed on the device inside the training step.

With ``features.on_device = true`` the host only cuts, scales and sums
waveforms: each batch is the scaled sources of its mixtures, (B, C, samples)
with zero rows for absent speakers, and :class:`SourceFeatures` turns them into
what :func:`deepclust.data.mixer.examples_from_sources` computes in numpy: the
level-normalised mixture's log magnitude (B, T, F) and the dominant-speaker
labels scaled by the square root of each bin's weight (B, T, F, C), the same
numbers to float32 rounding (tests/dsp/test_device_features.py, on every backend).
The frames are those of :func:`deepclust.dsp.features.stft` (scipy's
``ShortTimeFFT``, frames past both ends); only magnitudes are needed, so its
phase rotation is left out.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from ..config import Config, FeatureConfig
from . import audio, features


def padding(samples: int, cfg: FeatureConfig) -> tuple[int, int]:
    """Zeros before and after ``samples`` samples so that frames of the window every hop, from the
    first sample on, are the frames of :func:`deepclust.dsp.features.stft` (scipy's, past both ends)."""
    sft = features.stft_transform(cfg.window_length, cfg.hop_length)
    first, last = sft.p_min, sft.p_max(max(int(samples), cfg.window_length))
    start = first * sft.hop - sft.m_num_mid
    stop = start + (last - first - 1) * sft.hop + sft.m_num
    return -start, max(stop - int(samples), 0)


def active_bins(log_magnitude, silence_db: float):
    """:func:`deepclust.dsp.features.active_bins` in ``keras.ops``, from natural-log magnitudes (..., T, F):
    boolean, bins within ``silence_db`` of each item's loudest and above the log floor."""
    db = log_magnitude * (20.0 / math.log(10.0))
    loudest = ops.max(db, axis=(-2, -1), keepdims=True)
    return ops.logical_and(db > loudest - silence_db, db > 20.0 * math.log10(features.LOG_FLOOR) + 1.0)


@keras.saving.register_keras_serializable(package="deepclust")
class SourceFeatures(keras.layers.Layer):
    """(B, C, samples) scaled sources -> (log magnitude (B, frames, F), labels (B, frames, F, C)).

    ``frames`` is the training chunk length: the STFT's frames are cropped or
    zero-padded to it, as the host path does.
    """

    def __init__(self, window_length=256, hop_length=64, silence_db=40.0, input_level_db=-25.0,
                 weighting="binary", frames=100, **kwargs):
        super().__init__(**kwargs)
        self.cfg = FeatureConfig(window_length=int(window_length), hop_length=int(hop_length),
                                 silence_db=float(silence_db), input_level_db=float(input_level_db),
                                 weighting=str(weighting))
        self.frames = int(frames)

    @classmethod
    def for_config(cls, config: Config, name: str = "source_features") -> "SourceFeatures":
        f = config.features
        return cls(f.window_length, f.hop_length, f.silence_db, f.input_level_db, f.weighting,
                   config.data.chunk_frames, name=name)

    def get_config(self):
        config = super().get_config()
        f = self.cfg
        config.update(window_length=f.window_length, hop_length=f.hop_length, silence_db=f.silence_db,
                      input_level_db=f.input_level_db, weighting=f.weighting, frames=self.frames)
        return config

    def compute_output_spec(self, sources):
        batch, speakers = sources.shape[0], sources.shape[1]
        bins = self.cfg.window_length // 2 + 1
        return (keras.KerasTensor((batch, self.frames, bins), "float32"),
                keras.KerasTensor((batch, self.frames, bins, speakers), "float32"))

    def call(self, sources):
        sources = ops.cast(sources, "float32")
        re, im = self._spectra(sources * self._level_gain(sources))  # (B, C, T, F) each
        magnitude = ops.sqrt(ops.square(ops.sum(re, axis=1)) + ops.square(ops.sum(im, axis=1)))  # |X| (B, T, F)
        log_magnitude = ops.log(ops.maximum(magnitude, features.LOG_FLOOR))
        weights = self._weights(magnitude, log_magnitude)
        winner = ops.argmax(ops.square(re) + ops.square(im), axis=1)  # the loudest source (B, T, F)
        labels = ops.one_hot(winner, sources.shape[1], dtype="float32") * ops.sqrt(weights)[..., None]
        return self._fit(log_magnitude), self._fit(labels)

    def _level_gain(self, sources):
        """Per mixture: the gain to input_level_db RMS, 1 for a silent mixture (features.level_gain)."""
        mixture = ops.sum(sources, axis=1)
        rms = ops.sqrt(ops.mean(ops.square(mixture), axis=-1, keepdims=True))[:, :, None]  # (B, 1, 1)
        target = 10.0 ** (self.cfg.input_level_db / 20.0)
        return ops.where(rms < audio.SILENT_RMS, 1.0, target / ops.maximum(rms, audio.SILENT_RMS))

    def _spectra(self, sources):
        """Real and imaginary parts of every source's STFT, (B, C, T, F), frames as features.stft frames them
        (the signal padded as scipy pads it, then ``keras.ops.stft`` without centring)."""
        padded = ops.pad(sources, [(0, 0), (0, 0), padding(sources.shape[-1], self.cfg)])
        window = features.stft_transform(self.cfg.window_length, self.cfg.hop_length).win.astype("float32")
        return ops.stft(padded, self.cfg.window_length, self.cfg.hop_length, self.cfg.window_length,
                        window=ops.convert_to_tensor(window), center=False)

    def _weights(self, magnitude, log_magnitude):
        """Loss weight per bin (features.bin_weights): active bins, by magnitude if configured."""
        active = ops.cast(active_bins(log_magnitude, self.cfg.silence_db), "float32")
        if self.cfg.weighting == "binary":
            return active
        weighted = magnitude * active
        mean = ops.sum(weighted, axis=(-2, -1), keepdims=True) / ops.maximum(
            ops.sum(active, axis=(-2, -1), keepdims=True), 1.0)
        return weighted / ops.maximum(mean, features.LOG_FLOOR)

    def _fit(self, array):
        """Crop or zero-pad the frame axis (1) to the chunk length."""
        have = array.shape[1]
        if have >= self.frames:
            return array[:, :self.frames]
        return ops.pad(array, [(0, 0), (0, self.frames - have)] + [(0, 0)] * (len(array.shape) - 2))


TRAINING_ON_SOURCES = "deep_clustering_on_sources"


def training_model(net: keras.Model, config: Config) -> keras.Model:
    """The model ``fit`` trains with features on the device: scaled sources in, embeddings and labels out
    side by side (B, T, F, D + C), scored by :class:`deepclust.nn.losses.PackedDeepClusteringLoss`.
    It shares every weight with ``net``, the model that is saved and separates."""
    samples = features.samples_for_frames(config.data.chunk_frames, config.features)
    sources = keras.Input(shape=(config.data.max_speakers, samples), name="sources")
    log_magnitude, labels = SourceFeatures.for_config(config)(sources)
    embeddings = net(log_magnitude)
    packed = keras.layers.Concatenate(axis=-1, name="embeddings_and_labels")(
        [embeddings, ops.stop_gradient(labels)])
    return keras.Model(sources, packed, name=TRAINING_ON_SOURCES)
