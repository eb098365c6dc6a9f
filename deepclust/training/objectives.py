"""The one choice of a run's training objective (:mod:`deepclust.nn.objective`) from its config.

Each optional way of training is one plug-in in one module that holds all it
changes: the Chimera++ mask head (:class:`deepclust.nn.chimera.MaskHead`,
``model.mask_head``) and features computed on the device
(:class:`deepclust.training.on_device.SourcesOnDevice`, ``features.on_device``);
without them, :class:`deepclust.nn.objective.DeepClustering`. Which of them cannot
be combined is :mod:`deepclust.config.rules`' to refuse, when the config is loaded.
"""

from __future__ import annotations

from ..config import Config
from ..nn.chimera import MaskHead
from ..nn.objective import DeepClustering, Objective
from .on_device import SourcesOnDevice

__all__ = ["DeepClustering", "MaskHead", "Objective", "SourcesOnDevice", "for_config"]


def for_config(config: Config) -> Objective:
    """The objective ``config`` trains with: the mask head's with ``model.mask_head``, features on the device's
    with ``features.on_device`` (the rules refuse both at once), else :class:`DeepClustering`."""
    if config.model.mask_head:
        return MaskHead(config)
    if config.features.on_device:
        return SourcesOnDevice(config)
    return DeepClustering(config)
