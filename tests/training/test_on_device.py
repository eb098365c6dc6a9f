"""The on-device features plug-in: source batches, the model fit trains around the network, its loss; refusals."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import write_list_folder
from deepclust.config import ConfigError, load_config
from deepclust.data import mixer as mixer_lib
from deepclust.data.dataset import MixtureDataset
from deepclust.nn.losses import DeepClusteringLoss
from deepclust.training.on_device import SourcesOnDevice

ON_DEVICE = {"features.on_device": True}


def test_the_packed_loss_on_sources_is_the_loss_on_host_features(list_folder):
    cfg = load_config("tiny", ON_DEVICE)
    objective = SourcesOnDevice(cfg)
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), cfg, objective.form)
    stack = mixer.source_batch(np.random.default_rng(3), 4)
    x, y = mixer.batch(np.random.default_rng(3), 4)  # the same mixtures, features on the host
    net = objective.build()
    host = DeepClusteringLoss()(y, net(x))
    device = objective.loss()(np.zeros(4), objective.training_model(net)(stack))
    assert float(keras.ops.convert_to_numpy(device)) == pytest.approx(float(keras.ops.convert_to_numpy(host)),
                                                                      rel=1e-4)


def test_its_batches_are_the_scaled_sources_of_the_host_batches_mixtures(list_folder):
    cfg = load_config("tiny", ON_DEVICE)
    corpus = mixer_lib.load_corpus(list_folder / "train", 8000)
    sources, targets = MixtureDataset(mixer_lib.Mixer(corpus, cfg, SourcesOnDevice(cfg).form), cfg,
                                      batch_size=4, processes=0).batch_at(1, 2)
    host, _ = MixtureDataset(mixer_lib.Mixer(corpus, cfg), cfg, batch_size=4, processes=0).batch_at(1, 2)
    assert sources.shape == (4, cfg.data.max_speakers, cfg.stft.samples_for_frames(cfg.data.chunk_frames))
    assert targets.shape == (4,) and not targets.any()
    np.testing.assert_array_equal(mixer_lib.examples_of_stack(sources, cfg)[0][:, :host.shape[1]], host)


def test_training_on_device_saves_the_plain_network_and_resumes(tmp_path):
    from deepclust.nn import model as model_lib
    from deepclust.separation.separator import Separator
    from deepclust.training.train import train

    base = write_list_folder(tmp_path / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})
    result = train(base, "tiny", ON_DEVICE, verbose=0)
    assert result.stopped == "completed" and np.isfinite(result.best_val_loss)
    net = model_lib.load(base / "model.keras")
    assert net.input_shape == (None, None, load_config("tiny").num_bins)  # log magnitudes in, as separate needs
    mixture = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    assert Separator.from_path(base).separate(mixture, 2).sources.shape == (2, 16000)
    again = train(base, None, {"train.epochs": 3}, verbose=0)
    assert again.epochs_done == 3


@pytest.mark.parametrize("key", ["model.mask_head", "data.whole_utterances"])
def test_what_device_features_cannot_train_is_refused(key):
    with pytest.raises(ConfigError, match=rf"features.on_device cannot train with {key} set"):
        load_config("tiny", {**ON_DEVICE, key: True})
