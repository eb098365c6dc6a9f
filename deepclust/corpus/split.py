"""The speaker-disjoint split that both corpus tools share: how many speakers each split gets, and which.

``prepare`` (real corpora) and the demo corpus (:mod:`deepclust.corpus.demo`)
both size the ``train``/``valid``/``test`` splits with :func:`split_sizes`,
hand shuffled speakers out with :func:`deal`, refuse to overwrite existing
lists with :func:`refuse_existing_lists`, and raise :class:`CorpusError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, TypeVar

import numpy as np

SPLITS = ("train", "valid", "test")

T = TypeVar("T")


class CorpusError(ValueError):
    """A corpus cannot be made or prepared; the message names the cause and the fix."""


def refuse_existing_lists(base: Path, overwrite: bool) -> None:
    for split in SPLITS:
        path = base / split
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: a list already exists; refusing to overwrite it "
                                  f"(use --force, or overwrite=True, to replace the lists).")


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise CorpusError(f"{name} is the share of speakers held out and must be in [0, 1). "
                          f"Received: {name}={value}")


def split_sizes(count: int, valid_fraction: float, test_fraction: float, min_test: int = 1,
                min_valid: int = 1) -> dict[str, int]:
    """Speakers per split: rounded fractions, at least one speaker each (``min_test`` for test, ``min_valid``
    for valid)."""
    _check_fraction("valid_fraction", valid_fraction)
    _check_fraction("test_fraction", test_fraction)
    if valid_fraction + test_fraction >= 1.0:
        raise CorpusError(f"valid_fraction + test_fraction must leave speakers for training (sum < 1). "
                          f"Received: valid_fraction={valid_fraction}, test_fraction={test_fraction}")
    test = max(min_test, round(test_fraction * count))
    valid = max(min_valid, round(valid_fraction * count))
    while count - valid - test < 1:  # rounding took every speaker: give some back to train
        if valid > min_valid and (valid >= test or test <= min_test):
            valid -= 1
        elif test > min_test:
            test -= 1
        else:
            break
    return {"train": count - valid - test, "valid": valid, "test": test}


def deal(order: Sequence[T], sizes: dict[str, int]) -> dict[str, list[T]]:
    """Shuffled speakers dealt to the splits: the first ``sizes['train']`` to train, then valid, then test."""
    bounds = np.cumsum([0] + [sizes[s] for s in SPLITS])
    return {split: list(order[bounds[i]:bounds[i + 1]]) for i, split in enumerate(SPLITS)}
