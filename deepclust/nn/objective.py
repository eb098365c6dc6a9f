"""The training objective: what a way of training decides of the batches, network and loss; the plain one.

:mod:`deepclust.training.train` asks a run's objective (chosen once, by
:func:`deepclust.training.objectives.for_config`) for each thing a way of training
changes, without looking at the config keys that chose it (:class:`Objective`).
:class:`DeepClustering` is the plain one, deep clustering on features computed on
the host; each optional way of training is one plug-in, a subclass that overrides
what it changes: the Chimera++ mask head (:class:`deepclust.nn.chimera.MaskHead`)
and features computed on the device
(:class:`deepclust.training.on_device.SourcesOnDevice`).
"""

from __future__ import annotations

from typing import Protocol

import keras
import numpy as np

from ..config import Config
from ..data.mixer import BatchForm, Mixer
from ..data.validation import validation_set
from . import model as model_lib
from .losses import DeepClusteringLoss


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
