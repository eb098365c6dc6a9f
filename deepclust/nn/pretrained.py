"""The pretrained model shipped in the package: where it lives, how a run becomes it, and what uses it.

``deepclust/pretrained_model/`` holds ``model.keras`` (the network alone, no
optimizer state), the ``config.toml`` of the run that trained it and
``MODEL_CARD.md`` (data, licences, recipe, figures). ``deepclust separate``
falls back to it when no model is named (:func:`resolve`); ``train.init =
"pretrained"`` (``deepclust train --init pretrained``) starts a run from its
weights (:func:`load_initial_weights`); ``scripts/pretrained.py`` trains and
:func:`export`\\ s it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from .. import atomic, paths
from ..config import ConfigError

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).parents[1] / "pretrained_model"  # deepclust/pretrained_model/
CARD_FILENAME = "MODEL_CARD.md"
PRETRAINED = "pretrained"  # the name train.init and --init give the shipped model


class InitError(ConfigError):
    """The model a run should start from cannot be used; the message says why and what to do."""


def shipped_model(directory: Path | None = None) -> Path:
    return (directory or SHIPPED_DIR) / paths.MODEL_FILENAME


def resolve(base=None, model=None, directory: Path | None = None) -> tuple[Path, bool]:
    """The model ``--model``/``--base``/``$DEEPC_BASE`` name, else the shipped one: (path, whether shipped)."""
    try:
        return paths.find_model(base, model), False
    except paths.ModelNotGiven as exc:
        if shipped_model(directory).is_file():
            return shipped_model(directory), True
        raise paths.ModelNotGiven(f"{exc} (This install carries no pretrained model: {shipped_model(directory)} "
                                  "is missing.)") from None


def shipped_notice(path: Path) -> str:
    """The line ``separate``, ``evaluate``, ``visualize`` and ``export`` print first when they fall back to the
    shipped model."""
    return (f"no --base, --model or ${paths.ENV_BASE} given: using the pretrained model shipped in "
            f"deepclust ({path}; what it was trained on and how well it does: {path.parent / CARD_FILENAME})")


def locate(source: str | Path, directory: Path | None = None) -> Path:
    """The model file ``source`` names: ``"pretrained"`` (the shipped model), a run folder holding
    ``model.keras``, or a ``.keras`` file; :class:`paths.ModelNotFound` if there is none."""
    path = shipped_model(directory) if str(source) == PRETRAINED else paths.model_file(source)
    if not path.is_file():
        raise paths.ModelNotFound(f"no model at {path}; expected 'pretrained' (the shipped model), a training "
                                  f"folder holding {paths.MODEL_FILENAME}, or a .keras file. Received: {source!r}")
    return path


def init_model_path(init: str, directory: Path | None = None) -> Path:
    """``train.init``: ``"pretrained"`` (the shipped model), a run folder or a model file."""
    try:
        return locate(init, directory)
    except paths.ModelNotFound as exc:
        raise InitError(f"train.init: {exc}".replace("Received: ", "Received: init=")) from None


def init_model(init: str, directory: Path | None = None):
    """The model ``train.init`` names, loaded once for both :func:`deepclust.nn.model.feature_statistics` and
    :func:`load_initial_weights`."""
    from . import model as model_lib

    return model_lib.load(init_model_path(init, directory))


def load_initial_weights(net, source, init: str, directory: Path | None = None) -> Path:
    """Copy the weights of ``source`` (the model ``init`` names, :func:`init_model`) into ``net`` (built
    with :func:`deepclust.nn.model.feature_statistics`); refused, naming both shapes, when the networks differ."""
    from . import model as model_lib

    path = init_model_path(init, directory)
    theirs, ours = source.get_weights(), net.get_weights()
    mismatch = [(i, a.shape, b.shape) for i, (a, b) in enumerate(zip(theirs, ours)) if a.shape != b.shape]
    if len(theirs) != len(ours) or mismatch or len(source.outputs) != len(net.outputs):
        detail = (f"weight {mismatch[0][0]} is {mismatch[0][1]} there and {mismatch[0][2]} here" if mismatch
                  else f"{len(theirs)} weights and {len(source.outputs)} outputs there, "
                       f"{len(ours)} and {len(net.outputs)} here")
        raise InitError(f"train.init: {path} is a different network from the one this config builds ({detail}); "
                        f"train with the [model] and [features] of the config saved beside it "
                        f"({paths.saved_config(path)}). Received: init={init!r}")
    if model_lib.feature_spec(source).get_config() != model_lib.feature_spec(net).get_config():
        raise InitError(f"train.init: {path} reads other features (its [audio]/[features] differ from this "
                        f"config's); use the config saved beside it. Received: init={init!r}")
    net.set_weights(theirs)
    log.info("started from the weights of %s", path)
    return path


def export(run: str | Path, directory: Path | None = None) -> Path:
    """The model of run folder ``run`` written to ``directory`` without optimizer state, with its config."""
    from . import model as model_lib

    run = Path(run)
    net = model_lib.load(paths.model_file(run))  # not compiled: no optimizer to save
    directory = directory or SHIPPED_DIR
    directory.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(shipped_model(directory), suffix=".keras") as tmp:
        net.save(tmp)
    with atomic.replacing(directory / paths.CONFIG_FILENAME) as tmp:
        shutil.copyfile(paths.saved_config(paths.model_file(run)), tmp)
    return shipped_model(directory)
