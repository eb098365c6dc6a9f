"""One run per folder: a lock file that names its holder (host and PID); a dead holder's is taken over.

Two ``deepclust train`` runs in one folder would race on its checkpoints and
model. The first run writes ``DIR/train.lock`` (created exclusively, so two
starting at once cannot both win); a second is refused with a message naming
the holder. A lock left by a process that no longer runs on this host (a kill,
a crash) is taken over with a note. A lock from another host cannot be checked
from here: the message says how to clear it if that run is dead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path

from ..atomic import process_alive

log = logging.getLogger(__name__)

LOCK_FILENAME = "train.lock"


class RunLocked(RuntimeError):
    """The folder is held by another live run; the message names it and the ways out."""


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _try_create(path: Path, me: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(me, handle)
    return True


@contextlib.contextmanager
def hold(folder: str | Path):
    """Hold ``folder`` for this process while the block runs; RunLocked if a live run holds it."""
    path = Path(folder) / LOCK_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    while not _try_create(path, me):
        holder = _holder(path)
        if not holder:  # being written this instant, or damaged: look again shortly, then take it
            time.sleep(0.2)
            if not _holder(path):
                path.unlink(missing_ok=True)
            continue
        if holder.get("host") == me["host"] and not process_alive(int(holder.get("pid", -1))):
            log.warning("%s: taking over the lock of a run that no longer runs (PID %s, since %s)", path,
                        holder.get("pid"), holder.get("since"))
            path.unlink(missing_ok=True)
            continue
        raise RunLocked(
            f"{folder}: another deepclust train holds this folder (host {holder.get('host')}, PID "
            f"{holder.get('pid')}, since {holder.get('since')}); two runs in one folder would overwrite each "
            f"other's checkpoints. Wait for it, stop it, or train into another --base; if that run is dead "
            f"(on another machine), delete {path}. Received: base={str(folder)!r}")
    try:
        yield
    finally:
        if _holder(path).get("pid") == me["pid"] and _holder(path).get("host") == me["host"]:
            path.unlink(missing_ok=True)
