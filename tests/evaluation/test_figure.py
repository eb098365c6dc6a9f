"""What both figures share: a bare matplotlib figure (no window, the global backend untouched), saved to a file."""

from __future__ import annotations

import matplotlib
import pytest

from deepclust.evaluation import figure


def test_a_bare_figure_is_saved_in_the_format_its_name_says(tmp_path):
    backend = matplotlib.get_backend()
    fig = figure.new_figure(False, (4, 3))
    fig.add_subplot().plot([0, 1], [1, 0])
    assert figure.finish(fig, tmp_path / "sub" / "f.png", show=False) == tmp_path / "sub" / "f.png"
    assert (tmp_path / "sub" / "f.png").read_bytes().startswith(b"\x89PNG")
    assert figure.finish(fig, tmp_path / "f.pdf", show=False).read_bytes().startswith(b"%PDF")
    assert matplotlib.get_backend() == backend
    assert tuple(fig.get_size_inches()) == (4, 3) and fig.dpi == figure.DPI


def test_visualize_error_is_a_value_error():
    with pytest.raises(ValueError):
        raise figure.VisualizeError("give a MIXTURE")
