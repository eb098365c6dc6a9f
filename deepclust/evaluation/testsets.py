"""Test sets: where the mixtures of an evaluation come from, and loading one for scoring.

A test set is a wsj0-2mix-style folder (``mix/``, ``s1/``, ``s2/`` ... with
files of the same names: wsj0-2mix, WHAM!, LibriMix) or a mixture list in the
wsj0-2mix format (``path1 gain_dB path2 gain_dB [...]``, parsed by
:mod:`deepclust.corpus.lists`), mixed here by :func:`deepclust.dsp.mixing.mix_wsj0` as
the wsj0-2mix scripts do (with RMS in place of the P.56 active level).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..corpus import lists
from ..dsp import audio, mixing

# Mixture and reference lengths may differ by this fraction of the longer
# one, or by this many seconds, whichever is more; they are then cut to the
# shortest with a warning. Larger differences mean the files do not belong
# together, and the mixture is skipped.
LENGTH_TOLERANCE_FRACTION = 0.01
LENGTH_TOLERANCE_SECONDS = 0.05
MIXTURE_FOLDERS = ("mix", "mix_clean")  # preferred mixture folders, in order
SOURCE_FOLDER = re.compile(r"^s(\d+)$")
FOLDER_LAYOUT = ("a folder holding mix/ (or mix_clean/), s1/, s2/ [, s3/ ...] with audio files of the same "
                 "names in each (wsj0-2mix, WHAM!, LibriMix), or a mixture list file with lines "
                 "'path1 gain_dB path2 gain_dB [path3 gain_dB]'")


class EvaluationError(ValueError):
    """The test set or the arguments cannot be evaluated; the message says why and how to fix it.

    Defined here, where test sets are found, and exported by :mod:`deepclust.evaluation.evaluate`.
    """


class SkipMixture(Exception):
    """One mixture cannot be scored; the reason goes into the report and the others go on."""


@dataclass(frozen=True)
class MixtureSpec:
    """Where one mixture comes from. ``mixture`` is None for a list line (mixed here)."""

    id: str
    sources: tuple[Path, ...]
    mixture: Path | None = None
    gains_db: tuple[float, ...] = ()
    where: str = ""  # file:line for list entries
    missing: str = ""  # set when the mixture cannot be complete: it is skipped with this reason

    @property
    def num_speakers(self) -> int:
        return len(self.sources)


def _audio_suffixes() -> set[str]:
    return {"." + ext.lower() for ext in sf.available_formats()} | {".wav", ".flac", ".ogg"}


def source_folders(folder: Path) -> list[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := SOURCE_FOLDER.match(p.name))]
    return [p for _, p in sorted(found)]


def _mixture_folder(folder: Path) -> tuple[Path, Path] | None:
    """(the mixture folder, the folder holding s1/ ...) for ``folder``, or None if not that layout."""
    if source_folders(folder):
        for name in MIXTURE_FOLDERS:
            if (folder / name).is_dir():
                return folder / name, folder
        others = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("mix"))
        if len(others) == 1:
            return others[0], folder
        if others:
            raise EvaluationError(
                f"{folder}: several mixture folders ({', '.join(p.name for p in others)}) and no mix/; "
                f"pass the one to evaluate, e.g. test={others[0]}. Received: test={folder}"
            )
        return None
    if folder.name.startswith("mix") and source_folders(folder.parent):
        return folder, folder.parent  # the mixture folder itself, e.g. wham/tt/mix_both
    return None


def _folder_spec(name: str, mix_dir: Path, source_dirs: list[Path], required: int) -> MixtureSpec:
    """The mixture ``mix_dir/name``: its sources counted from s1/ without gaps, ``missing`` if incomplete."""
    present = [d for d in source_dirs if (d / name).is_file()]
    k = 0
    while k < len(source_dirs) and (source_dirs[k] / name).is_file():
        k += 1
    missing = ""
    if k < required or len(present) > k:
        missing = f"missing {source_dirs[k].name}/{name} (found {', '.join(d.name for d in present) or 'no source'})"
    sources = tuple(source_dirs[i] / name for i in range(k))
    return MixtureSpec(id=Path(name).stem, sources=sources, mixture=mix_dir / name, missing=missing)


def find_folder_mixtures(folder: str | Path) -> list[MixtureSpec]:
    """The mixtures of a wsj0-2mix-style folder, sorted by name.

    A mixture has as many speakers as there are s1/, s2/ ... folders holding
    its file name, counted from s1/ without gaps. One that lacks a source every
    mixture of the set must have (s1/ and s2/ when both exist), or that has a
    gap (s1/ and s3/ but no s2/), is returned with ``missing`` set, so it is
    skipped and reported rather than scored as a smaller mixture.
    ``folder`` may also be the mixture folder itself (``wham/tt/mix_both``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder}: not a folder; expected {FOLDER_LAYOUT}. Received: test={folder}")
    found = _mixture_folder(folder)
    if found is None:
        raise EvaluationError(
            f"{folder}: no mixture folder and s1/, s2/ ... source folders found; expected {FOLDER_LAYOUT}. "
            f"Received: subfolders {sorted(p.name for p in folder.iterdir() if p.is_dir())}"
        )
    mix_dir, root = found
    source_dirs = source_folders(root)
    required = min(2, len(source_dirs))
    suffixes = _audio_suffixes()
    names = sorted(p.name for p in mix_dir.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)
    if not names:
        raise EvaluationError(
            f"{mix_dir}: no audio files; expected {FOLDER_LAYOUT}. Received: an empty mixture folder"
        )
    return [_folder_spec(name, mix_dir, source_dirs, required) for name in names]


def find_mixtures(test: str | Path) -> list[MixtureSpec]:
    """A folder or a mixture list (read by :func:`deepclust.corpus.lists.read_mixture_list`: a malformed
    line or an empty list is a :class:`~deepclust.corpus.lists.ListFormatError` naming file and line) ->
    mixture specs; a path that is neither is an EvaluationError."""
    test = Path(test)
    if test.is_dir():
        return find_folder_mixtures(test)
    if test.is_file():
        return [MixtureSpec(id=line.id, sources=line.sources, gains_db=line.gains_db, where=line.where)
                for line in lists.read_mixture_list(test)]
    raise EvaluationError(f"{test}: not found; expected {FOLDER_LAYOUT}. Received: test={test}")


def _match_lengths(mixture: np.ndarray, sources: list[np.ndarray], rate: int, warnings_: list[str]):
    """(mixture, stacked sources) cut to the shortest, with a warning, if within the length tolerance;
    SkipMixture if not."""
    lengths = [len(mixture)] + [len(s) for s in sources]
    shortest, longest = min(lengths), max(lengths)
    if shortest == longest:
        return mixture, np.stack(sources)
    tolerance = max(LENGTH_TOLERANCE_FRACTION * longest, LENGTH_TOLERANCE_SECONDS * rate)
    if longest - shortest > tolerance:
        raise SkipMixture(
            f"lengths differ by {longest - shortest} samples at {rate} Hz (mixture {len(mixture)}, sources "
            f"{[len(s) for s in sources]}), more than the {int(tolerance)} tolerated"
        )
    warnings_.append(f"lengths differ by {longest - shortest} samples (mixture {len(mixture)}, sources "
                     f"{[len(s) for s in sources]}); cut to the shortest, {shortest}")
    return mixture[:shortest], np.stack([s[:shortest] for s in sources])


def load_mixture(spec: MixtureSpec, rate: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mixture (n,), references (k, n), warnings) at ``rate``; SkipMixture if it cannot be scored."""
    if spec.missing:
        raise SkipMixture(spec.missing)
    notes: list[str] = []
    try:
        sources = [audio.read(p, rate)[0] for p in spec.sources]
        if spec.mixture is None:
            mixture, references = mixing.mix_wsj0(sources, spec.gains_db)
        else:
            mixture, references = _match_lengths(audio.read(spec.mixture, rate)[0], sources, rate, notes)
    except audio.AudioError as exc:
        raise SkipMixture(str(exc)) from None
    if mixture.size == 0:
        raise SkipMixture("empty audio")
    rms = np.sqrt(np.mean(np.square(references, dtype=np.float64), axis=1))
    silent = [i + 1 for i in range(len(rms)) if rms[i] <= audio.SILENT_RMS]
    if silent:
        raise SkipMixture(f"reference source(s) {silent} are silent; BSS-eval is undefined for a silent reference")
    return mixture, references, notes
