"""The run's resume state: the newest complete state is the one resumed from; saved atomically, pruned,
read back the same, with the best loss and training seconds the other callbacks report; an epoch with
a NaN leaves the previous state as it was."""

from __future__ import annotations

import json
import math

import keras
import numpy as np

from deepclust.training import callbacks as cb, state as run_state


def write_state(folder, epoch: int, meta: dict | None = None, weights: bytes = b"w") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"epoch-{epoch:06d}.weights.h5").write_bytes(weights)
    if meta is not None:
        (folder / f"epoch-{epoch:06d}.json").write_text(json.dumps(meta))


def test_the_newest_state_with_both_files_whole_is_the_latest(tmp_path):
    folder = tmp_path / "checkpoints"
    assert run_state.latest_state(folder) is None  # no folder yet: a new run
    write_state(folder, 2, {"epoch": 2, "best": 0.5})
    write_state(folder, 3)  # weights written, killed before the metadata
    write_state(folder, 4, None)
    (folder / "epoch-000004.json").write_text("{not json")  # cut short
    epoch, weights, meta = run_state.latest_state(folder)
    assert (epoch, weights.name, meta["best"]) == (2, "epoch-000002.weights.h5", 0.5)


def tiny_model() -> keras.Model:
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return net


def test_a_saved_state_reads_back_and_older_ones_are_pruned(tmp_path):
    folder = tmp_path / "checkpoints"
    run = run_state.RunState(folder)
    net = tiny_model()
    x, y = np.ones((8, 2), np.float32), np.zeros((8, 1), np.float32)
    net.fit(x, y, validation_data=(x, y), epochs=3, verbose=0, callbacks=[run_state.TrainingState(run)])
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"epoch-00000{e}.{s}" for e in (2, 3) for s in ("json", "weights.h5")]  # the newest and one more
    again = run_state.RunState.load(folder)
    assert (again.epoch, again.weights, again.saved_seconds) == (3, run.weights, run.saved_seconds)
    assert again.clock.elapsed >= run.saved_seconds

    # A resumed fit starts from the saved weights and at the saved epoch.
    resumed = tiny_model()
    resumed.fit(x, y, epochs=4, verbose=0, callbacks=[run_state.TrainingState(again)])
    assert again.epoch == 4


def test_an_epoch_ending_with_non_finite_weights_saves_no_state(tmp_path):
    folder = tmp_path / "checkpoints"
    run = run_state.RunState(folder)
    net = tiny_model()
    state = run_state.TrainingState(run)
    state.set_model(net)
    state.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    net.layers[0].kernel.assign(np.full((2, 1), np.nan, np.float32))
    state.on_epoch_end(1, {"loss": 1.0, "val_loss": 1.0})
    state.on_epoch_end(1, {"loss": math.nan})
    assert run.epoch == 1 and run_state.latest_state(folder)[0] == 1


def test_the_state_records_the_best_loss_and_training_seconds_the_other_callbacks_report(tmp_path):
    """TrainingState is the run's one writer: it takes the best from BestModel and the training
    seconds from the epoch's logs (Throughput's), and keeps the run's where there are none."""
    folder = tmp_path / "checkpoints"
    write_state(folder, 1, {"epoch": 1, "elapsed_seconds": 5.0, "step_seconds": 4.0, "best": 0.5})
    run = run_state.RunState.load(folder)
    best = cb.BestModel(tmp_path / "model.keras", run.best)
    state = run_state.TrainingState(run, best)
    net = tiny_model()
    for callback in (best, state):
        callback.set_model(net)
    worse = {"loss": 1.0, "val_loss": 0.75, "train_seconds": 6.5}
    for callback in (best, state):  # the order of RunCallbacks.ordered()
        callback.on_epoch_end(1, worse)
    meta = json.loads((folder / "epoch-000002.json").read_text())
    assert (meta["best"], meta["step_seconds"]) == (0.5, 6.5) and not (tmp_path / "model.keras").exists()
    better = {"loss": 1.0, "val_loss": 0.25}  # no train_seconds logged: the run's stay
    for callback in (best, state):
        callback.on_epoch_end(2, better)
    meta = json.loads((folder / "epoch-000003.json").read_text())
    assert (meta["best"], meta["step_seconds"]) == (0.25, 6.5) and (tmp_path / "model.keras").is_file()
    assert (run.epoch, run.best, run.step_seconds) == (3, 0.25, 6.5)
