"""Config values: durations, values written as TOML, and the range a field's metadata holds."""

import pytest

from deepclust.config.values import ConfigError, parse_duration, toml_value, value_range


def test_parse_duration():
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900 and parse_duration("2h") == 7200
    assert parse_duration("30") == 30
    with pytest.raises(ConfigError, match="expected a duration"):
        parse_duration("soon")


def test_toml_values_read_back_as_written():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    values = {"flag": True, "off": False, "count": 3, "rate": 0.1, "word": 'a "quoted" \\ path',
              "table": {"so762": 0.7, "espeak": 3.0}}
    text = "\n".join(f"{key} = {toml_value(value)}" for key, value in values.items())
    assert tomllib.loads(text) == values
    assert toml_value(True) == "true" and toml_value(1e-6) == "1e-06" and toml_value({}) == "{  }"


def test_value_range_is_field_metadata():
    assert value_range(0.0, 1.0, lo_open=True) == {"lo": 0.0, "hi": 1.0, "lo_open": True, "choices": None}
    assert value_range(choices=("a", "b"))["choices"] == ("a", "b")
