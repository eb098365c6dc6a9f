"""The one progress display: a counter on stderr with the time spent and an estimate of the rest.

On a terminal it updates one line in place (at most every ``interval``
seconds); in a log (not a terminal) it writes a line at every tenth of the
work, so a batch job's log stays short. Cheap to import: corpus tools use it
without loading Keras.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

INTERVAL_SECONDS = 0.5  # shortest time between two in-place updates
ENABLED = True  # False: no progress anywhere (the command line's --quiet)


class Progress:
    """``Progress(total, "reading", unit="file")``, then ``step()`` once per item."""

    def __init__(self, total: int, what: str, *, unit: str = "item", enabled: bool = True,
                 stream: TextIO | None = None, interval: float = INTERVAL_SECONDS):
        self.total, self.what, self.unit, self.enabled = int(total), what, unit, enabled and ENABLED and total > 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.enabled and getattr(self.stream, "isatty", lambda: False)()
        self.interval = interval
        self.done = self.skipped = 0
        self.start = time.monotonic()
        self._shown = -float("inf")
        self._decile = -1

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        text = f"{self.what}: {self.done}/{self.total} {self.unit}s"
        if self.skipped:
            text += f", {self.skipped} skipped"
        text += f", {elapsed:.0f} s"
        if 0 < self.done < self.total:
            text += f", about {elapsed * (self.total - self.done) / self.done:.0f} s left"
        return text

    def step(self, count: int = 1, *, skipped: bool = False) -> None:
        self.done += count
        self.skipped += int(skipped)
        if not self.enabled:
            return
        finished = self.done >= self.total
        now = time.monotonic()
        if self.tty:
            if finished or now - self._shown >= self.interval:
                self._shown = now
                self.stream.write("\r" + self.line() + ("\n" if finished else ""))
        elif (decile := self.done * 10 // self.total) != self._decile or finished:
            self._decile = decile
            self.stream.write(self.line() + "\n")
        self.stream.flush()
