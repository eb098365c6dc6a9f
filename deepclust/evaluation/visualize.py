"""The separation figure: what the network does with one mixture.

:func:`separation_view` runs the analysis ``separate`` runs (segments,
embeddings, the sampled active bins, clustering, each segment's masks) and
keeps what the figure shows; :func:`draw_separation` draws it: the
log-spectrogram, the assignment of every active time-frequency bin, the ideal
binary mask when the sources are known (clusters permuted to match the
speakers), and a PCA projection of the embeddings k-means clustered, coloured
by cluster and by true speaker. :func:`plot_separation` does both for a file.
The training-history figure is :mod:`deepclust.evaluation.history`; what both share,
:mod:`deepclust.evaluation.figure`.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (rendered by the
non-interactive Agg, PDF or SVG canvas chosen from the file extension), so no
window opens and the global matplotlib backend is left alone; ``show=True``
draws through pyplot instead and shows the figure after saving it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths
from ..dsp import audio, features
from .figure import VisualizeError, finish, new_figure

log = logging.getLogger(__name__)

# Embeddings of at most this many active bins go into the PCA scatter.
MAX_SCATTER_POINTS = 5000
SCATTER_SEED = 0
# Colour of silent bins in the assignment and ideal-mask panels.
SILENT_COLOUR = "#1a1a1a"
# The spectrogram shows this many dB below its loudest bin.
SPECTROGRAM_RANGE_DB = 80.0


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
    from .metrics import best_permutation

    estimate = np.asarray(estimate, np.float64)
    ideal = np.asarray(ideal, np.float64)
    if estimate.shape != ideal.shape or estimate.ndim < 2:
        raise ValueError(f"estimate {estimate.shape} and ideal {ideal.shape} must both be (k, ...) of the same shape")
    k = estimate.shape[0]
    est = estimate.reshape(k, -1)
    if weights is not None:
        est = est * np.broadcast_to(np.asarray(weights, np.float64), estimate.shape[1:]).reshape(-1)[None]
    agreement = est @ ideal.reshape(k, -1).T  # (cluster, speaker)
    return np.array(best_permutation(agreement.T), dtype=int)  # pairwise[speaker, cluster]


# -- helpers -----------------------------------------------------------------------
def _speaker_colours(k: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if k <= 10 else colormaps["tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


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
    ``model`` / ``base`` / ``$DEEPC_BASE``, else the shipped model (said in the log), as ``separate``
    does (:func:`deepclust.paths.locate`). ``out`` defaults to
    ``<mixture stem>_separation.png`` beside the mixture; its extension
    (.png, .pdf, .svg ...) picks the format.
    """
    from ..separation import separator as separate_lib

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
        separator = separate_lib.Separator.load(paths.locate(model, base, fallback=log.info))
    k = len(sources) or int(num_speakers or separator.config.num_speakers)
    signal, _ = audio.read(mixture, separator.sample_rate)
    if signal.size == 0:
        raise VisualizeError(f"{mixture}: the file has no samples; nothing to draw.")
    references = None
    if sources:
        references = np.stack([audio.fit_length(audio.read(s, separator.sample_rate)[0], len(signal)) for s in sources])
    view = separation_view(separator, signal, k, references)
    return draw_separation(view, mixture.name, out, dims=dims, show=show)


@dataclass
class SeparationView:
    """What the separation figure shows, computed by the analysis ``separate`` runs.

    ``spec`` (T, F): the whole mixture's STFT; ``active`` (T, F) its active bins;
    ``assignment`` (T, F): the speaker (cluster) of each bin, from the masks
    ``separate`` applies to each segment, matched to the speakers when references are
    known; ``ideal`` (T, F) the loudest reference per bin (or None); ``agreement`` the
    share of active bins where the two agree; ``points`` (n, D) and ``bins`` (n, 2): the
    embeddings k-means clustered, with their (frame, bin); ``sdri`` per reference.
    """

    spec: np.ndarray
    active: np.ndarray
    assignment: np.ndarray
    k: int
    rate: int
    cfg: object
    points: np.ndarray
    bins: np.ndarray
    ideal: np.ndarray | None = None
    agreement: float | None = None
    sdr: np.ndarray | None = None
    sdri: np.ndarray | None = None
    duration: float = 0.0


def separation_view(separator, signal: np.ndarray, k: int, references: np.ndarray | None = None) -> SeparationView:
    """Separate ``signal`` as ``separate`` does, keeping what the figure shows (see SeparationView)."""
    cfg, rate = separator.features, separator.sample_rate
    _, spec, gain = features.mixture_features(signal, cfg)
    active = features.active_bins(spec, cfg)
    assignment = np.zeros(spec.shape, np.int16)
    hop = cfg.hop_length

    def collect(seg, _spec, masks):
        # Each segment owns the frames from the middle of its overlap with the one before to the
        # middle of its overlap with the one after (where the cross-fade hands over).
        offset = int(round(seg.start / hop))
        first = offset + int(round(seg.fade_in / 2 / hop)) if seg.fade_in else 0
        last = offset + masks.shape[1] - (int(round(seg.fade_out / 2 / hop)) if seg.fade_out else 0)
        last = min(last, spec.shape[0])
        assignment[first:last] = np.argmax(masks, axis=0)[first - offset:last - offset]

    analysis = separator.analyse(signal, k)
    separated = separator.render(analysis, observe=collect).sources
    seg_offsets = np.array([int(round(g.start / hop)) for g in analysis.segments], np.int64)
    bins = np.stack([seg_offsets[analysis.sample_bins[:, 0]] + analysis.sample_bins[:, 1],
                     analysis.sample_bins[:, 2]], axis=1) if len(analysis.sample_bins) else np.zeros((0, 2), int)
    bins[:, 0] = np.minimum(bins[:, 0], spec.shape[0] - 1)
    view = SeparationView(spec, active, assignment, k, rate, cfg, analysis.samples, bins, duration=len(signal) / rate)
    if references is not None:
        match_to_references(view, references * gain, separated, signal)
    return view


def match_to_references(view: SeparationView, scaled_references: np.ndarray, separated: np.ndarray,
                        signal: np.ndarray) -> None:
    """Relabel the clusters as the speakers they match, and score the agreement and the SDR improvement."""
    from .metrics import bss_eval, mixture_sdr

    k, active = view.k, view.active
    ideal = features.ideal_masks(features.stft(scaled_references, view.cfg), "ibm")  # (k, T, F)
    view.ideal = np.argmax(ideal, axis=0)
    onehot = np.zeros_like(ideal)
    np.put_along_axis(onehot, view.assignment[None].astype(np.int64), 1.0, axis=0)
    perm = match_clusters(onehot, ideal, active)
    relabel = np.empty(k, dtype=int)
    relabel[perm] = np.arange(k)  # cluster perm[j] becomes speaker j
    view.assignment = relabel[view.assignment]
    view.agreement = float(np.mean(view.assignment[active] == view.ideal[active])) if active.any() else float("nan")
    references = scaled_references / max(float(np.max(np.abs(scaled_references))), 1e-12)
    try:
        est = bss_eval(references, separated)["sdr"]
        base = mixture_sdr(references, signal)
        view.sdr, view.sdri = est, est - base
    except ValueError as exc:  # bss_eval refuses silent references
        log.warning("SDR not computed: %s", exc)


def draw_separation(view: SeparationView, name: str, out: Path, *, dims: int = 2, show: bool = False) -> Path:
    """Draw a :class:`SeparationView`: image panels (spectrogram, assignment, ideal mask) on the
    left, PCA scatters of the embeddings on the right."""
    known = view.ideal is not None
    panels, scatters = (3, 2) if known else (2, 1)
    fig = new_figure(show, (16, 3.0 * panels + 0.8))
    grid = fig.add_gridspec(panels * scatters, 2, width_ratios=(1.7, 1))
    names = [f"speaker {n + 1}" for n in range(view.k)]
    cluster_names = names if known else [f"cluster {n + 1}" for n in range(view.k)]
    _draw_images(fig, [grid[i * scatters:(i + 1) * scatters, 0] for i in range(panels)], view, names, cluster_names)
    _draw_scatters(fig, [grid[i * panels:(i + 1) * panels, 1] for i in range(scatters)], view, names,
                   cluster_names, dims)
    heading = f"{name}: {view.duration:.2f} s at {view.rate} Hz, {view.k} speakers"
    if view.sdri is not None:
        per = ", ".join(f"{v:+.1f}" for v in view.sdri)
        heading += (f"\nSDR improvement {np.mean(view.sdri):+.1f} dB (per source {per}; "
                    f"SDR {np.mean(view.sdr):.1f} dB)")
    elif known:
        heading += "\nSDR not computed (a reference or estimate is silent)"
    fig.suptitle(heading, fontsize="large")
    return finish(fig, out, show)


def _extent(view: SeparationView) -> tuple[float, float, float, float]:
    """imshow extent of a (T, F) image: frame t is centred at t * hop (scipy's ShortTimeFFT starts at p_min < 0)."""
    from ..dsp.features import stft_settings

    cfg, (frames, bins) = view.cfg, view.spec.shape
    hop_s = cfg.hop_length / view.rate
    t0 = stft_settings(cfg).transform.p_min * hop_s
    df = view.rate / cfg.window_length
    return (t0 - hop_s / 2, t0 + (frames - 0.5) * hop_s, -df / 2, (bins - 0.5) * df)


def _draw_images(fig, cells, view: SeparationView, names, cluster_names) -> None:
    extent, active, k = _extent(view), view.active, view.k
    ax_spec = fig.add_subplot(cells[0])
    db = 20 * np.log10(np.maximum(np.abs(view.spec), features.LOG_FLOOR))
    # dB re the loudest bin; a silent mixture (every bin at the floor) stays dark.
    db -= max(float(db.max()), 20 * np.log10(features.LOG_FLOOR) + SPECTROGRAM_RANGE_DB)
    im = ax_spec.imshow(db.T, origin="lower", aspect="auto", extent=extent, cmap="magma",
                        vmin=-SPECTROGRAM_RANGE_DB, vmax=0.0, interpolation="nearest")
    fig.colorbar(im, ax=ax_spec, pad=0.01).set_label("dB re loudest bin")
    ax_spec.set_title(f"mixture log-spectrogram ({int(active.sum())} of {active.size} bins active, "
                      f"within {view.cfg.silence_db:g} dB of the loudest)", loc="left", fontsize="medium")
    ax_spec.set_ylabel("frequency (Hz)")
    title = f"estimated assignment (k-means, k={k}"
    if view.agreement is not None:
        title += f"; clusters matched to speakers, {100 * view.agreement:.0f}% of active bins agree with the ideal mask"
    axes = [ax_spec, fig.add_subplot(cells[1], sharex=ax_spec, sharey=ax_spec)]
    _draw_labels(fig, axes[1], _label_image(view.assignment, active), k, extent, title + ")", cluster_names)
    if view.ideal is not None:
        axes.append(fig.add_subplot(cells[2], sharex=ax_spec, sharey=ax_spec))
        _draw_labels(fig, axes[2], _label_image(view.ideal, active), k, extent,
                     "ideal binary mask (loudest source per bin)", names)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (s)")


def _draw_scatters(fig, cells, view: SeparationView, names, cluster_names, dims: int) -> None:
    """The embeddings k-means clustered (a sample of every segment's active bins), at most MAX_SCATTER_POINTS,
    by cluster and, with references, by true speaker."""
    chosen = np.arange(len(view.points))
    if chosen.size > MAX_SCATTER_POINTS:
        chosen = np.sort(np.random.default_rng(SCATTER_SEED).choice(chosen, MAX_SCATTER_POINTS, replace=False))
    frame, freq = view.bins[chosen, 0], view.bins[chosen, 1]
    points = _project(view.points[chosen], dims)
    colours = _speaker_colours(view.k)
    shown = f"{chosen.size} of the {int(view.active.sum())} active bins"
    _scatter(fig, cells[0], points, view.assignment[frame, freq], colours, cluster_names,
             f"embeddings, PCA to {dims}-D, by cluster\n({shown})", dims)
    if view.ideal is not None:
        _scatter(fig, cells[1], points, view.ideal[frame, freq], colours, names,
                 f"embeddings, PCA to {dims}-D, by true speaker\n(dominant source per bin)", dims)


