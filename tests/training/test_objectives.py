"""The one choice of training objective from a config: the objective and its batches, the loss it compiles."""

from __future__ import annotations

import keras
import pytest

from deepclust.config import load_config
from deepclust.data import mixer as mixer_lib
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
