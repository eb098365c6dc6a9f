"""Which Keras backend deepclust runs on: chosen before Keras is first imported.

Keras reads ``KERAS_BACKEND`` (or ``~/.keras/keras.json``) once, when it is
first imported, and defaults to TensorFlow. deepclust installs with any one
backend (the extras ``deepclust[tensorflow]``, ``[jax]``, ``[torch]``): when
none is named, :func:`choose` takes the first one installed of TensorFlow,
JAX and PyTorch, so a machine without TensorFlow works as it is. A backend
that is named but not installed, or none installed at all, is a
:class:`BackendError` that says which extra to install (:func:`require`).
:func:`accelerators` lists the GPUs the chosen backend sees, once it is loaded.
:func:`load` imports Keras with the backend's start-up lines kept off the
console. Importing this module imports no backend.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

ENV = "KERAS_BACKEND"
PREFERENCE = ("tensorflow", "jax", "torch")
# The module each backend needs, and the extra that installs it.
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}
EXTRAS = {"tensorflow": "deepclust[tensorflow]", "jax": "deepclust[jax]", "torch": "deepclust[torch]"}


class BackendError(RuntimeError):
    """The Keras backend asked for (or any backend at all) is not installed; the message says what to install."""


def installed(name: str) -> bool:
    """Whether the module a backend needs can be imported (without importing it)."""
    module = MODULES.get(name, name)
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-imported package
        return False


def config_file_backend() -> str | None:
    """The backend ``~/.keras/keras.json`` (or ``$KERAS_HOME``'s) names, if any."""
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return json.loads((home / "keras.json").read_text()).get("backend") or None
    except (OSError, ValueError, AttributeError):
        return None


def choose() -> str | None:
    """Name a backend for Keras when nothing usable is named.

    ``KERAS_BACKEND`` is the user's choice and is kept (:func:`require` says so
    if it is not installed). Keras's config file is kept when its backend is
    installed; Keras writes that file by itself with its default, TensorFlow, so
    a file naming a missing backend is no choice and is passed over. Does nothing
    once Keras is imported. Returns the backend Keras will use, or None when no
    backend is installed.
    """
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    if os.environ.get(ENV):
        return os.environ[ENV].strip()
    in_file = config_file_backend()
    if in_file and installed(in_file):
        return in_file
    for name in PREFERENCE:
        if installed(name):
            os.environ[ENV] = name
            return name
    return None


def require() -> str:
    """The backend Keras will run on, or a BackendError saying what to install."""
    name = choose()
    if name is None:
        raise BackendError("deepclust needs a Keras backend and none is installed; install one of "
                           + ", ".join(f"pip install '{extra}'" for extra in EXTRAS.values())
                           + f". Received: {ENV} unset, none of {', '.join(PREFERENCE)} importable")
    if name in EXTRAS and not installed(name):
        others = [n for n in PREFERENCE if n != name and installed(n)]
        hint = f", or set {ENV}={others[0]} (installed)" if others else ""
        raise BackendError(f"the Keras backend {name!r} is not installed: pip install '{EXTRAS[name]}'{hint}. "
                           f"Received: {ENV}={name}")
    return name


@contextlib.contextmanager
def _stderr_captured():
    """File descriptor 2 sent to a temporary file for the block; what was written there is shown if the
    block fails, so an import error is never hidden."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def load(quiet: bool = True) -> str:
    """Import Keras on the backend :func:`require` names, and return that backend's name.

    With ``quiet``, the backend's start-up lines (TensorFlow's oneDNN and CUDA
    notes, and "failed call to cuInit" on a machine without a GPU) are kept off
    the console: its C++ logging writes them to file descriptor 2 before any
    setting reaches it (``TF_CPP_MIN_LOG_LEVEL`` no longer does since
    TensorFlow 2.20), so that descriptor is redirected while the backend starts
    and finds its devices. They are shown if the import fails.
    """
    name = require()
    if "keras" in sys.modules or not quiet:
        import keras

        return keras.backend.backend()
    with _stderr_captured():
        import keras

        accelerators()  # the device probe is where CUDA's start-up lines come from
        if name != "tensorflow" and installed("tensorflow"):
            # Keras's JAX and torch backends import TensorFlow too where it is installed (their data
            # adapters, at the first predict): imported here, its start-up lines stay off the console.
            import tensorflow  # noqa: F401
    return keras.backend.backend()


def accelerators() -> list[str]:
    """The GPUs (or other accelerators) this process's Keras backend sees; empty on a CPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []
