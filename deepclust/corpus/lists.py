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

from .. import atomic

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


def resolve(list_file: Path, path: str) -> Path:
    """A path as a list names it: relative paths start from the list's folder."""
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
        entries.append(Entry(resolve(list_file, parts[0]), parts[1], list_file, number))
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
        mixtures.append(MixtureLine(mixture_id, tuple(resolve(list_file, p) for p in paths), gains_db, where))
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


KALDI_RELATIVE_TO = ("the data folder", "its parent", "its parent's parent", "the working folder")


def read_kaldi_dir(data_dir: str | Path) -> tuple[list[Entry], list[tuple[str, str]]]:
    """The utterances of a Kaldi data directory (``wav.scp`` and ``utt2spk``, as Kaldi, ESPnet and k2
    recipes write them) as entries, and ``(where, why)`` for each line that cannot be used.

    A ``wav.scp`` entry is a file path; a piped command (``... |``) is reported, not run. Relative
    paths resolve against the first of KALDI_RELATIVE_TO under which the listed files exist.
    """
    data_dir = Path(data_dir)
    if (data_dir / "segments").is_file():
        raise ListFormatError(f"{data_dir / 'segments'}: utterances cut from longer recordings are not supported; "
                              f"expected one file per utterance in wav.scp. Cut the segments into files first "
                              f"(e.g. Kaldi's extract-segments). Received: data_dir={str(data_dir)!r}")
    speakers = {}
    for number, content, raw in lines(data_dir / "utt2spk", "'utterance-id speaker-id'"):
        parts = content.split()
        if len(parts) != 2:
            raise ListFormatError(f"{data_dir / 'utt2spk'}:{number}: expected 'utterance-id speaker-id'. "
                                  f"Received: {raw.strip()!r}")
        speakers[parts[0]] = parts[1]
    rows, bad = [], []
    for number, content, raw in lines(data_dir / "wav.scp", "'utterance-id path'"):
        where = f"{data_dir / 'wav.scp'}:{number}"
        parts = content.split(None, 1)
        if len(parts) != 2:
            raise ListFormatError(f"{where}: expected 'utterance-id path'. Received: {raw.strip()!r}")
        utterance, path = parts
        if path.rstrip().endswith("|"):
            bad.append((where, f"a piped command ({path.strip()!r}); deepclust reads audio files, not commands: run "
                               f"it once into a file (e.g. 'sph2pipe -f wav X.sph > X.wav') and list that file"))
        elif utterance not in speakers:
            bad.append((where, f"utterance {utterance!r} has no speaker in utt2spk"))
        else:
            rows.append((number, Path(path.strip()), speakers[utterance]))
    root = _kaldi_root(data_dir, [p for _, p, _ in rows if not p.is_absolute()])
    entries = [Entry(p if p.is_absolute() else root / p, spk, data_dir / "wav.scp", n) for n, p, spk in rows]
    return entries, bad


def _kaldi_root(data_dir: Path, relative: list[Path]) -> Path:
    """Where relative wav.scp paths start: the first candidate under which a sample of them exists."""
    candidates = [data_dir, data_dir.parent, data_dir.parent.parent, Path.cwd()]
    sample = relative[:: max(1, len(relative) // 20)][:20]
    for root in candidates:
        if all((root / p).exists() for p in sample):
            return root
    raise ListFormatError(
        f"{data_dir / 'wav.scp'}: relative paths such as {str(sample[0])!r} are found under none of "
        f"{', '.join(KALDI_RELATIVE_TO)} ({', '.join(str(c) for c in candidates)}); run from the recipe's folder "
        f"or make the paths absolute. Received: data_dir={str(data_dir)!r}")
