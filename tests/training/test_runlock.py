"""One run per folder: a live holder refuses a second run, a dead one's lock is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from deepclust.training import runlock
from deepclust.training.runlock import LOCK_FILENAME, RunLocked


def test_a_live_holder_refuses_a_second_run_and_names_itself(tmp_path):
    with runlock.hold(tmp_path):
        held = json.loads((tmp_path / LOCK_FILENAME).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        with pytest.raises(RunLocked, match=rf"host {socket.gethostname()}, PID {os.getpid()}.*another --base"):
            with runlock.hold(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILENAME).exists()  # released


def test_a_dead_holders_lock_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILENAME).write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": "x"}))
    with runlock.hold(tmp_path):
        assert json.loads((tmp_path / LOCK_FILENAME).read_text())["pid"] == os.getpid()
    assert "taking over the lock" in caplog.text


def test_another_hosts_lock_is_refused_with_the_way_out(tmp_path):
    (tmp_path / LOCK_FILENAME).write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": "x"}))
    with pytest.raises(RunLocked, match=rf"host elsewhere.*delete {tmp_path / LOCK_FILENAME}"):
        with runlock.hold(tmp_path):
            pass


def test_train_refuses_a_folder_a_live_run_holds(list_folder):
    from deepclust.training.train import train

    with runlock.hold(list_folder):
        with pytest.raises(RunLocked, match="another deepclust train holds this folder"):
            train(list_folder, "tiny", verbose=0)
    assert not (list_folder / "checkpoints").exists()  # refused before anything was written
