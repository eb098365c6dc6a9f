"""The Keras dataset of a training run: fresh random mixtures, drawn in worker processes.

Batch ``index`` of ``epoch`` is a pure function of what :class:`BatchSpec`
holds (seed, shard, epoch, index, size and chunk length): :func:`draw_batch`.
With ``data.workers = N`` (N >= 1) N worker processes draw batches ahead of the
training step, each given its batch's spec as an argument, so whoever draws a
batch gives the same arrays, and the workers hold nothing but the corpus index
(their reads come from the cache, see :mod:`deepclust.data.index`). With
``data.workers = 0`` the training process draws them itself. The epoch is set
by :class:`deepclust.training.callbacks.EpochSync` and reaches the workers inside the spec.
Batches come back through files, not the pool's pipe (:mod:`deepclust.data.batch_processes`).
"""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

import keras

from ..backend import accelerators
from ..config import Config
from . import batch_processes
from .mixer import BatchSpec, Mixer, draw_batch
from .batch_processes import BatchProcessError


FEEDER_THREADS = 2
# A batch takes a worker well under a second; one that has not come in this long will not come (a
# worker killed holding the pool's queue lock leaves the others waiting on it for ever).
BATCH_TIMEOUT_SECONDS = 300.0


class MixtureDataset(keras.utils.PyDataset):
    """Batches of fresh random mixtures, ``steps`` per epoch (see the module docstring)."""

    def __init__(self, mixer: Mixer, config: Config, batch_size: int | None = None, steps: int | None = None,
                 seed: int | None = None, shard: tuple[int, int] = (0, 1), processes: int | None = None):
        # Keras's two feeder threads keep the next batches coming while a step runs (one thread alone
        # would draw in the step's thread, in turn with it); further parallelism is ours, in processes.
        super().__init__(workers=FEEDER_THREADS, use_multiprocessing=False, max_queue_size=2 * FEEDER_THREADS)
        self.mixer = mixer
        self.batch_size = batch_size or config.train.batch_size
        self.steps = steps or config.train.steps_per_epoch
        self.seed = config.train.seed if seed is None else seed
        self.shard = shard  # (index, count): worker i of n draws its own stream of mixtures
        self.processes = (batch_processes.process_count(config.data.workers, accelerated=bool(accelerators()))
                          if processes is None else processes)
        self.sources = mixer.form.sources  # what the training objective asked the mixer for
        self.epoch = 0  # written only by callbacks.EpochSync
        self.frames_served = self.batches_served = 0  # batch lengths vary with whole_utterances
        self._pool: ProcessPoolExecutor | None = None
        self._spool: str | None = None  # the folder the workers leave batches in (deepclust.data.batch_processes)
        self._pending: dict[tuple[int, int], Future] = {}
        self._failed = False  # a BatchProcessError was raised: the pool is broken or hung
        self._lock, self._count_lock = threading.Lock(), threading.Lock()

    def __len__(self) -> int:
        return self.steps

    def spec(self, epoch: int, index: int) -> BatchSpec:
        return BatchSpec(self.seed, self.shard, int(epoch), int(index), self.batch_size)

    def batch_at(self, epoch: int, index: int):
        """Batch ``index`` of ``epoch``, drawn here: the same arrays a worker draws."""
        return self._served(draw_batch(self.mixer, self.spec(epoch, index)))

    def __getitem__(self, index: int):
        if not self.processes:
            return self.batch_at(self.epoch, index)
        epoch = self.epoch
        try:
            handed = self._submitted(epoch, index).result(timeout=BATCH_TIMEOUT_SECONDS)
        except (BrokenProcessPool, FutureTimeout) as exc:
            self._failed = True
            raise self._process_error(epoch, index, "a worker process ended abruptly (killed, out of memory?)"
                                     if isinstance(exc, BrokenProcessPool) else
                                     f"no batch came from the worker processes in {BATCH_TIMEOUT_SECONDS:.0f} s") from exc
        try:
            return self._served(batch_processes.received(handed))
        except OSError as exc:
            raise self._process_error(epoch, index, f"its file in the spool folder {self._spool} could not be read "
                                     f"({exc}): something removed it while training ran") from exc

    def _process_error(self, epoch: int, index: int, what: str) -> BatchProcessError:
        return BatchProcessError(
            f"batch {index + 1} of epoch {epoch + 1}: {what}. The last completed epoch is saved: run the same "
            f"command to resume, or with --workers 0 to draw batches in the training process. "
            f"Received: data.workers={self.processes}")

    def _submitted(self, epoch: int, index: int) -> Future:
        """The future of batch ``index`` of ``epoch``, with the batches after it submitted too."""
        with self._lock:
            pool = self._worker_pool()
            for stale in [key for key in self._pending if key[0] != epoch]:
                _abandon(self._pending.pop(stale))
            for ahead in range(index, min(index + self.processes + 1, self.steps)):  # keep every worker busy
                if (epoch, ahead) not in self._pending:
                    self._pending[epoch, ahead] = pool.submit(batch_processes.draw, self.spec(epoch, ahead))
            return self._pending.pop((epoch, index))

    def _worker_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork would copy the backend's threads half-way; the workers import no Keras.
            self._spool = batch_processes.make_spool()
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=batch_processes.start, initargs=(self.mixer, self._spool))
        return self._pool

    def start_processes(self) -> None:
        """Start the worker processes now (they import and read the index while the model is built)."""
        if self.processes:
            with self._lock:
                pool = self._worker_pool()
                for _ in range(self.processes):
                    pool.submit(batch_processes.ready)

    def _served(self, batch):
        x = batch[0]
        with self._count_lock:  # two feeder threads hand batches out
            self.frames_served += x.shape[0] * (self.mixer.config.data.chunk_frames if self.sources else x.shape[1])
            self.batches_served += 1
        return batch

    @property
    def frames_per_batch(self) -> float:
        """Mean frames (batch x length) per batch handed out so far."""
        return self.frames_served / max(self.batches_served, 1)

    def close(self) -> None:
        """Stop the worker processes (a later batch starts them again); after a BatchProcessError, kill them."""
        with self._lock:
            for future in self._pending.values():
                _abandon(future)
            self._pending.clear()
            pool, self._pool = self._pool, None
            spool, self._spool = self._spool, None
        if pool is None:
            return
        if self._failed:  # a hung pool would never finish shutting down
            _kill_workers(pool)
        pool.shutdown(wait=not self._failed, cancel_futures=True)
        shutil.rmtree(spool, ignore_errors=True)  # batches drawn ahead and never asked for
        self._failed = False

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_pool=None, _spool=None, _pending={}, _failed=False, _lock=None, _count_lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock, self._count_lock = threading.Lock(), threading.Lock()


def _abandon(future: Future) -> None:
    """Cancel a batch no longer wanted; one already being drawn has its spool file deleted when done."""
    if not future.cancel():
        future.add_done_callback(_discard)


def _discard(future: Future) -> None:
    if not future.cancelled() and future.exception() is None:
        batch_processes.discard(future.result())


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes (Python 3.14 has ``kill_workers``; before it, the pool's table)."""
    if hasattr(pool, "kill_workers"):
        pool.kill_workers()
        return
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.kill()
