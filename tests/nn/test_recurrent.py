"""deepclust.nn.recurrent: the fused LSTM computes what Keras's LSTM computes, on every backend.

Outputs and gradients (inputs and every weight) of a BLSTM on fixed weights are
compared with ``keras.layers.LSTM`` in this process, and across backends in child
processes (``test_backends.run_child``); the shipped model, saved with Keras's
LSTM, loads onto the fused layer and separates the same.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import require_backend
from deepclust import paths
from deepclust.nn import model as model_lib, recurrent

UNITS, FEATURES = 6, 5
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "speechocean762_2spk.wav"


def blstm(layer_class, weights=None, **kwargs) -> keras.Model:
    inputs = keras.Input((None, FEATURES))
    outputs = keras.layers.Bidirectional(layer_class(UNITS, return_sequences=True, **kwargs))(inputs)
    model = keras.Model(inputs, outputs)
    if weights is not None:
        model.set_weights(weights)
    return model


def case(seed: int = 0):
    """Inputs (2, 11, FEATURES), weights scaled so the gates leave their linear range, and a cotangent."""
    rng = np.random.default_rng(seed)
    shapes = [w.shape for w in blstm(keras.layers.LSTM).get_weights()]
    weights = [rng.standard_normal(s).astype(np.float32) * 0.7 for s in shapes]
    x = rng.standard_normal((2, 11, FEATURES)).astype(np.float32)
    cotangent = rng.standard_normal((2, 11, 2 * UNITS)).astype(np.float32)
    return x, weights, cotangent


def outputs_and_gradients(model: keras.Model, x: np.ndarray, cotangent: np.ndarray) -> list[np.ndarray]:
    """[outputs, d/dx, d/dw for each trainable weight] of sum(model(x) * cotangent), on this backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = model(xt, training=True)
            loss = tf.reduce_sum(y * cotangent)
        grads = tape.gradient(loss, [xt] + [w.value for w in model.trainable_weights])
    elif backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        y = model(xt, training=True)
        (y * torch.tensor(cotangent)).sum().backward()
        grads = [xt.grad] + [w.value.grad for w in model.trainable_weights]
    else:
        import jax

        trainable = [w.value for w in model.trainable_weights]
        fixed = [v.value for v in model.non_trainable_variables]  # seed generators too

        def loss(xv, tv):
            y, _ = model.stateless_call(tv, fixed, xv, training=True)
            return (y * cotangent).sum(), y

        (grad_x, grad_w), y = jax.grad(loss, argnums=(0, 1), has_aux=True)(x, trainable)
        grads = [grad_x, *grad_w]
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in [y, *grads]]


def test_outputs_and_gradients_match_keras_lstm():
    x, weights, cotangent = case()
    fused = outputs_and_gradients(blstm(recurrent.LSTM, weights), x, cotangent)
    plain = outputs_and_gradients(blstm(keras.layers.LSTM, weights), x, cotangent)
    assert len(fused) == 2 + len(weights)  # outputs, inputs' gradient, every weight's
    for a, b in zip(fused, plain):
        assert np.abs(b).max() > 1e-3  # nothing vanished: the comparison means something
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{"return_sequences": False}, {"go_backwards": True}, {"dropout": 0.0, "unroll": True}])
def test_other_configurations_match_keras_lstm(kwargs):
    x, _, _ = case(1)
    inputs = keras.Input((11, FEATURES))
    layers = {cls: cls(UNITS, **kwargs) for cls in (recurrent.LSTM, keras.layers.LSTM)}
    models = {cls: keras.Model(inputs, layer(inputs)) for cls, layer in layers.items()}
    models[keras.layers.LSTM].set_weights(models[recurrent.LSTM].get_weights())
    outputs = [keras.ops.convert_to_numpy(m(x)) for m in models.values()]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)


def test_masked_sequences_take_keras_loop():
    """A mask has no fused form: the layer is Keras's own, padding and all."""
    x, _, _ = case(2)
    x[1, 6:] = 0.0
    inputs = keras.Input((None, FEATURES))
    masked = keras.layers.Masking(0.0)(inputs)
    models = [keras.Model(inputs, cls(UNITS)(masked)) for cls in (recurrent.LSTM, keras.layers.LSTM)]
    models[1].set_weights(models[0].get_weights())
    outputs = [keras.ops.convert_to_numpy(m(x)) for m in models]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)


def test_built_model_saves_and_loads_the_fused_layer(tmp_path, tiny_config):
    net = model_lib.build_model(tiny_config)
    net.save(tmp_path / "m.keras")
    loaded = model_lib.load(tmp_path / "m.keras")
    lstms = [layer.forward_layer for layer in loaded.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert lstms and all(type(layer) is recurrent.LSTM for layer in lstms)


def test_shipped_model_adopts_the_fused_layer_and_separates_the_same():
    import soundfile as sf

    from deepclust.separation.separator import Separator

    path = paths.locate("pretrained")
    plain = keras.saving.load_model(path, compile=False)  # Keras's LSTM, as saved
    fused = model_lib.load(path)
    kinds = {type(layer.backward_layer) for layer in fused.layers if isinstance(layer, keras.layers.Bidirectional)}
    assert kinds == {recurrent.LSTM}
    features = np.random.default_rng(3).standard_normal((1, 120, fused.input_shape[-1])).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused(features)), keras.ops.convert_to_numpy(plain(features)),
                               atol=1e-4)

    mixture, rate = sf.read(EXAMPLE, dtype="float32")
    separator = Separator.load("pretrained")
    ours = separator.separate(mixture, 2, sample_rate=rate).sources
    separator.model = plain
    theirs = separator.separate(mixture, 2, sample_rate=rate).sources
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


CHILD = """
import json
import numpy as np
from test_recurrent import blstm, case, outputs_and_gradients
from deepclust.nn import recurrent

x, weights, cotangent = case()
for i, a in enumerate(outputs_and_gradients(blstm(recurrent.LSTM, weights), x, cotangent)):
    np.save(f"result_{i}.npy", a)
print("DEEPCLUST-RESULT " + json.dumps({"count": i + 1}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_same_outputs_and_gradients_on_every_backend(backend, tmp_path):
    from test_backends import run_child

    require_backend(backend)
    result = run_child(backend, CHILD, tmp_path)
    x, weights, cotangent = case()
    here = outputs_and_gradients(blstm(recurrent.LSTM, weights), x, cotangent)
    assert result["count"] == len(here)
    for i, a in enumerate(here):
        np.testing.assert_allclose(np.load(tmp_path / f"result_{i}.npy"), a, rtol=1e-4, atol=1e-5)
