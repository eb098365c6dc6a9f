"""The deep clustering loss, ||VV^T - YY^T||_F^2 in its low-rank form, and the mask-inference loss
of a Chimera++ head.

Written in ``keras.ops`` only, so it runs on every Keras backend, and never
forms the N x N affinity matrices (N = T*F bins): with V (N, D) and Y (N, C)

    ||VV^T - YY^T||^2 = ||V^T V||^2 - 2 ||V^T Y||^2 + ||Y^T Y||^2,

three small D x D, D x C and C x C products.
"""

from __future__ import annotations

import itertools

import keras
from keras import ops

# Keeps an all-silent chunk (no weight anywhere) at loss 0 instead of 0/0.
EPSILON = 1e-8


@keras.saving.register_keras_serializable(package="deepclust")
def deep_clustering_loss(y_true, y_pred):
    """Deep clustering loss per sample, weighted and normalised.

    Args:
        y_true: (batch, T, F, C) labels: one-hot on each bin's dominant
            speaker, scaled by the square root of the bin's weight, all zero
            at silent bins (see ``features.dominant_labels``). C is the
            largest speaker count; unused speaker columns are zero.
        y_pred: (batch, T, F, D) unit-length embeddings.

    Returns:
        (batch,) float32: sum_ij w_i w_j (v_i.v_j - y_i.y_j)^2 / (sum_i w_i)^2,
        where w_i = ||y_true_i||^2. With binary weights this is the loss over
        active bins divided by their squared count, so its value does not
        depend on chunk length. Computed in float32 whatever the compute
        dtype, so mixed precision cannot overflow it.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    batch = ops.shape(y_pred)[0]
    labels = ops.reshape(y_true, (batch, -1, ops.shape(y_true)[-1]))
    embeddings = ops.reshape(y_pred, (batch, -1, ops.shape(y_pred)[-1]))
    weights = ops.sum(ops.square(labels), axis=-1, keepdims=True)
    # Scaling v_i by sqrt(w_i), as the labels already are, weights every pair (i, j) by w_i w_j and removes
    # silent bins from every product.
    embeddings = embeddings * ops.sqrt(weights)
    vt = ops.transpose(embeddings, (0, 2, 1))
    yt = ops.transpose(labels, (0, 2, 1))
    vtv = ops.sum(ops.square(ops.matmul(vt, embeddings)), axis=(1, 2))
    vty = ops.sum(ops.square(ops.matmul(vt, labels)), axis=(1, 2))
    yty = ops.sum(ops.square(ops.matmul(yt, labels)), axis=(1, 2))
    norm = ops.square(ops.sum(weights, axis=(1, 2)))
    return (vtv - 2.0 * vty + yty) / (norm + EPSILON)


@keras.saving.register_keras_serializable(package="deepclust")
class DeepClusteringLoss(keras.losses.Loss):
    """Keras wrapper of :func:`deep_clustering_loss`."""

    def __init__(self, reduction="sum_over_batch_size", name="deep_clustering", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return deep_clustering_loss(y_true, y_pred)

    @classmethod
    def from_config(cls, config):
        # Models compiled while train.objective existed (removed: README, "Options removed") carry it.
        config = dict(config)
        objective = config.pop("objective", "affinity")
        if objective != "affinity":
            raise ValueError(f"the {objective!r} deep clustering objective was removed (measured worse; README, "
                             f"\"Options removed\"); load the model without compiling it, or retrain. "
                             f"Received: objective={objective!r}")
        return super().from_config(config)


@keras.saving.register_keras_serializable(package="deepclust")
def mask_inference_loss(y_true, y_pred):
    """Permutation-invariant phase-sensitive mask loss per sample (Chimera++'s mask head).

    Args:
        y_true: (batch, T, F, C + 1): channels 0 .. C-1 each speaker slot's truncated
            phase-sensitive magnitude (zero for absent speakers), channel C the
            mixture magnitude |X| (see ``features.mask_targets``).
        y_pred: (batch, T, F, C) masks.

    Returns:
        (batch,) float32: min over permutations p of sum_c sum_tf |m_p(c) |X| - t_c|,
        divided by sum_tf |X|, so the value does not depend on level or chunk
        length (0 for a perfect mask; about 0.5 for masks of 1/C on two voices).
        C! permutations: fine for the 2-3 speakers deep clustering is trained on.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    slots = y_pred.shape[-1]
    targets, magnitude = y_true[..., :slots], y_true[..., slots:]
    estimates = y_pred * magnitude
    # pairwise[b, i, j]: the cost of giving mask i to speaker j.
    pairwise = ops.stack([ops.sum(ops.abs(estimates[..., i:i + 1] - targets), axis=(1, 2))
                          for i in range(slots)], axis=1)
    costs = ops.stack([sum(pairwise[:, p[j], j] for j in range(slots))
                       for p in itertools.permutations(range(slots))], axis=-1)
    return ops.min(costs, axis=-1) / (ops.sum(magnitude, axis=(1, 2, 3)) + EPSILON)


@keras.saving.register_keras_serializable(package="deepclust")
class MaskInferenceLoss(keras.losses.Loss):
    """Keras wrapper of :func:`mask_inference_loss`."""

    def __init__(self, reduction="sum_over_batch_size", name="mask_inference", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return mask_inference_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="deepclust")
class PackedDeepClusteringLoss(DeepClusteringLoss):
    """:class:`DeepClusteringLoss` for a model that computes its own labels (features on the device):
    ``y_pred`` (batch, T, F, D + C) holds the embeddings in its first ``embedding_dim`` channels and the
    labels after them; ``y_true`` is a placeholder and is not read."""

    def __init__(self, embedding_dim=20, reduction="sum_over_batch_size", name="deep_clustering", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.embedding_dim = int(embedding_dim)

    def call(self, y_true, y_pred):
        return super().call(y_pred[..., self.embedding_dim:], y_pred[..., :self.embedding_dim])

    def get_config(self):
        return {**super().get_config(), "embedding_dim": self.embedding_dim}
