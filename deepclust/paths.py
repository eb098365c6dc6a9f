"""The files of a run folder, and where a model is found (``--model``, ``--base``, ``$DEEPC_BASE``).

A run folder (``deepclust train --base DIR``) holds the lists ``train`` and
``valid`` and what training writes beside them: ``model.keras``,
``config.toml``, ``history.csv`` and ``checkpoints/``. Every command names
these files through the constants here.
"""

from __future__ import annotations

import os
from pathlib import Path

TRAIN_LIST = "train"
VALID_LIST = "valid"
MODEL_FILENAME = "model.keras"
CONFIG_FILENAME = "config.toml"
HISTORY_FILENAME = "history.csv"
STATE_DIRNAME = "checkpoints"
# The original project's variable: the training folder to separate with.
ENV_BASE = "DEEPC_BASE"


class ModelNotGiven(ValueError):
    """No model was named; the message says the three ways to name one."""


class ModelNotFound(FileNotFoundError):
    """A model was named and is not there; the message says what was looked for."""


def model_file(base_or_model: str | Path) -> Path:
    """A run folder's ``model.keras``, or the model file itself."""
    path = Path(base_or_model)
    return path / MODEL_FILENAME if path.is_dir() else path


def saved_config(model_path: str | Path) -> Path:
    """The ``config.toml`` a run saved beside its model (it may not exist for a copied model)."""
    return Path(model_path).parent / CONFIG_FILENAME


def find_model(base: str | Path | None = None, model: str | Path | None = None) -> Path:
    """Where the model is: ``model`` (``--model``), else ``base`` (``--base``), else ``$DEEPC_BASE``."""
    if model is not None:
        return Path(model)
    if base is None:
        base = os.environ.get(ENV_BASE)
    if not base:
        raise ModelNotGiven(
            f"no model given: pass --base DIR (a training folder) or --model FILE, "
            f"or set the {ENV_BASE} environment variable to the training folder."
        )
    return Path(base) / MODEL_FILENAME
