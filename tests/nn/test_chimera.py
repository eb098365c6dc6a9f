"""The Chimera++ mask head plug-in: its network, its batches' targets, its weighted loss, its masker."""

import keras
import numpy as np
import pytest

from deepclust.config import load_config
from deepclust.data import mixer as mixer_lib
from deepclust.dsp import features
from deepclust.nn import chimera, model as model_lib
from deepclust.nn.losses import DeepClusteringLoss, MaskInferenceLoss
from deepclust.training.train import compile_model

MASK_HEAD = {"model.mask_head": True}


def test_mask_head_outputs_masks_that_sum_to_one_and_reloads(tiny_config, tmp_path):
    cfg = load_config("tiny", MASK_HEAD)
    objective = chimera.MaskHead(cfg)
    net = compile_model(objective.build(), cfg, objective)
    assert chimera.has_mask_head(net) and not chimera.has_mask_head(model_lib.build_model(tiny_config))
    assert chimera.mask_slots(net) == cfg.data.max_speakers and chimera.mask_slots(model_lib.build_model(cfg)) == 0
    x = np.random.default_rng(0).standard_normal((2, 11, cfg.num_bins)).astype(np.float32)
    emb, masks = (keras.ops.convert_to_numpy(o) for o in net(x))
    assert emb.shape == (2, 11, cfg.num_bins, cfg.model.embedding_dim)
    assert masks.shape == (2, 11, cfg.num_bins, cfg.data.max_speakers)
    np.testing.assert_allclose(masks.sum(-1), 1.0, atol=1e-5)
    net.save(tmp_path / "chimera.keras")
    again = model_lib.load(tmp_path / "chimera.keras", compile=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)[1]), masks, atol=1e-6)
    assert any(isinstance(loss, MaskInferenceLoss) for loss in keras.tree.flatten(again.loss))


def test_the_head_is_built_on_the_embedding_network(tiny_config):
    """The same layers, names and weight shapes as the plain network, and the head's after them: a model
    file of either kind is the network it always was."""
    cfg = load_config("tiny", MASK_HEAD)
    plain, head = model_lib.build_model(cfg), chimera.build_model(cfg)
    added = ["mask_dense", "to_masks", "mask"]
    assert [layer.name for layer in head.layers if layer.name not in added] == [layer.name for layer in plain.layers]
    assert [layer.name for layer in head.layers if layer.name in added] == added
    width = cfg.num_bins * cfg.data.max_speakers  # a mask per speaker slot at every bin
    assert [tuple(w.shape) for w in head.get_layer("mask_dense").weights] == [(2 * cfg.model.lstm_units, width),
                                                                              (width,)]
    assert head.name == "chimera" and plain.name == "deep_clustering"


def test_mask_head_targets_ride_beside_the_labels(list_folder, tiny_config):
    cfg = load_config("tiny", MASK_HEAD)
    corpus = mixer_lib.load_corpus(list_folder / "train", cfg.audio.sample_rate)
    mixer = mixer_lib.Mixer(corpus, cfg, chimera.MaskHead(cfg).form)
    x, (labels, targets) = mixer.batch(np.random.default_rng(0), 3)
    f, c = cfg.num_bins, cfg.data.max_speakers
    assert x.shape == (3, cfg.data.chunk_frames, f) and labels.shape == x.shape + (c,)
    assert targets.shape == x.shape + (c + 1,)
    # Same draws as without the head: the labels are those of the plain config.
    x0, labels0 = mixer_lib.Mixer(corpus, tiny_config).batch(np.random.default_rng(0), 3)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(labels, labels0)
    # The last channel is the mixture magnitude, the sources' targets never exceed it.
    np.testing.assert_allclose(np.log(np.maximum(targets[..., -1], features.LOG_FLOOR)), x, atol=1e-4)
    assert np.all(targets[..., :c] <= targets[..., -1:] * (1 + 1e-5))
    xv, (lv, tv) = chimera.MaskHead(cfg).validation(mixer)
    assert lv.shape == xv.shape + (c,) and tv.shape == xv.shape + (c + 1,)
    _, (_, again) = mixer_lib.draw_batch(mixer, mixer_lib.BatchSpec(0, (0, 1), 0, 0, 3))  # a worker's draw too
    assert again.shape == targets.shape


@pytest.mark.parametrize("alpha", [0.975, 0.5])
def test_the_loss_is_loss_alpha_deep_clustering_and_the_rest_mask_inference(list_folder, alpha):
    cfg = load_config("tiny", {**MASK_HEAD, "train.loss_alpha": alpha})
    objective = chimera.MaskHead(cfg)
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), cfg, objective.form)
    x, (labels, targets) = mixer.batch(np.random.default_rng(1), 4)
    net = compile_model(objective.build(), cfg, objective)
    emb, masks = net(x)
    expected = (alpha * float(keras.ops.convert_to_numpy(DeepClusteringLoss()(labels, emb)))
                + (1 - alpha) * float(keras.ops.convert_to_numpy(MaskInferenceLoss()(targets, masks))))
    scored = net.evaluate(x, (labels, targets), batch_size=4, verbose=0, return_dict=True)
    assert scored["loss"] == pytest.approx(expected, rel=1e-4)


def test_slot_alignment_follows_a_voice_across_segments():
    rng = np.random.default_rng(0)
    hop, frames, bins = 32, 40, 9
    # Voice A is loud in the first slot of segment 0 and lands in the second slot of segment 1.
    a = rng.random((frames, bins))
    m0 = np.stack([a, 1 - a], axis=-1)
    m1 = m0[..., ::-1]
    spec = np.ones((frames, bins))
    masker = chimera.HeadMasker(hop)
    masker.observe(0, 0, frames * hop, spec, m0)
    # Segment 1 starts half-way into segment 0: its first frames are segment 0's last, with slots swapped.
    m1[: frames // 2] = m0[frames // 2:, :, ::-1]
    masker.observe(1, frames * hop // 2, frames * hop // 2 + frames * hop, spec, m1)
    assert masker.orders == {0: (0, 1), 1: (1, 0)}
    masker.fit(None, 1)
    masks = masker.masks(1, None, m1)
    assert masks.shape == (1, frames, bins) and np.allclose(masks, 1.0)  # one voice kept: it takes every bin
    masker.fit(None, 2)
    # Aligned, segment 1's masks give voice A (slot 0 of segment 0) the same output as in segment 0.
    np.testing.assert_allclose(masker.masks(1, None, m1)[0, : frames // 2], m0[frames // 2:, :, 0], atol=1e-6)
