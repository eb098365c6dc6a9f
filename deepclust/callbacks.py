"""Keras callbacks that make training resumable and safe.

- :class:`TrainingState` saves weights + optimizer state, the epoch, the best
  validation loss and the training time at every epoch end, atomically, and
  restores the newest complete state when training starts again.
- :class:`BestModel` writes ``model.keras`` atomically when validation loss
  improves; its notion of "best" survives a resume.
- :class:`TimeLimit` stops cleanly when the training-time budget is spent.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)

STATE_PATTERN = re.compile(r"^epoch-(\d{6})\.weights\.h5$")
# The temporary files of the atomic writes below: ".NAME.PID.tmp[.SUFFIX]".
TEMPORARY_PATTERN = re.compile(r"^\..+\.(\d+)\.tmp(\..+)?$")
# Older complete states kept besides the newest, in case the newest is damaged.
KEEP_STATES = 1


def atomic_save_model(model: keras.Model, path: str | Path) -> Path:
    """``model.save`` to a temporary file beside ``path``, then rename over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _process_alive(pid: int) -> bool:
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
    """Delete the temporary files that killed processes left in ``directory`` mid-write.

    They never count as a state or a model (their names start with a dot), but
    they pile up; files of a process that is still running are left alone.
    """
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = TEMPORARY_PATTERN.match(path.name)
        if match and path.is_file() and not _process_alive(int(match.group(1))):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                continue
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run in %s", len(removed), directory)
    return removed


def weights_finite(model: keras.Model) -> bool:
    """Whether every weight of ``model`` (optimizer state excluded) is finite."""
    return all(bool(np.all(np.isfinite(keras.ops.convert_to_numpy(w)))) for w in model.weights)


def _finite(value) -> bool:
    return value is None or math.isfinite(float(value))


class Clock:
    """Training time that carries over across resumes (restored from the state)."""

    def __init__(self, elapsed: float = 0.0):
        self.offset = elapsed
        self.started = time.monotonic()

    def restore(self, elapsed: float) -> None:
        self.offset = elapsed
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return self.offset + time.monotonic() - self.started


def latest_state(directory: str | Path) -> tuple[int, Path, dict] | None:
    """The newest ``(epoch, weights_path, metadata)`` whose files are both complete."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = []
    for path in directory.iterdir():
        match = STATE_PATTERN.match(path.name)
        meta = path.with_name(path.name.replace(".weights.h5", ".json"))
        if match and meta.is_file():
            try:
                found.append((int(match.group(1)), path, json.loads(meta.read_text())))
            except (OSError, ValueError):
                continue
    return max(found, key=lambda item: item[0]) if found else None


class TrainingState(keras.callbacks.Callback):
    """Atomic, resumable training state in ``directory`` (one file pair per saved epoch).

    Weights are written to a temporary file and renamed to
    ``epoch-NNNNNN.weights.h5``; the metadata (best validation loss, training
    seconds) follows as ``epoch-NNNNNN.json``. A state counts only when both
    exist, so a kill at any moment leaves the previous complete state usable.
    """

    def __init__(self, directory: str | Path, clock: Clock, best: "BestModel | None" = None):
        super().__init__()
        self.directory = Path(directory)
        self.clock = clock
        self.best = best
        self.resumed_epoch = 0

    def on_train_begin(self, logs=None):
        state = latest_state(self.directory)
        if state is None:
            return
        epoch, weights, meta = state
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        # The state holds the optimizer's variables, the learning rate among
        # them; a rate given for this run (e.g. lowered after a NaN) wins.
        rate = getattr(optimizer, "learning_rate", None)
        configured = float(keras.ops.convert_to_numpy(rate)) if isinstance(rate, keras.Variable) else None
        self.model.load_weights(weights)
        if configured is not None and float(keras.ops.convert_to_numpy(rate)) != configured:
            log.info("learning rate %g from the config replaces the saved %g",
                     configured, float(keras.ops.convert_to_numpy(rate)))
            rate.assign(configured)
        self.model._initial_epoch = epoch
        self.resumed_epoch = epoch
        self.clock.restore(float(meta.get("elapsed_seconds", 0.0)))
        if self.best is not None and meta.get("best") is not None:
            self.best.best = float(meta["best"])
        log.info("resumed from %s (epoch %d, %.0f s trained)", weights, epoch, self.clock.elapsed)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        # A NaN can reach the weights in an epoch's last step with the loss
        # still finite: check the validation loss and the weights as well.
        if not (_finite(logs.get("loss")) and _finite(logs.get("val_loss")) and weights_finite(self.model)):
            log.warning("epoch %d ended with loss %s, val_loss %s or non-finite weights; training state not saved",
                        epoch + 1, logs.get("loss"), logs.get("val_loss"))
            return
        self.save(epoch + 1)

    def save(self, epochs_done: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epochs_done:06d}"
        final = self.directory / f"{name}.weights.h5"
        tmp = self.directory / f".{name}.{os.getpid()}.tmp.weights.h5"
        try:
            self.model.save_weights(tmp, overwrite=True)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        meta = {"epoch": epochs_done, "elapsed_seconds": self.clock.elapsed,
                "best": None if self.best is None or not math.isfinite(self.best.best) else self.best.best}
        atomic_write_text(self.directory / f"{name}.json", json.dumps(meta))
        self._prune(epochs_done)

    def _prune(self, newest: int) -> None:
        epochs = sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := STATE_PATTERN.match(p.name)))
        for old in epochs[: -(KEEP_STATES + 1)]:
            for suffix in (".json", ".weights.h5"):  # metadata first: a state without it is ignored
                path = self.directory / f"epoch-{old:06d}{suffix}"
                if path.exists() and old < newest:
                    path.unlink()


class BestModel(keras.callbacks.Callback):
    """Save the model atomically to ``path`` whenever ``monitor`` improves."""

    def __init__(self, path: str | Path, monitor: str = "val_loss"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        if float(value) < self.best:
            self.best = float(value)
            atomic_save_model(self.model, self.path)
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

    def on_train_begin(self, logs=None):
        if self.clock.elapsed >= self.seconds:
            self.reached = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.clock.elapsed >= self.seconds:
            self.reached = True
            self.model.stop_training = True


class EpochSync(keras.callbacks.Callback):
    """Tell the dataset which epoch is starting, so a resumed run draws new mixtures."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = epoch


class ChunkCurriculum(keras.callbacks.Callback):
    """Ends the short-chunk phase of a chunk-length curriculum (DPCL++: 100 frames, then 400).

    At the end of the first epoch at which ``after_seconds`` of training time
    (across resumes) or ``after_epoch`` epochs have passed, it stops ``fit``:
    the epoch's state and best model are saved as usual, and the caller starts
    the long-chunk phase as a new ``fit`` that resumes from that state (a new
    ``fit``, because Keras fixes the batch shape a dataset may have when ``fit``
    begins).
    """

    def __init__(self, clock: Clock, after_seconds: float | None = None, after_epoch: int | None = None):
        super().__init__()
        self.clock = clock
        self.after_seconds = after_seconds
        self.after_epoch = after_epoch
        self.switch_epoch: int | None = None

    def due(self, epochs_done: int) -> bool:
        if self.after_seconds is not None:
            return self.clock.elapsed >= self.after_seconds
        return self.after_epoch is not None and epochs_done >= self.after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.switch_epoch is None and self.due(epoch + 1):
            self.switch_epoch = epoch + 1
            self.model.stop_training = True


class StopOnNaN(keras.callbacks.Callback):
    """Stop at a NaN or infinite loss (training, or validation at an epoch's end);
    the best model saved so far is kept."""

    def __init__(self):
        super().__init__()
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        if not _finite((logs or {}).get("loss")):
            self.stopped_at = batch
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if not _finite((logs or {}).get("val_loss")) and self.stopped_at is None:
            self.stopped_at = "validation"
            self.model.stop_training = True
