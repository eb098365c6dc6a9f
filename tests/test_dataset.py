"""The Keras dataset: batches as pure functions of their spec, drawn in worker processes or in the process."""

from __future__ import annotations

import numpy as np
import pytest

from deepclust import data
from deepclust.data import draw_batch
from deepclust.dataset import MixtureDataset


def test_dataset_is_deterministic_per_epoch_and_index(list_folder, tiny_config):
    mixer = data.Mixer(data.load_corpus(list_folder / "train", 8000), tiny_config)
    ds = MixtureDataset(mixer, tiny_config)
    a, b = ds[0], ds[0]
    np.testing.assert_array_equal(a[0], b[0])
    ds.epoch = 1
    assert not np.array_equal(ds[0][0], a[0])
    assert len(ds) == tiny_config.train.steps_per_epoch


def test_worker_processes_draw_the_batches_the_process_draws(list_folder, tiny_config):
    """The epoch and index reach the workers in each batch's spec: whichever process draws batch i
    of epoch e, it is the same arrays; an epoch change in the middle of prefetching changes nothing."""
    tiny_config.train.steps_per_epoch = 5
    mixer = data.Mixer(data.load_corpus(list_folder / "train", 8000), tiny_config)
    here = MixtureDataset(mixer, tiny_config, processes=0)
    workers = MixtureDataset(mixer, tiny_config, processes=2)
    try:
        for epoch, indices in ((0, [0, 1, 2]), (3, [0, 4, 1]), (0, [3])):
            here.epoch = workers.epoch = epoch
            for i in indices:
                x1, y1 = here[i]
                x2, y2 = workers[i]
                np.testing.assert_array_equal(x1, x2)
                np.testing.assert_array_equal(y1, y2)
        assert workers._pool is not None and len(workers._pool._processes) == 2
    finally:
        workers.close()
    assert workers._pool is None


def test_two_workers_shards_are_disjoint(list_folder, tiny_config):
    """Worker i of n draws its own stream: no batch of one shard is a batch of the other."""
    mixer = data.Mixer(data.load_corpus(list_folder / "train", 8000), tiny_config)
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


def test_worker_processes_by_the_cores():
    from deepclust.data import worker_processes

    assert worker_processes(3, cores=2) == 3  # asked for: as many as asked
    assert worker_processes(-1, cores=2) == 0 and worker_processes(-1, cores=4) == 0  # the step needs them
    assert worker_processes(-1, cores=16) == 8 and worker_processes(-1, cores=64) == 8
