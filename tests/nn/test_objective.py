"""The plain deep clustering objective, which the plug-ins subclass: host features, the network alone, its loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deepclust.config import load_config
from deepclust.data import mixer as mixer_lib, validation
from deepclust.nn import chimera
from deepclust.nn.losses import DeepClusteringLoss
from deepclust.nn.objective import DeepClustering
from deepclust.training.train import compile_model


def test_plain_deep_clustering_trains_the_network_on_host_features(list_folder):
    cfg = load_config("tiny")
    objective = DeepClustering(cfg)
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
