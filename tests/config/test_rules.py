"""The relations between config values, and what a way of training cannot run: each refused by name."""

import pytest

from deepclust.config import ConfigError, load_config
from deepclust.config.rules import check_relations, validate_distribution
from deepclust.config.schema import Config


@pytest.mark.parametrize("section, values, message", [
    ("data", {"min_speakers": 3, "max_speakers": 2}, r"data.min_speakers must not exceed data.max_speakers"),
    ("features", {"hop_length": 300, "window_length": 256}, r"features.hop_length must not exceed features.window_length"),
    ("augment", {"rt60_min": 0.9, "rt60_max": 0.5}, r"augment.rt60_min and augment.snr_min_db must not exceed"),
    ("augment", {"noise_list": "noise.txt"}, r"augment.noise_list gives recordings, but augment.noise = 0"),
    ("train", {"lr_schedule": "cosine", "lr_patience": 3}, r"train.lr_schedule cannot train with train.lr_patience"),
])
def test_each_relation_is_refused_naming_its_keys(section, values, message):
    config = Config()
    check_relations(config, "here")  # the defaults hold every relation
    for key, value in values.items():
        setattr(getattr(config, section), key, value)
    with pytest.raises(ConfigError, match=rf"^here: {message}.*Received: "):
        check_relations(config, "here")


@pytest.mark.parametrize("limit", ["0", "0m", "0.0h"])
def test_time_limit_must_be_positive(limit):
    with pytest.raises(ConfigError, match=r"positive duration.*Received: time_limit="):
        load_config("tiny", {"train.time_limit": limit})


@pytest.mark.parametrize("key", ["model.mask_head", "data.whole_utterances", "features.on_device"])
def test_what_the_multiworker_loop_cannot_run_is_refused_by_name(key):
    cfg = load_config("tiny", {key: True})
    assert validate_distribution(cfg, "mirrored") is cfg  # fit runs these under one machine's strategies
    with pytest.raises(ConfigError, match=rf"--distribute multiworker cannot train with {key} set .*"
                                          rf"Received: distribute='multiworker', {key.split('.')[1]}=true"):
        validate_distribution(cfg, "multiworker")
