"""List files: the ``path speakerID`` training lists and the wsj0-2mix mixture lists.

One line splitter and one comment rule serve both formats: lines split at
newlines only (``\\n``, ``\\r\\n``, ``\\r``, as editors count them), a
byte-order mark is not part of the first field, blank lines are skipped, and
a comment is a ``#`` at the start of a line or after white space (so a ``#``
inside a file name is kept). Relative paths are relative to the list's folder.
Both formats are written here too, atomically.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from . import atomic

COMMENT = re.compile(r"(^|\s)#.*$")
SPEAKER_LINE = "'path speakerID' (two fields separated by white space)"
MIXTURE_LINE = "'path1 gain_dB path2 gain_dB [path3 gain_dB ...]' (two or more pairs of an audio path and a gain in dB)"


class ListFormatError(ValueError):
    """A list file is missing or a line is malformed; the message names file and line."""


@dataclass(frozen=True)
class Entry:
    """One utterance of a ``path speakerID`` list."""

    path: Path
    speaker: str
    list_file: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.list_file}:{self.line}"


@dataclass(frozen=True)
class MixtureLine:
    """One line of a wsj0-2mix mixture list: the sources and their gains in dB."""

    id: str
    sources: tuple[Path, ...]
    gains_db: tuple[float, ...]
    where: str


def lines(list_file: str | Path, what: str) -> Iterator[tuple[int, str, str]]:
    """``(line number, content without comment, raw line)`` of every non-blank line.

    ``what`` names the expected format in the error for a missing file.
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise ListFormatError(f"{list_file}: list file not found; expected a text file with one {what} per line. "
                              f"Received: list_file={str(list_file)!r}")
    text = list_file.read_text(encoding="utf-8-sig", errors="replace")
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.rstrip("\r")
        content = COMMENT.sub("", raw).strip()
        if content:
            yield number, content, raw


def _resolve(list_file: Path, path: str) -> Path:
    path = Path(path.strip())
    return path if path.is_absolute() else list_file.parent / path


def parse_list(list_file: str | Path) -> list[Entry]:
    """The entries of a ``path speakerID`` list (a path may hold spaces: the speaker is the last field)."""
    list_file = Path(list_file)
    entries = []
    for number, content, raw in lines(list_file, SPEAKER_LINE):
        parts = content.rsplit(None, 1)
        if len(parts) != 2:
            raise ListFormatError(
                f"{list_file}:{number}: expected {SPEAKER_LINE}. Received: {raw.strip()!r}. "
                f"Add the speaker ID after the path, or comment the line out with #."
            )
        entries.append(Entry(_resolve(list_file, parts[0]), parts[1], list_file, number))
    return entries


def read_mixture_list(list_file: str | Path) -> list[MixtureLine]:
    """The lines of a wsj0-2mix mixture list (``path1 gain_dB path2 gain_dB [...]``).

    Ids follow the wsj0-2mix file names (``<stem1>_<gain1>_<stem2>_<gain2>``),
    with ``@<line>`` added to repeats.
    """
    list_file = Path(list_file)
    mixtures, seen = [], set()
    for number, content, raw in lines(list_file, MIXTURE_LINE):
        tokens = content.split()
        where = f"{list_file}:{number}"
        if len(tokens) < 4 or len(tokens) % 2:
            raise ListFormatError(f"{where}: expected {MIXTURE_LINE}. Received: {len(tokens)} fields: {raw.strip()!r}")
        paths, gains = tokens[0::2], tokens[1::2]
        try:
            gains_db = tuple(float(g) for g in gains)
        except ValueError:
            raise ListFormatError(f"{where}: expected {MIXTURE_LINE}; every second field must be a gain in dB. "
                                  f"Received: gains {gains} in {raw.strip()!r}") from None
        if not all(math.isfinite(g) for g in gains_db):
            raise ListFormatError(f"{where}: expected finite gains in dB. Received: {gains}")
        mixture_id = "_".join(f"{Path(p).stem}_{g}" for p, g in zip(paths, gains))
        if mixture_id in seen:
            mixture_id = f"{mixture_id}@{number}"
        seen.add(mixture_id)
        mixtures.append(MixtureLine(mixture_id, tuple(_resolve(list_file, p) for p in paths), gains_db, where))
    if not mixtures:
        raise ListFormatError(f"{list_file}: no mixtures in the list; expected lines {MIXTURE_LINE}. "
                              f"Received: an empty list")
    return mixtures


def write_list(list_file: str | Path, entries: Iterable[tuple[str | Path, str]], header: str = "") -> Path:
    """Write a ``path speakerID`` list (a ``# header`` line first), atomically."""
    body = "".join(f"{Path(path).as_posix()} {speaker}\n" for path, speaker in entries)
    return atomic.write_text(list_file, (f"# {header}\n" if header else "") + body)


def write_mixture_list(list_file: str | Path, mixtures: Iterable[tuple[Iterable[str | Path], Iterable[float]]],
                       header: str = "") -> Path:
    """Write a wsj0-2mix mixture list, one ``(paths, gains_db)`` per line, atomically."""
    body = "".join(" ".join(f"{Path(p).as_posix()} {g}" for p, g in zip(paths, gains)) + "\n"
                   for paths, gains in mixtures)
    return atomic.write_text(list_file, (f"# {header}\n" if header else "") + body)
