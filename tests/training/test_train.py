"""Training end to end on tiny.toml: what a run writes, resuming, the refusal of another architecture, the time limit,
the order of the run's callbacks."""

import csv

import keras
import pytest

from deepclust.config import ConfigError, read_config_file
from deepclust.data.dataset import MixtureDataset
from deepclust.training.train import train


def test_train_writes_model_config_history_state(trained):
    base, result = trained
    assert result.stopped == "completed" and result.epochs_done == 2
    assert (base / "model.keras").is_file()
    assert read_config_file(base / "config.toml").model.lstm_units == 8
    rows = list(csv.DictReader(open(base / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and all(float(r["val_loss"]) > 0 for r in rows)
    assert (base / "checkpoints" / "epoch-000002.weights.h5").is_file()
    assert result.frames_per_second > 0


def test_rerun_resumes_instead_of_starting_over(trained, monkeypatch):
    base, _ = trained
    drawn = []  # (epoch, index) of every training batch made
    real = MixtureDataset.batch_at
    monkeypatch.setattr(MixtureDataset, "batch_at",
                        lambda self, epoch, index: drawn.append((epoch, index)) or real(self, epoch, index))
    result = train(base, None, {"train.epochs": 3}, verbose=0)
    assert result.epochs_done == 3
    rows = list(csv.DictReader(open(base / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # one new epoch, not three
    # Training seconds go on from the first session's, not from zero.
    seconds = [float(r["train_seconds"]) for r in rows]
    assert seconds[2] > seconds[1] > seconds[0] > 0
    # The resumed epoch draws its own mixtures, not those of the epochs already trained.
    assert drawn and min(epoch for epoch, _ in drawn) == 2


def test_a_resumed_run_goes_on_from_the_saved_best_and_training_seconds(trained):
    """The resumed run's best model is kept unless beaten, and its training seconds count on from the state's."""
    import json

    base, _ = trained
    saved = base / "checkpoints" / "epoch-000002.json"
    meta = json.loads(saved.read_text())
    meta.update(best=1e-9, step_seconds=1000.0)  # a best no epoch beats, seconds no epoch reaches alone
    saved.write_text(json.dumps(meta))
    model = (base / "model.keras").read_bytes()
    result = train(base, None, {"train.epochs": 3}, verbose=0)
    assert result.epochs_done == 3 and result.best_val_loss == 1e-9
    assert (base / "model.keras").read_bytes() == model  # not replaced by a worse epoch
    meta = json.loads((base / "checkpoints" / "epoch-000003.json").read_text())
    row = list(csv.DictReader(open(base / "history.csv")))[-1]
    assert meta["best"] == 1e-9 and 1000.0 < meta["step_seconds"] == pytest.approx(float(row["train_seconds"]))


def test_resume_with_other_architecture_is_refused(trained):
    base, _ = trained
    with pytest.raises(ConfigError, match="model.lstm_units: 8 -> 9"):
        train(base, None, {"model.lstm_units": 9}, verbose=0)


@pytest.mark.slow
def test_time_limit_stops_cleanly_and_counts_across_resumes(tmp_path):
    from conftest import write_list_folder

    base = write_list_folder(tmp_path / "base", {"low": 110.0, "high": 260.0})
    first = train(base, "tiny", {"train.epochs": 500, "train.time_limit": "2s"}, verbose=0)
    assert first.stopped == "time limit" and 1 <= first.epochs_done < 500
    assert (base / "model.keras").is_file() and first.train_seconds >= 2
    # The budget is training time across resumes: a rerun has nothing left and stops at once.
    again = train(base, None, {"train.epochs": 500, "train.time_limit": "2s"}, verbose=0)
    assert again.stopped == "time limit" and again.epochs_done == first.epochs_done
    # A larger budget (4 s more than the first run spent, however slow the machine) goes on from there.
    more = train(base, None, {"train.epochs": 500, "train.time_limit": f"{int(first.train_seconds) + 5}s"}, verbose=0)
    assert more.epochs_done > first.epochs_done


def test_the_callbacks_run_in_the_order_the_saved_state_needs(tmp_path):
    """BestModel and Throughput before TrainingState (the state records the epoch's best and training
    seconds), the history row before the state, and Interruption last (a stop at an epoch's end comes
    after its state is saved); a user's callbacks after the built-in ones."""
    from deepclust.config import load_config
    from deepclust.training.state import RunState
    from deepclust.training.train import RunCallbacks

    extra = keras.callbacks.Callback()
    callbacks = RunCallbacks.build(load_config("tiny"), tmp_path, RunState(tmp_path / "checkpoints"), None, [extra])
    order = callbacks.ordered()
    position = order.index
    assert position(callbacks.best) < position(callbacks.state)
    assert position(callbacks.throughput) < position(callbacks.state)
    assert order[-4:] == [callbacks.history, callbacks.state, callbacks.interruption, extra]
