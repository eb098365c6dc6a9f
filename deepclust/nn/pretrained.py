"""A run started from a trained model's weights (``--init``), and a run exported as the shipped pretrained model.

``deepclust/pretrained_model/`` (:data:`deepclust.paths.SHIPPED_DIR`) holds
``model.keras`` (the network alone, no optimizer state), the ``config.toml`` of
the run that trained it and ``MODEL_CARD.md`` (data, licences, recipe,
figures); :func:`deepclust.paths.locate` finds it, as it finds every model.
``train.init = "pretrained"`` (``deepclust train --init pretrained``, or a run
folder, or a ``.keras`` file) starts a run from those weights
(:func:`init_model`, :func:`load_initial_weights`); ``scripts/pretrained.py``
trains the shipped model and :func:`export`\\ s it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import NamedTuple

from .. import atomic, paths
from ..config import ConfigError

log = logging.getLogger(__name__)


class InitError(ConfigError):
    """The model a run should start from cannot be used; the message says why and what to do."""


class Initial(NamedTuple):
    """The model a run starts from (``train.init``): where it was found, and the network loaded from there."""

    path: Path
    model: object  # a keras.Model


def init_model(init: str, config) -> Initial:
    """The model ``train.init`` names, loaded once for both :func:`deepclust.nn.model.feature_statistics` and
    :func:`load_initial_weights`; refused at once when it reads other features than the run's ``config``
    (the network would be built with statistics of another number of bins). The one check of the features."""
    from . import model as model_lib

    try:
        path = paths.locate(init, argument="init")
    except paths.ModelNotFound as exc:
        raise InitError(f"train.init: {exc}") from None
    source = model_lib.load(path)
    spec = model_lib.feature_spec(source)
    pairs = {"audio.sample_rate": (spec.sample_rate, config.audio.sample_rate),
             "features.window_length": (spec.window_length, config.features.window_length),
             "features.hop_length": (spec.hop_length, config.features.hop_length),
             "features.silence_db": (spec.silence_db, config.features.silence_db),
             "features.input_level_db": (spec.input_level_db, config.features.input_level_db)}
    differ = [f"{key} {theirs} there, {ours} here" for key, (theirs, ours) in pairs.items() if theirs != ours]
    if differ:
        raise InitError(f"train.init: {path} reads other features ({'; '.join(differ)}); train with the "
                        f"[audio] and [features] of the config saved beside it ({paths.saved_config(path)}). "
                        f"Received: init={init!r}")
    return Initial(path, source)


def load_initial_weights(net, initial: Initial, init: str) -> Path:
    """Copy the weights of ``initial`` (the model ``init`` names, :func:`init_model`, whose features were
    checked there against the run's config) into ``net``; refused, naming both shapes, when the networks
    differ. The label width (``data.max_speakers``) may differ: the network's weights do not depend on it."""
    theirs, ours = initial.model.get_weights(), net.get_weights()
    mismatch = [(i, a.shape, b.shape) for i, (a, b) in enumerate(zip(theirs, ours)) if a.shape != b.shape]
    if len(theirs) != len(ours) or mismatch or len(initial.model.outputs) != len(net.outputs):
        detail = (f"weight {mismatch[0][0]} is {mismatch[0][1]} there and {mismatch[0][2]} here" if mismatch
                  else f"{len(theirs)} weights and {len(initial.model.outputs)} outputs there, "
                       f"{len(ours)} and {len(net.outputs)} here")
        raise InitError(f"train.init: {initial.path} is a different network from the one this config builds "
                        f"({detail}); train with the [model] and [features] of the config saved beside it "
                        f"({paths.saved_config(initial.path)}). Received: init={init!r}")
    net.set_weights(theirs)
    log.info("started from the weights of %s", initial.path)
    return initial.path


def export(run: str | Path, directory: Path | None = None) -> Path:
    """The model of run folder ``run`` written to ``directory`` (default the shipped model's folder,
    :data:`deepclust.paths.SHIPPED_DIR`) without optimizer state, with its config."""
    from . import model as model_lib

    source = paths.locate(run, argument="run")
    net = model_lib.load(source)  # not compiled: no optimizer to save
    directory = Path(directory or paths.SHIPPED_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(directory / paths.MODEL_FILENAME, suffix=".keras") as tmp:
        net.save(tmp)
    with atomic.replacing(directory / paths.CONFIG_FILENAME) as tmp:
        shutil.copyfile(paths.saved_config(source), tmp)
    return directory / paths.MODEL_FILENAME
