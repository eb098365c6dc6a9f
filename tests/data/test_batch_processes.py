"""The worker processes: how many, how a batch comes back through the spool, and their end with the parent."""

from __future__ import annotations

import os

import numpy as np
import pytest

from deepclust.data import batch_processes, mixer as mixer_lib


def test_process_count_by_the_cores():
    from deepclust.data.batch_processes import process_count

    assert process_count(3, cores=2) == 3  # asked for: as many as asked
    assert process_count(-1, cores=2) == 0 and process_count(-1, cores=4) == 0  # the step needs them
    assert process_count(-1, cores=16) == 8 and process_count(-1, cores=64) == 8
    # With a GPU the step leaves the cores to the batches: all but two.
    assert process_count(-1, cores=16, accelerated=True) == 14
    assert process_count(-1, cores=2, accelerated=True) == 0 and process_count(2, cores=16, accelerated=True) == 2


@pytest.fixture
def worker_state():
    """batch_processes.start in this process (no parent to watch), undone afterwards."""
    yield
    batch_processes.start(None, None)


def test_a_drawn_batch_is_a_spool_file_read_once(list_folder, tiny_config, tmp_path, worker_state):
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    spec = mixer_lib.BatchSpec(0, (0, 1), 2, 3, 4)
    spool = tmp_path / "spool"
    spool.mkdir()
    batch_processes.start(mixer, str(spool))
    handed = batch_processes.draw(spec)
    assert isinstance(handed, batch_processes.Spooled) and os.path.dirname(handed.path) == str(spool)
    assert len(handed.path) < 200  # the name, not the arrays, goes through the pool's pipe
    x, y = batch_processes.received(handed)
    expected = mixer_lib.draw_batch(mixer, spec)
    np.testing.assert_array_equal(x, expected[0])
    np.testing.assert_array_equal(y, expected[1])
    assert os.listdir(spool) == [], "the file is deleted once read"


def test_a_batch_the_spool_cannot_take_comes_back_itself(list_folder, tiny_config, tmp_path, worker_state):
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    spec = mixer_lib.BatchSpec(0, (0, 1), 0, 0, 2)
    batch_processes.start(mixer, str(tmp_path / "removed"))  # gone, as when the pool is being stopped
    handed = batch_processes.draw(spec)
    assert isinstance(handed, tuple) and not isinstance(handed, batch_processes.Spooled)
    np.testing.assert_array_equal(batch_processes.received(handed)[0], mixer_lib.draw_batch(mixer, spec)[0])


def test_discard_deletes_a_spooled_batch_and_ignores_the_rest(tmp_path):
    handed = batch_processes.spool((np.zeros(3),), str(tmp_path))
    assert os.path.exists(handed.path)
    batch_processes.discard(handed)
    batch_processes.discard(handed)  # already gone: nothing to do
    batch_processes.discard((np.zeros(3),))
    assert os.listdir(tmp_path) == []


def test_the_spool_is_in_shared_memory_only_with_room(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(batch_processes, "SHARED_MEMORY", tmp_path)
    roomy = batch_processes.make_spool()
    assert os.path.dirname(roomy) == str(tmp_path)
    monkeypatch.setattr(batch_processes, "SHARED_MEMORY_MIN_FREE", shutil.disk_usage(tmp_path).free * 2)
    cramped = batch_processes.make_spool()
    assert os.path.isdir(cramped) and os.path.dirname(cramped) != str(tmp_path)
    for folder in (roomy, cramped):
        os.rmdir(folder)


@pytest.mark.slow
def test_a_worker_ends_and_removes_the_spool_when_the_training_process_is_killed(tmp_path):
    """No orphans holding memory: a worker process ends within seconds of its parent's SIGKILL, and
    takes the spool (in shared memory, the batches left there would stay until a reboot) with it."""
    import signal
    import subprocess
    import sys
    import time

    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "unread.pkl").write_bytes(b"a batch never read")
    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from deepclust.data import batch_processes\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'),\n"
        "                               initializer=batch_processes.start, initargs=(None, sys.argv[1]))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 120)\n"
        "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script), str(spool)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    pid = int(parent.stdout.readline())
    assert _running(pid), "the worker should run while its parent does"
    assert spool.exists()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert not _running(pid), "the worker outlived the training process"
        assert not spool.exists(), "the spool outlived the training process"
    finally:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an orphan's reaper may be slow)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
