"""The Keras dataset: batches as pure functions of their spec, drawn in worker processes or in the process."""

from __future__ import annotations

import numpy as np
import pytest

from deepclust.data import batch_processes, mixer as mixer_lib
from deepclust.data.dataset import MixtureDataset
from deepclust.data.mixer import draw_batch


def test_dataset_is_deterministic_per_epoch_and_index(list_folder, tiny_config):
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    ds = MixtureDataset(mixer, tiny_config)
    a, b = ds[0], ds[0]
    np.testing.assert_array_equal(a[0], b[0])
    ds.epoch = 1
    assert not np.array_equal(ds[0][0], a[0])
    assert len(ds) == tiny_config.train.steps_per_epoch


def test_worker_processes_draw_the_batches_the_process_draws(list_folder, tiny_config):
    """The epoch and index reach the workers in each batch's spec: whichever process draws batch i
    of epoch e, it is the same arrays; an epoch change in the middle of prefetching changes nothing."""
    import multiprocessing

    tiny_config.train.steps_per_epoch = 5
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    here = MixtureDataset(mixer, tiny_config, processes=0)
    drawn_elsewhere = MixtureDataset(mixer, tiny_config, processes=2)
    before = set(multiprocessing.active_children())
    try:
        for epoch, indices in ((0, [0, 1, 2]), (3, [0, 4, 1]), (0, [3])):
            here.epoch = drawn_elsewhere.epoch = epoch
            for i in indices:
                x1, y1 = here[i]
                x2, y2 = drawn_elsewhere[i]
                np.testing.assert_array_equal(x1, x2)
                np.testing.assert_array_equal(y1, y2)
        started = set(multiprocessing.active_children()) - before
        assert len(started) == 2  # the two worker processes asked for, drawing the batches
    finally:
        drawn_elsewhere.close()
    assert not any(process.is_alive() for process in started)  # close() ends them
    x, _ = drawn_elsewhere[4]  # and a later batch starts them again
    np.testing.assert_array_equal(x, here[4][0])
    drawn_elsewhere.close()


def test_two_workers_shards_are_disjoint(list_folder, tiny_config):
    """Worker i of n draws its own stream: no batch of one shard is a batch of the other."""
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    shards = [MixtureDataset(mixer, tiny_config, shard=(i, 2)) for i in range(2)]
    batches = [[s.batch_at(0, i)[0] for i in range(len(s))] for s in shards]
    assert not any(np.array_equal(a, b) for a in batches[0] for b in batches[1])
    spec = shards[1].spec(0, 1)
    np.testing.assert_array_equal(draw_batch(mixer, spec)[0], batches[1][1])


@pytest.mark.slow
def test_deepclust_train_with_worker_processes(tmp_path):
    """``python -m deepclust train`` with two worker processes: spawned workers import the package's
    ``__main__`` as ``__mp_main__`` and must not start a second command line."""
    import subprocess
    import sys

    from conftest import write_list_folder

    base = write_list_folder(tmp_path / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})
    done = subprocess.run([sys.executable, "-m", "deepclust", "train", "--base", str(base), "--config", "tiny",
                           "--workers", "2", "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(completed, 2 epochs" in done.stdout


def test_workers_started_by_a_thread_outlive_it(list_folder, tiny_config):
    """The pool starts workers on demand in whichever thread asks for a batch, Keras's feeder threads
    among them, which end with each epoch: the workers live on, and later batches come (with Linux's
    parent-death signal they were killed with that thread, and the pool broke or hung)."""
    import multiprocessing
    import threading
    import time

    tiny_config.train.steps_per_epoch = 6
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    ds = MixtureDataset(mixer, tiny_config, processes=2)
    here = MixtureDataset(mixer, tiny_config, processes=0)
    feeder = threading.Thread(target=ds.__getitem__, args=(0,))  # starts the pool and both workers
    feeder.start()
    feeder.join()
    time.sleep(1.0)  # a worker killed with the thread would be dead by now
    drawn = []
    reader = threading.Thread(target=lambda: drawn.extend(ds[i][0] for i in range(1, 6)), daemon=True)
    reader.start()
    reader.join(timeout=120)
    try:
        assert len(drawn) == 5, "the workers started by a thread that ended did not draw the later batches"
        for i, x in enumerate(drawn, start=1):
            np.testing.assert_array_equal(x, here[i][0])
    finally:
        if len(drawn) < 5:  # broken or hung: end the workers so close() cannot wait on them
            for child in multiprocessing.active_children():
                child.terminate()
        ds.close()


@pytest.mark.parametrize("fault", ["killed", "stopped"])
def test_a_failed_worker_is_a_clear_error_not_a_hang(list_folder, tiny_config, monkeypatch, fault):
    """A worker killed (out of memory, say) or stopped answering: the batch raises BatchProcessError saying
    how to go on, and close() returns instead of waiting on the pool."""
    import os
    import signal
    import time

    from deepclust.data import dataset as dataset_lib

    monkeypatch.setattr(dataset_lib, "BATCH_TIMEOUT_SECONDS", 3.0)
    tiny_config.train.steps_per_epoch = 6
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    ds = MixtureDataset(mixer, tiny_config, processes=1)
    pid = ds._worker_pool().submit(os.getpid).result(timeout=120)
    ds[0]
    os.kill(pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
    try:
        with pytest.raises(batch_processes.BatchProcessError, match=r"--workers 0.*Received: data.workers=1"):
            for i in range(1, 6):  # the batches already drawn ahead may still come
                ds[i]
    finally:
        started = time.monotonic()
        ds.close()
        assert time.monotonic() - started < 60


def test_the_dataset_gives_the_cores_to_workers_when_the_backend_sees_a_gpu(list_folder, tiny_config, monkeypatch):
    import os

    from deepclust.data import dataset as dataset_lib

    tiny_config.data.workers = -1
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert MixtureDataset(mixer, tiny_config).processes == 8
    monkeypatch.setattr(dataset_lib, "accelerators", lambda: ["NVIDIA H200"])
    assert MixtureDataset(mixer, tiny_config).processes == 14


def test_batches_come_back_through_spool_files_that_are_deleted(list_folder, tiny_config):
    """Workers hand batches back as files: each read is deleted, an abandoned epoch's batches are deleted
    when drawn, and close() removes the folder with what was drawn ahead and never asked for."""
    import os
    import time

    tiny_config.train.steps_per_epoch = 6
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    ds = MixtureDataset(mixer, tiny_config, processes=2)
    try:
        ds[0]
        spool = ds._spool
        assert spool and os.path.isdir(spool)
        ds.epoch = 1
        ds[0]  # epoch 0's batches 1-2, submitted ahead, are abandoned
        deadline = time.monotonic() + 60
        while any(not f.done() for f in ds._pending.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the abandoned batches' callbacks
        left = sorted(os.listdir(spool))
        pending = sorted(os.path.basename(f.result().path) for f in ds._pending.values())
        assert left == pending, "a spool file outlived its batch"
    finally:
        ds.close()
    assert not os.path.exists(spool)


def test_a_spool_file_removed_before_it_is_read_is_a_clear_error(list_folder, tiny_config):
    import os
    import time

    tiny_config.train.steps_per_epoch = 4
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    ds = MixtureDataset(mixer, tiny_config, processes=1)
    try:
        ds[0]
        deadline = time.monotonic() + 60
        while any(not f.done() for f in ds._pending.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for name in os.listdir(ds._spool):  # a cleaner of temporary files, say
            os.unlink(os.path.join(ds._spool, name))
        with pytest.raises(batch_processes.BatchProcessError, match=r"batch 2 of epoch 1: its file in the spool folder .*"
                                                      r"could not be read.*Received: data.workers=1"):
            ds[1]
    finally:
        ds.close()
