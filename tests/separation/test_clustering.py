"""The clustering stage: k-means masks and the speaker count."""

import numpy as np
import pytest

from deepclust.separation import clustering


def test_soft_masks_sum_to_one():
    rng = np.random.default_rng(0)
    emb = clustering.normalize(rng.standard_normal((7, 5, 4)).astype(np.float32))
    centers = clustering.normalize(rng.standard_normal((3, 4)).astype(np.float32))
    for kind in ("soft", "binary"):
        masks = clustering.distance_masks(centers, emb, kind, 0.2)
        assert masks.shape == (3, 7, 5)
        np.testing.assert_allclose(masks.sum(0), 1.0, atol=1e-5)
    soft = clustering.distance_masks(centers, emb, "soft", 0.2)
    assert 0 < soft.min() and soft.max() < 1


@pytest.mark.parametrize("k", [1, 2, 3])
def test_speaker_count_from_synthetic_embeddings(k):
    rng = np.random.default_rng(k)
    directions = np.linalg.qr(rng.standard_normal((8, 8)))[0][:k]  # orthogonal speaker directions
    shares = rng.dirichlet(np.full(k, 5.0))
    who = rng.choice(k, size=4000, p=shares)
    emb = clustering.normalize(directions[who] + 0.25 * rng.standard_normal((4000, 8)) / np.sqrt(8))
    assert clustering.estimate_num_speakers(emb, max_speakers=4, max_cosine=0.75) == k


def test_speaker_count_one_voice_spread_over_two_directions():
    # A network that has not converged spreads one voice over nearby directions
    # (cosine 0.85 here): still one speaker. Two orthogonal voices: two.
    rng = np.random.default_rng(0)
    base = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    near = np.stack([base[0], 0.85 * base[0] + np.sqrt(1 - 0.85 ** 2) * base[1]])
    who = rng.integers(0, 2, size=3000)
    spread = clustering.normalize(near[who] + 0.1 * rng.standard_normal((3000, 8)))
    assert clustering.estimate_num_speakers(spread, max_speakers=3, max_cosine=0.75) == 1
    apart = clustering.normalize(base[:2][who] + 0.1 * rng.standard_normal((3000, 8)))
    assert clustering.estimate_num_speakers(apart, max_speakers=3, max_cosine=0.75) == 2
    assert clustering.estimate_num_speakers(apart[:5], max_speakers=3, max_cosine=0.75) == 1  # too few bins


def test_speaker_count_thresholds_apply_per_cluster_count():
    # Two clusters are judged by max_cosine, three or more by max_cosine_many; the most that pass win.
    cosines = {2: 0.7, 3: 0.78}
    assert clustering.count_from_cosines(cosines, 0.8, 0.75) == 2
    assert clustering.count_from_cosines(cosines, 0.8, 0.8) == 3
    assert clustering.count_from_cosines(cosines, 0.6, 0.75) == 1
    assert clustering.count_from_cosines(cosines, 0.8) == 3  # many defaults to max_cosine
    assert clustering.count_from_cosines({2: 0.9, 3: 0.7}, 0.8, 0.75) == 3
    assert clustering.count_from_cosines({}, 0.8, 0.75) == 1


def test_centre_cosines_of_orthogonal_voices_and_of_too_few_bins():
    rng = np.random.default_rng(3)
    directions = np.linalg.qr(rng.standard_normal((8, 8)))[0][:3]
    emb = clustering.normalize(directions[rng.integers(0, 3, size=3000)] + 0.05 * rng.standard_normal((3000, 8)))
    cosines = clustering.centre_cosines(emb, max_speakers=4)
    assert sorted(cosines) == [2, 3, 4]
    assert abs(cosines[3]) < 0.1  # three orthogonal voices: three orthogonal centres
    assert cosines[4] > 0.9  # a fourth cluster splits one of them
    assert clustering.centre_cosines(emb[:25], max_speakers=4) == {2: clustering.centre_cosines(emb[:25], 2)[2]}


@pytest.mark.parametrize("weighting", ["magnitude", "none"])
def test_kmeans_centres_follow_the_loud_bins_when_weighted(weighting):
    # Two voices' loud bins point two ways; many more quiet bins (a noise floor the network embeds
    # anyhow) point a third way. Weighted by magnitude, k-means finds the voices; unweighted, the
    # quiet bins take a centre of their own.
    from deepclust.config import SeparateConfig

    rng = np.random.default_rng(0)
    voice_a, voice_b, floor = np.linalg.qr(rng.standard_normal((8, 8)))[0][:3]
    loud = np.concatenate([np.repeat(voice_a[None], 200, 0), np.repeat(voice_b[None], 200, 0)])
    quiet = np.repeat(floor[None], 1500, 0)
    samples = clustering.normalize(np.concatenate([loud, quiet]) + 0.05 * rng.standard_normal((1900, 8)))
    magnitudes = np.concatenate([np.ones(400), np.full(1500, 0.01)])
    masker = clustering.KMeansMasker(SeparateConfig(kmeans_weighting=weighting))
    masker.fit(samples.astype(np.float32), 2, magnitudes)
    cosines = clustering.normalize(masker.centers) @ np.stack([voice_a, voice_b, floor]).T  # (centre, direction)
    found_voices = sorted(np.argmax(cosines, axis=1).tolist()) == [0, 1] and cosines.max(axis=1).min() > 0.9
    assert found_voices == (weighting == "magnitude")


def test_oracle_centres_are_each_speakers_weighted_mean_direction():
    rng = np.random.default_rng(1)
    samples = clustering.normalize(rng.standard_normal((60, 5))).astype(np.float32)
    labels = rng.integers(0, 2, 60)  # speaker 2 of 3 is loud nowhere
    weights = rng.uniform(0.1, 2.0, 60)
    centers = clustering.oracle_centers(samples, labels, 3, weights)
    for j in range(2):
        mean = (samples[labels == j] * weights[labels == j, None]).sum(0)
        np.testing.assert_allclose(centers[j], mean / np.linalg.norm(mean), atol=1e-5)
    np.testing.assert_array_equal(centers[2], 0.0)  # as far from every bin; its masks stay defined
    masks = clustering.distance_masks(centers, samples[:, None, :], "soft", 0.3)
    np.testing.assert_allclose(masks.sum(0), 1.0, atol=1e-5)
    # Unweighted, a bin's weight no longer pulls its speaker's centre.
    unweighted = clustering.oracle_centers(samples, labels, 3)
    mean = samples[labels == 0].sum(0)
    np.testing.assert_allclose(unweighted[0], mean / np.linalg.norm(mean), atol=1e-5)
    assert not np.allclose(unweighted[0], centers[0], atol=1e-3)


def test_masker_fits_the_oracle_centres_weighted_as_kmeans():
    from deepclust.config import SeparateConfig

    rng = np.random.default_rng(2)
    samples = clustering.normalize(rng.standard_normal((40, 4))).astype(np.float32)
    labels, magnitudes = np.arange(40) % 2, rng.uniform(0.1, 3.0, 40)
    for weighting, weights in (("magnitude", magnitudes), ("none", None)):
        masker = clustering.KMeansMasker(SeparateConfig(kmeans_weighting=weighting))
        masker.fit_oracle(samples, labels, 2, magnitudes)
        np.testing.assert_allclose(masker.centers, clustering.oracle_centers(samples, labels, 2, weights))
