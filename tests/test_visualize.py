"""Figures: cluster matching, the separation figure and the training-history plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import RATE, synth_voice
from deepclust import visualize
from deepclust.visualize import VisualizeError, match_clusters


def _png_size(path: Path) -> tuple[int, int]:
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    return image.shape[1], image.shape[0]  # width, height


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
    from deepclust.model import build_model
    from deepclust.separate import Separator

    return Separator(build_model(load_config("tiny")))


@pytest.fixture
def mixture_files(tmp_path):
    low, high = synth_voice(120.0, 0.6, 1), synth_voice(240.0, 0.6, 2)
    paths = [tmp_path / "s1.wav", tmp_path / "s2.wav", tmp_path / "mixed.wav"]
    for path, signal in zip(paths, (low, high, low + high)):
        sf.write(path, signal, RATE)
    return paths[2], paths[:2]


def test_plot_separation_with_sources(separator, mixture_files, tmp_path):
    mixed, sources = mixture_files
    out = visualize.plot_separation(mixed, sources=sources, separator=separator,
                                    out=tmp_path / "figs" / "sep.png")
    assert out == tmp_path / "figs" / "sep.png" and out.is_file()
    # 16 x (3 panels * 3.0 + 0.8) inches at 100 dpi
    assert _png_size(out) == (1600, 980)


def test_plot_separation_default_out_and_overwrite(separator, mixture_files):
    mixed, _ = mixture_files
    out = visualize.plot_separation(mixed, separator=separator, num_speakers=2)
    assert out == mixed.with_name("mixed_separation.png")
    assert _png_size(out) == (1600, 680)  # two image panels, one scatter
    mtime = out.stat().st_mtime_ns
    out.write_bytes(b"stale")
    visualize.plot_separation(mixed, separator=separator, num_speakers=3)  # a derived file: replaced
    assert out.stat().st_mtime_ns >= mtime and _png_size(out) == (1600, 680)


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
    assert _png_size(out) == (1600, 680)


# -- training history ----------------------------------------------------------------
def _write_history(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "history.csv").write_text(text)
    return directory


def test_plot_history_with_learning_rate(tmp_path):
    rows = ["epoch,frames_per_second,learning_rate,loss,train_seconds,val_loss"]
    for e in range(12):
        lr = 1e-3 if e < 6 else 1e-4
        rows.append(f"{e},1000.0,{lr},{2.0 * 0.6 ** e + 0.01},{e + 1.0},{2.0 * 0.65 ** e + 0.05}")
    directory = _write_history(tmp_path / "run", "\n".join(rows) + "\n")
    out = visualize.plot_history(directory)
    assert out == directory / "history.png"
    assert _png_size(out) == (900, 500)


def test_plot_history_without_learning_rate_and_resumed_rows(tmp_path):
    # A resumed run: epoch 1 appears twice (the last row wins), lr column named "lr" and constant.
    text = ("epoch,loss,lr,val_loss\n0,0.9,0.001,0.8\n1,0.7,0.001,0.75\n"
            "1,0.69,0.001,0.74\n2,0.6,0.001,0.7\n")
    directory = _write_history(tmp_path / "run", text)
    out = visualize.plot_history(directory, out=tmp_path / "plots" / "h.svg")
    assert out.is_file() and b"<svg" in out.read_bytes()[:2000]

    plain = _write_history(tmp_path / "plain", "epoch,loss,val_loss\n0,0.9,0.8\n")
    assert _png_size(visualize.plot_history(plain)) == (900, 500)


def test_plot_history_missing_or_empty(tmp_path):
    with pytest.raises(VisualizeError, match=r"history\.csv.*train first"):
        visualize.plot_history(tmp_path)
    _write_history(tmp_path, "")
    with pytest.raises(VisualizeError, match=r"history\.csv.*train first"):
        visualize.plot_history(tmp_path)
    _write_history(tmp_path, "epoch,loss,val_loss\n")
    with pytest.raises(VisualizeError, match="train first"):
        visualize.plot_history(tmp_path)
