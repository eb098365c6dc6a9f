"""Figures: what the network does with one mixture, and how training went.

:func:`plot_separation` draws, for one mixture, the log-spectrogram, the
k-means assignment of every active time-frequency bin, the ideal binary mask
when the sources are known (clusters permuted to match the speakers), and a
PCA projection of the embeddings coloured by cluster and by true speaker.
:func:`plot_history` draws the training and validation loss per epoch from a
training folder's ``history.csv``.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (rendered by the
non-interactive Agg, PDF or SVG canvas chosen from the file extension), so no
window opens and the global matplotlib backend is left alone; ``show=True``
draws through pyplot instead and shows the figure after saving it.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np

from . import audio, features

log = logging.getLogger(__name__)

# Embeddings of at most this many active bins go into the PCA scatter.
MAX_SCATTER_POINTS = 5000
SCATTER_SEED = 0
# Colour of silent bins in the assignment and ideal-mask panels.
SILENT_COLOUR = "#1a1a1a"
# The spectrogram shows this many dB below its loudest bin.
SPECTROGRAM_RANGE_DB = 80.0
DPI = 100
HISTORY_FILENAME = "history.csv"


class VisualizeError(ValueError):
    """A figure cannot be drawn as asked; the message says why and how to fix it."""


# -- cluster matching --------------------------------------------------------------
def match_clusters(estimate: np.ndarray, ideal: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The permutation of estimated clusters that best agrees with the ideal masks.

    ``estimate`` and ``ideal`` are (k, T, F) masks (one-hot assignments or soft
    masks); ``weights`` (T, F) says how much each bin counts (e.g. 1 at active
    bins, 0 at silent ones; all bins count equally if ``None``). Returns an
    integer array ``perm`` of length k with ``perm[j]`` the estimated cluster
    that matches speaker ``j``, so ``estimate[perm]`` is aligned with ``ideal``.
    The permutation maximises the total weighted agreement
    ``sum_j sum_tf w * estimate[perm[j]] * ideal[j]`` (Hungarian algorithm).
    """
    from scipy.optimize import linear_sum_assignment

    estimate = np.asarray(estimate, np.float64)
    ideal = np.asarray(ideal, np.float64)
    if estimate.shape != ideal.shape or estimate.ndim < 2:
        raise ValueError(f"estimate {estimate.shape} and ideal {ideal.shape} must both be (k, ...) of the same shape")
    k = estimate.shape[0]
    est = estimate.reshape(k, -1)
    ref = ideal.reshape(k, -1)
    if weights is not None:
        w = np.broadcast_to(np.asarray(weights, np.float64), estimate.shape[1:]).reshape(-1)
        est = est * w[None]
    agreement = est @ ref.T  # (cluster, speaker)
    clusters, speakers = linear_sum_assignment(agreement, maximize=True)
    perm = np.empty(k, dtype=int)
    perm[speakers] = clusters
    return perm


# -- helpers -----------------------------------------------------------------------
def _new_figure(show: bool, figsize: tuple[float, float]):
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, dpi=DPI, layout="constrained")
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def _finish(fig, out: Path, show: bool) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    if show:
        import matplotlib.pyplot as plt

        plt.show()
        plt.close(fig)
    log.info("figure written to %s", out)
    return out


def _speaker_colours(k: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if k <= 10 else colormaps["tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def _pad_to_length(signal: np.ndarray, length: int) -> np.ndarray:
    if len(signal) >= length:
        return signal[:length]
    return np.pad(signal, (0, length - len(signal)))


def _sdr_improvement(separated: np.ndarray, references: np.ndarray, mixture: np.ndarray):
    """Per-source SDR of ``separated`` and of the mixture as estimate (bss_eval), in dB."""
    import warnings

    from mir_eval.separation import bss_eval_sources

    with warnings.catch_warnings():  # mir_eval 0.8 deprecates bss_eval_sources (removed in 0.9)
        warnings.simplefilter("ignore", FutureWarning)
        sdr, _, _, _ = bss_eval_sources(references, separated)
        # Every estimate is the mixture, so no permutation needs searching.
        base, _, _, _ = bss_eval_sources(references, np.repeat(mixture[None], len(references), axis=0),
                                         compute_permutation=False)
    return sdr, base


def _label_image(labels: np.ndarray, active: np.ndarray) -> np.ndarray:
    """(T, F) integer labels -> (F, T) image values: 0 silent, n+1 for speaker n."""
    return np.where(active, labels + 1, 0).T


def _draw_labels(fig, ax, image, k, extent, title, names):
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap([SILENT_COLOUR] + _speaker_colours(k))
    norm = BoundaryNorm(np.arange(-0.5, k + 1.5), cmap.N)
    im = ax.imshow(image, origin="lower", aspect="auto", extent=extent, cmap=cmap, norm=norm,
                   interpolation="nearest")
    bar = fig.colorbar(im, ax=ax, ticks=np.arange(k + 1), pad=0.01)
    bar.ax.set_yticklabels(["silent"] + names)
    bar.ax.tick_params(length=0)
    ax.set_title(title, loc="left", fontsize="medium")
    ax.set_ylabel("frequency (Hz)")


def _project(samples: np.ndarray, dims: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n, d = samples.shape
    comps = min(dims, n, d)
    points = np.zeros((n, dims), np.float32)
    if comps > 0 and n > 1:
        points[:, :comps] = PCA(n_components=comps, random_state=SCATTER_SEED).fit_transform(samples)
    return points


def _scatter(fig, spec, points, labels, colours, names, title, dims):
    if dims == 3:
        ax = fig.add_subplot(spec, projection="3d")
    else:
        ax = fig.add_subplot(spec)
    for n, (colour, name) in enumerate(zip(colours, names)):
        sel = labels == n
        coords = [points[sel, i] for i in range(dims)]
        ax.scatter(*coords, s=4, color=colour, alpha=0.5, linewidths=0, label=f"{name} ({int(sel.sum())})",
                   rasterized=True)  # thousands of points: a bitmap inside PDF/SVG, not vectors
    if not len(points):
        ax.text(0.5, 0.5, "no active bins", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, loc="left", fontsize="medium")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    if dims == 3:
        ax.set_zlabel("PC 3")
        ax.set_box_aspect(None, zoom=0.85)  # room for the axis labels inside the panel
        from matplotlib.ticker import MaxNLocator

        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize="small")
    else:
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(True, alpha=0.3)
    legend = ax.legend(loc="best", fontsize="small", markerscale=3, framealpha=0.8)
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    return ax


# -- separation figure ---------------------------------------------------------------
def plot_separation(mixture, *, base=None, model=None, sources=None, num_speakers=None, out=None,
                    dims: int = 2, show: bool = False, separator=None) -> Path:
    """One figure of how a model separates ``mixture`` (an audio file); returns the figure path.

    Panels: the mixture log-spectrogram (dB); the estimated assignment of each
    active bin to a speaker (k-means on the embeddings, as ``separate`` does);
    with ``sources`` (the reference signals, files) the ideal binary mask (the
    loudest source per bin), the clusters permuted to match the speakers; and
    the embeddings of active bins projected by PCA to ``dims`` (2 or 3)
    dimensions, coloured by cluster and, with sources, by true speaker. With
    sources the title gives the SDR improvement of the separated signals over
    the mixture (bss_eval). The model is ``separator``, or loaded from
    ``model`` / ``base`` as ``separate`` does. ``out`` defaults to
    ``<mixture stem>_separation.png`` beside the mixture; its extension
    (.png, .pdf, .svg ...) picks the format.
    """
    from . import separate as separate_lib

    if dims not in (2, 3):
        raise VisualizeError(f"dims must be 2 or 3, got {dims!r}")
    mixture = Path(mixture)
    sources = [Path(s) for s in sources] if sources else []
    if sources and num_speakers is not None and int(num_speakers) != len(sources):
        raise VisualizeError(
            f"--num-speakers {num_speakers} contradicts the {len(sources)} sources given; "
            "give one or the other (with sources, k is their number)."
        )
    out = Path(out) if out is not None else mixture.with_name(f"{mixture.stem}_separation.png")
    if separator is None:
        separator = separate_lib.Separator.from_path(separate_lib.find_model(base, model))
    k = len(sources) or int(num_speakers or separator.config.num_speakers)
    cfg = separator.features
    rate = separator.sample_rate

    signal, _ = audio.read(mixture, rate)
    if signal.size == 0:
        raise VisualizeError(f"{mixture}: the file has no samples; nothing to draw.")
    log_mag, spec, gain = features.mixture_features(signal, cfg)
    active = features.active_bins(spec, cfg)
    emb = separator.embed(log_mag)  # (T, F, D)
    flat = emb.reshape(-1, emb.shape[-1])
    active_idx = np.flatnonzero(active.ravel())

    # Cluster as Separator.separate does: k-means on a sample of active bins.
    rng = np.random.default_rng(0)
    fit_idx = active_idx
    if fit_idx.size > separator.config.kmeans_max_bins:
        fit_idx = rng.choice(fit_idx, separator.config.kmeans_max_bins, replace=False)
    clustering = separate_lib.fit_clusters(flat[fit_idx], k, separator.config)
    estimate = clustering.masks(emb)  # (k, T, F)
    assignment = np.argmax(estimate, axis=0)  # (T, F)

    ideal_labels = None
    sdr_text = ""
    agreement = None
    if sources:
        refs = np.stack([_pad_to_length(audio.read(s, rate)[0], len(signal)) for s in sources])
        source_specs = features.stft(refs * gain, cfg)  # (k, T, F), as they sit in the mixture
        ideal_labels = np.argmax(np.abs(source_specs), axis=0)
        ideal = np.zeros((k,) + ideal_labels.shape, np.float32)
        np.put_along_axis(ideal, ideal_labels[None], 1.0, axis=0)
        onehot = np.zeros_like(ideal)
        np.put_along_axis(onehot, assignment[None], 1.0, axis=0)
        perm = match_clusters(onehot, ideal, active)
        # Relabel clusters so that cluster perm[j] becomes speaker j.
        relabel = np.empty(k, dtype=int)
        relabel[perm] = np.arange(k)
        assignment = relabel[assignment]
        agreement = float(np.mean(assignment[active] == ideal_labels[active])) if active.any() else float("nan")
        try:
            separated = separator.separate(signal, k).sources
            sdr, base_sdr = _sdr_improvement(separated, refs, signal)
            sdri = sdr - base_sdr
            per = ", ".join(f"{v:+.1f}" for v in sdri)
            sdr_text = f"SDR improvement {np.mean(sdri):+.1f} dB (per source {per}; SDR {np.mean(sdr):.1f} dB)"
        except ValueError as exc:  # bss_eval refuses silent references or estimates
            log.warning("%s: SDR not computed: %s", mixture, exc)
            sdr_text = "SDR not computed (a reference or estimate is silent)"

    # -- layout: image panels on the left, scatters on the right ----------------
    frames, bins = spec.shape
    hop_s = cfg.hop_length / rate
    # Frame t is centred at t * hop (scipy's ShortTimeFFT starts at p_min < 0).
    from .features import _transform

    t0 = _transform(cfg.window_length, cfg.hop_length).p_min * hop_s
    df = rate / cfg.window_length
    extent = (t0 - hop_s / 2, t0 + (frames - 0.5) * hop_s, -df / 2, (bins - 0.5) * df)

    panels = 3 if sources else 2
    scatters = 2 if sources else 1
    fig = _new_figure(show, (16, 3.0 * panels + 0.8))
    grid = fig.add_gridspec(panels * scatters, 2, width_ratios=(1.7, 1))
    rows_per_panel = scatters
    rows_per_scatter = panels

    def image_ax(i, share=None):
        return fig.add_subplot(grid[i * rows_per_panel:(i + 1) * rows_per_panel, 0], sharex=share, sharey=share)

    ax_spec = image_ax(0)
    db = 20 * np.log10(np.maximum(np.abs(spec), features.LOG_FLOOR))
    # dB re the loudest bin; a silent mixture (every bin at the floor) stays dark.
    db -= max(float(db.max()), 20 * np.log10(features.LOG_FLOOR) + SPECTROGRAM_RANGE_DB)
    im = ax_spec.imshow(db.T, origin="lower", aspect="auto", extent=extent, cmap="magma",
                        vmin=-SPECTROGRAM_RANGE_DB, vmax=0.0, interpolation="nearest")
    bar = fig.colorbar(im, ax=ax_spec, pad=0.01)
    bar.set_label("dB re loudest bin")
    ax_spec.set_title(f"mixture log-spectrogram ({int(active.sum())} of {active.size} bins active, "
                      f"within {cfg.silence_db:g} dB of the loudest)", loc="left", fontsize="medium")
    ax_spec.set_ylabel("frequency (Hz)")

    colours = _speaker_colours(k)
    names = [f"speaker {n + 1}" for n in range(k)]
    cluster_names = names if sources else [f"cluster {n + 1}" for n in range(k)]
    ax_est = image_ax(1, ax_spec)
    title = f"estimated assignment (k-means, k={k}"
    if agreement is not None:
        title += f"; clusters matched to speakers, {100 * agreement:.0f}% of active bins agree with the ideal mask"
    _draw_labels(fig, ax_est, _label_image(assignment, active), k, extent, title + ")", cluster_names)
    last = ax_est
    if ideal_labels is not None:
        ax_ideal = image_ax(2, ax_spec)
        _draw_labels(fig, ax_ideal, _label_image(ideal_labels, active), k, extent,
                     "ideal binary mask (loudest source per bin)", names)
        last = ax_ideal
    for ax in (ax_spec, ax_est):
        if ax is not last:
            ax.tick_params(labelbottom=False)
    last.set_xlabel("time (s)")

    scatter_idx = active_idx
    if scatter_idx.size > MAX_SCATTER_POINTS:
        scatter_idx = np.sort(np.random.default_rng(SCATTER_SEED).choice(scatter_idx, MAX_SCATTER_POINTS, replace=False))
    points = _project(flat[scatter_idx], dims)
    shown = f"{scatter_idx.size} of {active_idx.size} active bins" if scatter_idx.size < active_idx.size \
        else f"all {active_idx.size} active bins"
    _scatter(fig, grid[0:rows_per_scatter, 1], points, assignment.ravel()[scatter_idx], colours, cluster_names,
             f"embeddings, PCA to {dims}-D, by cluster\n({shown})", dims)
    if ideal_labels is not None:
        _scatter(fig, grid[rows_per_scatter:2 * rows_per_scatter, 1], points, ideal_labels.ravel()[scatter_idx],
                 colours, names, f"embeddings, PCA to {dims}-D, by true speaker\n(dominant source per bin)", dims)

    heading = f"{mixture.name}: {len(signal) / rate:.2f} s at {rate} Hz, {k} speakers"
    if sdr_text:
        heading += f"\n{sdr_text}"
    fig.suptitle(heading, fontsize="large")
    return _finish(fig, out, show)


# -- training history --------------------------------------------------------------
def _read_history(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise VisualizeError(f"{path}: no training history found; train first (deepclust train) "
                             "or point --history at a training folder.")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise VisualizeError(f"{path}: the training history is empty (no epoch finished yet); "
                             "train first, at least one epoch.")
    header = [c.strip() for c in rows[0]]
    by_epoch: dict[int, dict[str, float]] = {}
    for row in rows[1:]:
        if row[0].strip() == header[0]:  # a repeated header (a resumed run)
            continue
        values = {}
        for name, cell in zip(header, row):
            try:
                values[name] = float(cell)
            except ValueError:
                values[name] = math.nan
        if "epoch" in values and math.isfinite(values["epoch"]):
            # A resumed run may repeat epochs after the last saved state: the last row wins.
            by_epoch[int(values["epoch"])] = values
        else:
            by_epoch[len(by_epoch)] = values
    if not by_epoch or "loss" not in header:
        raise VisualizeError(f"{path}: no 'loss' column or no epochs; expected the history.csv written by "
                             "deepclust train. Train first.")
    epochs = sorted(by_epoch)
    return {"epoch": np.array(epochs, float),
            **{name: np.array([by_epoch[e].get(name, math.nan) for e in epochs], float)
               for name in header if name != "epoch"}}


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
    path = directory / HISTORY_FILENAME if directory.is_dir() or directory.suffix != ".csv" else directory
    history = _read_history(path)
    out = Path(out) if out is not None else path.parent / "history.png"
    epoch = history["epoch"] + 1  # Keras counts epochs from 1 in its logs
    loss = history["loss"]
    val = history.get("val_loss")

    fig = _new_figure(show, (9, 5))
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

    lr_name = next((n for n in ("learning_rate", "lr") if n in history), None)
    lr_note = ""
    handles, labels = ax.get_legend_handles_labels()
    if lr_name is not None:
        lr = history[lr_name]
        finite = lr[np.isfinite(lr)]
        if finite.size and not np.allclose(finite, finite[0], rtol=1e-6, atol=0):
            ax_lr = ax.twinx()
            ax.set_zorder(ax_lr.get_zorder() + 1)  # losses and legend above the learning rate
            ax.patch.set_visible(False)
            ax_lr.step(epoch, lr, where="mid", color="tab:gray", linestyle="--", linewidth=1.2)
            if finite.min() > 0 and finite.max() / finite.min() > 10:
                ax_lr.set_yscale("log")
            ax_lr.set_ylabel("learning rate", color="tab:gray")
            ax_lr.tick_params(axis="y", colors="tab:gray")
            h, = ax_lr.plot([], [], color="tab:gray", linestyle="--", label="learning rate (right axis)")
            handles.append(h)
            labels.append(h.get_label())
        elif finite.size:
            lr_note = f", learning rate {finite[0]:.3g} throughout"
    ax.legend(handles, labels, loc="upper right", fontsize="small", framealpha=0.9)

    title = f"{path.parent.name or path.parent}: {len(epoch)} epoch{'s' if len(epoch) != 1 else ''}{lr_note}"
    ax.set_title(title, loc="left", fontsize="medium")
    return _finish(fig, out, show)
