"""Config rules: the relations between values that no single field checks, and what a way of training cannot run.

:func:`deepclust.config.load.validate` calls :func:`check_relations` on every
config it loads; :func:`validate_distribution` is checked when a run knows its
distribution strategy. Each refusal names the key, why, and the way out.
"""

from __future__ import annotations

from .schema import Config
from .values import ConfigError, parse_duration, toml_value


def check_relations(config: Config, source: str = "config") -> None:
    """Raise ConfigError for the first relation between values of ``config`` that does not hold."""
    d, f = config.data, config.features
    if d.min_speakers > d.max_speakers:
        raise ConfigError(
            f"{source}: data.min_speakers must not exceed data.max_speakers. "
            f"Received: min_speakers={d.min_speakers}, max_speakers={d.max_speakers}"
        )
    if f.hop_length > f.window_length:
        raise ConfigError(
            f"{source}: features.hop_length must not exceed features.window_length. "
            f"Received: hop_length={f.hop_length}, window_length={f.window_length}"
        )
    if d.peak_gain_min > d.peak_gain_max:
        raise ConfigError(
            f"{source}: data.peak_gain_min must not exceed data.peak_gain_max. "
            f"Received: peak_gain_min={d.peak_gain_min}, peak_gain_max={d.peak_gain_max}"
        )
    a = config.augment
    if a.rt60_min > a.rt60_max or a.snr_min_db > a.snr_max_db:
        raise ConfigError(f"{source}: augment.rt60_min and augment.snr_min_db must not exceed their maxima. "
                          f"Received: rt60_min={a.rt60_min}, rt60_max={a.rt60_max}, "
                          f"snr_min_db={a.snr_min_db}, snr_max_db={a.snr_max_db}")
    for listed, share in (("noise_list", "noise"), ("rir_list", "reverb")):
        if getattr(a, listed) and not getattr(a, share):
            raise ConfigError(f"{source}: augment.{listed} gives recordings, but augment.{share} = 0 lets no source "
                              f"have one; set augment.{share} to the share of sources that should (such as 0.5). "
                              f"Received: {listed}={getattr(a, listed)!r}, {share}=0.0")
    if config.train.lr_schedule != "plateau":
        refuse_set(config, (("train", "lr_patience", "it halves the rate on plateaus: use one, lr_patience = 0 or "
                                                     "lr_schedule = 'plateau'"),),
                   f"{source}: train.lr_schedule", f"lr_schedule={config.train.lr_schedule!r}")
    if config.features.on_device:
        refuse_set(config, ON_DEVICE_UNSUPPORTED, f"{source}: features.on_device", "on_device=true")
    if config.train.time_limit and parse_duration(config.train.time_limit, what=f"{source}: train.time_limit") <= 0:
        raise ConfigError(f"{source}: train.time_limit: expected a positive duration such as 90s, 15m or 2h, or \"\" "
                          f"for no limit. Received: time_limit={config.train.time_limit!r}")


# What training with features on the device (deepclust.training.on_device) does not do yet: its model scores
# fixed-length chunks of sources.
ON_DEVICE_UNSUPPORTED = (
    ("model", "mask_head", "the mask head's targets are computed on the host: set features.on_device = false"),
    ("data", "whole_utterances", "batches of varying length: set features.on_device = false"),
)


# What the multi-worker loop (deepclust/training/tf_strategy.py) cannot run: it fixes one batch shape and scores one loss.
MULTIWORKER_UNSUPPORTED = (
    ("model", "mask_head", "the mask head's second loss (Chimera++) runs under fit: use one machine or "
                           "--distribute mirrored"),
    ("data", "whole_utterances", "batches of varying length: train on chunks (data.whole_utterances = false)"),
    ("features", "on_device", "its input pipeline computes features on the host: set features.on_device = false"),
)


def refuse_set(config: Config, rules, what: str, received: str) -> None:
    """A ConfigError for the first (section, key, why) of ``rules`` that ``config`` sets: ``what`` cannot train with it."""
    for section, key, why in rules:
        value = getattr(getattr(config, section), key)
        if value:
            raise ConfigError(f"{what} cannot train with {section}.{key} set ({why}). "
                              f"Received: {received}, {key}={toml_value(value)}")


def validate_distribution(config: Config, distribute: str | None) -> Config:
    """Refuse the combinations a distribution strategy cannot run, naming the key and the way out."""
    if distribute == "multiworker":
        refuse_set(config, MULTIWORKER_UNSUPPORTED, "--distribute multiworker", "distribute='multiworker'")
    return config
