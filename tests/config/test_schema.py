"""The config schema: the sections, and one value checked against its field's type and range."""

import dataclasses

import pytest

from deepclust.config.schema import SECTIONS, Config, check_value
from deepclust.config.values import ConfigError


def field(section: str, name: str) -> dataclasses.Field:
    return {f.name: f for f in dataclasses.fields(SECTIONS[section])}[name]


def test_sections_are_the_configs_fields_in_order():
    assert list(SECTIONS) == [f.name for f in dataclasses.fields(Config)]
    assert all(isinstance(getattr(Config(), name), cls) for name, cls in SECTIONS.items())


def test_a_value_is_converted_to_its_fields_type():
    dropout = check_value("w", field("model", "dropout"), 0)
    assert dropout == 0.0 and isinstance(dropout, float)
    assert check_value("w", field("train", "jit"), "auto") == "auto"
    assert check_value("w", field("train", "jit"), False) is False
    assert check_value("w", field("data", "corpus_weights"), {"a": 1}) == {"a": 1.0}


@pytest.mark.parametrize("section, name, value, message", [
    ("model", "lstm_units", True, r"an integer. Received: lstm_units=True"),  # a bool is no integer
    ("model", "lstm_units", 0, r"at least 1. Received: lstm_units=0"),
    ("features", "silence_db", 0.0, r"greater than 0.0. Received: silence_db=0.0"),  # an open lower bound
    ("separate", "mask", "hard", r"one of 'binary', 'soft', 'network'. Received: mask='hard'"),
    ("train", "mixed_precision", 1, r"true or false. Received: mixed_precision=1"),
    ("data", "corpus_weights", {"a": 0}, r"positive sum. Received: corpus_weights=\{'a': 0\}"),
])
def test_a_value_out_of_its_type_or_range_is_refused_by_name(section, name, value, message):
    with pytest.raises(ConfigError, match=rf"^where: expected .*{message}"):
        check_value("where", field(section, name), value)
