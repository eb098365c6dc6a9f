"""The Keras callbacks of a training run, besides the one that saves its resume state (:mod:`.state`).

- :class:`BestModel` writes ``model.keras`` atomically when validation loss improves.
- :class:`TimeLimit` stops cleanly when the training-time budget is spent.
- :class:`EpochSync` tells the dataset which epoch it draws (its only writer).
- :class:`LearningRateSchedule` sets the rate from the share of the budget spent (:func:`scheduled_rate`).
- :class:`Throughput` measures frames per second and puts the training seconds in the epoch's logs.
- :class:`StopOnNaN` stops at a NaN or infinite loss.
- :class:`Interruption` turns SIGTERM and Ctrl-C into a clean stop that no C code can swallow.

A resumed run's values reach them when they are built; what the state records of them it takes
from BestModel and the epoch's logs (:class:`~deepclust.training.state.TrainingState`, its one writer).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from pathlib import Path

import keras

from .state import Clock, atomic_save_model, finite

log = logging.getLogger(__name__)


class BestModel(keras.callbacks.Callback):
    """Save the model atomically to ``path`` whenever ``monitor`` improves on ``best``, the best value
    so far: a resumed run's (``RunState.best``) to begin with, then this one's (which the state saves)."""

    def __init__(self, path: str | Path, best: float = math.inf, monitor: str = "val_loss",
                 save: keras.Model | None = None):
        super().__init__()
        self.path = Path(path)
        self.best = float(best)
        self.monitor = monitor
        self.to_save = save  # the model to save, when it is not the one fit trains (features on the device)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        if float(value) < self.best:
            self.best = float(value)
            atomic_save_model(self.to_save or self.model, self.path)
            log.info("epoch %d: %s improved to %.5f, saved %s", epoch + 1, self.monitor, value, self.path)


class TimeLimit(keras.callbacks.Callback):
    """Stop training once ``seconds`` of training time (across resumes) have passed.

    Checked after every batch; Keras then finishes the epoch early, runs
    validation and the epoch-end callbacks, so the best model and the
    training state are saved before the run stops.
    """

    def __init__(self, seconds: float, clock: Clock):
        super().__init__()
        self.seconds = seconds
        self.clock = clock
        self.reached = False

    def spent(self) -> bool:
        self.reached = self.reached or self.clock.elapsed >= self.seconds
        return self.reached

    def on_train_begin(self, logs=None):
        if self.spent():
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.spent():
            self.model.stop_training = True


class EpochSync(keras.callbacks.Callback):
    """The one writer of the dataset's epoch: set before ``fit`` starts (Keras draws batches to
    learn their shapes before any callback runs) and at every epoch's start, so a resumed run
    draws the mixtures of the epochs it trains, never those of the epochs already trained."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def start(self, epoch: int) -> None:
        self.dataset.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.start(epoch)


def scheduled_rate(progress: float, peak: float, kind: str, warmup: float, floor: float) -> float:
    """The learning rate at ``progress`` (the share of the budget spent, 0 to 1): linear from 0 to ``peak``
    over the first ``warmup`` share, then ``cosine`` or ``linear`` decay to ``floor * peak`` at 1, and
    ``floor * peak`` after."""
    progress = min(max(float(progress), 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return peak * progress / warmup
    decayed = (progress - warmup) / max(1.0 - warmup, 1e-12)
    share = 0.5 * (1.0 + math.cos(math.pi * decayed)) if kind == "cosine" else 1.0 - decayed
    return peak * (floor + (1.0 - floor) * share)


class LearningRateSchedule(keras.callbacks.Callback):
    """Sets the learning rate before every step from the share of the budget spent: training time
    (across resumes) over ``seconds``, else epochs and steps done over ``epochs``. So the rate
    reaches its floor when the time limit stops training, and no minute runs at a dead rate."""

    def __init__(self, peak: float, kind: str, warmup: float, floor: float, clock: Clock,
                 seconds: float | None = None, epochs: int | None = None):
        super().__init__()
        self.peak, self.kind, self.warmup, self.floor = peak, kind, warmup, floor
        self.clock, self.seconds, self.epochs = clock, seconds, epochs
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def progress(self, batch: int) -> float:
        if self.seconds:
            return self.clock.elapsed / self.seconds
        steps = max(int(self.params.get("steps") or 1), 1) if self.params else 1
        return (self._epoch + batch / steps) / max(self.epochs or 1, 1)

    def on_train_batch_begin(self, batch, logs=None):
        rate = scheduled_rate(self.progress(batch), self.peak, self.kind, self.warmup, self.floor)
        self.model.optimizer.learning_rate.assign(rate)


class Throughput(keras.callbacks.Callback):
    """Training frames per second, measured over whole steps (validation excluded); logged per epoch
    with the training seconds and the learning rate. The training seconds (``train_seconds``) go on
    from ``before``, those of the run's earlier sessions (``RunState.step_seconds``); the state takes
    them from the epoch's logs."""

    def __init__(self, frames_per_step: int | None = None, dataset=None, before: float = 0.0):
        super().__init__()
        self._frames_per_step = frames_per_step
        self.dataset = dataset  # batches of varying length: frames per step as the dataset handed them out
        self.before = float(before)
        self.steps = 0
        self.seconds = 0.0
        self._t = None
        self._warm = False

    def on_train_begin(self, logs=None):
        self._warm = False

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        # The first step of a run traces and compiles the graph: not a step's cost.
        if self._t is not None and self._warm:
            self.seconds += time.perf_counter() - self._t
            self.steps += 1
        self._warm = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["train_seconds"] = self.before + self.seconds
            logs["frames_per_second"] = self.rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    @property
    def frames_per_step(self) -> float:
        return self._frames_per_step if self._frames_per_step is not None else self.dataset.frames_per_batch

    @property
    def rate(self) -> float:
        return self.steps * self.frames_per_step / self.seconds if self.seconds else 0.0


class StopOnNaN(keras.callbacks.Callback):
    """Stop at a NaN or infinite loss (training, or validation at an epoch's end);
    the best model saved so far is kept."""

    def __init__(self):
        super().__init__()
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        if not finite((logs or {}).get("loss")):
            self.stopped_at = batch
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if not finite((logs or {}).get("val_loss")) and self.stopped_at is None:
            self.stopped_at = "validation"
            self.model.stop_training = True


class Interruption(keras.callbacks.Callback):
    """SIGTERM (what ``kill``, Slurm and Kubernetes send before they stop a job) and Ctrl-C (SIGINT) while
    :meth:`catching` lasts: training stops, the last completed epoch's state and the best model stay,
    and the same command resumes.

    The handler raises ``KeyboardInterrupt`` at once and notes the signal, and the callback raises it
    again after the next batch and at the epoch's end (last in the list, once the state is saved). The
    second raise is what makes it reliable: Python runs a handler wherever the main thread is, and
    where that is inside C code that swallows exceptions (numpy converting a JAX array to log a batch's
    loss), the first is lost and training went on.
    """

    def __init__(self):
        super().__init__()
        self.received: int | None = None

    @contextlib.contextmanager
    def catching(self):
        """The handlers installed for the block (only the main thread can take signals; elsewhere this does
        nothing); a signal ignored before (SIGINT of a job started in the background) stays ignored, and one
        whose handler was set outside Python is left to it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def interrupt(signum, frame):
            self.received = signum
            raise KeyboardInterrupt(f"signal {signum}")

        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            # None: a handler set outside Python, which could not be put back afterwards.
            if signal.getsignal(signum) not in (signal.SIG_IGN, None):
                previous[signum] = signal.signal(signum, interrupt)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _raise_if_received(self, *args, **kwargs):
        if self.received is not None:
            raise KeyboardInterrupt(f"signal {self.received}")

    on_train_batch_end = on_test_batch_end = on_epoch_end = _raise_if_received
