"""Training with the features computed on the device (``features.on_device``) as one plug-in.

The host then only cuts, scales and sums waveforms. What that changes is all
here, in :class:`SourcesOnDevice`, a training objective
(:mod:`deepclust.nn.objective`): batches of scaled sources
(B, max_speakers, samples), the validation mixtures as sources too
(:func:`deepclust.data.validation.validation_sources`), the model ``fit`` trains
around the saved network (:func:`training_model`), which computes the features
first (:class:`deepclust.dsp.device_features.SourceFeatures`) and gives the
embeddings and labels side by side, and its loss,
:class:`deepclust.nn.losses.PackedDeepClusteringLoss`. The network saved and
used to separate is the plain one, log magnitudes in.
"""

from __future__ import annotations

import keras
from keras import ops

from ..config import Config
from ..data.mixer import BatchForm, Mixer
from ..data.validation import validation_sources
from ..dsp.device_features import SourceFeatures
from ..nn.losses import PackedDeepClusteringLoss
from ..nn.objective import DeepClustering

TRAINING_MODEL_NAME = "deep_clustering_on_sources"


def training_model(net: keras.Model, config: Config) -> keras.Model:
    """The model ``fit`` trains with features on the device: scaled sources in, embeddings and labels out
    side by side (B, T, F, D + C), scored by :class:`deepclust.nn.losses.PackedDeepClusteringLoss`.
    It shares every weight with ``net``, the model that is saved and separates."""
    samples = config.stft.samples_for_frames(config.data.chunk_frames)
    sources = keras.Input(shape=(config.data.max_speakers, samples), name="sources")
    log_magnitude, labels = SourceFeatures.for_config(config)(sources)
    embeddings = net(log_magnitude)
    packed = keras.layers.Concatenate(axis=-1, name="embeddings_and_labels")(
        [embeddings, ops.stop_gradient(labels)])
    return keras.Model(sources, packed, name=TRAINING_MODEL_NAME)


class SourcesOnDevice(DeepClustering):
    """The training objective of ``features.on_device = true``: source batches, validation chunks of
    sources, :func:`training_model` around the plain network, the packed deep clustering loss."""

    form = BatchForm(sources=True)

    def validation(self, mixer: Mixer):
        return validation_sources(mixer, self.config)

    def training_model(self, net: keras.Model) -> keras.Model:
        return training_model(net, self.config)

    def loss(self):
        return PackedDeepClusteringLoss(self.config.model.embedding_dim)
