"""Atomic writes: a file appears complete or not at all, and is never replaced by accident.

Every file deepclust writes (models, training states, configs, lists, audio,
reports) goes through :func:`replacing`: it is written to a temporary file
beside its final path (``.NAME.PID.XXXX.tmp[.SUFFIX]``, hidden, so it never
counts as a model or a state) and renamed over the final path once complete.
A process killed mid-write leaves only such a temporary, which
:func:`remove_stale_temporaries` deletes on the next run. A disk that fills
mid-write is a :class:`DiskFull` naming the folder; the file it was to
replace is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

# ".NAME.PID.RANDOM.tmp[.SUFFIX]" (earlier versions: no RANDOM): the PID tells whether the writer is alive.
TEMPORARY_PATTERN = re.compile(r"^\..+?\.(\d+)(\.[a-z0-9_]+)?\.tmp(\..+)?$")


# The errors of a device with no room left (ENOSPC), or of a user's quota spent (EDQUOT).
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(OSError):
    """No room left where a file was being written; the message names the folder and what was kept."""

    def __str__(self) -> str:  # the message alone, without OSError's "[Errno 28]"
        return str(self.strerror)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; refusing to overwrite (use --force to replace it).")


@contextlib.contextmanager
def replacing(path: str | Path, *, suffix: str = "", overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, rename it over ``path``.

    ``suffix`` is added to the temporary's name for writers that choose the
    format from it (``.keras``, ``.weights.h5``). With ``overwrite=False`` an
    existing ``path`` is refused before anything is written.
    """
    path = Path(path)
    _refuse_existing(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes it 0600; the file gets the permissions any new file would
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno not in FULL_ERRNOS or isinstance(exc, DiskFull):
            raise
        kept = f"{path.name} there is unchanged" if path.exists() else f"{path.name} was not written"
        raise DiskFull(exc.errno, f"{path.parent}: no space left on the device ({kept}); free some space "
                                  "and run the command again") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str, *, overwrite: bool = True) -> Path:
    with replacing(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, value: Any, *, overwrite: bool = True) -> Path:
    return write_text(path, json.dumps(value, indent=2) + "\n", overwrite=overwrite)


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else
        return True
    return True


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporaries that killed processes left in ``directory`` mid-write.

    They never count as a state or a model (their names start with a dot), but
    they pile up; files of a process that is still running are left alone.
    """
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = TEMPORARY_PATTERN.match(path.name)
        if match and path.is_file() and not process_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run in %s", len(removed), directory)
    return removed
