"""Training on several devices or machines with TensorFlow's strategies (``deepclust train --distribute``).

Everything that needs ``tf.distribute`` or ``tf.data`` lives here, and
:func:`deepclust.training.strategy.strategy` imports this module only when ``distribute`` is
given on the TensorFlow backend, so the other Keras backends never need TensorFlow.

- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over all local GPUs
  (or the CPU). The model is built and compiled in its scope and trained by
  plain ``model.fit``; ``train.batch_size`` is the global batch, split
  evenly across the replicas.
- ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, the
  cluster read from ``TF_CONFIG``. ``model.fit`` fails under this strategy
  in Keras 3 (keras-team/keras#20585), so :func:`Distributed.fit` runs a
  small loop instead that calls the model's own ``train_step`` (fit's step:
  same loss, optimizer, loss scaling) under ``strategy.run`` and drives the
  same Keras callbacks as fit, so checkpoints, best model, history, time
  limit, early stopping and resume behave as in a plain run. Worker ``i`` of
  ``n`` draws its own mixtures (``MixtureDataset(shard=(i, n))``) in batches of
  ``batch_size / n``. Every worker runs the same callbacks, so that any
  collective op a save may involve is matched on all of them, but only the
  chief writes into the training folder; the others write into a temporary
  folder that is deleted at the end. On start every worker reads the chief's
  newest training state, so the folder must be on a filesystem all workers
  share (or be copied to each before a resume).
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..config import ConfigError
from .state import latest_state

log = logging.getLogger(__name__)

STRATEGIES = ("mirrored", "multiworker")


class Distributed:
    """A strategy and this process's place in it."""

    def __init__(self, kind: str):
        if kind not in STRATEGIES:
            raise ConfigError(f"unknown distribution strategy; expected one of {', '.join(STRATEGIES)}. "
                              f"Received: distribute={kind!r}")
        if keras.backend.backend() != "tensorflow":
            raise ConfigError(f"--distribute needs the TensorFlow backend of Keras (KERAS_BACKEND=tensorflow). "
                              f"Received: backend={keras.backend.backend()!r}")
        self.kind = kind
        self.worker_index, self.num_workers = 0, 1
        if kind == "mirrored":
            self.strategy = tf.distribute.MirroredStrategy()
        else:
            # Created before any other TensorFlow op: collective ops must be
            # set up before the runtime starts.
            resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
            cluster = resolver.cluster_spec().as_dict()
            chiefs, workers = cluster.get("chief", []), cluster.get("worker", [])
            task_type, task_id = resolver.task_type, resolver.task_id
            if task_type not in (None, "chief", "worker"):
                raise ConfigError(f"TF_CONFIG: this task type is not supported; use 'chief' and 'worker'. "
                                  f"Received: task type={task_type!r}")
            if not chiefs and not workers:
                log.warning("--distribute multiworker without a cluster in TF_CONFIG: training as a single worker")
            self.num_workers = max(1, len(chiefs) + len(workers))
            # The chief (or worker 0 without one) is worker 0, as tf.distribute numbers them.
            self.worker_index = 0 if task_type in (None, "chief") else int(task_id or 0) + len(chiefs)
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        self.replicas = self.strategy.num_replicas_in_sync
        self.local_replicas = max(1, self.replicas // self.num_workers)
        self._scratch: Path | None = None
        log.info("%s: %d replica(s) in sync, worker %d of %d", kind, self.replicas, self.worker_index + 1,
                 self.num_workers)

    def close(self) -> None:
        """Nothing to undo: the strategy is used through its scope only."""

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.worker_index, self.num_workers

    def worker_batch_size(self, global_batch: int) -> int:
        """This worker's share of the global batch; refuses a batch the replicas cannot split evenly."""
        if global_batch % self.replicas:
            raise ConfigError(f"train.batch_size (the global batch) cannot be split evenly across "
                              f"{self.replicas} replicas; use a multiple of {self.replicas}. "
                              f"Received: batch_size={global_batch}")
        return global_batch // self.num_workers

    def scope(self):
        return self.strategy.scope()

    @contextmanager
    def output_folder(self, base: Path, state_dirname: str):
        """Where this worker writes: ``base`` for the chief, else a temporary folder holding a copy of the
        chief's newest training state (so every worker resumes from the same epoch); deleted afterwards."""
        if self.is_chief:
            yield base
            return
        scratch = Path(tempfile.mkdtemp(prefix=f"deepclust-worker{self.worker_index}-"))
        try:
            state = latest_state(base / state_dirname)
            if state is not None:
                (scratch / state_dirname).mkdir()
                weights = state[1]
                for path in (weights, weights.with_name(weights.name.replace(".weights.h5", ".json"))):
                    shutil.copy2(path, scratch / state_dirname / path.name)
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # -- training ------------------------------------------------------------------
    def fit(self, model: keras.Model, dataset, *, validation_data, batch_size: int, epochs: int,
            callbacks: list, verbose):
        """``model.fit(dataset, ...)`` under the strategy (the multi-worker loop where fit cannot run)."""
        with self.strategy.scope():
            if self.kind == "mirrored":
                return model.fit(dataset, validation_data=validation_data, batch_size=batch_size, epochs=epochs,
                                 callbacks=callbacks, verbose=verbose)
            return self._fit_loop(model, dataset, validation_data, batch_size, epochs, callbacks,
                                  verbose if self.is_chief else 0)

    def _fit_loop(self, model, dataset, validation_data, batch_size, epochs, callbacks, verbose):
        strategy = self.strategy
        steps = len(dataset)
        if getattr(model, "jit_compile", False):
            log.info("train.jit is not used under --distribute multiworker")
        callback_list = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                                     verbose=verbose, epochs=epochs, steps=steps, model=model)
        train_function = self._train_function(model)
        x_valid, y_valid = validation_data

        model.stop_training = False
        callback_list.on_train_begin()
        logs, training_logs = {}, None
        initial_epoch = getattr(model, "_initial_epoch", None) or 0
        self._check_same_epoch(initial_epoch)
        for epoch in range(initial_epoch, epochs):
            if self._any_worker(model.stop_training):
                break
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)  # EpochSync: the dataset draws this epoch's mixtures
            iterator = iter(strategy.distribute_datasets_from_function(self._input_function(dataset)))
            for step in range(steps):
                callback_list.on_train_batch_begin(step)
                logs = {k: float(v) for k, v in train_function(iterator).items()}
                callback_list.on_train_batch_end(step, logs)
                # Time limits and the like are decided per worker: all stop at the same step or none.
                if self._any_worker(model.stop_training):
                    model.stop_training = True
                    break
            epoch_logs = dict(logs)
            epoch_logs["val_loss"] = self._validation_loss(model, x_valid, y_valid, batch_size)
            callback_list.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if self._any_worker(model.stop_training):
                model.stop_training = True
                break
        if epochs > 0:
            model.optimizer.finalize_variable_values(model.trainable_weights)
        callback_list.on_train_end(logs=training_logs)
        return model.history

    def _train_function(self, model):
        strategy = self.strategy

        @tf.function
        def train_function(iterator):
            outputs = strategy.run(model.train_step, args=(next(iterator),))
            return {name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                    for name, value in outputs.items()}

        return train_function

    def _input_function(self, dataset):
        """tf.data pipeline of this worker's batches (``dataset[i]`` for the current epoch), split into
        per-replica batches that this worker's replicas take in turn."""
        first_x, first_y = (np.asarray(a) for a in dataset.mixer.batch(np.random.default_rng(0), 1))
        x_shape, y_shape = first_x.shape[1:], first_y.shape[1:]
        workers = max(1, int(getattr(dataset, "workers", 1) or 1))
        global_batch = dataset.batch_size * self.num_workers

        def fetch(index):
            x, y = dataset[int(index)]
            return np.asarray(x, np.float32), np.asarray(y, np.float32)

        def load(index):
            x, y = tf.numpy_function(fetch, [index], (tf.float32, tf.float32), stateful=False)
            x.set_shape((dataset.batch_size, *x_shape))
            y.set_shape((dataset.batch_size, *y_shape))
            return x, y

        def input_function(context: tf.distribute.InputContext):
            per_replica = context.get_per_replica_batch_size(global_batch)
            ds = tf.data.Dataset.range(len(dataset)).map(load, num_parallel_calls=workers, deterministic=True)
            return ds.unbatch().batch(per_replica, drop_remainder=True).prefetch(2)

        return input_function

    def _any_worker(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any worker (a collective op: every worker must call it)."""
        if self.num_workers == 1:
            return bool(flag)
        return float(self._sum_over_workers(tf.constant(1.0 if flag else 0.0))) > 0

    def _check_same_epoch(self, epoch: int) -> None:
        """Refuse to start when the workers found different training states (e.g. no shared folder)."""
        if self.num_workers == 1:
            return
        total, squares = (float(v) for v in self._sum_over_workers(tf.constant([epoch, epoch * epoch], tf.float64)))
        if self.num_workers * squares != total * total:  # all equal exactly when n * sum(e^2) == sum(e)^2
            raise ConfigError(
                "the workers resume from different epochs: each must see the chief's training folder, on a shared "
                f"filesystem or copied there before the run. Received: epoch={epoch} on this worker")

    @tf.function
    def _sum_over_workers(self, value):
        per_replica = self.strategy.run(tf.identity, args=(value,))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None) / self.local_replicas

    def _validation_loss(self, model, x, y, batch_size: int) -> float:
        """fit's ``val_loss`` (mean over all chunks of the compiled loss, plus regularisation), each worker
        scoring its share of the chunks; the same value on every worker."""
        mine = np.arange(self.worker_index, len(x), self.num_workers)
        total = 0.0
        for start in range(0, len(mine), batch_size):
            index = mine[start:start + batch_size]
            total += float(np.sum(keras.ops.convert_to_numpy(self._per_chunk_loss(model, tf.constant(x[index]), tf.constant(y[index])))))
        sums = np.array([total, float(len(mine))])
        if self.num_workers > 1:
            sums = np.array([float(self._sum_over_workers(tf.constant(v, tf.float64))) for v in sums])
        extra = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
        return sums[0] / sums[1] + extra if sums[1] else math.nan

    @tf.function(reduce_retracing=True)
    def _per_chunk_loss(self, model, x, y):
        return model.loss.call(y, model(x, training=False))
