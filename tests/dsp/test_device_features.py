"""Features on the device: the keras.ops layer gives the host's numbers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deepclust.config import load_config
from deepclust.data import mixer as mixer_lib
from deepclust.dsp import features
from deepclust.dsp.device_features import SourceFeatures


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
