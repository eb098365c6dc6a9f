"""Training on several devices: the strategy dispatcher for this Keras backend, and JAX's data parallelism.

``deepclust train --distribute KIND`` asks :func:`strategy` for an object
with one small interface (``shard``, ``worker_batch_size``, ``scope``,
``output_folder``, ``fit``) that :mod:`deepclust.training.train` drives:

| backend | ``mirrored`` (all local devices) | ``multiworker`` (several machines) |
| --- | --- | --- |
| TensorFlow | ``tf.distribute.MirroredStrategy`` | ``tf.distribute.MultiWorkerMirroredStrategy`` |
| JAX | ``keras.distribution.DataParallel`` | not supported |
| PyTorch | not supported | not supported |

The TensorFlow strategies live in :mod:`deepclust.training.tf_strategy` (imported only
then, so the other backends never need TensorFlow); JAX's is here.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import keras
import numpy as np

from ..config import ConfigError

log = logging.getLogger(__name__)

SUPPORTED = {"tensorflow": ("mirrored", "multiworker"), "jax": ("mirrored",), "torch": ()}


def strategy(kind: str):
    """The distribution object for ``kind`` on this backend; a ConfigError names what is supported."""
    backend = keras.backend.backend()
    if kind not in SUPPORTED.get(backend, ()):
        offered = ", ".join(f"{b}: {', '.join(k) or 'none'}" for b, k in SUPPORTED.items())
        raise ConfigError(f"--distribute {kind} is not supported on the Keras {backend} backend (supported: "
                          f"{offered}); use KERAS_BACKEND=tensorflow or jax, or train without --distribute. "
                          f"Received: distribute={kind!r}, backend={backend!r}")
    if backend == "tensorflow":
        from .tf_strategy import Distributed  # TensorFlow only: imported only when asked for

        return Distributed(kind)
    return JaxDataParallel()


class JaxDataParallel:
    """All local JAX devices, one model replica each (``keras.distribution.DataParallel``).

    The distribution is set before the model is built, so its variables are
    replicated on every device; Keras's JAX trainer then splits each batch over
    the devices and averages the gradients, so ``train.batch_size`` is the
    global batch and training takes the same steps whatever the device count.
    """

    kind = "mirrored"
    is_chief = True
    shard = (0, 1)

    def __init__(self):
        devices = keras.distribution.list_devices()
        self.replicas = len(devices)
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        log.info("mirrored (JAX data parallel): %d device(s): %s", self.replicas, ", ".join(map(str, devices)))

    def worker_batch_size(self, global_batch: int) -> int:
        if global_batch % self.replicas:
            raise ConfigError(f"train.batch_size={global_batch} (the global batch) cannot be split evenly across "
                              f"{self.replicas} devices; use a multiple of {self.replicas}. "
                              f"Received: batch_size={global_batch}")
        return global_batch

    def scope(self):
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def output_folder(self, base: Path, state_dirname: str):
        yield base

    def fit(self, model: keras.Model, dataset, *, validation_data, **kwargs):
        """``model.fit``, with validation cut to a multiple of the device count (each batch must split evenly)."""
        x, y = validation_data
        keep = len(x) - len(x) % self.replicas
        cut = (lambda a: a[:keep]) if keep != len(x) else (lambda a: a)
        y = tuple(cut(t) for t in y) if isinstance(y, tuple) else cut(y)
        return model.fit(dataset, validation_data=(cut(np.asarray(x)), y), **kwargs)

    def close(self) -> None:
        keras.distribution.set_distribution(None)
