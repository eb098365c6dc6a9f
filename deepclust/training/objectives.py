"""The training objective: what a way of training asks of the batches, network and loss; the one choice of it.

A run trains with one objective, :func:`for_config`'s, and
:mod:`deepclust.training.train` asks it, without looking at the config keys that
chose it, for each thing a way of training changes (:class:`Objective`). The plain
objective, deep clustering on features computed on the host, is
:class:`DeepClustering`; each optional way of training is one plug-in in one module
that holds all it changes: the Chimera++ mask head
(:class:`deepclust.nn.chimera.MaskHead`, ``model.mask_head``) and features computed
on the device (:class:`deepclust.training.on_device.SourcesOnDevice`,
``features.on_device``). Which of them cannot be combined is
:mod:`deepclust.config.rules`' to refuse, when the config is loaded.
"""

from __future__ import annotations

from typing import Protocol

import keras
import numpy as np

from ..config import Config
from ..data.mixer import BatchForm, Mixer
from ..data.validation import validation_set
from ..nn import chimera, model as model_lib
from ..nn.losses import DeepClusteringLoss
from .on_device import SourcesOnDevice


class Objective(Protocol):
    """What a way of training decides."""

    form: BatchForm  # what the mixers' batches hold (deepclust.data.mixer)
    loss_weights: list[float] | None  # each output's share of the loss; None: one output

    def validation(self, mixer: Mixer):
        """The fixed validation data ``fit`` scores, (x, y), drawn from the validation ``mixer`` (of ``form``)."""

    def build(self, mean: np.ndarray | None = None, variance: np.ndarray | None = None) -> keras.Model:
        """The network that is saved and separates, built with these per-bin feature statistics."""

    def training_model(self, net: keras.Model) -> keras.Model:
        """The model ``fit`` trains: ``net`` itself, or a model around it sharing its weights."""

    def loss(self):
        """The loss (one per output) the training model is compiled with."""


class DeepClustering:
    """Deep clustering on features computed on the host (the default): batches of log magnitudes and
    labels, the embedding network alone, the deep clustering loss."""

    form = BatchForm()
    loss_weights = None

    def __init__(self, config: Config):
        self.config = config

    def validation(self, mixer: Mixer):
        return validation_set(mixer, self.config)

    def build(self, mean: np.ndarray | None = None, variance: np.ndarray | None = None) -> keras.Model:
        return model_lib.build_model(self.config, mean, variance)

    def training_model(self, net: keras.Model) -> keras.Model:
        return net

    def loss(self):
        return DeepClusteringLoss()


def for_config(config: Config) -> Objective:
    """The objective ``config`` trains with: the mask head's with ``model.mask_head``, features on the device's
    with ``features.on_device`` (the rules refuse both at once), else :class:`DeepClustering`."""
    if config.model.mask_head:
        return chimera.MaskHead(config)
    if config.features.on_device:
        return SourcesOnDevice(config)
    return DeepClustering(config)
