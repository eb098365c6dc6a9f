"""The one choice of training objective, and the plain deep clustering objective it falls back on."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deepclust.config import load_config
from deepclust.data import mixer as mixer_lib, validation
from deepclust.data.dataset import MixtureDataset
from deepclust.nn import chimera
from deepclust.nn.losses import DeepClusteringLoss, MaskInferenceLoss, PackedDeepClusteringLoss
from deepclust.training import objectives, on_device
from deepclust.training.train import compile_model


def features(cfg):
    return (3, cfg.data.chunk_frames, cfg.num_bins)


def sources(cfg):
    return (3, cfg.data.max_speakers, cfg.stft.samples_for_frames(cfg.data.chunk_frames))


@pytest.mark.parametrize("overrides, kind, inputs, targets", [
    ({}, objectives.DeepClustering, features, 1),
    ({"model.mask_head": True}, chimera.MaskHead, features, 2),  # the labels, then the mask targets
    ({"features.on_device": True}, on_device.SourcesOnDevice, sources, 1),  # a placeholder
])
def test_the_config_picks_the_objective_and_the_objective_the_batches(list_folder, overrides, kind, inputs,
                                                                      targets):
    cfg = load_config("tiny", overrides)
    objective = objectives.for_config(cfg)
    assert type(objective) is kind
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), cfg, objective.form)
    x, y = MixtureDataset(mixer, cfg, batch_size=3, processes=0).batch_at(0, 0)
    assert x.shape == inputs(cfg) and len(keras.tree.flatten(y)) == targets


def test_plain_deep_clustering_trains_the_network_on_host_features(list_folder):
    cfg = load_config("tiny")
    objective = objectives.DeepClustering(cfg)
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "valid", 8000), cfg, objective.form)
    x, y = objective.validation(mixer)
    np.testing.assert_array_equal(x, validation.validation_set(mixer_lib.Mixer(mixer.corpus, cfg), cfg)[0])
    assert y.shape == x.shape + (cfg.data.max_speakers,)
    net = objective.build(np.full(cfg.num_bins, 0.5, np.float32), np.full(cfg.num_bins, 2.0, np.float32))
    assert objective.training_model(net) is net and not chimera.has_mask_head(net)
    compiled = compile_model(net, cfg)  # the config's objective: this one
    scored = compiled.evaluate(x[:4], y[:4], batch_size=4, verbose=0)
    expected = keras.ops.convert_to_numpy(DeepClusteringLoss()(y[:4], net(x[:4])))
    assert scored == pytest.approx(float(expected), rel=1e-4)


@pytest.mark.parametrize("overrides, losses", [
    ({}, [DeepClusteringLoss]),
    ({"model.mask_head": True}, [DeepClusteringLoss, MaskInferenceLoss]),
    ({"features.on_device": True}, [PackedDeepClusteringLoss]),
])
def test_compile_model_takes_the_configs_objectives_loss(overrides, losses):
    cfg = load_config("tiny", overrides)
    objective = objectives.for_config(cfg)
    model = compile_model(objective.training_model(objective.build()), cfg)
    assert [type(loss) for loss in keras.tree.flatten(model.loss)] == losses
