"""history.csv read with one repair rule (complete rows with a whole-number epoch, the last row of an epoch
winning) and trimmed where a resumed run starts."""

from __future__ import annotations

import math

from deepclust.training import history_csv

HEADER = "epoch,loss,val_loss"


def test_only_complete_rows_count_and_the_last_row_of_an_epoch_wins(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(f"{HEADER}\n0,1.0,0.9\n\n1,0.8,nan\n{HEADER}\n1,0.7,0.6\n2,x,0.5\n3,0.6\n")  # 3: killed mid-row
    header, by_epoch = history_csv.read(path)
    assert header == ["epoch", "loss", "val_loss"] and list(by_epoch) == [0, 1, 2]
    assert by_epoch[1] == {"epoch": 1.0, "loss": 0.7, "val_loss": 0.6}  # the resumed run's row
    assert math.isnan(by_epoch[2]["loss"]) and by_epoch[2]["val_loss"] == 0.5  # not a number: NaN
    _, found = history_csv.rows(path.read_text())
    assert [row.epoch for row in found] == [0, 1, 1, 2] and found[0].line == "0,1.0,0.9"


def test_no_epoch_column_no_rows(tmp_path):
    assert history_csv.rows("loss,val_loss\n1.0,0.9\n") == (["loss", "val_loss"], [])
    assert history_csv.rows("") == ([], [])


def test_trim_keeps_the_epochs_before_the_resume(tmp_path):
    path = tmp_path / "history.csv"
    history_csv.trim(path, 3)  # no file: nothing to do
    path.write_text(f"{HEADER}\n0,1.0,1.0\n{HEADER}\n1,0.9,0.9\n2,nan,nan\n3,0.8")
    history_csv.trim(path, 2)
    assert path.read_text() == f"{HEADER}\n0,1.0,1.0\n1,0.9,0.9\n"
    history_csv.trim(path, 2)  # already trimmed: left as it is
    assert path.read_text() == f"{HEADER}\n0,1.0,1.0\n1,0.9,0.9\n"
    other = tmp_path / "other.csv"
    other.write_text("loss\n1.0\n")
    history_csv.trim(other, 0)
    assert other.read_text() == "loss\n1.0\n"  # not a history this module knows: left alone
    history_csv.trim(path, 0)
    assert not path.exists()
