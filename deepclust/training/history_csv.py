"""A run's ``history.csv``: its rows read with one repair rule, and trimmed to the epochs a resumed run keeps.

``deepclust train`` appends one row per epoch (Keras's ``CSVLogger``). A row
counts when it has a cell for every column of the header and a whole-number
``epoch``; anything else (the half-written last line of a killed run, a
repeated header, a blank line) is passed over, and a cell that is not a number
reads as NaN. A resumed run that wrote an epoch twice: the last row wins. The
history figure (:mod:`deepclust.evaluation.history`), the resume
(:func:`trim`) and the benchmark script read the file here. No Keras.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from .. import atomic

log = logging.getLogger(__name__)

EPOCH = "epoch"


@dataclass(frozen=True)
class Row:
    """One complete row: its epoch (from 0, as Keras writes it), its values by column, its line as written."""

    epoch: int
    values: dict[str, float]
    line: str


def _number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return math.nan


def rows(text: str) -> tuple[list[str], list[Row]]:
    """The header of a history's ``text`` and its complete rows, in file order (repeats included)."""
    lines = text.splitlines()
    header = [cell.strip() for cell in next(csv.reader(lines[:1]), [])]
    if EPOCH not in header:
        return header, []
    column = header.index(EPOCH)
    found = []
    for line in lines[1:]:
        cells = next(csv.reader([line]), [])
        if len(cells) != len(header):
            continue
        try:
            epoch = int(cells[column])
        except ValueError:
            continue  # a repeated header, or no epoch
        found.append(Row(epoch, {name: _number(cell) for name, cell in zip(header, cells)}, line))
    return header, found


def read(path: str | Path) -> tuple[list[str], dict[int, dict[str, float]]]:
    """The header of ``path`` and each epoch's values, epochs in order, the last row of an epoch winning.
    Missing file: FileNotFoundError."""
    header, found = rows(Path(path).read_text(encoding="utf-8", errors="replace"))
    by_epoch = {row.epoch: row.values for row in found}
    return header, dict(sorted(by_epoch.items()))


def trim(path: Path, start_epoch: int) -> None:
    """Keep only the rows of epochs before ``start_epoch``, where training resumes.

    Rows of epochs the run will redo (written by a run killed before its state
    was saved, or stopped at a NaN loss) and lines that are no complete row go,
    so every epoch appears once and matches the weights the run continues from.
    A file with no ``epoch`` column is left alone; one with no row left is removed.
    """
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    header, found = rows(text)
    if EPOCH not in header:
        return
    keep = [row.line for row in found if row.epoch < start_epoch]
    if not keep:
        path.unlink()
    elif len(keep) != len(lines) - 1 or not text.endswith("\n"):
        log.info("%s: dropped %d row(s) of epochs from %d on, which this run redoes", path,
                 len(lines) - 1 - len(keep), start_epoch + 1)
        atomic.write_text(path, "\n".join([lines[0], *keep]) + "\n")
