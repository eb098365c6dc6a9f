"""The embedding network: BLSTM stack -> dense tanh -> unit-length embeddings.

Input (batch, T, F) log-magnitude; output (batch, T, F, D). The per-frequency
feature mean and variance estimated on the training data live inside the
model (a ``Normalization`` layer), and a ``FeatureSpec`` layer carries the
STFT settings the model was trained with, so a ``model.keras`` file alone is
enough to separate and can be checked against a config.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import numpy as np

from ..config import Config, FeatureConfig
from ..dsp.features import Stft
from . import recurrent
from . import losses  # noqa: F401  (registers the loss for load_model)

SPEC_LAYER = "feature_spec"
EMBEDDING_OUTPUT = "embedding"


class ModelError(ValueError):
    """A model file cannot be used; the message says why and what to do."""


@keras.saving.register_keras_serializable(package="deepclust")
class FeatureSpec(keras.layers.Layer):
    """Identity layer that records how features must be computed for this model.

    Keeps the model file self-describing: the separator reads the sample rate
    and STFT settings (``stft``, the :class:`~deepclust.dsp.features.Stft` a config's
    ``Config.stft`` is) from here instead of trusting a config given separately.
    Its saved config keys (``get_config``) are the model file format: keep them.
    """

    def __init__(self, sample_rate=8000, window_length=256, hop_length=64, silence_db=40.0,
                 input_level_db=-25.0, max_speakers=2, **kwargs):
        super().__init__(**kwargs)
        self.stft = Stft(int(window_length), int(hop_length), int(sample_rate))
        self.silence_db = float(silence_db)
        self.input_level_db = float(input_level_db)
        self.max_speakers = int(max_speakers)

    @property
    def sample_rate(self) -> int:
        return self.stft.sample_rate

    @property
    def window_length(self) -> int:
        return self.stft.window_length

    @property
    def hop_length(self) -> int:
        return self.stft.hop_length

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
# Layers of options since removed (README, "Options removed"): a model file holding one is refused by name.
RETIRED_LAYERS = {
    "UtteranceMeanNormalization": ('model.utterance_mean, measured worse (RESULTS.md, "Utterance mean '
                                   'normalisation in the network")'),
}


def build_model(config: Config, mean: np.ndarray | None = None, variance: np.ndarray | None = None) -> keras.Model:
    """The embedding network for ``config``; ``mean``/``variance`` are per-bin feature statistics.
    A network with outputs of its own beside the embeddings (the mask head, :mod:`deepclust.nn.chimera`)
    builds them on :func:`embedding_layers`."""
    inputs, _, embeddings = embedding_layers(config, mean, variance)
    return keras.Model(inputs, embeddings, name="deep_clustering")


def kernel_regularizer(config: Config) -> keras.regularizers.Regularizer | None:
    """``model.l2`` as the penalty of every kernel of the network (None at 0)."""
    return keras.regularizers.L2(config.model.l2) if config.model.l2 > 0 else None


def embedding_layers(config: Config, mean: np.ndarray | None = None, variance: np.ndarray | None = None):
    """The network's layers up to its embeddings: (the input (batch, T, F), the last BLSTM's states
    (batch, T, 2 x lstm_units), the unit-length embeddings (batch, T, F, D)), symbolic tensors."""
    bins = config.num_bins
    m = config.model
    mean = np.zeros(bins, np.float32) if mean is None else np.asarray(mean, np.float32)
    variance = np.ones(bins, np.float32) if variance is None else np.asarray(variance, np.float32)
    regularizer = kernel_regularizer(config)

    inputs = keras.Input(shape=(None, bins), name="log_magnitude")
    stft = config.stft
    x = FeatureSpec(
        sample_rate=stft.sample_rate, window_length=stft.window_length,
        hop_length=stft.hop_length, silence_db=config.features.silence_db,
        input_level_db=config.features.input_level_db, max_speakers=config.data.max_speakers, name=SPEC_LAYER,
    )(inputs)
    x = keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name=NORMALIZATION_LAYER)(x)
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
    return inputs, states, embeddings


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
    Normalization layer, not weights, so a run started from it (``train.init``) is built with them."""
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
        _refuse_retired_layers(path)
        raise ModelError(
            f"{path}: cannot load the model ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "expected a .keras file written by `deepclust train`. Retrain, or restore the file from a backup."
        ) from None
    feature_spec(model)  # raises if it is some other network
    recurrent.adopt(model)
    return model


def _refuse_retired_layers(path: Path) -> None:
    """Raise ModelError naming the layer when the model file at ``path`` holds one of RETIRED_LAYERS."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return  # not a readable .keras file: the caller's message says so

    def class_names(node):  # each layer's class name, and its registered one without the package
        if isinstance(node, dict):
            for key in ("class_name", "registered_name"):
                if isinstance(node.get(key), str):
                    yield node[key].rsplit(">", 1)[-1]
            for value in node.values():
                yield from class_names(value)
        elif isinstance(node, list):
            for value in node:
                yield from class_names(value)

    for name in class_names(config):
        if name in RETIRED_LAYERS:
            raise ModelError(
                f"{path}: the model holds the layer {name}, from {RETIRED_LAYERS[name]}; the option and its layer were "
                "removed from deepclust. Retrain the model without it, or separate with the older deepclust "
                "version that trained it."
            )
