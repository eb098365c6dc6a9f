"""Config values: the error every check raises, and what the schema and the rules both need of a value.

:class:`ConfigError` (the message names the key, what was expected and what
was received), the range a field's metadata allows (:func:`value_range`), a
value written as TOML (:func:`toml_value`) and durations such as ``"15m"``
(:func:`parse_duration`). Nothing here knows the config's sections.
"""

from __future__ import annotations

import re
from typing import Any


class ConfigError(ValueError):
    """A config file or override is invalid; the message says which key and why."""


def value_range(lo=None, hi=None, *, lo_open=False, choices=None) -> dict[str, Any]:
    """A field's metadata: the bounds (``lo`` excluded with ``lo_open``) or the choices its value must meet."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "choices": choices}


def toml_value(value: Any) -> str:
    """``value`` (a bool, string, number or table of them) as it is written in a TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|)\s*$", re.IGNORECASE)


def parse_duration(text: str, what: str = "duration") -> float:
    """``"90s"``, ``"15m"``, ``"2h"`` or plain seconds -> seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"{what}: expected a duration such as 90s, 15m or 2h. Received: {text!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    return number * {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}[unit]
