"""The processes that draw training batches (``data.workers`` of them): how many, what each holds, how a
batch comes back.

A worker is given the mixer once, when it starts (:func:`start`), and then draws the
batch each :class:`~deepclust.data.mixer.BatchSpec` names (:func:`draw`). It hands the
batch back as a file in a spool folder, and only the file's name goes through the
process pool's pipe: the pool's thread reads a pipe 64 KiB at a time and takes the
interpreter lock for every read, so while the training loop holds the lock (PyTorch
driving a GPU holds it most of the time) a batch of several megabytes waited for
hundreds of turns, and the batches came in at a fraction of the rate the workers drew
them (RESULTS.md, "Batches through files"). The training process reads the file in one
call and deletes it (:func:`received`). The spool is in memory (``/dev/shm``) where that
has room, else in the temporary folder; a worker that cannot write there hands its
batch back through the pipe. No Keras here: the workers import this module and
:mod:`deepclust.data.mixer` alone (the Keras dataset is :mod:`deepclust.data.dataset`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import NamedTuple

from .mixer import BatchSpec, Mixer, draw_batch


# At most this many cores, batches are drawn in the training process: worker processes would take
# cores from the training step (RESULTS.md, "Corpus scale").
FEW_CORES = 4
MAX_AUTO_WORKERS = 8
# With a GPU the training process needs a core for its loop and one to take in the batches.
ACCELERATED_SPARE_CORES = 2
# The spool goes to shared memory only with this much free there (a container's /dev/shm may be 64 MiB).
SHARED_MEMORY = Path("/dev/shm")
SHARED_MEMORY_MIN_FREE = 2**30


def process_count(setting: int, cores: int | None = None, accelerated: bool = False) -> int:
    """How many processes draw batches for ``data.workers`` (``setting``): itself, or for -1 none on FEW_CORES
    cores or fewer, else half the cores (at most MAX_AUTO_WORKERS), the other half for the step; with
    an accelerator, whose step leaves the cores to the batches, all cores but ACCELERATED_SPARE_CORES
    (RESULTS.md, "A second GPU session")."""
    if setting >= 0:
        return setting
    cores = cores or os.cpu_count() or 1
    if accelerated:
        return max(0, cores - ACCELERATED_SPARE_CORES)
    return 0 if cores <= FEW_CORES else min(cores // 2, MAX_AUTO_WORKERS)


class BatchProcessError(RuntimeError):
    """A worker process drawing batches ended abruptly or stopped answering (deepclust.data.dataset)."""


class Spooled(NamedTuple):
    """A batch a worker left in the spool: the file's path (what goes through the pool's pipe)."""
    path: str


def make_spool() -> str:
    """A new folder for one pool's batches: in shared memory where it has room, else the temp folder.
    The dataset removes it when it stops its workers; the workers remove it if the training process
    is killed."""
    try:
        roomy = SHARED_MEMORY.is_dir() and shutil.disk_usage(SHARED_MEMORY).free >= SHARED_MEMORY_MIN_FREE
    except OSError:
        roomy = False
    return tempfile.mkdtemp(prefix="deepclust-batches-", dir=SHARED_MEMORY if roomy else None)


def spool(batch, folder: str) -> Spooled:
    """``batch`` (arrays, or tuples of them) written to a new file in ``folder``."""
    path = os.path.join(folder, f"{uuid.uuid4().hex}.pkl")
    try:
        with open(path, "wb") as handle:
            pickle.dump(batch, handle, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return Spooled(path)


def received(result):
    """The batch a worker handed back: read from its spool file (then deleted), or as it came."""
    if not isinstance(result, Spooled):
        return result
    with open(result.path, "rb") as handle:
        data = handle.read()  # one read: the lock is released once, however large the batch
    os.unlink(result.path)
    return pickle.loads(data)


def discard(result) -> None:
    """Delete the spool file of a batch that will never be read (an abandoned epoch's)."""
    if isinstance(result, Spooled):
        with contextlib.suppress(OSError):
            os.unlink(result.path)


# What a worker process holds: the mixer and the spool, given once when it starts.
_MIXER: Mixer | None = None
_SPOOL: str | None = None


def start(mixer: Mixer, spool_folder: str | None = None) -> None:
    """A worker's initializer: keep the mixer and the spool, and end with the training process."""
    global _MIXER, _SPOOL
    _MIXER, _SPOOL = mixer, spool_folder
    _exit_with_parent(spool_folder)


def draw(spec: BatchSpec):
    """The batch ``spec`` names, spooled (or itself, where the spool cannot be written)."""
    batch = draw_batch(_MIXER, spec)
    if _SPOOL is not None:
        try:
            return spool(batch, _SPOOL)
        except OSError:  # full or gone (the pool being stopped): the pipe still works
            pass
    return batch


def ready() -> bool:
    return _MIXER is not None


def _exit_with_parent(spool_folder: str | None) -> None:
    """End this worker when the training process ends, even by SIGKILL (no orphans holding memory),
    and remove the spool, which would otherwise hold its unread batches in memory until a reboot.

    A thread waits on the parent's sentinel, which multiprocessing closes when the parent process
    ends. Not Linux's PR_SET_PDEATHSIG: that fires when the *thread* that started the worker ends,
    and the process pool starts workers on demand in whichever thread asks for a batch, Keras's
    feeder threads among them, which may end long before the training process: the workers they had
    started were killed, and the pool broke or, a worker killed holding its queue's lock, hung
    (RESULTS.md, "A second GPU session").
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing: nothing to wait on
        return

    def watch() -> None:
        parent.join()
        if spool_folder:
            shutil.rmtree(spool_folder, ignore_errors=True)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()

