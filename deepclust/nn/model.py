"""The embedding network: BLSTM stack -> dense tanh -> unit-length embeddings.

Input (batch, T, F) log-magnitude; output (batch, T, F, D). The per-frequency
feature mean and variance estimated on the training data live inside the
model (a ``Normalization`` layer), and a ``FeatureSpec`` layer carries the
STFT settings the model was trained with, so a ``model.keras`` file alone is
enough to separate and can be checked against a config.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from ..config import Config, FeatureConfig
from ..dsp import device_features
from . import recurrent
from . import losses  # noqa: F401  (registers the loss for load_model)

SPEC_LAYER = "feature_spec"
EMBEDDING_OUTPUT = "embedding"
MASK_OUTPUT = "mask"


class ModelError(ValueError):
    """A model file cannot be used; the message says why and what to do."""


@keras.saving.register_keras_serializable(package="deepclust")
class FeatureSpec(keras.layers.Layer):
    """Identity layer that records how features must be computed for this model.

    Keeps the model file self-describing: the separator reads the sample rate
    and STFT settings from here instead of trusting a config given separately.
    """

    def __init__(self, sample_rate=8000, window_length=256, hop_length=64, silence_db=40.0,
                 input_level_db=-25.0, max_speakers=2, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.window_length = int(window_length)
        self.hop_length = int(hop_length)
        self.silence_db = float(silence_db)
        self.input_level_db = float(input_level_db)
        self.max_speakers = int(max_speakers)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate, window_length=self.window_length, hop_length=self.hop_length,
            silence_db=self.silence_db, input_level_db=self.input_level_db, max_speakers=self.max_speakers,
        )
        return config

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(window_length=self.window_length, hop_length=self.hop_length,
                             silence_db=self.silence_db, input_level_db=self.input_level_db)


NORMALIZATION_LAYER = "feature_normalization"  # holds the training data's per-bin feature statistics
UTTERANCE_MEAN_LAYER = "utterance_mean"


def utterance_mean_removed(log_magnitude, values, silence_db: float):
    """``values`` (batch, T, F) less their per-bin mean over the active frames of ``log_magnitude``
    (batch, T, F): frames holding an active bin (``features.active_bins``). The one home of that mean:
    the network's layer below, and ``separate.input_mean = "utterance"``."""
    ops = keras.ops
    bins = ops.cast(device_features.active_bins(log_magnitude, silence_db), values.dtype)
    active = ops.max(bins, axis=2, keepdims=True)  # (batch, T, 1)
    count = ops.maximum(ops.sum(active, axis=1, keepdims=True), ops.cast(1.0, values.dtype))
    return values - ops.sum(values * active, axis=1, keepdims=True) / count


@keras.saving.register_keras_serializable(package="deepclust")
class UtteranceMeanNormalization(keras.layers.Layer):
    """Normalised features (batch, T, F) less their per-bin mean over the input's active frames.

    Inputs ``[log_magnitude, normalised]``, both (batch, T, F). The mean of a
    log spectrum over time holds a channel's fixed colouring (microphone, line,
    room EQ) as well as the voice's average spectrum; taking it out of every
    input, in training and at separation alike, is cepstral mean normalisation.
    A frame counts when one of its bins is within ``silence_db`` of the input's
    loudest bin (the rule of ``features.active_bins``), so silence and padding
    do not pull the mean.
    """

    def __init__(self, silence_db=40.0, **kwargs):
        super().__init__(**kwargs)
        self.silence_db = float(silence_db)

    def call(self, inputs):
        return utterance_mean_removed(*inputs, self.silence_db)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "silence_db": self.silence_db}


def build_model(config: Config, mean: np.ndarray | None = None, variance: np.ndarray | None = None) -> keras.Model:
    """The embedding network for ``config``; ``mean``/``variance`` are per-bin feature statistics."""
    bins = config.num_bins
    m = config.model
    mean = np.zeros(bins, np.float32) if mean is None else np.asarray(mean, np.float32)
    variance = np.ones(bins, np.float32) if variance is None else np.asarray(variance, np.float32)
    regularizer = keras.regularizers.L2(m.l2) if m.l2 > 0 else None

    inputs = keras.Input(shape=(None, bins), name="log_magnitude")
    x = FeatureSpec(
        sample_rate=config.audio.sample_rate, window_length=config.features.window_length,
        hop_length=config.features.hop_length, silence_db=config.features.silence_db,
        input_level_db=config.features.input_level_db, max_speakers=config.data.max_speakers, name=SPEC_LAYER,
    )(inputs)
    spectrum = x
    x = keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name=NORMALIZATION_LAYER)(x)
    if m.utterance_mean:
        x = UtteranceMeanNormalization(config.features.silence_db, name=UTTERANCE_MEAN_LAYER)([spectrum, x])
    for i in range(m.lstm_layers):
        # Default activations, no recurrent dropout, unroll=False: the conditions under which
        # every backend runs a fused whole-sequence kernel (cuDNN on a GPU; see recurrent.py).
        lstm = recurrent.LSTM(
            m.lstm_units, return_sequences=True, dropout=m.dropout, recurrent_dropout=m.recurrent_dropout,
            kernel_regularizer=regularizer, recurrent_regularizer=regularizer,
        )
        x = keras.layers.Bidirectional(lstm, name=f"blstm_{i + 1}")(x)
    states = x
    x = keras.layers.Dense(bins * m.embedding_dim, activation="tanh", kernel_regularizer=regularizer, name="dense")(x)
    x = keras.layers.Reshape((-1, bins, m.embedding_dim), name="to_embeddings")(x)
    # float32 output: unit-normalising in float16 loses the precision k-means needs.
    embeddings = keras.layers.UnitNormalization(axis=-1, dtype="float32", name=EMBEDDING_OUTPUT)(x)
    if not m.mask_head:
        return keras.Model(inputs, embeddings, name="deep_clustering")
    # Chimera++: masks for every speaker slot from the same BLSTM states, softmax over slots.
    slots = config.data.max_speakers
    y = keras.layers.Dense(bins * slots, kernel_regularizer=regularizer, name="mask_dense")(states)
    y = keras.layers.Reshape((-1, bins, slots), name="to_masks")(y)
    masks = keras.layers.Softmax(axis=-1, dtype="float32", name=MASK_OUTPUT)(y)
    return keras.Model(inputs, [embeddings, masks], name="chimera")


def has_mask_head(model: keras.Model) -> bool:
    return len(model.outputs) > 1


def feature_spec(model: keras.Model) -> FeatureSpec:
    try:
        layer = model.get_layer(SPEC_LAYER)
    except ValueError:
        layer = None
    if not isinstance(layer, FeatureSpec):
        raise ModelError(f"model {model.name!r} has no {SPEC_LAYER!r} layer: it is not a deepclust model.")
    return layer


def feature_statistics(model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    """(F,) float32 per-bin feature mean and variance the network normalises with: constants of its
    Normalization layer, not weights, so a run started from it (``train.init``) is built with them and
    separation can move an utterance's mean to the training mean."""
    layer = model.get_layer(NORMALIZATION_LAYER)
    # convert_to_numpy, not np.asarray: under PyTorch on a GPU the constants are CUDA tensors.
    return tuple(np.asarray(keras.ops.convert_to_numpy(v), np.float32).reshape(-1) for v in (layer.mean, layer.variance))


def load(path: str | Path, compile: bool = False) -> keras.Model:
    """Load a deepclust model in Keras safe mode (no arbitrary code), with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; train one with `deepclust train --base DIR` or give --model FILE.")
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:
        raise ModelError(
            f"{path}: cannot load the model ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "expected a .keras file written by `deepclust train`. Retrain, or restore the file from a backup."
        ) from None
    feature_spec(model)  # raises if it is some other network
    recurrent.adopt(model)
    return model
