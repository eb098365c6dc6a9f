"""The training features computed on the device inside the training step: the layer that computes them.

With ``features.on_device = true`` the host only cuts, scales and sums
waveforms: each batch is the scaled sources of its mixtures, (B, C, samples)
with zero rows for absent speakers, and :class:`SourceFeatures` turns them into
what :func:`deepclust.data.mixer.examples_of_stack` computes in numpy: the
level-normalised mixture's log magnitude (B, T, F) and the dominant-speaker
labels scaled by the square root of each bin's weight (B, T, F, C), the same
numbers to float32 rounding (tests/dsp/test_device_features.py, on every backend).
Every step is a ``keras.ops`` primitive of :mod:`deepclust.dsp.features`, written
there beside its numpy form, framed by the same :class:`~deepclust.dsp.features.Stft`.
The model that trains with the layer is :mod:`deepclust.training.on_device`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import ops

from . import features

if TYPE_CHECKING:  # only annotations: dsp is the layer below the config
    from ..config import Config


@keras.saving.register_keras_serializable(package="deepclust")
class SourceFeatures(keras.layers.Layer):
    """(B, C, samples) scaled sources -> (log magnitude (B, frames, F), labels (B, frames, F, C)).

    ``frames`` is the training chunk length: the STFT's frames are cropped or
    zero-padded to it, as the host path does. The layer holds the feature settings
    the ``keras.ops`` primitives read (``silence_db``, ``input_level_db``, ``weighting``)
    and its :class:`~deepclust.dsp.features.Stft`, and hands itself to them as their settings.
    """

    def __init__(self, window_length=256, hop_length=64, silence_db=40.0, input_level_db=-25.0,
                 weighting="binary", frames=100, **kwargs):
        super().__init__(**kwargs)
        self.stft = features.Stft(int(window_length), int(hop_length))
        self.silence_db = float(silence_db)
        self.input_level_db = float(input_level_db)
        self.weighting = str(weighting)
        self.frames = int(frames)

    @classmethod
    def for_config(cls, config: Config, name: str = "source_features") -> "SourceFeatures":
        f = config.features
        return cls(f.window_length, f.hop_length, f.silence_db, f.input_level_db, f.weighting,
                   config.data.chunk_frames, name=name)

    def get_config(self):
        config = super().get_config()
        config.update(window_length=self.stft.window_length, hop_length=self.stft.hop_length,
                      silence_db=self.silence_db, input_level_db=self.input_level_db, weighting=self.weighting,
                      frames=self.frames)
        return config

    def compute_output_spec(self, sources):
        batch, speakers = sources.shape[0], sources.shape[1]
        bins = self.stft.num_bins
        return (keras.KerasTensor((batch, self.frames, bins), "float32"),
                keras.KerasTensor((batch, self.frames, bins, speakers), "float32"))

    def call(self, sources):
        sources = ops.cast(sources, "float32")
        gains = features.level_gain_ops(ops.sum(sources, axis=1), self)[:, :, None]  # (B, 1, 1)
        re, im = features.stft_ops(sources * gains, self.stft)  # (B, C, T, F) each
        magnitude = ops.sqrt(ops.square(ops.sum(re, axis=1)) + ops.square(ops.sum(im, axis=1)))  # |X| (B, T, F)
        log_magnitude = features.log_magnitude_ops(magnitude)
        weights = features.bin_weights_ops(magnitude, log_magnitude, self)
        labels = features.dominant_labels_ops(ops.square(re) + ops.square(im), weights)
        return features.fit_frames_ops(log_magnitude, self.frames), features.fit_frames_ops(labels, self.frames)
