"""A list's corpus as an index, its audio in a cache built once: memory independent of corpus size.

Training holds an index of each list (every usable utterance's speaker and
length at the model rate) and reads a segment when a mixture needs it. The
audio comes from a cache: every listed file decoded, downmixed and resampled
to the model rate once, stored as 16-bit samples (each utterance scaled by
its own peak where it exceeds full scale) in one file, ``cache/<list>-<rate>Hz.pcm``
beside the list. A manifest (``.json``) records each file's size and
modification time: a later run, a resume or another worker process reuses the
cache, a changed file is read again (with a message), and a deleted or
unreadable one is skipped and counted, naming its list line. The first build
decodes in as many processes as there are cores, with a progress line and an
estimate. Reads are ``pread``s of the cache file, so no process maps or holds
the corpus.

A file listed twice (under two speaker IDs, say) is stored once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import atomic, pool
from ..corpus.lists import Entry, parse_list
from ..dsp import audio
from ..progress import Progress

log = logging.getLogger(__name__)

CACHE_DIRNAME = "cache"
FULL_SCALE = 32767
MANIFEST_VERSION = 1
# Files decoded in the training process itself below this count (a pool's start costs more).
POOL_FROM_FILES = 32


class DataError(ValueError):
    """The data cannot make the mixtures the config asks for."""


@dataclass
class CorpusIndex:
    """The usable utterances of a list: ``speakers`` maps each speaker to its utterance ids; ``lengths``
    (samples at ``sample_rate``), ``offsets`` and ``scales`` locate each id in the cache file."""

    list_file: Path
    sample_rate: int
    data_path: Path
    entries: list[Entry]
    offsets: np.ndarray
    lengths: np.ndarray
    scales: np.ndarray
    speakers: dict[str, list[int]]
    skipped: list[tuple[Entry, str]] = field(default_factory=list)
    _fd: int | None = field(default=None, repr=False)
    _pid: int | None = field(default=None, repr=False)

    @property
    def num_utterances(self) -> int:
        return len(self.entries)

    @property
    def seconds(self) -> float:
        return float(self.lengths.sum()) / self.sample_rate

    def read(self, uid: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start:stop`` of utterance ``uid`` as float32, at the model rate."""
        length = int(self.lengths[uid])
        stop = length if stop is None else min(int(stop), length)
        start = max(0, min(int(start), stop))
        if self._fd is None or self._pid != os.getpid():  # one descriptor per process (workers included)
            self._fd, self._pid = os.open(self.data_path, os.O_RDONLY), os.getpid()
        raw = os.pread(self._fd, 2 * (stop - start), 2 * (int(self.offsets[uid]) + start))
        return np.frombuffer(raw, "<i2").astype(np.float32) * np.float32(self.scales[uid] / FULL_SCALE)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fd"] = state["_pid"] = None
        return state


def _decode(path: str, sample_rate: int) -> tuple[bytes, float] | str:
    """One file at the model rate, as 16-bit samples and the scale they were divided by; or why it cannot be used."""
    try:
        signal, _ = audio.read(path, sample_rate)
        if signal.size == 0:
            raise audio.AudioError(f"{path}: zero-length audio")
        if not np.any(signal):
            raise audio.AudioError(f"{path}: all samples are zero")
    except audio.AudioError as exc:
        return str(exc)
    scale = max(1.0, float(np.max(np.abs(signal))))
    samples = np.clip(np.round(signal * (FULL_SCALE / scale)), -FULL_SCALE - 1, FULL_SCALE).astype("<i2")
    return samples.tobytes(), scale


class Cache:
    """The cache of one list at one rate: ``<name>.pcm`` (samples), ``<name>.json`` (manifest), ``<name>.lock``."""

    def __init__(self, folder: Path, name: str, sample_rate: int):
        self.folder, self.sample_rate = folder, sample_rate
        self.data, self.manifest, self.lockfile = (folder / f"{name}.{s}" for s in ("pcm", "json", "lock"))

    @contextlib.contextmanager
    def locked(self):
        """Held while the cache is checked and extended: another process building it waits."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.lockfile, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def records(self) -> dict[str, dict]:
        try:
            manifest = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return {}
        ok = manifest.get("version") == MANIFEST_VERSION and manifest.get("sample_rate") == self.sample_rate
        return manifest.get("files", {}) if ok and self.data.is_file() else {}

    def save(self, records: dict[str, dict]) -> None:
        atomic.write_json(self.manifest, {"version": MANIFEST_VERSION, "sample_rate": self.sample_rate,
                                          "files": records})


def _stamp(path: Path) -> dict | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _plan(entries: list[Entry], records: dict[str, dict]) -> tuple[dict[str, dict], list[str]]:
    """Which listed files the cache holds as they are now, and which must be decoded (new or changed)."""
    current, todo = {}, []
    for entry in entries:
        key = str(entry.path)
        if key in current:  # listed before (under another speaker, say): stored once
            continue
        stamp = _stamp(entry.path)
        if stamp is None:
            current[key] = {"skip": f"{entry.path}: file not found; check the path."}
            continue
        known = records.get(key)
        if known and known.get("size") == stamp["size"] and known.get("mtime_ns") == stamp["mtime_ns"]:
            current[key] = known
        else:
            if known:
                log.info("%s: changed since the cache was built (size or modification time); reading it again",
                         entry.where)
            current[key] = stamp
            todo.append(key)
    return current, todo


def _decoded(todo: list[str], sample_rate: int, jobs: int):
    """Yield ``(path, _decode result)`` in order, in ``jobs`` processes when there are many files
    (:func:`deepclust.pool.in_order`: a bounded number in flight, so decoded audio does not pile up in memory)."""
    processes = jobs if len(todo) >= POOL_FROM_FILES else 1
    # spawn: the training process may hold threads (a backend's) that a fork would copy half-way.
    return pool.in_order(((path, _decode, (path, sample_rate)) for path in todo), processes, "spawn")


def _extend(cache: Cache, current: dict[str, dict], todo: list[str], progress: bool, jobs: int) -> None:
    """Decode ``todo`` and append it to the cache file; the manifest is written after the samples."""
    bar = Progress(len(todo), f"caching {cache.data.name} (once)", unit="file", enabled=progress and bool(todo))
    with open(cache.data, "ab") as out:
        offset = out.seek(0, os.SEEK_END) // 2
        for path, result in _decoded(todo, cache.sample_rate, jobs):
            if isinstance(result, str):
                current[path] = {**current[path], "skip": result}
            else:
                samples, scale = result
                out.write(samples)
                current[path] = {**current[path], "offset": offset, "length": len(samples) // 2, "scale": scale}
                offset += len(samples) // 2
            bar.step(skipped=isinstance(result, str))
        out.flush()
        os.fsync(out.fileno())


def load_corpus(list_file: str | Path, sample_rate: int, min_speakers: int = 1, progress: bool = False,
                jobs: int | None = None) -> CorpusIndex:
    """The index of ``list_file`` at ``sample_rate``, its cache built or brought up to date first.

    Missing, unreadable, empty, all-zero or non-finite files are skipped with a
    warning naming file and line, and counted; if nothing usable is left, or
    fewer speakers than a mixture needs, a DataError says so.
    """
    list_file = Path(list_file)
    entries = parse_list(list_file)
    if not entries:
        raise DataError(f"{list_file}: no utterances listed; expected one 'path speakerID' per line.")
    cache = Cache(list_file.parent / CACHE_DIRNAME, f"{list_file.name}-{sample_rate}Hz", sample_rate)
    with cache.locked():
        records = cache.records()
        current, todo = _plan(entries, records)
        if todo:
            _extend(cache, current, todo, progress, jobs or os.cpu_count() or 1)
        if any(records.get(key) != value for key, value in current.items()):
            cache.save({**records, **current})  # entries of other lists' versions kept: the file holds them
    return _index(list_file, sample_rate, cache, entries, current, min_speakers)


def _index(list_file: Path, sample_rate: int, cache: Cache, entries: list[Entry], records: dict[str, dict],
           min_speakers: int) -> CorpusIndex:
    kept, skipped, speakers = [], [], {}
    for entry in entries:
        record = records[str(entry.path)]
        if "skip" in record:
            log.warning("%s: skipped: %s", entry.where, record["skip"])
            skipped.append((entry, record["skip"]))
            continue
        speakers.setdefault(entry.speaker, []).append(len(kept))
        kept.append((entry, record))
    if skipped:
        log.warning("%s: skipped %d of %d utterances (see warnings above)", list_file, len(skipped), len(entries))
    if not speakers:
        raise DataError(f"{list_file}: none of the {len(entries)} listed files could be read; check the paths.")
    if len(speakers) < min_speakers:
        raise DataError(
            f"{list_file}: {len(speakers)} speaker(s) but mixtures need {min_speakers} distinct speakers; "
            f"add speakers to the list or lower data.min_speakers. Received: speakers={sorted(speakers)}")
    column = lambda key, dtype: np.array([r[key] for _, r in kept], dtype)  # noqa: E731
    return CorpusIndex(list_file, sample_rate, cache.data, [e for e, _ in kept], column("offset", np.int64),
                       column("length", np.int64), column("scale", np.float64), speakers, skipped)
