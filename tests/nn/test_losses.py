
import numpy as np
import pytest

from deepclust.nn.losses import DeepClusteringLoss, deep_clustering_loss


def naive(y, v):
    """||VV^T - YY^T||_F^2 over active bins / N_active^2, one sample (explicit N x N)."""
    y = y.reshape(-1, y.shape[-1])
    v = v.reshape(-1, v.shape[-1])
    w = (y**2).sum(-1)
    a = v @ v.T - (y / np.sqrt(np.maximum(w, 1e-12))[:, None]) @ (y / np.sqrt(np.maximum(w, 1e-12))[:, None]).T
    return float((np.outer(w, w) * a**2).sum() / w.sum() ** 2)


def random_case(rng, batch=2, t=5, f=6, c=3, d=4, speakers=2, weights=None):
    winner = rng.integers(0, speakers, size=(batch, t, f))
    y = np.eye(c, dtype=np.float32)[winner]
    silent = rng.random((batch, t, f)) < 0.3
    y[silent] = 0
    if weights is not None:
        y *= np.sqrt(weights)[..., None]
    v = rng.standard_normal((batch, t, f, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    return y, v


def loss(y, v):
    from keras import ops
    return ops.convert_to_numpy(deep_clustering_loss(y, v))


def assert_each_sample_is_naive(got, naive_loss, y, v, **tolerance):
    """Each sample's loss in ``got`` equals ``naive_loss`` of that sample's labels and embeddings."""
    for b in range(len(got)):
        assert got[b] == pytest.approx(naive_loss(y[b], v[b]), **tolerance)


@pytest.mark.parametrize("weighted", [False, True])
def test_equals_naive_frobenius_norm(weighted):
    rng = np.random.default_rng(int(weighted))
    w = rng.uniform(0.1, 3.0, size=(2, 5, 6)).astype(np.float32) if weighted else None
    y, v = random_case(rng, weights=w)
    assert_each_sample_is_naive(loss(y, v), naive, y, v, rel=1e-4)


def test_zero_when_embeddings_equal_labels():
    rng = np.random.default_rng(2)
    y, _ = random_case(rng, c=3, d=3)
    assert np.allclose(loss(y, y), 0.0, atol=1e-6)
    assert np.all(loss(y, np.roll(y, 1, axis=-1)) < 1e-6)  # any permutation of speakers is as good


def test_invariant_to_permuting_speakers():
    rng = np.random.default_rng(3)
    y, v = random_case(rng)
    np.testing.assert_allclose(loss(y, v), loss(y[..., [2, 0, 1]], v), rtol=1e-5)


def silent_bins_redrawn(rng, y, v):
    """``v`` with the embeddings of the bins silent in ``y`` (all-zero labels) drawn again."""
    silent = y.sum(-1) == 0
    v2 = v.copy()
    v2[silent] = rng.standard_normal((silent.sum(), v.shape[-1]))
    return v2


def test_silent_bins_have_no_effect():
    rng = np.random.default_rng(4)
    y, v = random_case(rng)
    np.testing.assert_allclose(loss(y, v), loss(y, silent_bins_redrawn(rng, y, v)), rtol=1e-5)
    assert not np.allclose(loss(y, v), loss(y, np.roll(v, 1, axis=2)))  # active bins do matter


def test_two_and_three_speakers_in_one_batch_and_independent_of_chunk_length():
    rng = np.random.default_rng(5)
    y2, v2 = random_case(rng, batch=1, speakers=2)
    y3, v3 = random_case(rng, batch=1, speakers=3)
    both = loss(np.concatenate([y2, y3]), np.concatenate([v2, v3]))
    np.testing.assert_allclose(both, np.concatenate([loss(y2, v2), loss(y3, v3)]), rtol=1e-5)
    # the same content repeated along time: same normalised value
    np.testing.assert_allclose(loss(np.concatenate([y2, y2], 1), np.concatenate([v2, v2], 1)), loss(y2, v2), rtol=1e-4)


def test_all_silent_chunk_gives_zero_not_nan():
    y = np.zeros((1, 3, 4, 2), np.float32)
    v = np.ones((1, 3, 4, 5), np.float32) / np.sqrt(5)
    assert loss(y, v)[0] == 0.0


def test_float16_inputs_computed_in_float32():
    rng = np.random.default_rng(6)
    y, v = random_case(rng)
    np.testing.assert_allclose(loss(y.astype(np.float16), v.astype(np.float16)), loss(y, v), rtol=1e-2)
    assert loss(y.astype(np.float16), v.astype(np.float16)).dtype == np.float32


def test_wrapper_reduces_and_serialises():
    import keras
    rng = np.random.default_rng(7)
    y, v = random_case(rng)
    obj = DeepClusteringLoss()
    assert float(obj(y, v)) == pytest.approx(float(loss(y, v).mean()), rel=1e-5)
    again = keras.losses.deserialize(keras.losses.serialize(obj))
    assert isinstance(again, DeepClusteringLoss) and again.name == obj.name


def test_a_loss_saved_with_the_removed_objective_key_still_loads():
    """Models compiled while train.objective existed carry objective="affinity" in their loss's config;
    any other objective was removed and is refused by name."""
    import keras
    saved = keras.losses.serialize(DeepClusteringLoss())
    saved["config"]["objective"] = "affinity"
    again = keras.losses.deserialize(saved)
    assert isinstance(again, DeepClusteringLoss) and again.name == "deep_clustering"
    saved["config"]["objective"] = "whitened"
    with pytest.raises(ValueError, match="'whitened' deep clustering objective was removed"):
        keras.losses.deserialize(saved)


# -- mask inference (Chimera++ head) -------------------------------------------------------

from deepclust.nn.losses import MaskInferenceLoss, mask_inference_loss  # noqa: E402


def mask_case(rng, batch=3, t=5, f=6, slots=3, voices=2):
    """Random targets of ``voices`` sources (zero slots beyond), |X| >= each target."""
    magnitude = rng.random((batch, t, f)).astype(np.float32) + 0.1
    share = rng.dirichlet(np.ones(voices), size=(batch, t, f)).astype(np.float32)
    targets = np.zeros((batch, t, f, slots + 1), np.float32)
    targets[..., :voices] = share * magnitude[..., None]
    targets[..., -1] = magnitude
    masks = rng.dirichlet(np.ones(slots), size=(batch, t, f)).astype(np.float32)
    return targets, masks


def naive_mask_loss(targets, masks):
    import itertools

    slots = masks.shape[-1]
    out = []
    for y, m in zip(targets, masks):
        mag = y[..., -1]
        costs = [sum(np.abs(m[..., p[c]] * mag - y[..., c]).sum() for c in range(slots))
                 for p in itertools.permutations(range(slots))]
        out.append(min(costs) / mag.sum())
    return np.array(out)


def mask_loss(targets, masks):
    import keras

    return keras.ops.convert_to_numpy(mask_inference_loss(targets, masks))


@pytest.mark.parametrize("slots,voices", [(2, 2), (3, 2), (3, 3)])
def test_mask_loss_matches_brute_force_over_permutations(slots, voices):
    targets, masks = mask_case(np.random.default_rng(slots * 10 + voices), slots=slots, voices=voices)
    got = mask_loss(targets, masks)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, naive_mask_loss(targets, masks), rtol=1e-5)


def test_mask_loss_zero_for_ideal_masks_in_any_order_and_positive_otherwise():
    targets, masks = mask_case(np.random.default_rng(0), slots=3, voices=2)
    ideal = targets[..., :3] / targets[..., -1:]
    np.testing.assert_allclose(mask_loss(targets, ideal), 0.0, atol=1e-6)
    np.testing.assert_allclose(mask_loss(targets, ideal[..., [2, 0, 1]]), 0.0, atol=1e-6)  # slots permuted
    assert np.all(mask_loss(targets, masks) > 0.05)
    # Level-free: scaling the mixture and its sources scales nothing in the loss.
    scaled = targets * 7.0
    np.testing.assert_allclose(mask_loss(scaled, masks), mask_loss(targets, masks), rtol=1e-5)


def test_mask_loss_wrapper_reduces_and_serialises():
    import keras

    targets, masks = mask_case(np.random.default_rng(1))
    obj = MaskInferenceLoss()
    assert float(keras.ops.convert_to_numpy(obj(targets, masks))) == pytest.approx(mask_loss(targets, masks).mean(),
                                                                                  rel=1e-5)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert isinstance(again, MaskInferenceLoss) and again.name == "mask_inference"
