"""The training-history figure: what it reads from history.csv, and that it draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepclust.evaluation.history import plot_history, read_history
from deepclust.evaluation.visualize import VisualizeError


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
    history = read_history(directory / "history.csv")
    np.testing.assert_array_equal(history["epoch"], np.arange(12))
    np.testing.assert_allclose(history["learning_rate"], [1e-3] * 6 + [1e-4] * 6)
    assert int(np.nanargmin(history["val_loss"])) == 11  # the epoch the figure marks as best
    out = plot_history(directory)
    assert out == directory / "history.png" and out.read_bytes()[:4] == b"\x89PNG"


def test_plot_history_without_learning_rate_and_resumed_rows(tmp_path):
    # A resumed run: epoch 1 appears twice (the last row wins), lr column named "lr" and constant.
    text = ("epoch,loss,lr,val_loss\n0,0.9,0.001,0.8\n1,0.7,0.001,0.75\n"
            "1,0.69,0.001,0.74\n2,0.6,0.001,0.7\n")
    directory = _write_history(tmp_path / "run", text)
    history = read_history(directory / "history.csv")
    np.testing.assert_array_equal(history["epoch"], [0, 1, 2])
    np.testing.assert_allclose(history["loss"], [0.9, 0.69, 0.6])  # the resumed run's row for epoch 1
    out = plot_history(directory, out=tmp_path / "plots" / "h.svg")
    assert out.is_file() and b"<svg" in out.read_bytes()[:2000]

    plain = _write_history(tmp_path / "plain", "epoch,loss,val_loss\n0,0.9,0.8\n")
    assert plot_history(plain).read_bytes()[:4] == b"\x89PNG"


def test_plot_history_missing_or_empty(tmp_path):
    with pytest.raises(VisualizeError, match=r"history\.csv.*train first"):
        plot_history(tmp_path)
    _write_history(tmp_path, "")
    with pytest.raises(VisualizeError, match=r"history\.csv.*train first"):
        plot_history(tmp_path)
    _write_history(tmp_path, "epoch,loss,val_loss\n")
    with pytest.raises(VisualizeError, match="train first"):
        plot_history(tmp_path)
    _write_history(tmp_path, "epoch,val_loss\n0,0.5\n")
    with pytest.raises(VisualizeError, match=r"no 'epoch' or 'loss' column.*Received: columns \['epoch', 'val_loss'\]"):
        plot_history(tmp_path)
