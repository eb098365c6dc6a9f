"""The progress display: a line per tenth of the work in a log, one line updated in place on a terminal."""

from __future__ import annotations

import io

from deepclust import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_line_per_tenth_and_the_skipped_count():
    log = io.StringIO()
    bar = progress.Progress(20, "reading", unit="file", stream=log)
    for i in range(20):
        bar.step(skipped=i == 3)
    lines = log.getvalue().splitlines()
    assert len(lines) == 11 and all(line.startswith("reading: ") for line in lines)  # the first item, each tenth
    assert lines[-1].startswith("reading: 20/20 files, 1 skipped, ") and "left" not in lines[-1]
    assert "about" in lines[0] and "s left" in lines[0]


def test_a_terminal_line_is_rewritten_in_place_and_ended_once():
    tty = Terminal()
    bar = progress.Progress(3, "drawing", stream=tty, interval=3600)
    for _ in range(3):
        bar.step()
    text = tty.getvalue()
    assert text.count("\r") == 2 and text.endswith("drawing: 3/3 items, 0 s\n")  # the first step and the last


def test_nothing_when_disabled_or_empty(monkeypatch):
    out = io.StringIO()
    progress.Progress(5, "x", stream=out, enabled=False).step(5)
    progress.Progress(0, "x", stream=out).step()
    monkeypatch.setattr(progress, "ENABLED", False)  # the command line's --quiet
    progress.Progress(5, "x", stream=out).step(5)
    assert out.getvalue() == ""
