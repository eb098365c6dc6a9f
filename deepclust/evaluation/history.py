"""The training-history figure: loss, validation loss and learning rate per epoch of a run folder.

Reads the ``history.csv`` that ``deepclust train`` writes
(:mod:`deepclust.training.history_csv`: complete rows, the last row of an epoch
winning) and draws it on a bare matplotlib figure,
as :mod:`deepclust.evaluation.visualize` does (:mod:`deepclust.evaluation.figure`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import paths
from ..training import history_csv
from .figure import VisualizeError, finish, new_figure


def read_history(path: Path) -> dict[str, np.ndarray]:
    """Each column of ``path`` by epoch (:func:`deepclust.training.history_csv.read`: complete rows, the last
    row of an epoch winning); a :class:`VisualizeError` saying what to do when there is nothing to draw."""
    if not path.is_file():
        raise VisualizeError(f"{path}: no training history found; train first (deepclust train) "
                             "or point --history at a training folder.")
    header, by_epoch = history_csv.read(path)
    if header and not {history_csv.EPOCH, "loss"} <= set(header):
        raise VisualizeError(f"{path}: no 'epoch' or 'loss' column; expected the history.csv written by "
                             f"deepclust train. Train first. Received: columns {header}")
    if not by_epoch:
        raise VisualizeError(f"{path}: the training history is empty (no epoch finished yet); "
                             "train first, at least one epoch.")
    return {"epoch": np.array(list(by_epoch), float),
            **{name: np.array([values[name] for values in by_epoch.values()], float)
               for name in header if name != history_csv.EPOCH}}


def plot_history(directory, *, out=None, show: bool = False) -> Path:
    """Training and validation loss per epoch from ``directory/history.csv``; returns the figure path.

    The y axis is logarithmic when the losses span more than a decade. The
    learning rate, if logged (``learning_rate`` or ``lr``) and not constant,
    is drawn on a second axis; the epoch with the lowest validation loss (the
    one ``model.keras`` holds) is marked. ``out`` defaults to
    ``directory/history.png``.
    """
    from matplotlib.ticker import MaxNLocator

    directory = Path(directory)
    path = directory / paths.HISTORY_FILENAME if directory.is_dir() or directory.suffix != ".csv" else directory
    history = read_history(path)
    out = Path(out) if out is not None else path.parent / "history.png"
    epoch = history["epoch"] + 1  # Keras counts epochs from 1 in its logs
    loss = history["loss"]
    val = history.get("val_loss")

    fig = new_figure(show, (9, 5))
    ax = fig.add_subplot()
    marker = "o" if len(epoch) <= 50 else None
    ax.plot(epoch, loss, marker=marker, markersize=3, color="tab:blue", label="training loss")
    if val is not None and np.isfinite(val).any():
        ax.plot(epoch, val, marker=marker, markersize=3, color="tab:orange", label="validation loss")
        best = int(np.nanargmin(val))
        ax.axvline(epoch[best], color="tab:green", linestyle=":", linewidth=1)
        ax.plot([epoch[best]], [val[best]], marker="*", markersize=14, color="tab:green", linestyle="none",
                label=f"best: epoch {int(epoch[best])}, val_loss {val[best]:.4g}")
    values = np.concatenate([loss, val if val is not None else []])
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > 10:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)

    handles, labels = ax.get_legend_handles_labels()
    lr_note = _draw_learning_rate(ax, history, handles, labels)
    ax.legend(handles, labels, loc="upper right", fontsize="small", framealpha=0.9)

    title = f"{path.parent.name or path.parent}: {len(epoch)} epoch{'s' if len(epoch) != 1 else ''}{lr_note}"
    ax.set_title(title, loc="left", fontsize="medium")
    return finish(fig, out, show)


def _draw_learning_rate(ax, history: dict[str, np.ndarray], handles: list, labels: list) -> str:
    """The learning rate on a second axis when it changed (its handle added to the legend's);
    returns a note for the title when it stayed constant."""
    lr_name = next((n for n in ("learning_rate", "lr") if n in history), None)
    lr_note = ""
    if lr_name is not None:
        lr = history[lr_name]
        finite = lr[np.isfinite(lr)]
        if finite.size and not np.allclose(finite, finite[0], rtol=1e-6, atol=0):
            ax_lr = ax.twinx()
            ax.set_zorder(ax_lr.get_zorder() + 1)  # losses and legend above the learning rate
            ax.patch.set_visible(False)
            ax_lr.step(history["epoch"] + 1, lr, where="mid", color="tab:gray", linestyle="--", linewidth=1.2)
            if finite.min() > 0 and finite.max() / finite.min() > 10:
                ax_lr.set_yscale("log")
            ax_lr.set_ylabel("learning rate", color="tab:gray")
            ax_lr.tick_params(axis="y", colors="tab:gray")
            h, = ax_lr.plot([], [], color="tab:gray", linestyle="--", label="learning rate (right axis)")
            handles.append(h)
            labels.append(h.get_label())
        elif finite.size:
            lr_note = f", learning rate {finite[0]:.3g} throughout"
    return lr_note
