"""The Chimera++ mask head (``model.mask_head``), one plug-in: its output, targets, loss, and masker.

Wang, Le Roux and Hershey (2018): beside the embeddings the network gives one
softmax mask per speaker slot (``data.max_speakers``) from the same BLSTM states,
trained jointly with a permutation-invariant phase-sensitive mask loss. What the
head changes is all here: the network with the second output (:func:`build_model`),
and :class:`MaskHead`, the training objective (:mod:`deepclust.nn.objective`)
that asks the batches for the mask targets beside the labels
(:func:`deepclust.dsp.features.mask_targets`) and weighs the two losses
(``train.loss_alpha``); for separation (``separate.mask = "network"``) the head's
masks with their slot order kept across a file's segments (:class:`HeadMasker`).
"""

from __future__ import annotations

import itertools

import keras
import numpy as np

from ..config import Config
from ..data.mixer import BatchForm
from ..dsp import features
from . import model as model_lib
from .losses import DeepClusteringLoss, MaskInferenceLoss
from .objective import DeepClustering

MASK_OUTPUT = "mask"
MODEL_NAME = "chimera"
# What EXPORT.md says of the second output of a network with the head.
EXPORT_NOTE = "\nA second output holds the mask head's masks (batch, T, F, speaker slots).\n"


def build_model(config: Config, mean: np.ndarray | None = None, variance: np.ndarray | None = None) -> keras.Model:
    """:func:`deepclust.nn.model.build_model`'s network with the mask head: outputs (embeddings, masks
    (batch, T, F, max_speakers)), the masks a softmax over the speaker slots at every bin."""
    inputs, states, embeddings = model_lib.embedding_layers(config, mean, variance)
    bins, slots = config.num_bins, config.data.max_speakers
    y = keras.layers.Dense(bins * slots, kernel_regularizer=model_lib.kernel_regularizer(config),
                           name="mask_dense")(states)
    y = keras.layers.Reshape((-1, bins, slots), name="to_masks")(y)
    masks = keras.layers.Softmax(axis=-1, dtype="float32", name=MASK_OUTPUT)(y)
    return keras.Model(inputs, [embeddings, masks], name=MODEL_NAME)


def has_mask_head(model: keras.Model) -> bool:
    """Whether ``model`` (built here, or loaded from a file) gives masks beside its embeddings."""
    return len(model.outputs) > 1


def mask_slots(model: keras.Model) -> int:
    """The speaker slots of ``model``'s mask head (0 without one)."""
    return int(model.outputs[1].shape[-1]) if has_mask_head(model) else 0


class MaskHead(DeepClustering):
    """The training objective of a network with the mask head (``model.mask_head = true``): batches and
    validation chunks with the mask targets after the labels, one per output, the network with the head,
    and the loss ``loss_alpha`` x deep clustering + (1 - ``loss_alpha``) x mask inference."""

    form = BatchForm(extra=(features.mask_targets,))

    def __init__(self, config: Config):
        super().__init__(config)
        self.loss_weights = [config.train.loss_alpha, 1.0 - config.train.loss_alpha]

    def build(self, mean: np.ndarray | None = None, variance: np.ndarray | None = None) -> keras.Model:
        return build_model(self.config, mean, variance)

    def loss(self):
        return [DeepClusteringLoss(), MaskInferenceLoss()]


class HeadMasker:
    """The masks of a mask head, slot order kept across a file's segments (``separate.mask = "network"``).

    The head is trained permutation-invariantly, so the slot a voice lands in may
    change between two segments. Each segment takes the order of its slots that
    agrees best with the previous segment where the two overlap (mask times
    mixture magnitude); the energy of each aligned slot over the whole file
    picks the k loudest voices. Segments must be observed in order. The masker
    protocol is :mod:`deepclust.separation.clustering`'s.
    """

    def __init__(self, hop_length: int):
        self.hop = hop_length
        self.orders: dict[int, tuple[int, ...]] = {}
        self.energy: np.ndarray | None = None
        self.slots: list[int] = []
        self._tail: np.ndarray | None = None  # the previous segment's aligned, magnitude-weighted masks
        self._end = 0  # the previous segment's last sample + 1

    def observe(self, index: int, start: int, stop: int, spec: np.ndarray, head: np.ndarray | None) -> None:
        """Fix the slot order of segment ``index`` (samples ``start`` to ``stop``) from its (T, F, slots)
        head masks and (T, F) spectrum."""
        weighted = head * np.abs(spec)[..., None]
        order = tuple(range(head.shape[-1]))
        frames = min((self._end - start) // self.hop, head.shape[0]) if self._tail is not None else 0
        if frames > 0:
            tail, now = self._tail[-frames:], weighted[:frames]
            order = max(itertools.permutations(order),
                        key=lambda p: sum(float(np.sum(tail[..., c] * now[..., p[c]])) for c in range(len(p))))
        aligned = weighted[..., list(order)]
        self.orders[index] = order
        self.energy = aligned.sum(axis=(0, 1)) + (0.0 if self.energy is None else self.energy)
        self._tail, self._end = aligned, stop

    def fit(self, samples: np.ndarray, num_speakers: int, magnitudes: np.ndarray | None = None) -> None:
        """Keep the ``num_speakers`` aligned slots with the most energy over the file."""
        self.slots = sorted(np.argsort(-self.energy)[:num_speakers].tolist())

    def masks(self, index: int, embeddings: np.ndarray, head: np.ndarray | None) -> np.ndarray:
        """(k, T, F) masks of the chosen aligned slots, summing to one at every bin."""
        chosen = head[..., list(self.orders[index])][..., self.slots]
        total = chosen.sum(axis=-1, keepdims=True)
        # A bin whose mass sat in a dropped slot is shared equally rather than lost.
        chosen = np.where(total > 1e-6, chosen / np.maximum(total, 1e-6), 1.0 / len(self.slots))
        return np.moveaxis(chosen, -1, 0).astype(np.float32)
