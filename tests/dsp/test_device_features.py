"""Features on the device: the keras.ops path gives the host's numbers, trains, saves the plain network."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import write_list_folder
from deepclust.config import ConfigError, load_config
from deepclust.data import mixer as mixer_lib
from deepclust.dsp import features
from deepclust.dsp.device_features import SourceFeatures, training_model


def random_sources(cfg, seed=0):
    """Sources as the mixer hands them over: some speakers absent, one mixture silent at its start, one quiet."""
    rng = np.random.default_rng(seed)
    samples = cfg.stft.samples_for_frames(cfg.data.chunk_frames)
    stack = rng.standard_normal((6, cfg.data.max_speakers, samples)).astype(np.float32)
    stack *= rng.uniform(0.01, 1.0, size=(6, cfg.data.max_speakers, 1)).astype(np.float32)
    stack[0, 2:] = 0  # two speakers
    stack[1, :, : samples // 3] = 0
    stack[2] *= 1e-4
    stack[3, 1:] = 0  # a single voice
    return stack


def host_examples(stack, cfg):
    x, y = mixer_lib.examples_of_stack(stack, cfg)
    return features.fit_frames(x, cfg.data.chunk_frames), features.fit_frames(y, cfg.data.chunk_frames)


@pytest.mark.parametrize("weighting", ["binary", "magnitude"])
def test_device_features_equal_the_host_features(weighting):
    cfg = load_config("tiny", {"features.weighting": weighting})
    stack = random_sources(cfg)
    x_host, y_host = host_examples(stack, cfg)
    x_dev, y_dev = (keras.ops.convert_to_numpy(t) for t in SourceFeatures.for_config(cfg)(stack))
    assert x_dev.shape == x_host.shape and y_dev.shape == y_host.shape
    # Magnitudes to float32 rounding of the loudest bins, log magnitudes wherever a bin is active (the
    # rounding shows only in the log of bins far below the silence threshold).
    for b in range(len(stack)):
        np.testing.assert_allclose(np.exp(x_dev[b]), np.exp(x_host[b]), atol=2e-6 * np.exp(x_host[b]).max())
    active = y_host.sum(axis=-1) > 0
    np.testing.assert_allclose(x_dev[active], x_host[active], atol=1e-4)
    np.testing.assert_allclose(y_dev, y_host, atol=1e-4)  # labels (one-hot times sqrt of the weight)
    assert y_host.sum() > 0 and not y_host[0, ..., 2:].any()  # absent speakers carry no label


def test_the_packed_loss_on_sources_is_the_loss_on_host_features(list_folder):
    from deepclust.nn.losses import DeepClusteringLoss, PackedDeepClusteringLoss
    from deepclust.nn.model import build_model

    cfg = load_config("tiny", {"features.on_device": True})
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), cfg)
    stack = mixer.source_batch(np.random.default_rng(3), 4)
    x, y = mixer.batch(np.random.default_rng(3), 4)  # the same mixtures, features on the host
    net = build_model(cfg)
    host = DeepClusteringLoss()(y, net(x))
    device = PackedDeepClusteringLoss(cfg.model.embedding_dim)(np.zeros(4), training_model(net, cfg)(stack))
    assert float(keras.ops.convert_to_numpy(device)) == pytest.approx(float(keras.ops.convert_to_numpy(host)),
                                                                      rel=1e-4)


def test_training_on_device_saves_the_plain_network_and_resumes(tmp_path):
    from deepclust.nn import model as model_lib
    from deepclust.separation.separator import Separator
    from deepclust.training.train import train

    base = write_list_folder(tmp_path / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})
    result = train(base, "tiny", {"features.on_device": True}, verbose=0)
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
        load_config("tiny", {"features.on_device": True, key: True})
