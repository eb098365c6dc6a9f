"""What every figure shares: a bare matplotlib figure, its saving, and the error a figure raises.

The separation figure (:mod:`deepclust.evaluation.visualize`) and the training-history
figure (:mod:`deepclust.evaluation.history`) are drawn on a bare
:class:`matplotlib.figure.Figure` (rendered by the canvas the file extension
chooses), so no window opens and the global matplotlib backend is left alone;
``show=True`` draws through pyplot instead and shows the figure after saving it.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

DPI = 100


class VisualizeError(ValueError):
    """A figure cannot be drawn as asked; the message says why and how to fix it."""


def new_figure(show: bool, figsize: tuple[float, float]):
    """A figure of ``figsize`` inches: a bare :class:`~matplotlib.figure.Figure`, or pyplot's with ``show``."""
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, dpi=DPI, layout="constrained")
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def finish(fig, out: Path, show: bool) -> Path:
    """Save ``fig`` to ``out`` (its folder made), show it with ``show``, and return ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    if show:
        import matplotlib.pyplot as plt

        plt.show()
        plt.close(fig)
    log.info("figure written to %s", out)
    return out
