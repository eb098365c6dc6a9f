"""Callbacks: the learning-rate schedule over the whole budget reaches its floor at the time limit."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest

from conftest import write_list_folder
from deepclust.config import ConfigError, load_config
from deepclust.training import callbacks as cb


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_the_schedule_warms_up_then_decays_to_its_floor(kind):
    rate = lambda p: cb.scheduled_rate(p, 2e-3, kind, 0.1, 0.01)  # noqa: E731
    assert rate(0.0) == 0.0 and rate(0.05) == pytest.approx(1e-3) and rate(0.1) == pytest.approx(2e-3)
    assert rate(1.0) == pytest.approx(2e-5) and rate(1.7) == pytest.approx(2e-5)  # the floor, then held
    after = [rate(p) for p in np.linspace(0.1, 1.0, 50)]
    assert all(a >= b for a, b in zip(after, after[1:]))  # never rises after the warm-up
    middle = rate(0.55)
    assert middle == pytest.approx(2e-3 * (0.01 + 0.99 * 0.5))  # half way down, both shapes


class FakeClock:
    elapsed = 0.0


def test_the_callback_follows_the_training_time():
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    clock = FakeClock()
    schedule = cb.LearningRateSchedule(1e-3, "cosine", 0.0, 0.1, clock, seconds=100.0)
    schedule.set_model(net)
    for elapsed, want in ((0.0, 1e-3), (50.0, 1e-3 * 0.55), (100.0, 1e-4), (130.0, 1e-4)):
        clock.elapsed = elapsed
        schedule.on_train_batch_begin(0)
        assert float(keras.ops.convert_to_numpy(net.optimizer.learning_rate)) == pytest.approx(want, rel=1e-5)


@pytest.mark.slow
def test_a_run_without_a_time_limit_schedules_over_its_epochs(tmp_path):
    """Without train.time_limit the budget is train.epochs: the rate at each step is the schedule's at
    (epochs done + steps done / steps per epoch) / epochs, and a resumed run goes on where it was."""
    from deepclust.training.train import train

    base = write_list_folder(tmp_path / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})
    over = {"train.epochs": 4, "train.lr_schedule": "linear", "train.lr_warmup": 0.0, "train.lr_floor": 0.1}
    train(base, "tiny", {**over, "train.epochs": 2}, verbose=0)
    train(base, "tiny", over, verbose=0)  # resumed for epochs 3 and 4
    rates = [float(r["learning_rate"]) for r in csv.DictReader(open(base / "history.csv"))]
    peak, steps = load_config("tiny").train.learning_rate, load_config("tiny").train.steps_per_epoch
    # The rate logged at an epoch's end is the one its last step ran at; the 2-epoch run scheduled over 2 epochs.
    want = [cb.scheduled_rate((e + (steps - 1) / steps) / n, peak, "linear", 0.0, 0.1) for e, n in
            ((0, 2), (1, 2), (2, 4), (3, 4))]
    np.testing.assert_allclose(rates, want, rtol=1e-5)


def test_a_schedule_and_plateau_halving_are_refused_together():
    with pytest.raises(ConfigError, match="train.lr_schedule cannot train with train.lr_patience set.*use one"):
        load_config("tiny", {"train.lr_schedule": "cosine", "train.lr_patience": 3})


def test_a_signal_swallowed_where_it_landed_still_stops_training():
    """SIGTERM raises at once; where C code swallows that KeyboardInterrupt (numpy converting a JAX array did,
    and JAX training went on), the next batch's end raises it again. The handlers go when the block ends."""
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    interruption = cb.Interruption()
    interruption.on_train_batch_end(0)  # nothing received: nothing raised
    with interruption.catching():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                pass
        except KeyboardInterrupt:
            pass  # what the C code did with it
        with pytest.raises(KeyboardInterrupt, match=f"signal {int(signal.SIGTERM)}"):
            interruption.on_train_batch_end(0)
        with pytest.raises(KeyboardInterrupt):
            interruption.on_epoch_end(0)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_ignored_before_training_stays_ignored():
    """A job started in the background of a shell ignores SIGINT: Ctrl-C was never meant to reach it."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with cb.Interruption().catching():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGINT, previous)
