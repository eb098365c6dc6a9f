import keras
import numpy as np
import pytest

from deepclust.nn import model as model_lib
from deepclust.nn.losses import DeepClusteringLoss


def test_output_shape_and_unit_norm(tiny_config):
    net = model_lib.build_model(tiny_config)
    x = np.random.default_rng(0).standard_normal((2, 13, tiny_config.num_bins)).astype(np.float32)
    out = keras.ops.convert_to_numpy(net(x))
    assert out.shape == (2, 13, tiny_config.num_bins, tiny_config.model.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)


def test_lstm_layers_are_cudnn_eligible_by_default(tiny_config):
    net = model_lib.build_model(tiny_config)
    lstms = [layer.forward_layer for layer in net.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert len(lstms) == tiny_config.model.lstm_layers
    for lstm in lstms:
        assert lstm.recurrent_dropout == 0 and lstm.activation.__name__ == "tanh"
        assert lstm.recurrent_activation.__name__ == "sigmoid" and not lstm.unroll and lstm.use_bias


def test_save_load_without_custom_objects(tiny_config, tmp_path):
    mean = np.linspace(-1, 1, tiny_config.num_bins).astype(np.float32)
    net = model_lib.build_model(tiny_config, mean, np.full(tiny_config.num_bins, 4.0, np.float32))
    net.compile(optimizer="adam", loss=DeepClusteringLoss())
    path = tmp_path / "m.keras"
    net.save(path)
    again = keras.saving.load_model(path)  # no custom_objects: everything is registered
    x = np.random.default_rng(1).standard_normal((1, 9, tiny_config.num_bins)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)), keras.ops.convert_to_numpy(net(x)), atol=1e-6)
    spec = model_lib.feature_spec(model_lib.load(path))
    assert (spec.window_length, spec.hop_length, spec.max_speakers) == (128, 32, 3)
    assert isinstance(again.loss, DeepClusteringLoss)


def test_load_errors(tmp_path):
    with pytest.raises(model_lib.ModelError, match="not found"):
        model_lib.load(tmp_path / "none.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip at all")
    with pytest.raises(model_lib.ModelError, match="cannot load the model"):
        model_lib.load(corrupt)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(model_lib.ModelError, match="not a deepclust model"):
        model_lib.load(tmp_path / "other.keras")


def test_a_model_with_the_removed_utterance_mean_layer_is_refused_by_name(tiny_config, tmp_path):
    """model.utterance_mean was removed (README, "Options removed"); a model file trained with it names
    the layer and says what to do, instead of Keras's unknown-class error."""
    name = "deepclust>UtteranceMeanNormalization"  # as earlier versions registered it

    @keras.saving.register_keras_serializable(package="deepclust", name="UtteranceMeanNormalization")
    class UtteranceMeanNormalization(keras.layers.Layer):
        def call(self, inputs):
            return inputs

    assert "UtteranceMeanNormalization" in model_lib.RETIRED_LAYERS
    try:
        inputs = keras.Input(shape=(None, tiny_config.num_bins))
        x = model_lib.FeatureSpec(name=model_lib.SPEC_LAYER)(inputs)
        x = keras.layers.Dense(3)(UtteranceMeanNormalization(name="utterance_mean")(x))
        keras.Model(inputs, x).save(tmp_path / "old.keras")
    finally:
        keras.saving.get_custom_objects().pop(name)
    with pytest.raises(model_lib.ModelError, match="layer UtteranceMeanNormalization, from model.utterance_mean") as err:
        model_lib.load(tmp_path / "old.keras")
    assert "removed" in str(err.value) and "Retrain" in str(err.value) and "older deepclust" in str(err.value)
