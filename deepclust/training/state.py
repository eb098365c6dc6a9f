"""A training run's resume state: what it carries across resumes, saved atomically at every epoch's end.

- :class:`RunState`: what a run carries across resumes (epochs done, training
  seconds, best validation loss, the saved state to restore), read once when
  training starts; :class:`TrainingState` is its one writer.
- :class:`TrainingState` saves weights + optimizer state and the run state at
  every epoch end, atomically, and restores them when training starts again.
- :class:`Clock`: training time across resumes; :func:`latest_state`: the newest complete saved state.
- :func:`atomic_save_model` and :func:`weights_finite`, what saving a model safely needs.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from .. import atomic

log = logging.getLogger(__name__)

STATE_PATTERN = re.compile(r"^epoch-(\d{6})\.weights\.h5$")
# Older complete states kept besides the newest, in case the newest is damaged.
KEEP_STATES = 1


def atomic_save_model(model: keras.Model, path: str | Path) -> Path:
    """``model.save`` to a temporary file beside ``path``, then rename over it."""
    with atomic.replacing(path, suffix=".keras") as tmp:
        model.save(tmp)
    return Path(path)


def weights_finite(model: keras.Model) -> bool:
    """Whether every weight of ``model`` (optimizer state excluded) is finite."""
    return all(bool(np.all(np.isfinite(keras.ops.convert_to_numpy(w)))) for w in model.weights)


def finite(value) -> bool:
    """Whether a logged value is finite; None (not logged) counts as finite."""
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


@dataclass
class RunState:
    """What a run carries across resumes: read once when training starts, written by
    :class:`TrainingState` alone, at every save (the callbacks are given their starting values).

    ``epoch`` is the number of epochs done (the next epoch to train), ``best``
    the best validation loss saved, ``clock`` the training time across
    resumes, ``weights`` the saved state to restore (None for a new run) and
    ``saved_seconds`` the training time recorded with it, ``step_seconds`` the time spent in
    training steps alone (validation excluded) across resumes, what history.csv's train_seconds shows.
    """

    directory: Path
    epoch: int = 0
    best: float = math.inf
    clock: Clock = field(default_factory=Clock)
    weights: Path | None = None
    saved_seconds: float = 0.0
    step_seconds: float = 0.0

    @classmethod
    def load(cls, directory: str | Path) -> "RunState":
        run = cls(Path(directory))
        state = latest_state(run.directory)
        if state is not None:
            run.epoch, run.weights, meta = state
            run.saved_seconds = float(meta.get("elapsed_seconds", 0.0))
            run.step_seconds = float(meta.get("step_seconds", 0.0))
            run.best = float(meta["best"]) if meta.get("best") is not None else math.inf
            run.clock.restore(run.saved_seconds)
        return run


class TrainingState(keras.callbacks.Callback):
    """Atomic, resumable training state in ``run.directory`` (one file pair per saved epoch).

    Weights are written to a temporary file and renamed to
    ``epoch-NNNNNN.weights.h5``; the metadata (best validation loss, training
    seconds) follows as ``epoch-NNNNNN.json``. A state counts only when both
    exist, so a kill at any moment leaves the previous complete state usable.

    It is the one writer of ``run``: at every save it records the best validation loss that
    ``best`` holds (:class:`deepclust.training.callbacks.BestModel`, which runs before it) and
    the training-step seconds of the epoch's logs (``train_seconds``, put there by
    :class:`deepclust.training.callbacks.Throughput`); without them the run's values stay.
    """

    def __init__(self, run: RunState, best=None):
        super().__init__()
        self.run = run
        self.best = best

    def on_train_begin(self, logs=None):
        run = self.run
        run.clock.restore(run.saved_seconds)
        if run.weights is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        # The state holds the optimizer's variables, the learning rate among
        # them; a rate given for this run (e.g. lowered after a NaN) wins.
        rate = getattr(optimizer, "learning_rate", None)
        configured = float(keras.ops.convert_to_numpy(rate)) if isinstance(rate, keras.Variable) else None
        self.model.load_weights(run.weights)
        if configured is not None and float(keras.ops.convert_to_numpy(rate)) != configured:
            log.info("learning rate %g from the config replaces the saved %g",
                     configured, float(keras.ops.convert_to_numpy(rate)))
            rate.assign(configured)
        self.model._initial_epoch = run.epoch
        log.info("resumed from %s (epoch %d, %.0f s trained)", run.weights, run.epoch, run.clock.elapsed)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        # A NaN can reach the weights in an epoch's last step with the loss
        # still finite: check the validation loss and the weights as well.
        if not (finite(logs.get("loss")) and finite(logs.get("val_loss")) and weights_finite(self.model)):
            log.warning("epoch %d ended with loss %s, val_loss %s or non-finite weights; training state not saved",
                        epoch + 1, logs.get("loss"), logs.get("val_loss"))
            return
        self.save(epoch + 1, logs)

    def save(self, epochs_done: int, logs: dict | None = None) -> None:
        run = self.run
        run.directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epochs_done:06d}"
        with atomic.replacing(run.directory / f"{name}.weights.h5", suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp, overwrite=True)
        run.epoch, run.weights, run.saved_seconds = epochs_done, run.directory / f"{name}.weights.h5", run.clock.elapsed
        run.step_seconds = float((logs or {}).get("train_seconds", run.step_seconds))
        if self.best is not None:
            run.best = self.best.best
        meta = {"epoch": epochs_done, "elapsed_seconds": run.saved_seconds, "step_seconds": run.step_seconds,
                "best": run.best if math.isfinite(run.best) else None}
        atomic.write_text(run.directory / f"{name}.json", json.dumps(meta))
        self._prune(epochs_done)

    def _prune(self, newest: int) -> None:
        folder = self.run.directory
        epochs = sorted(int(m.group(1)) for p in folder.iterdir() if (m := STATE_PATTERN.match(p.name)))
        for old in epochs[: -(KEEP_STATES + 1)]:
            for suffix in (".json", ".weights.h5"):  # metadata first: a state without it is ignored
                path = folder / f"epoch-{old:06d}{suffix}"
                if path.exists() and old < newest:
                    path.unlink()
