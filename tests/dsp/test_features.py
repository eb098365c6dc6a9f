import numpy as np
import pytest

from deepclust.config import FeatureConfig
from deepclust.dsp import features


@pytest.mark.parametrize("length", [1, 63, 64, 255, 256, 1000, 8001])
@pytest.mark.parametrize("window,hop", [(256, 64), (128, 32), (512, 128)])
def test_istft_reconstructs_exactly_edges_included(length, window, hop):
    cfg = FeatureConfig(window_length=window, hop_length=hop)
    x = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    y = features.istft(features.stft(x, cfg), length, cfg)
    assert y.shape == x.shape
    # First and last samples too: the original lost its edge frames.
    np.testing.assert_allclose(y, x, atol=1e-5)
    np.testing.assert_allclose(y[:hop], x[:hop], atol=1e-5)
    np.testing.assert_allclose(y[-hop:], x[-hop:], atol=1e-5)


def test_stft_shape_and_stack():
    cfg = FeatureConfig()
    x = np.random.default_rng(0).standard_normal((3, 800)).astype(np.float32)
    spec = features.stft(x, cfg)
    assert spec.shape == (3, features.Stft().num_frames(800), features.Stft().num_bins) == (3, 16, 129)
    np.testing.assert_allclose(spec[1], features.stft(x[1], cfg), atol=1e-5)


@pytest.mark.parametrize("length", [1, 63, 255, 257, 1000, 6399])
@pytest.mark.parametrize("window,hop", [(256, 64), (512, 128)])
def test_stft_matches_scipy_short_time_fft(length, window, hop):
    # features.stft frames the whole stack at once; it must give scipy's numbers
    # (phase convention included), which the inverse relies on.
    cfg = FeatureConfig(window_length=window, hop_length=hop)
    x = np.random.default_rng(length).standard_normal((2, 3, length)).astype(np.float32)
    padded = np.pad(x, [(0, 0), (0, 0), (0, max(window, length) - length)])
    reference = np.swapaxes(features.stft_transform(window, hop).stft(padded, axis=-1), -1, -2)
    ours = features.stft(x, cfg)
    assert ours.shape == reference.shape and ours.dtype == np.complex64
    np.testing.assert_allclose(ours, reference, atol=2e-5 * np.sqrt(window))


@pytest.mark.parametrize("length", [1, 63, 255, 257, 1000, 6399])
@pytest.mark.parametrize("window,hop", [(256, 64), (512, 128), (200, 64)])
def test_istft_matches_scipy_on_any_spectrum(length, window, hop):
    # masked spectra are not STFTs of any signal: the inverse must still be scipy's
    cfg = FeatureConfig(window_length=window, hop_length=hop)
    rng = np.random.default_rng(length)
    shape = (2, features.Stft(window, hop).num_frames(length), window // 2 + 1)
    spec = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    padded = max(window, length)
    reference = features.stft_transform(window, hop).istft(np.swapaxes(spec, -1, -2), k1=padded, f_axis=-2,
                                                       t_axis=-1)[..., :length]
    ours = features.istft(spec, length, cfg)
    assert ours.shape == (2, length) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-4 * np.abs(reference).max())


def _two_voices(seconds=1.0, rate=8000):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(3)
    a = sum(np.sin(2 * np.pi * 140 * h * t + rng.uniform(0, 6)) / h for h in range(1, 12))
    b = sum(np.sin(2 * np.pi * 215 * h * t * (1 + 0.05 * t) + rng.uniform(0, 6)) / h for h in range(1, 9))
    return np.stack([a, b * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))]).astype(np.float32)


def test_reconstruct_is_the_masked_mixture_inverted():
    cfg = FeatureConfig()
    sources = _two_voices()
    spec = features.stft(sources.sum(0), cfg)
    masks = np.random.default_rng(0).uniform(size=(2,) + spec.shape).astype(np.float32)
    out = features.reconstruct(spec, masks, sources.shape[1], cfg)
    np.testing.assert_allclose(out, features.istft(masks * spec[None], sources.shape[1], cfg), atol=1e-6)


def test_samples_for_frames_is_largest_fitting_length():
    stft = features.Stft()
    for frames in (20, 100, 400):
        n = stft.samples_for_frames(frames)
        assert stft.num_frames(n) <= frames < stft.num_frames(n + 1)


@pytest.mark.parametrize("window,hop", [(256, 64), (512, 128), (200, 64)])
def test_stft_padding_frames_a_signal_as_scipy_does(window, hop):
    # the one frame arithmetic of both forms: windows every hop over the padded signal are scipy's frames
    stft = features.Stft(window, hop)
    for length in (1, 100, window, 3001):
        before, after = stft.padding(length)
        assert (length + before + after - window) // hop + 1 == stft.num_frames(length)
        assert before == stft.transform.m_num_mid - stft.transform.p_min * hop


def test_one_stft_settings_object_for_config_features_and_model():
    from deepclust.config import load_config

    cfg = load_config("tiny")
    assert cfg.stft == features.Stft(cfg.features.window_length, cfg.features.hop_length, cfg.audio.sample_rate)
    assert cfg.num_bins == cfg.stft.num_bins and features.stft_settings(cfg.features) == features.Stft(
        cfg.features.window_length, cfg.features.hop_length)
    stft = cfg.stft
    assert features.stft_settings(stft) is stft


def test_silence_threshold_and_labels():
    cfg = FeatureConfig(silence_db=40.0)
    spec = np.array([[1.0, 0.02, 0.005, 0.0]], dtype=np.complex64)  # 0, -34, -46 dB, digital silence
    active = features.active_bins(spec, cfg)
    assert active.tolist() == [[True, True, False, False]]
    sources = np.stack([spec * 0.9, spec * 0.1])
    sources[1, 0, 1] = 1.0  # source 2 dominates bin 1
    labels = features.dominant_labels(sources, features.bin_weights(spec, cfg), max_speakers=3)
    assert labels.shape == (1, 4, 3)
    np.testing.assert_array_equal(labels[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(labels[0, 1], [0, 1, 0])
    np.testing.assert_array_equal(labels[0, 2:], 0)  # silent bins are all zero


def test_magnitude_weighting_mean_one_on_active_bins():
    cfg = FeatureConfig(weighting="magnitude")
    spec = np.random.default_rng(1).standard_normal((10, 129)).astype(np.complex64)
    w = features.bin_weights(spec, cfg)
    active = features.active_bins(spec, cfg)
    assert np.all(w[~active] == 0)
    assert w[active].mean() == pytest.approx(1.0, rel=1e-4)


def test_level_normalisation_makes_features_gain_free():
    cfg = FeatureConfig()
    x = np.random.default_rng(2).standard_normal(4000).astype(np.float32) * 0.1
    a, _, _ = features.mixture_features(x, cfg)
    b, _, _ = features.mixture_features(x * 0.01, cfg)
    np.testing.assert_allclose(a, b, atol=1e-3)
    silent, _, gain = features.mixture_features(np.zeros(4000, np.float32), cfg)
    assert gain == 1.0 and np.all(np.isfinite(silent))


def test_mask_targets_phase_sensitive_truncated_and_padded():
    cfg = FeatureConfig(window_length=128, hop_length=32)
    rng = np.random.default_rng(3)
    sources = rng.standard_normal((2, 2, 1600)).astype(np.float32)  # a stack of two 2-source mixtures
    sources[1, 1] = -0.5 * sources[1, 0]  # partial cancellation: |S| cos(dphi) < 0 for the weaker source
    source_specs = features.stft(sources, cfg)
    spec = source_specs.sum(axis=1)
    targets = features.mask_targets(source_specs, spec, max_speakers=3)
    assert targets.shape == spec.shape + (4,)
    magnitude = np.abs(spec)
    np.testing.assert_allclose(targets[..., -1], magnitude, rtol=1e-6)
    assert np.all(targets[..., 2] == 0)  # an absent speaker's slot
    assert np.all(targets[..., :2] >= 0) and np.all(targets[..., :2] <= magnitude[..., None] * (1 + 1e-6))
    # Where one source is exactly -0.5 x the other, its projection on the mixture is negative: clipped to 0.
    assert np.all(targets[1, ..., 1] == 0)
    np.testing.assert_allclose(targets[1, ..., 0], magnitude[1], rtol=1e-4, atol=1e-6)
    # Unclipped bins are |S| cos(angle X - angle S).
    expected = np.abs(source_specs[0]) * np.cos(np.angle(spec[0])[None] - np.angle(source_specs[0]))
    inside = (expected > 0) & (expected < magnitude[0][None])
    np.testing.assert_allclose(np.moveaxis(targets[0, ..., :2], -1, 0)[inside], expected[inside], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="max_speakers=1"):
        features.mask_targets(source_specs, spec, max_speakers=1)
