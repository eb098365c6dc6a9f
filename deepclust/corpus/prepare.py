"""Lists for real corpora: a folder of recordings scanned into speaker-disjoint train, valid and test lists.

``prepare`` scans a folder of recordings (LibriSpeech, VCTK, WSJ0 or any
``speaker/.../file`` tree) and writes the ``train``/``valid``/``test`` lists
(``path speakerID``, absolute paths), split by speaker with the helpers of
:mod:`deepclust.corpus.split`, which the demo corpus (:mod:`deepclust.corpus.demo`) shares.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dsp import audio
from . import clipstrings, lists
from .split import SPLITS, CorpusError, deal, refuse_existing_lists, split_sizes

log = logging.getLogger(__name__)

# Layouts name the folder level holding the speaker (1 = parent of the file).
LAYOUT_LEVELS = {"librispeech": 2, "vctk": 1, "wsj0": 1}
AUTO_MAX_LEVEL = 3                 # auto layout looks this many folders up for the speaker
AUTO_MATCH_FRACTION = 0.9          # ... and takes a level whose name prefixes this share of file names
SECONDS_PER_HOUR = 3600.0
STRINGS_FOLDER = "strings"         # below the base folder: the clips strung by --string-clips


@dataclass
class PrepareSummary:
    """What ``prepare`` found and wrote. Lists hold absolute paths."""

    base: Path
    layout: str
    speaker_level: int
    speakers: dict[str, int]
    files: dict[str, int]
    hours: dict[str, float]
    lists: dict[str, Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def describe(self) -> str:
        rows = [f"{split:5s}: {self.speakers[split]:4d} speakers, {self.files[split]:6d} files, "
                f"{self.hours[split]:7.2f} h -> {self.lists[split]}" for split in SPLITS if split in self.lists]
        level = ("speakers from utt2spk" if self.layout == "kaldi"
                 else f"speaker = folder {self.speaker_level} level(s) above each file")
        return "\n".join([f"layout {self.layout} ({level})", *rows, f"skipped {len(self.skipped)} unreadable file(s)"])


def _scan(audio_dir: Path, extensions: tuple[str, ...] | None) -> list[Path]:
    """The files below ``audio_dir`` ending in ``extensions`` (default: every format libsndfile reads)."""
    extensions = audio.extensions() if extensions is None else extensions
    wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    return sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() in wanted and p.is_file())


def _folder_at(path: Path, audio_dir: Path, level: int) -> str | None:
    """The name of the ``level``-th folder above ``path``, if it is inside ``audio_dir``."""
    parts = path.relative_to(audio_dir).parts[:-1]
    return parts[-level] if 1 <= level <= len(parts) else None


def _detect_level(files: list[Path], audio_dir: Path) -> int:
    """Guess the speaker folder level from file names that start with the speaker ID.

    LibriSpeech (``19/198/19-198-0001.flac``), VCTK (``p225/p225_001.wav``)
    and WSJ0 (``01a/01aa0101.wav``) all prefix file names with the speaker;
    the lowest level whose folder name prefixes most file names wins, and
    the parent folder is the fallback.
    """
    for level in range(1, AUTO_MAX_LEVEL + 1):
        hits = 0
        for path in files:
            folder = _folder_at(path, audio_dir, level)
            hits += bool(folder) and path.name.lower().startswith(folder.lower())
        if hits >= AUTO_MATCH_FRACTION * len(files):
            return level
    return 1


def _resolve_level(layout: str, speaker_level: int | None, files: list[Path], audio_dir: Path) -> tuple[str, int]:
    if speaker_level is not None:
        if int(speaker_level) < 1:
            raise CorpusError(f"speaker_level counts folders up from each file (1 = parent) and must be >= 1. "
                              f"Received: speaker_level={speaker_level}")
        return "custom", int(speaker_level)
    if layout == "auto":
        level = _detect_level(files, audio_dir)
        log.info("%s: auto layout: speaker is the folder %d level(s) above each file", audio_dir, level)
        return "auto", level
    if layout not in LAYOUT_LEVELS:
        raise CorpusError(f"unknown layout; expected one of {['auto', *LAYOUT_LEVELS]} or speaker_level=N. "
                          f"Received: layout={layout!r}")
    return layout, LAYOUT_LEVELS[layout]


def _unlistable(path: Path) -> str:
    """Why ``path`` cannot stand in a list line, or ''."""
    if re.search(r"[\r\n]", str(path)):
        return "path contains a line break, which a list file cannot hold"
    if lists.COMMENT.search(str(path)):
        return "path contains a '#' after white space, which a list file reads as the start of a comment"
    return ""


def _group_by_speaker(files: list[Path], audio_dir: Path,
                      level: int) -> tuple[dict[str, list[tuple[Path, float]]], list[tuple[Path, str]]]:
    """(speaker -> [(absolute path, seconds)], [(path, why skipped)]) for the scanned files."""
    by_speaker: dict[str, list[tuple[Path, float]]] = {}
    skipped: list[tuple[Path, str]] = []
    for path in files:
        seconds, reason = audio.readable_seconds(path)
        speaker = _folder_at(path, audio_dir, level)
        if seconds is not None and speaker is None:
            reason = f"lies fewer than {level} folder(s) below {audio_dir}, so it has no speaker folder"
        elif seconds is not None:
            reason = _unlistable(path.absolute())
        if reason:
            log.warning("%s: skipped: %s", path, reason)
            skipped.append((path, reason))
            continue
        by_speaker.setdefault(re.sub(r"\s+", "_", speaker), []).append((path.absolute(), seconds))
    if skipped:
        log.warning("%s: skipped %d of %d files (see warnings above)", audio_dir, len(skipped), len(files))
    return by_speaker, skipped


def _kaldi_by_speaker(data_dir: Path) -> tuple[dict[str, list[tuple[Path, float]]], list[tuple[Path, str]]]:
    """As _group_by_speaker, for the utterances a Kaldi data directory lists (lists.read_kaldi_dir)."""
    entries, bad = lists.read_kaldi_dir(data_dir)
    by_speaker: dict[str, list[tuple[Path, float]]] = {}
    skipped = [(Path(where), why) for where, why in bad]
    for where, why in bad:
        log.warning("%s: skipped: %s", where, why)
    for entry in entries:
        seconds, reason = audio.readable_seconds(entry.path)
        reason = reason or _unlistable(entry.path.absolute())
        if reason:
            log.warning("%s: skipped: %s: %s", entry.where, entry.path, reason)
            skipped.append((entry.path, reason))
            continue
        by_speaker.setdefault(entry.speaker, []).append((entry.path.absolute(), seconds))
    if skipped:
        log.warning("%s: skipped %d utterance(s) (see warnings above)", data_dir, len(skipped))
    return by_speaker, skipped


def _strung(by_speaker: dict[str, list[tuple[Path, float]]], folder: Path, clips: clipstrings.ClipCount,
            seed: int) -> tuple[dict[str, list[tuple[Path, float]]], list[tuple[Path, str]]]:
    """``by_speaker`` with each speaker's clips replaced by strings of them written to ``folder``."""
    written, skipped = clipstrings.string_clips({s: [p for p, _ in files] for s, files in by_speaker.items()},
                                                folder, clips, np.random.default_rng(seed))
    for path, why in skipped:
        log.warning("%s: left out of the strings: %s", path, why)
    strung: dict[str, list[tuple[Path, float]]] = {}
    for path, speaker in written:
        strung.setdefault(speaker, []).append((path.absolute(), audio.readable_seconds(path)[0]))
    log.info("%s: %d clips strung into %d utterances of %s clips", folder, sum(len(f) for f in by_speaker.values())
             - len(skipped), len(written), f"{clips.low}-{clips.high}")
    return strung, skipped


def _scan_checked(audio_dir: Path, extensions: tuple[str, ...] | None) -> list[Path]:
    """The audio files below ``audio_dir``, refusing a tree without any."""
    files = _scan(audio_dir, extensions)
    if not files:
        endings = " ".join(audio.extensions() if extensions is None else extensions)
        raise CorpusError(f"{audio_dir}: no audio files found; expected files ending in one of {endings} "
                          f"somewhere below it. Received: extensions={extensions}")
    return files


def prepare(audio_dir: str | Path, base: str | Path, speaker_level: int | None = None, layout: str = "auto",
            valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
            extensions: tuple[str, ...] | None = None, overwrite: bool = False,
            string_clips: clipstrings.ClipCount | None = None) -> PrepareSummary:
    """Write ``base/train``, ``base/valid``, ``base/test`` for the audio under ``audio_dir``, split by speaker.

    The speaker is the name of a folder above each file: ``layout``
    ``librispeech`` (2 up: ``speaker/chapter/file``), ``vctk`` / ``wsj0``
    (the parent), ``auto`` (see ``_detect_level``), or ``speaker_level=N``
    (N up, 1 = parent; overrides ``layout``). Speakers are shuffled with
    ``seed`` and dealt to the splits by the fractions, each split getting at
    least one. Paths in the lists are absolute, so the lists can live away
    from the audio. Unreadable files are skipped with a warning and counted.

    ``string_clips`` (keyword and digit corpora of one-second clips): each
    speaker's clips are trimmed and strung into utterances of that many clips
    (``deepclust.corpus.clipstrings``), written under ``base/strings/``, and the lists
    name those instead of the clips.
    """
    audio_dir, base = Path(audio_dir), Path(base)
    if not audio_dir.is_dir():
        raise CorpusError(f"{audio_dir}: not a folder; expected the root of your audio files. "
                          f"Received: audio_dir={str(audio_dir)!r}")
    refuse_existing_lists(base, overwrite)
    if (audio_dir / "wav.scp").is_file():  # a Kaldi data directory: the speakers are utt2spk's
        layout, level = "kaldi", 0
        by_speaker, skipped = _kaldi_by_speaker(audio_dir)
    else:
        files = _scan_checked(audio_dir, None if extensions is None else tuple(extensions))
        layout, level = _resolve_level(layout, speaker_level, files, audio_dir)
        by_speaker, skipped = _group_by_speaker(files, audio_dir, level)
    splits = [s for s in SPLITS if s != "test" or test_fraction > 0]
    if len(by_speaker) < len(splits):
        raise CorpusError(f"{audio_dir}: found {len(by_speaker)} speaker(s), but at least {len(splits)} speakers are "
                          f"needed for a {len(splits)}-way split by speaker; check layout or speaker_level. "
                          f"Received: layout={layout!r}, speaker_level={level}, speakers={sorted(by_speaker)[:10]}")
    sizes = split_sizes(len(by_speaker), valid_fraction, test_fraction, min_test=1 if test_fraction > 0 else 0)
    names = sorted(by_speaker)
    dealt = deal([names[i] for i in np.random.default_rng(seed).permutation(len(names))], sizes)
    if string_clips is not None:
        by_speaker, unstrung = _strung(by_speaker, base / STRINGS_FOLDER, string_clips, seed)
        skipped += unstrung
    paths, files_per, hours = {}, {}, {}
    for split in splits:
        entries = [(path, speaker, seconds) for speaker in sorted(dealt[split])
                   for path, seconds in by_speaker.get(speaker, [])]
        header = f"{split} split of {audio_dir.absolute()} (layout {layout}, speaker level {level}, seed {seed})"
        paths[split] = lists.write_list(base / split, [(path, speaker) for path, speaker, _ in entries], header)
        files_per[split] = len(entries)
        hours[split] = sum(s for _, _, s in entries) / SECONDS_PER_HOUR
    return PrepareSummary(base=base, layout=layout, speaker_level=level, speakers=dict(sizes), files=files_per,
                          hours=hours, lists=paths, skipped=skipped)
