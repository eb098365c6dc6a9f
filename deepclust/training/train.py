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
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from .. import allocator, atomic
from ..config import Config, ConfigError, apply_overrides, load_config, parse_duration, read_config_file
from ..config.rules import validate_distribution
from ..data.dataset import MixtureDataset
from ..data.index import load_corpus
from ..data.mixer import BatchForm, Mixer
from ..data.validation import feature_statistics
from ..nn import model as model_lib, pretrained
from .. import paths
from ..paths import CONFIG_FILENAME, HISTORY_FILENAME, MODEL_FILENAME, STATE_DIRNAME, TRAIN_LIST, VALID_LIST
from . import callbacks as cb, history_csv, objectives, runlock
from .state import RunState, TrainingState, atomic_save_model, latest_state
from .strategy import strategy

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "default"
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


# train.jit = "auto": whether each backend's training step is compiled, as measured on a CPU (RESULTS.md,
# "Speed"): JAX's uncompiled step is many times slower; TensorFlow's XLA step is slower than its own;
# torch.compile's steps are faster, but compiling costs more than a run of minutes gains, and it needs a
# C++ compiler at run time.
JIT_AUTO = {"jax": True, "tensorflow": False, "torch": False}


def jit_compile(config: Config) -> bool:
    """Whether the training step is compiled: ``train.jit``, or for "auto" the backend's entry in JIT_AUTO."""
    jit = config.train.jit
    return JIT_AUTO.get(keras.backend.backend(), False) if jit == "auto" else bool(jit)


def compile_model(model: keras.Model, config: Config, objective: objectives.Objective | None = None) -> keras.Model:
    """Compile the model ``objective`` (default: the config's, :func:`objectives.for_config`) trains
    with the config's optimizer and the objective's loss and loss weights."""
    objective = objective or objectives.for_config(config)
    model.compile(optimizer=_optimizer(config), loss=objective.loss(), loss_weights=objective.loss_weights,
                  jit_compile=jit_compile(config))
    return model


def resolve_run_config(base: Path, config: str | Path | None, overrides: dict[str, Any] | None) -> Config:
    """The config for a run in ``base``: the given one, else the one saved by an earlier run
    there, else the shipped ``default``.

    Resuming with a config whose architecture differs from the saved run's is
    refused, since the saved weights would not fit.
    """
    saved_path = base / CONFIG_FILENAME
    saved = read_config_file(saved_path) if saved_path.is_file() else None
    if config is None and saved is not None:
        resolved = apply_overrides(saved, overrides) if overrides else saved
    else:
        resolved = load_config(config if config is not None else DEFAULT_CONFIG, overrides)
    state = latest_state(base / STATE_DIRNAME)
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

    ``distribute``: None (one device), ``"mirrored"`` (all local devices; TensorFlow or JAX) or
    ``"multiworker"`` (the cluster in ``TF_CONFIG``; TensorFlow); see :mod:`deepclust.training.strategy`.
    ``train.batch_size`` is then the global batch. ``callbacks``: extra Keras callbacks, run after the built-in ones.
    """
    base = Path(base)
    # First: multi-worker collectives must be set up before any other op.
    dist = strategy(distribute) if distribute else None
    try:
        cfg = validate_distribution(resolve_run_config(base, config, overrides), distribute)
        with dist.output_folder(base, STATE_DIRNAME) if dist else contextlib.nullcontext(base) as out:
            return _train(base, Path(out), cfg, verbose, dist, callbacks or [])
    except atomic.DiskFull as exc:
        raise atomic.DiskFull(exc.errno, f"{exc}; the last checkpoint in {base / STATE_DIRNAME} is whole, and "
                                         "the same command resumes from it") from None
    finally:
        if dist is not None:
            dist.close()


def _train(base: Path, out: Path, cfg: Config, verbose, dist, extra_callbacks: list) -> TrainResult:
    """train() once the config is known; writes into ``out`` (``base``, except on non-chief workers),
    which it holds for the run (one run per folder)."""
    with runlock.hold(out):
        return _train_held(base, out, cfg, verbose, dist, extra_callbacks)


def _train_held(base: Path, out: Path, cfg: Config, verbose, dist, extra_callbacks: list) -> TrainResult:
    configure_keras(cfg)
    # Loaded before the corpus is read, so a wrong name is reported at once.
    init = pretrained.init_model(cfg.train.init, cfg) if cfg.train.init else None
    objective = objectives.for_config(cfg)
    train_mixer, valid_mixer = load_mixers(base, cfg, progress=verbose in (1, "auto"), form=objective.form)
    # Worker i of n draws its own mixtures, batch_size / n of them per step.
    batch_size = dist.worker_batch_size(cfg.train.batch_size) if dist else cfg.train.batch_size
    dataset = MixtureDataset(train_mixer, cfg, batch_size=batch_size, shard=dist.shard if dist else (0, 1))
    try:
        dataset.start_processes()  # they get ready while the validation set and the model are made
        validation = objective.validation(valid_mixer)
        with dist.scope() if dist else contextlib.nullcontext():
            # ``net`` is the network that is saved and separates; ``fit`` trains it, or the objective's
            # model around it (features on the device: one that computes the features from the sources first).
            net = objective.build(*initial_statistics(train_mixer, cfg, init))
            trained = compile_model(objective.training_model(net), cfg, objective)
        run = open_run_folder(out, cfg)
        if init is not None and run.weights is None:  # a resumed run restores its own weights
            pretrained.load_initial_weights(net, init, cfg.train.init)
        callbacks = RunCallbacks.build(cfg, out, run, dataset, extra_callbacks, net)
        fit = trained.fit if dist is None else (lambda d, **kw: dist.fit(trained, d, **kw))
        stopped = fit_run(fit, dataset, validation, cfg, run, callbacks, verbose)
    finally:
        dataset.close()  # the worker processes
    return finish(net, base, out, run, callbacks, stopped)


def initial_statistics(mixer: Mixer, cfg: Config, init=None):
    """The feature mean and variance the network is built with: the training data's, or with
    ``train.init`` the ones its model (``init``, :func:`deepclust.nn.pretrained.init_model`) learnt with
    (every resume too)."""
    if init is not None:
        return model_lib.feature_statistics(init.model)
    return feature_statistics(mixer, cfg, cfg.train.seed)


def configure_keras(cfg: Config) -> None:
    """Seed, precision policy and the allocator note, before anything is built."""
    keras.utils.set_random_seed(cfg.train.seed)
    # Set either way: the policy is global, and an earlier run in this process may have changed it.
    keras.mixed_precision.set_global_policy("mixed_float16" if cfg.train.mixed_precision else "float32")
    log.info("memory allocator: %s", allocator.describe())
    if allocator.advice():
        log.warning(allocator.advice())


def load_mixers(base: Path, cfg: Config, progress: bool, form: BatchForm = BatchForm()) -> tuple[Mixer, Mixer]:
    """The mixture drawers of ``base/train`` and ``base/valid``, drawing batches of ``form`` (the training
    objective's), with what was read logged."""
    log.info("reading %s and %s", base / TRAIN_LIST, base / VALID_LIST)
    mixers = []
    for name in (TRAIN_LIST, VALID_LIST):
        corpus = load_corpus(base / name, cfg.audio.sample_rate, cfg.data.min_speakers, progress=progress)
        log.info("%s: %d speakers, %d utterances, %.1f min%s", name, len(corpus.speakers), corpus.num_utterances,
                 corpus.seconds / 60,
                 f", {len(corpus.skipped)} skipped" if corpus.skipped else "")
        mixers.append(Mixer(corpus, cfg, form))
    return mixers[0], mixers[1]


def open_run_folder(out: Path, cfg: Config) -> RunState:
    """Make ``out`` ready for this run: leftovers of killed writes removed, the resolved config
    saved, the resume state read, history rows of epochs the run will redo dropped."""
    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / STATE_DIRNAME):
        atomic.remove_stale_temporaries(folder)
    atomic.write_text(out / CONFIG_FILENAME, cfg.to_toml())
    run = RunState.load(out / STATE_DIRNAME)
    history_csv.trim(out / HISTORY_FILENAME, run.epoch)
    return run


@dataclass
class RunCallbacks:
    """The built-in callbacks of a run, each by name, and their order in ``fit``."""

    best: cb.BestModel
    sync: cb.EpochSync
    throughput: cb.Throughput
    stop_nan: cb.StopOnNaN
    time_limit: cb.TimeLimit | None
    lr_plateau: keras.callbacks.ReduceLROnPlateau | None
    lr_schedule: cb.LearningRateSchedule | None
    early: keras.callbacks.EarlyStopping | None
    history: keras.callbacks.CSVLogger
    state: TrainingState
    interruption: cb.Interruption
    extra: list

    @classmethod
    def build(cls, cfg: Config, out: Path, run: RunState, dataset: MixtureDataset, extra: list,
              net: keras.Model | None = None):
        """The callbacks of a run that starts from ``run`` (a resumed run's best and training seconds go
        on from its state). ``net``: the model BestModel saves (default: the model fit trains)."""
        t, d = cfg.train, cfg.data
        best = cb.BestModel(out / MODEL_FILENAME, run.best, save=net)
        varying = d.whole_utterances  # frames per step vary: count what was served
        return cls(
            best=best, sync=cb.EpochSync(dataset),
            throughput=cb.Throughput(None if varying else t.batch_size * d.chunk_frames, dataset=dataset,
                                     before=run.step_seconds),
            stop_nan=cb.StopOnNaN(),
            time_limit=cb.TimeLimit(parse_duration(t.time_limit), run.clock) if t.time_limit else None,
            lr_plateau=keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=t.lr_factor,
                                                         patience=t.lr_patience, verbose=1) if t.lr_patience else None,
            lr_schedule=None if t.lr_schedule == "plateau" else cb.LearningRateSchedule(
                t.learning_rate, t.lr_schedule, t.lr_warmup, t.lr_floor, run.clock,
                seconds=parse_duration(t.time_limit) if t.time_limit else None, epochs=t.epochs),
            early=keras.callbacks.EarlyStopping(monitor="val_loss", patience=t.patience) if t.patience else None,
            history=keras.callbacks.CSVLogger(str(out / HISTORY_FILENAME), append=True),
            state=TrainingState(run, best), interruption=cb.Interruption(), extra=list(extra))

    def ordered(self) -> list[keras.callbacks.Callback]:
        """BestModel and Throughput before TrainingState: the state saved at an epoch's end must already
        know whether that epoch was the best, and its training seconds (in the epoch's logs). TrainingState
        last, after the history row: a kill between the two leaves a row that the resumed run drops
        (history_csv.trim) and redoes, rather than a missing row. Interruption after them all: a signal
        whose first raise was lost stops the run at the next batch's end (the last completed epoch's state
        kept), or at the epoch's end once that epoch's state is saved."""
        named = [self.best, self.sync, self.throughput, self.stop_nan, self.time_limit, self.lr_plateau, self.lr_schedule,
                 self.early, self.history, self.state, self.interruption]
        return [c for c in named if c is not None] + self.extra

    def stopped(self) -> str:
        """Why fit returned: "nan", "time limit", "early stopping", else "completed"."""
        if self.stop_nan.stopped_at is not None:
            return "nan"
        if self.time_limit is not None and self.time_limit.reached:
            return "time limit"
        if self.early is not None and self.early.stopped_epoch:
            return "early stopping"
        return "completed"


def fit_run(fit, dataset: MixtureDataset, validation, cfg: Config, run: RunState,
            callbacks: RunCallbacks, verbose) -> str:
    """Run ``fit`` once, from the epoch the run's state is at. Returns why training stopped
    ("completed", "time limit", ... or "interrupted")."""
    if verbose == "auto":  # a progress bar on a terminal; in a log one line per epoch, without colour codes
        verbose = 1 if sys.stdout.isatty() else 2
    if callbacks.time_limit is not None and callbacks.time_limit.spent():
        # Keras would still run one batch and a validation before a callback could stop it.
        log.info("the time limit (%s) is spent; nothing more to do", cfg.train.time_limit)
        return callbacks.stopped()
    try:
        with callbacks.interruption.catching():
            callbacks.sync.start(run.epoch)  # the batches fit draws to learn shapes: this epoch's
            fit(dataset, validation_data=validation, batch_size=cfg.train.batch_size, epochs=cfg.train.epochs,
                callbacks=callbacks.ordered(), verbose=verbose)
    except KeyboardInterrupt:
        log.warning("interrupted: the last completed epoch is saved in %s; run the same command to resume",
                    run.directory)
        return "interrupted"
    return callbacks.stopped()


def finish(net: keras.Model, base: Path, out: Path, run: RunState, callbacks: RunCallbacks,
           stopped: str) -> TrainResult:
    """Leave a usable model behind whatever happened, log and return the result."""
    if stopped == "nan":
        log.error("training stopped: the loss became NaN or infinite. The best model so far is kept in %s; "
                  "lower train.learning_rate or train.clipnorm and run again.", base / MODEL_FILENAME)
    elif not (out / MODEL_FILENAME).is_file():
        # No validation improvement was ever recorded (e.g. stopped before the first epoch ended).
        atomic_save_model(net, out / MODEL_FILENAME)
    rate, best = callbacks.throughput.rate, callbacks.best.best  # the best of model.keras, saved or not in a state
    result = TrainResult(base / MODEL_FILENAME, run.epoch, best, run.clock.elapsed, rate, stopped)
    log.info("training %s after %d epochs (%.0f s); best val_loss %.4f; %.0f frames/s; model: %s",
             stopped, run.epoch, run.clock.elapsed, best if math.isfinite(best) else float("nan"),
             rate, result.model_path)
    return result


def load_trained(base_or_model: str | Path) -> keras.Model:
    """The model of a training folder (``DIR/model.keras``) or a model file (:func:`deepclust.paths.locate`)."""
    return model_lib.load(paths.locate(base_or_model))

