"""Config loading: a config from defaults, a TOML file (a path or a shipped name), saved tables and overrides.

Every value read is checked by the schema (:func:`deepclust.config.schema.check_value`)
and every config loaded by the rules (:func:`deepclust.config.rules.check_relations`);
either raises :class:`~deepclust.config.values.ConfigError` naming the key.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from .rules import check_relations
from .schema import SECTIONS, Config, check_value
from .values import ConfigError, toml_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The shipped configs are the repository's top-level configs/ (a user edits them and passes a path); the
# package reaches them through the link deepclust/configs -> ../configs, and a wheel carries copies.
CONFIG_DIR = Path(__file__).parents[1] / "configs"

log = logging.getLogger(__name__)


# Keys earlier versions wrote into config.toml that no longer mean anything: (why, kept). A run's
# config.toml holds every key, so a retired key whose value asks for what deepclust still does
# (``kept``; ANY: whatever the value) is skipped with a warning, and models trained then still load;
# any other value asked for an option since removed, and is refused, naming the key, why and what to do.
ANY = object()
RETIRED_KEYS = {
    ("separate", "auto_threshold"): ("speaker counting now compares k-means centres (separate.auto_max_cosine)", ANY),
    # Options measured worse than the default, removed (README, "Options removed"; issue 43).
    ("train", "objective"): (
        'the whitened k-means objective ("whitened") was removed, measured worse than the affinity loss: '
        '0.9 dB SDRi below it on validation voices even at its best soft temperature (RESULTS.md, '
        '"The whitened objective"); the affinity loss is the only one', "affinity"),
    ("model", "utterance_mean"): (
        "the network's utterance mean normalisation was removed, measured worse: 1.6 dB SDRi less on FSDD "
        'pairs, 1 dB less on 3 espeak-ng voices (RESULTS.md, "Utterance mean normalisation in the network")',
        False),
    ("separate", "input_mean"): (
        'the utterance mean at separation ("utterance") was removed, measured worse: 3.99 against 4.16 dB '
        'SDRi on speechocean762, 2.99 against 3.63 on FSDD (RESULTS.md, "The model shipped before, and '
        'fine-tuning"); features are normalised by the training statistics, as trained', "training"),
    ("separate", "phase_iterations"): (
        "MISI phase reconstruction was removed, measured worse with the network's masks: 0.05-0.3 dB SDRi "
        'less (RESULTS.md, "A fourth hour, the last weights, and phase reconstruction"); each source is '
        "inverted with the mixture's phase", 0),
    ("data", "long_chunk_frames"): (
        "the chunk-length curriculum (DPCL++'s longer training chunks from data.long_chunk_from of the budget "
        "on) was removed, measured worse: 6.15 against 6.98 dB SDRi on 2 speakers, 4.09 against 5.01 on 3 "
        '(RESULTS.md, "Magnitude weighting, Chimera++ and the chunk curriculum"); training chunks are '
        "data.chunk_frames long throughout (set it, with train.batch_size, for longer ones)", 0),
    # Meant nothing without data.long_chunk_frames, which is refused above when it asks for the curriculum.
    ("data", "long_chunk_from"): (
        'the chunk-length curriculum it timed was removed, measured worse (RESULTS.md, "Magnitude weighting, '
        'Chimera++ and the chunk curriculum")', ANY),
}


def _retired(source: str, section: str, key: str, value: Any, saved: bool = False) -> None:
    """Warn that a retired key is skipped, or refuse it when its value asks for what was removed; in the
    ``saved`` config of a trained run (``config_from_dict``), warn at any value: the network it trained is
    what it is, and separating with it, or resuming it without the removed option, must still work."""
    why, kept = RETIRED_KEYS[section, key]
    if kept is ANY or (type(value) is type(kept) and value == kept):
        log.warning("%s: %s.%s is no longer used and is ignored: %s. Delete the line.", source, section, key, why)
        return
    if saved:
        log.warning("%s: this run was trained with %s.%s = %s, which is no longer possible: %s. The run's network "
                    "loads and separates as before; a resumed run trains on without it.", source, section, key,
                    toml_value(value), why)
        return
    raise ConfigError(
        f"{source}: {section}.{key} = {toml_value(value)} is no longer possible: {why}. Delete the line "
        f"(what {section}.{key} = {toml_value(kept)} did is what deepclust does). Received: {section}.{key}={value!r}"
    )


def _apply(config: Config, data: dict[str, Any], source: str, saved: bool = False) -> None:
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{section}]; expected one of {', '.join(SECTIONS)}. "
                f"Received: section={section!r}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table. Received: {section}={values!r}")
        target = getattr(config, section)
        fields = {f.name: f for f in dataclasses.fields(target)}
        for key, value in values.items():
            if (section, key) in RETIRED_KEYS:
                _retired(source, section, key, value, saved)
                continue
            if key not in fields:
                raise ConfigError(
                    f"{source}: unknown key {section}.{key}; valid keys in [{section}] are "
                    f"{', '.join(fields)}. Received: {section}.{key}={value!r}"
                )
            setattr(target, key, check_value(f"{source}: {section}.{key}", fields[key], value))


def validate(config: Config, source: str = "config") -> Config:
    """Check the relations between values that no single field can check (:mod:`deepclust.config.rules`)."""
    check_relations(config, source)
    return config


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A config given as a path, or as the name of a shipped one (``default``, ``tiny``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{Path(str(name_or_path)).stem}.toml"
    if shipped.is_file() and path.parent == Path("."):
        return shipped
    if path.suffix == "" and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
    raise ConfigError(
        f"config file {str(name_or_path)!r} not found; give a path to a TOML file or one of the shipped "
        f"configs: {names}. Received: config={str(name_or_path)!r}"
    )


def load_config(name_or_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file (a path or a shipped name), then ``overrides``.

    ``overrides`` maps dotted keys (``"train.epochs"``) to values.
    """
    config = Config()
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax at the position shown.") from None
        _apply(config, data, str(path))
    if overrides:
        config = apply_overrides(config, overrides)
    return validate(config, str(name_or_path) if name_or_path else "config")


def apply_overrides(config: Config, overrides: dict[str, Any], source: str = "override") -> Config:
    """A new config: ``config`` (left as it is) with ``overrides``, dotted keys to values, applied and checked."""
    config = copy.deepcopy(config)
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        if "." not in dotted:
            raise ConfigError(f"{source}: expected a key of the form section.key. Received: {dotted!r}")
        section, key = dotted.split(".", 1)
        nested.setdefault(section, {})[key] = value
    _apply(config, nested, source)
    return validate(config, source)


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.epochs=5"`` -> ``("train.epochs", 5)``; the value is read as TOML."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.key=value. Received: {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word is a string: --set separate.mask=soft
    return key.strip(), value


def config_from_dict(data: dict[str, Any], source: str = "saved config") -> Config:
    """The config a trained run saved (its ``config.toml``): a removed option in it is skipped with a warning
    whatever its value (:func:`_retired`), where a config given for a new run refuses it."""
    config = Config()
    _apply(config, data, source, saved=True)
    return validate(config, source)


def read_config_file(path: str | Path) -> Config:
    path = Path(path)
    return config_from_dict(tomllib.loads(path.read_text(encoding="utf-8")), str(path))
