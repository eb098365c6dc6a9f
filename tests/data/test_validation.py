"""The validation data and the feature statistics a run draws once from a mixer."""

import numpy as np

from deepclust.config import load_config
from deepclust.data import mixer as mixer_lib, validation


def test_validation_set_is_fixed(list_folder, tiny_config):
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "valid", 8000), tiny_config)
    x1, y1 = validation.validation_set(mixer, tiny_config)
    x2, _ = validation.validation_set(mixer, tiny_config)
    np.testing.assert_array_equal(x1, x2)
    assert x1.shape[1] == tiny_config.data.chunk_frames
    assert y1.shape == x1.shape + (tiny_config.data.max_speakers,)


def test_chunks_of_covers_the_end():
    arr = np.arange(25)
    pieces = validation.chunks_of(arr, 10, 5)
    assert [p[0] for p in pieces] == [0, 5, 10, 15]
    assert pieces[-1][-1] == 24


def test_validation_sources_are_the_validation_mixtures_cut_into_chunks_of_samples(list_folder):
    cfg = load_config("tiny", {"features.on_device": True, "data.valid_mixtures": 3})
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "valid", 8000), cfg)
    x, y = validation.validation_sources(mixer, cfg)
    samples = cfg.stft.samples_for_frames(cfg.data.chunk_frames)
    assert x.shape[1:] == (cfg.data.max_speakers, samples) and y.shape == (len(x),) and not y.any()
    first = mixer.draw_sources(np.random.default_rng(cfg.data.valid_seed), None)  # the first mixture drawn
    np.testing.assert_array_equal(x[0, :len(first)], first[:, :samples])
    np.testing.assert_array_equal(x, validation.validation_sources(mixer, cfg)[0])


def test_feature_statistics_are_those_of_the_training_chunks(list_folder, tiny_config):
    cfg = load_config("tiny", {"data.stats_mixtures": 5})
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), cfg)
    mean, variance = validation.feature_statistics(mixer, cfg, seed=3)
    rng = np.random.default_rng([3, 7])
    chunks = np.concatenate([mixer.chunk(rng)[0] for _ in range(5)])
    np.testing.assert_allclose(mean, chunks.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(variance, chunks.var(axis=0), rtol=1e-3, atol=1e-5)
