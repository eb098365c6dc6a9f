"""The files of a run folder and of the shipped model, and the one place that decides which model file a command uses.

A run folder (``deepclust train --base DIR``) holds the lists ``train`` and
``valid`` and what training writes beside them: ``model.keras``,
``config.toml``, ``history.csv`` and ``checkpoints/``. Every command names
these files through the constants here. The pretrained model shipped in the
package lies in ``deepclust/pretrained_model/`` (:data:`SHIPPED_DIR`).

:func:`locate` turns what names a model into its file, for every command and
API call (``separate``, ``evaluate``, ``visualize``, ``export``, ``train
--init``, :meth:`Separator.load <deepclust.separation.separator.Separator.load>`
and the scripts): ``--model`` (``"pretrained"``, a run folder or a ``.keras``
file), else ``--base`` (a run folder), else ``$DEEPC_BASE``, else, where the
caller falls back to it, the shipped model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

TRAIN_LIST = "train"
VALID_LIST = "valid"
MODEL_FILENAME = "model.keras"
CONFIG_FILENAME = "config.toml"
HISTORY_FILENAME = "history.csv"
STATE_DIRNAME = "checkpoints"
# The original project's variable: the training folder to separate with.
ENV_BASE = "DEEPC_BASE"
# The shipped model: model.keras (the network alone), the config.toml of its run, and its card.
SHIPPED_DIR = Path(__file__).parent / "pretrained_model"
CARD_FILENAME = "MODEL_CARD.md"
PRETRAINED = "pretrained"  # the name --model, train.init and the API give the shipped model
# What a model may be named as, said when one is not found.
MODEL_FORMS = {"model": f"'{PRETRAINED}' (the shipped model), a training folder holding {MODEL_FILENAME}, or a "
                        f".keras file",
               "base": f"a training folder holding {MODEL_FILENAME} (or a .keras file)"}


class ModelNotGiven(ValueError):
    """No model was named; the message says the three ways to name one."""


class ModelNotFound(FileNotFoundError):
    """A model was named and is not there; the message says what was looked for, where, and what is expected."""


def saved_config(model_path: str | Path) -> Path:
    """The ``config.toml`` a run saved beside its model (it may not exist for a copied model)."""
    return Path(model_path).parent / CONFIG_FILENAME


def shipped_model() -> Path:
    """The shipped model's file (``deepclust/pretrained_model/model.keras``)."""
    return SHIPPED_DIR / MODEL_FILENAME


def shipped_notice(path: Path) -> str:
    """The line a command says first when it falls back to the shipped model."""
    return (f"no --base, --model or ${ENV_BASE} given: using the pretrained model shipped in "
            f"deepclust ({path}; what it was trained on and how well it does: {path.parent / CARD_FILENAME})")


def locate(model: str | Path | None = None, base: str | Path | None = None, *,
           fallback: Callable[[str], None] | None = None, argument: str = "model") -> Path:
    """The model file to use, the first of:

    1. ``model`` (``--model``): ``"pretrained"`` (the shipped model), a run folder (its ``model.keras``)
       or a ``.keras`` file;
    2. ``base`` (``--base``): a run folder (its ``model.keras``; a ``.keras`` file works too);
    3. ``$DEEPC_BASE``, as ``base``;
    4. with ``fallback``, the shipped model, said through ``fallback`` (:func:`shipped_notice`; ``print`` for
       a command, ``log.info`` for an API call); without, :class:`ModelNotGiven` naming the three ways.

    A model named and not there is :class:`ModelNotFound`, naming the file looked for, what named it
    (``argument``: the keyword or flag ``model`` arrived as, ``init`` for ``train.init``) and what is expected.
    """
    for name, value in ((argument, model), ("base", base), (f"${ENV_BASE}", os.environ.get(ENV_BASE))):
        if value is not None and str(value) != "":
            return _existing(value, name, shipped_by_name=name == argument)
    shipped = shipped_model()
    given_by = (f"pass --base DIR (a training folder) or --model FILE, or set the {ENV_BASE} environment "
                f"variable to the training folder")
    if fallback is None:
        raise ModelNotGiven(f"no model given: {given_by}.")
    if not shipped.is_file():
        raise ModelNotGiven(f"no model given: {given_by}. (This install carries no pretrained model: {shipped} "
                            f"is missing.)")
    fallback(shipped_notice(shipped))
    return shipped


def _existing(value: str | Path, name: str, shipped_by_name: bool) -> Path:
    """The file ``value`` names (``name`` says where it came from); :class:`ModelNotFound` if none is there."""
    given = Path(value)
    if shipped_by_name and str(value) == PRETRAINED:
        path = shipped_model()
    else:
        path = given / MODEL_FILENAME if given.is_dir() or (given.suffix != ".keras" and not given.exists()) else given
    if not path.is_file():
        forms = MODEL_FORMS["model" if shipped_by_name else "base"]
        raise ModelNotFound(f"no model at {path}; expected {forms}: train one (deepclust train --base DIR) or name "
                            f"another. Received: {name}={str(value)!r}")
    return path
