"""Figures: cluster matching, the separation figure and the training-history plot."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import soundfile as sf

from conftest import RATE, synth_voice
from deepclust.evaluation import visualize
from deepclust.evaluation.visualize import VisualizeError, match_clusters


# -- match_clusters ----------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 4])
def test_match_clusters_recovers_a_known_permutation(k):
    rng = np.random.default_rng(k)
    labels = rng.integers(0, k, size=(30, 20))
    ideal = np.stack([(labels == n).astype(np.float32) for n in range(k)])
    for perm in [np.roll(np.arange(k), 1), rng.permutation(k), np.arange(k)]:
        estimate = np.empty_like(ideal)
        estimate[perm] = ideal  # cluster perm[j] holds speaker j
        found = match_clusters(estimate, ideal)
        np.testing.assert_array_equal(found, perm)
        np.testing.assert_array_equal(estimate[found], ideal)


def test_match_clusters_with_errors_and_weights():
    # Three speakers; the estimate is a permutation with 20% of bins wrong.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(40, 30))
    noisy = np.where(rng.random(labels.shape) < 0.2, rng.integers(0, 3, size=labels.shape), labels)
    perm = np.array([2, 0, 1])
    ideal = np.stack([(labels == n) for n in range(3)]).astype(np.float32)
    estimate = np.empty_like(ideal)
    estimate[perm] = np.stack([(noisy == n) for n in range(3)])
    np.testing.assert_array_equal(match_clusters(estimate, ideal), perm)

    # Only weighted bins count: errors confined to zero-weight bins change nothing.
    weights = (rng.random(labels.shape) < 0.5).astype(np.float32)
    garbage = np.where(weights > 0, labels, (labels + 1) % 3)
    estimate = np.empty_like(ideal)
    estimate[perm] = np.stack([(garbage == n) for n in range(3)])
    np.testing.assert_array_equal(match_clusters(estimate, ideal, weights), perm)


def test_match_clusters_soft_masks_and_shape_check():
    ideal = np.zeros((2, 4, 5), np.float32)
    ideal[0, :2] = 1
    ideal[1, 2:] = 1
    soft = 0.3 + 0.4 * ideal[::-1]  # 0.7 where the swapped speaker dominates
    np.testing.assert_array_equal(match_clusters(soft, ideal), [1, 0])
    with pytest.raises(ValueError):
        match_clusters(np.zeros((2, 4, 5)), np.zeros((3, 4, 5)))


# -- separation figure ---------------------------------------------------------------
@pytest.fixture(scope="module")
def separator():
    from deepclust.config import load_config
    from deepclust.nn.model import build_model
    from deepclust.separation.separator import Separator

    return Separator(build_model(load_config("tiny")))


@pytest.fixture
def mixture_files(tmp_path):
    low, high = synth_voice(120.0, 0.6, 1), synth_voice(240.0, 0.6, 2)
    paths = [tmp_path / "s1.wav", tmp_path / "s2.wav", tmp_path / "mixed.wav"]
    for path, signal in zip(paths, (low, high, low + high)):
        sf.write(path, signal, RATE)
    return paths[2], paths[:2]


class OracleSeparator:
    """A Separator whose "network" embeds each bin as the one-hot of its loudest source: what a
    perfect deep clustering model does. Built around a real Separator so segmenting, sampling,
    clustering and the figure's stitching of segments are the code under test."""

    def __new__(cls, base, sources):
        from deepclust.dsp import features

        oracle = copy.copy(base)
        oracle.config = dataclasses.replace(base.config, segment_seconds=2.0, mask="binary")

        def embed_segments(segs, gain):
            for i, seg in enumerate(segs):
                spec, _, active = oracle.segment_features(seg, gain)
                parts = sources[:, seg.start:seg.start + len(seg.signal)] * gain
                winner = np.argmax(np.abs(features.stft(parts, oracle.features)), axis=0)
                emb = np.eye(oracle.embedding_dim, dtype=np.float32)[winner]
                yield i, spec, active, emb, None

        oracle.embed_segments = embed_segments
        return oracle


def test_separation_view_of_a_perfect_model_agrees_with_the_ideal_mask(separator, tmp_path):
    """On a well-separated pair, 5 s long so it is analysed in three 2-second segments, the assignment
    panel of a perfect model matches the ideal binary mask, and the clusters are matched to speakers."""
    low, high = synth_voice(120.0, 5.0, 1), synth_voice(310.0, 5.0, 2)
    sources = np.stack([low, high])
    oracle = OracleSeparator(separator, sources)
    view = visualize.separation_view(oracle, low + high, 2, sources)
    assert len(oracle.analyse(low + high, 2).segments) == 3
    assert view.assignment.shape == view.ideal.shape == view.active.shape
    assert view.agreement > 0.97
    assert np.mean(view.assignment[view.active] == view.ideal[view.active]) == pytest.approx(view.agreement)
    assert view.sdri.shape == (2,) and np.all(view.sdri > 10)  # ideal-mask quality, not a random split
    # The scatter shows the embeddings k-means saw, each labelled with its own bin's cluster.
    assert len(view.points) > 100 and view.bins.max(axis=0).tolist() < list(view.spec.shape)
    labels = view.assignment[view.bins[:, 0], view.bins[:, 1]]
    assert np.mean(np.argmax(view.points, axis=1) == view.ideal[view.bins[:, 0], view.bins[:, 1]]) > 0.97
    assert set(np.unique(labels)) == {0, 1}


def test_plot_separation_with_sources(separator, mixture_files, tmp_path):
    mixed, sources = mixture_files
    out = visualize.plot_separation(mixed, sources=sources, separator=separator,
                                    out=tmp_path / "figs" / "sep.png")
    assert out == tmp_path / "figs" / "sep.png" and out.read_bytes()[:4] == b"\x89PNG"


def test_plot_separation_default_out_and_replaces_a_stale_figure(separator, mixture_files):
    mixed, _ = mixture_files
    out = visualize.plot_separation(mixed, separator=separator, num_speakers=2)
    assert out == mixed.with_name("mixed_separation.png") and out.read_bytes()[:4] == b"\x89PNG"
    out.write_bytes(b"stale")
    visualize.plot_separation(mixed, separator=separator, num_speakers=3)  # a derived file: replaced
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plot_separation_3d_pdf_and_svg(separator, mixture_files, tmp_path):
    mixed, sources = mixture_files
    pdf = visualize.plot_separation(mixed, separator=separator, out=tmp_path / "sep.pdf", dims=3)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    svg = visualize.plot_separation(mixed, separator=separator, out=tmp_path / "sep.svg")
    assert b"<svg" in svg.read_bytes()[:2000]


def test_plot_separation_refuses_contradictions(separator, mixture_files, tmp_path):
    mixed, sources = mixture_files
    with pytest.raises(VisualizeError, match="num-speakers"):
        visualize.plot_separation(mixed, sources=sources, num_speakers=3, separator=separator)
    with pytest.raises(VisualizeError, match="dims"):
        visualize.plot_separation(mixed, separator=separator, dims=4)


def test_plot_separation_loads_a_saved_model(separator, mixture_files, tmp_path):
    mixed, _ = mixture_files
    separator.model.save(tmp_path / "model.keras")
    out = visualize.plot_separation(mixed, base=tmp_path, out=tmp_path / "from_base.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
