"""The config: seven sections of checked values, read from TOML files and overrides (every stage reads it).

:mod:`~deepclust.config.values` holds the error and what every check shares,
:mod:`~deepclust.config.schema` the sections and each value's range,
:mod:`~deepclust.config.rules` the relations between values, and
:mod:`~deepclust.config.load` the reading of files and overrides. The names
below are re-exported so ``from deepclust.config import load_config`` reads as before.
"""

from .load import (CONFIG_DIR, RETIRED_KEYS, apply_overrides, config_from_dict, load_config, parse_override,
                   read_config_file, resolve_config_path, validate)
from .rules import check_relations, validate_distribution
from .schema import (MAX_SPEAKERS, SECTIONS, AudioConfig, AugmentConfig, Config, DataConfig, FeatureConfig, ModelConfig,
                     SeparateConfig, TrainConfig, check_value)
from .values import ConfigError, parse_duration, toml_value

__all__ = [
    "CONFIG_DIR", "MAX_SPEAKERS", "RETIRED_KEYS", "SECTIONS",
    "AudioConfig", "AugmentConfig", "Config", "ConfigError", "DataConfig", "FeatureConfig", "ModelConfig",
    "SeparateConfig", "TrainConfig",
    "apply_overrides", "check_relations", "check_value", "config_from_dict", "load_config", "parse_duration",
    "parse_override", "read_config_file", "resolve_config_path", "toml_value", "validate", "validate_distribution",
]
