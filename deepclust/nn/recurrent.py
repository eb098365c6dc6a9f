"""The network's LSTM layer: Keras's ``LSTM`` on each backend's whole-sequence kernel.

Keras runs an LSTM on a CPU as a Python-level loop of its cell over time, with the
input projection inside the loop; only on a GPU does it hand the whole sequence to
a fused kernel (cuDNN). This layer computes the same function the fastest way each
backend has on a CPU (figures: RESULTS.md, "Speed"):

- PyTorch: ATen's LSTM (``torch.lstm``: oneDNN on a CPU, cuDNN on a GPU), the call
  Keras itself makes on CUDA;
- TensorFlow and JAX: the input projection of every time step as one matrix
  product, then a scan (``tf.scan``, ``lax.scan``) over the recurrent product
  alone. On a GPU they keep Keras's own cuDNN call.

Weights, gate order (input, forget, cell, output), initialisers and the serialised
config are Keras's: a model saved with ``keras.layers.LSTM`` (the shipped one) runs
on this layer after ``adopt``, and one trained with it is an ordinary LSTM to
anything that reads its weights. Where a configuration has no fused form (masks,
recurrent dropout, other activations, ``unroll``, ``use_cudnn=False``, a
``torch.compile`` trace) the layer is Keras's own.
"""

from __future__ import annotations

import functools

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deepclust")
class LSTM(keras.layers.LSTM):
    """``keras.layers.LSTM`` on each backend's whole-sequence kernel (see the module's docstring)."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if keras.tree.is_nested(mask):
            mask = mask[0]
        if not self._fused(mask):
            return super().inner_loop(sequences, initial_state, mask, training)
        if training and self.dropout:
            keep = self.cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * ops.expand_dims(keep, axis=1)
        # In the compute dtype, as Keras's cell computes (sequences and states arrive cast to it).
        weights = [ops.cast(w, sequences.dtype) for w in (self.cell.kernel, self.cell.recurrent_kernel, self.cell.bias)]
        outputs, h, c = _KERNELS[keras.backend.backend()](sequences, *initial_state, *weights, self.go_backwards)
        last = outputs[:, -1]
        if not self.return_sequences:
            outputs = ops.expand_dims(last, axis=1)
        return last, outputs, [h, c]

    def _fused(self, mask) -> bool:
        cell, backend = self.cell, keras.backend.backend()
        if backend not in _KERNELS or mask is not None or self.recurrent_dropout or self.unroll:
            return False
        if self.use_cudnn is False or not cell.use_bias:
            return False
        if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
            return False
        if backend == "torch":
            import torch

            # torch.compile and the ONNX tracer cannot trace oneDNN's RNN.
            return not (torch.compiler.is_compiling() or torch.jit.is_tracing())
        return not _gpu()  # TensorFlow and JAX: Keras's cuDNN call on a GPU


def adopt(model: keras.Model) -> keras.Model:
    """Run every ``keras.layers.LSTM`` of ``model`` (inside ``Bidirectional`` or not) on this layer.

    In place and exact: the subclass adds no weights or state, only its ``inner_loop``. Files saved
    before this layer existed name Keras's class without a registered name, which ``custom_objects``
    cannot redirect, so the loaded layers take the subclass here instead."""
    for layer in model.layers:
        wrapped = [layer.forward_layer, layer.backward_layer] if isinstance(layer, keras.layers.Bidirectional) else [layer]
        for lstm in wrapped:
            if type(lstm) is keras.layers.LSTM:
                lstm.__class__ = LSTM
    return model


@functools.cache
def _gpu() -> bool:
    from ..backend import accelerators

    return bool(accelerators())


# Each kernel: (sequences (B, T, I), h0 (B, H), c0 (B, H), kernel (I, 4H), recurrent_kernel (H, 4H),
# bias (4H,), go_backwards) -> (outputs (B, T, H), h (B, H), c (B, H)), all in the sequences' dtype and
# as Keras's backend.lstm returns them: a backward layer's outputs run from the last frame to the first.


def _torch_lstm(x, h0, c0, kernel, recurrent_kernel, bias, go_backwards):
    import torch

    if go_backwards:
        x = torch.flip(x, dims=[1])
    params = [kernel.T, recurrent_kernel.T, bias, torch.zeros_like(bias)]  # Keras's one bias is b_ih
    outputs, h, c = torch.lstm(
        x, (h0.unsqueeze(0), c0.unsqueeze(0)), params,
        True, 1, 0.0, torch.is_grad_enabled(), False, True,  # biases, layers, dropout, train, bidirectional, batch_first
    )
    return outputs, h[0], c[0]


def _jax_lstm(x, h0, c0, kernel, recurrent_kernel, bias, go_backwards):
    import jax
    import jax.numpy as jnp

    x = jnp.swapaxes(x, 0, 1)  # scan runs over the leading axis
    if go_backwards:
        x = x[::-1]
    projected = x @ kernel + bias  # every step's input projection in one product

    def step(state, z_x):
        h, c = state
        i, f, g, o = jnp.split(z_x + h @ recurrent_kernel, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    (h, c), outputs = jax.lax.scan(step, (h0, c0), projected)
    return jnp.swapaxes(outputs, 0, 1), h, c


def _tensorflow_lstm(x, h0, c0, kernel, recurrent_kernel, bias, go_backwards):
    import tensorflow as tf

    x = tf.transpose(x, [1, 0, 2])  # scan runs over the leading axis
    if go_backwards:
        x = tf.reverse(x, axis=[0])
    projected = tf.einsum("tbi,ig->tbg", x, kernel) + bias  # every step's input projection in one product

    def step(state, z_x):
        h, c = state
        i, f, g, o = tf.split(z_x + h @ recurrent_kernel, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    hs, cs = tf.scan(step, projected, initializer=(h0, c0))
    return tf.transpose(hs, [1, 0, 2]), hs[-1], cs[-1]


_KERNELS = {"torch": _torch_lstm, "tensorflow": _tensorflow_lstm, "jax": _jax_lstm}
