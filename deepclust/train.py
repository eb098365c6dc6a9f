"""Training: data, model, loss and callbacks put together; resumable.

``train(base=DIR)`` reads ``DIR/train`` and ``DIR/valid`` and writes into DIR:

- ``model.keras``: the best model by validation loss (atomic writes);
- ``config.toml``: the resolved config it trained with;
- ``history.csv``: per-epoch losses, learning rate and training time;
- ``checkpoints/``: the newest training state, from which the same command
  resumes after an interruption.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from . import allocator, callbacks as cb
from . import data, model as model_lib
from .config import (CONFIG_FILENAME, Config, ConfigError, apply_overrides, load_config, parse_duration,
                     read_config_file)
from .losses import DeepClusteringLoss, MaskInferenceLoss

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "default"
MODEL_FILENAME = "model.keras"
HISTORY_FILENAME = "history.csv"
STATE_DIRNAME = "checkpoints"
# Config sections that fix the network and its inputs: a run cannot resume
# with other values here, since the saved weights would not fit or mean the same.
ARCHITECTURE_SECTIONS = ("audio", "features", "model")


@dataclass
class TrainResult:
    model_path: Path
    epochs_done: int
    best_val_loss: float
    train_seconds: float
    frames_per_second: float
    stopped: str  # "completed", "time limit", "early stopping", "nan", "interrupted"


def _optimizer(config: Config) -> keras.optimizers.Optimizer:
    t = config.train
    cls = {"adam": keras.optimizers.Adam, "nadam": keras.optimizers.Nadam,
           "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}[t.optimizer]
    return cls(learning_rate=t.learning_rate, clipnorm=t.clipnorm)


def compile_model(net: keras.Model, config: Config) -> keras.Model:
    """Compile with the config's optimizer and loss: deep clustering alone, or with a mask
    head (Chimera++) ``loss_alpha`` x deep clustering + (1 - loss_alpha) x mask inference."""
    t = config.train
    if model_lib.has_mask_head(net):
        net.compile(optimizer=_optimizer(config), loss=[DeepClusteringLoss(), MaskInferenceLoss()],
                    loss_weights=[t.loss_alpha, 1.0 - t.loss_alpha], jit_compile=t.jit)
    else:
        net.compile(optimizer=_optimizer(config), loss=DeepClusteringLoss(), jit_compile=t.jit)
    return net


def curriculum_for(config: Config, clock: cb.Clock) -> cb.ChunkCurriculum | None:
    """The chunk-length curriculum's switch: a share of train.time_limit, else of train.epochs."""
    d = config.data
    if not d.long_chunk_frames:
        return None
    if config.train.time_limit:
        return cb.ChunkCurriculum(clock, after_seconds=d.long_chunk_from * parse_duration(config.train.time_limit))
    return cb.ChunkCurriculum(clock, after_epoch=math.ceil(d.long_chunk_from * config.train.epochs))


def resolve_run_config(base: Path, config: str | Path | None, overrides: dict[str, Any] | None) -> Config:
    """The config for a run in ``base``: the given one, else the one saved by an earlier run
    there, else the shipped ``default``.

    Resuming with a config whose architecture differs from the saved run's is
    refused, since the saved weights would not fit.
    """
    saved_path = base / CONFIG_FILENAME
    saved = read_config_file(saved_path) if saved_path.is_file() else None
    if config is None and saved is not None:
        resolved = apply_overrides(read_config_file(saved_path), overrides) if overrides else saved
    else:
        resolved = load_config(config if config is not None else DEFAULT_CONFIG, overrides)
    state = cb.latest_state(base / STATE_DIRNAME)
    if saved is not None and state is not None:
        old, new = saved.to_dict(), resolved.to_dict()
        changed = [f"{s}.{k}: {old[s][k]!r} -> {new[s][k]!r}" for s in ARCHITECTURE_SECTIONS for k in old[s]
                   if old[s][k] != new[s][k]]
        if changed:
            raise ConfigError(
                f"{base}: holds a run (epoch {state[0]}) trained with another architecture; cannot resume with "
                f"{'; '.join(changed)}. Use a new --base folder, or delete {base / STATE_DIRNAME} to start over."
            )
    return resolved


class Throughput(keras.callbacks.Callback):
    """Training frames per second, measured over whole steps (validation excluded)."""

    def __init__(self, frames_per_step: int | None = None, dataset: data.MixtureDataset | None = None):
        super().__init__()
        self._frames_per_step = frames_per_step
        self.dataset = dataset  # whole-utterance batches: frames per step as the data handed out
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
            logs["train_seconds"] = self.seconds
            logs["frames_per_second"] = self.rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    @property
    def frames_per_step(self) -> float:
        return self._frames_per_step if self._frames_per_step is not None else self.dataset.frames_per_batch

    @property
    def rate(self) -> float:
        return self.steps * self.frames_per_step / self.seconds if self.seconds else 0.0


def train(
    base: str | Path,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    verbose: int | str = "auto",
    distribute: str | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainResult:
    """Train on ``base/train``, validate on ``base/valid``, write into ``base``; resume if a state is there.

    ``distribute``: None (one device), ``"mirrored"`` (all local GPUs) or ``"multiworker"`` (the cluster
    in ``TF_CONFIG``), TensorFlow backend only; see :mod:`deepclust.distribute`. ``train.batch_size`` is
    then the global batch. ``callbacks``: extra Keras callbacks, run after the built-in ones.
    """
    base = Path(base)
    dist = None
    if distribute:
        from .distribute import Distributed  # TensorFlow only: imported only when asked for

        dist = Distributed(distribute)  # first: multi-worker collectives need it before any other op
    cfg = resolve_run_config(base, config, overrides)
    if dist is not None and dist.kind == "multiworker" and cfg.model.mask_head:
        # Its own training loop (distribute.py) scores one loss; the mask head's second loss runs under fit.
        raise ConfigError("model.mask_head (Chimera++) trains on one machine or with --distribute mirrored, not "
                          "with --distribute multiworker yet. Received: distribute='multiworker', mask_head=true")
    with dist.output_folder(base, STATE_DIRNAME) if dist else contextlib.nullcontext(base) as out:
        return _train(base, Path(out), cfg, verbose, dist, callbacks or [])


@contextlib.contextmanager
def sigterm_interrupts():
    """While it lasts, SIGTERM (what ``kill``, Slurm and Kubernetes send before they stop a job)
    stops training the way Ctrl-C does: the last completed epoch's state stays, the best model
    too, and the same command resumes. Only the main thread can take signals; elsewhere it does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train(base: Path, out: Path, cfg: Config, verbose, dist, extra_callbacks: list) -> TrainResult:
    """train() once the config is known; writes into ``out`` (``base``, except on non-chief workers)."""
    batch_size = dist.worker_batch_size(cfg.train.batch_size) if dist else cfg.train.batch_size
    keras.utils.set_random_seed(cfg.train.seed)
    # Set either way: the policy is global, and an earlier run in this process may have changed it.
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.train.mixed_precision else "float32")

    log.info("memory allocator: %s", allocator.describe())
    if allocator.advice():
        log.warning(allocator.advice())
    log.info("reading %s and %s", base / "train", base / "valid")
    bars = verbose in (1, "auto")  # --quiet (verbose=2) logs one line per epoch: no progress bars either
    train_corpus = data.load_corpus(base / "train", cfg.audio.sample_rate, cfg.data.min_speakers, progress=bars)
    valid_corpus = data.load_corpus(base / "valid", cfg.audio.sample_rate, cfg.data.min_speakers, progress=bars)
    for name, corpus in (("train", train_corpus), ("valid", valid_corpus)):
        log.info("%s: %d speakers, %d utterances, %.1f min%s", name, len(corpus.speakers), corpus.num_utterances,
                 corpus.seconds / cfg.audio.sample_rate / 60,
                 f", {len(corpus.skipped)} skipped" if corpus.skipped else "")

    train_mixer = data.Mixer(train_corpus, cfg)
    valid_mixer = data.Mixer(valid_corpus, cfg)
    x_valid, y_valid = data.validation_set(valid_mixer, cfg)
    mean, variance = data.feature_statistics(train_mixer, cfg, cfg.train.seed)

    with dist.scope() if dist else contextlib.nullcontext():
        net = compile_model(model_lib.build_model(cfg, mean, variance), cfg)
    # Worker i of n draws its own mixtures, batch_size / n of them per step.
    dataset = data.MixtureDataset(train_mixer, cfg, batch_size=batch_size, shard=dist.shard if dist else (0, 1))

    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / STATE_DIRNAME):
        cb.remove_stale_temporaries(folder)
    cb.atomic_write_text(out / CONFIG_FILENAME, cfg.to_toml())
    saved = cb.latest_state(out / STATE_DIRNAME)
    trim_history(out / HISTORY_FILENAME, saved[0] if saved else 0)
    clock = cb.Clock()
    best = cb.BestModel(out / MODEL_FILENAME)
    state = cb.TrainingState(out / STATE_DIRNAME, clock, best)
    throughput = (Throughput(dataset=dataset) if cfg.data.whole_utterances or cfg.data.long_chunk_frames
                  else Throughput(cfg.train.batch_size * cfg.data.chunk_frames))
    stop_nan = cb.StopOnNaN()
    # BestModel before TrainingState: the state saved at an epoch's end must
    # already know whether that epoch was the best. TrainingState comes last,
    # after the history row: a kill between the two leaves a row that the
    # resumed run drops (trim_history) and redoes, rather than a missing row.
    callback_list: list[keras.callbacks.Callback] = [best, cb.EpochSync(dataset), throughput, stop_nan]
    time_limit = None
    if cfg.train.time_limit:
        time_limit = cb.TimeLimit(parse_duration(cfg.train.time_limit), clock)
        callback_list.append(time_limit)
    early = None
    if cfg.train.lr_patience:
        callback_list.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=cfg.train.lr_factor, patience=cfg.train.lr_patience, verbose=1))
    if cfg.train.patience:
        early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.train.patience)
        callback_list.append(early)
    curriculum = curriculum_for(cfg, clock)
    if curriculum is not None:
        callback_list.append(curriculum)
    callback_list.append(keras.callbacks.CSVLogger(str(out / HISTORY_FILENAME), append=True))
    callback_list.append(state)
    callback_list += extra_callbacks

    stopped = "completed"
    fit_args = dict(validation_data=(x_valid, y_valid), batch_size=cfg.train.batch_size, epochs=cfg.train.epochs,
                    callbacks=callback_list, verbose=verbose)
    spent = float(saved[2].get("elapsed_seconds", 0.0)) if saved else 0.0
    try:
        with sigterm_interrupts():
            if time_limit is not None and spent >= time_limit.seconds:
                # Keras would still run one batch and a validation before a callback could stop it.
                time_limit.reached = True
                clock.restore(spent)
                if saved and saved[2].get("best") is not None:
                    best.best = float(saved[2]["best"])
                log.info("the time limit (%s) was already spent in earlier runs; nothing to do", cfg.train.time_limit)
            else:
                fit = net.fit if dist is None else (lambda d, **kw: dist.fit(net, d, **kw))
                # Keras draws a few batches to learn their shapes and build the optimizer before the
                # first epoch begins (and EpochSync sets the epoch): draw them from the resumed epoch too.
                dataset.epoch = saved[0] if saved else 0
                clock.restore(spent)
                if curriculum is not None and saved and curriculum.due(saved[0]):
                    curriculum.switch_epoch = dataset.long_from_epoch = saved[0]  # resumed in the long phase
                fit(dataset, **fit_args)
                if (curriculum is not None and curriculum.switch_epoch is not None and dataset.long_from_epoch is None
                        and not stop_nan.stopped_at and not (time_limit and time_limit.reached)
                        and not (early and early.stopped_epoch)):
                    log.info("epoch %d: chunk curriculum: training on %d-frame chunks, %d per batch, from now on",
                             curriculum.switch_epoch + 1, cfg.data.long_chunk_frames, dataset.long_batch_size)
                    dataset.epoch = dataset.long_from_epoch = curriculum.switch_epoch
                    fit(dataset, **fit_args)  # resumes from the state the first phase saved last
    except KeyboardInterrupt:
        stopped = "interrupted"
        log.warning("interrupted: the last completed epoch is saved in %s; run the same command to resume",
                    base / STATE_DIRNAME)
    if stop_nan.stopped_at is not None:
        stopped = "nan"
        log.error("training stopped: the loss became NaN or infinite. The best model so far is kept in %s; "
                  "lower train.learning_rate or train.clipnorm and run again.", base / MODEL_FILENAME)
    elif time_limit is not None and time_limit.reached:
        stopped = "time limit"
    elif early is not None and early.stopped_epoch:
        stopped = "early stopping"

    if not (out / MODEL_FILENAME).is_file() and stopped != "nan":
        # No validation improvement was ever recorded (e.g. stopped before the
        # first epoch ended): still leave a usable model behind.
        cb.atomic_save_model(net, out / MODEL_FILENAME)
    final_state = cb.latest_state(out / STATE_DIRNAME)
    epochs_done = final_state[0] if final_state else 0
    result = TrainResult(base / MODEL_FILENAME, epochs_done, best.best, clock.elapsed, throughput.rate, stopped)
    log.info("training %s after %d epochs (%.0f s); best val_loss %.4f; %.0f frames/s; model: %s",
             stopped, epochs_done, clock.elapsed, best.best if math.isfinite(best.best) else float("nan"),
             throughput.rate, result.model_path)
    return result


def trim_history(path: Path, start_epoch: int) -> None:
    """Keep only the history rows of epochs before ``start_epoch``, where training resumes.

    Rows of epochs the run will redo (written by a run killed before its state
    was saved, or stopped at a NaN loss) and a half-written last line go, so
    every epoch appears once and matches the weights the run continues from.
    """
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    if not lines:
        return
    header = next(csv.reader([lines[0]]), [])
    if "epoch" not in header:
        return
    column = header.index("epoch")
    keep = []
    for line in lines[1:]:
        values = next(csv.reader([line]), [])
        try:
            epoch = int(values[column])
        except (IndexError, ValueError):
            continue
        if len(values) == len(header) and epoch < start_epoch:
            keep.append(line)
    if not keep:
        path.unlink()
    elif len(keep) != len(lines) - 1 or not text.endswith("\n"):
        log.info("%s: dropped %d row(s) of epochs from %d on, which this run redoes", path,
                 len(lines) - 1 - len(keep), start_epoch + 1)
        cb.atomic_write_text(path, "\n".join([lines[0], *keep]) + "\n")


def load_trained(base_or_model: str | Path) -> keras.Model:
    """The model of a training folder (``DIR/model.keras``) or a model file."""
    path = Path(base_or_model)
    if path.is_dir():
        path = path / MODEL_FILENAME
    return model_lib.load(path)

