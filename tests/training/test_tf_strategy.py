"""``train(distribute=...)``: MirroredStrategy on two logical CPU devices, MultiWorkerMirroredStrategy with
two workers on 127.0.0.1. Each run is a subprocess: devices and strategies are fixed once per process."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import write_list_folder

keras = pytest.importorskip("keras")
# Whole training runs in child processes: part of CI, not of the fast loop (-m 'not slow').
pytestmark = [pytest.mark.slow, pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                                   reason="--distribute needs the TensorFlow backend")]

SPEAKERS = {"low": 110.0, "mid": 180.0, "high": 260.0}
TIMEOUT = 300

# argv: base, weights_out, logical CPU devices, distribute ("" for none), overrides (JSON)
WORKER = r"""
import json, sys
import numpy as np
base, weights_out, devices, distribute, overrides = sys.argv[1:]
import tensorflow as tf
if int(devices) > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(devices))
import keras
from deepclust.training.train import train

class SaveWeights(keras.callbacks.Callback):
    replicas = None

    def on_train_end(self, logs=None):
        SaveWeights.replicas = self.model.distribute_strategy.num_replicas_in_sync
        np.savez(weights_out, *[keras.ops.convert_to_numpy(w) for w in self.model.weights])

result = train(base, "tiny", json.loads(overrides), verbose=0, distribute=distribute or None,
               callbacks=[SaveWeights()])
print("RESULT", json.dumps({"epochs_done": result.epochs_done, "stopped": result.stopped,
                            "best": result.best_val_loss, "replicas": SaveWeights.replicas}))
"""


def _command(base: Path, weights: Path, devices: int = 1, distribute: str = "", **overrides) -> list[str]:
    return [sys.executable, "-c", WORKER, str(base), str(weights), str(devices), distribute,
            json.dumps({f"train.{k}": v for k, v in overrides.items()})]


def _env(tf_config: dict | None = None) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _run(command: list[str], env: dict | None = None) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env or _env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(done.stdout.split("RESULT", 1)[1])


def _history(base: Path) -> list[dict]:
    with open(base / "history.csv") as f:
        return list(csv.DictReader(f))


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_mirrored_on_two_devices_matches_one_device_and_resumes(tmp_path):
    one = write_list_folder(tmp_path / "one", SPEAKERS)
    two = write_list_folder(tmp_path / "two", SPEAKERS)
    _run(_command(one, tmp_path / "one.npz", epochs=1))
    result = _run(_command(two, tmp_path / "two.npz", devices=2, distribute="mirrored", epochs=1))
    assert result["epochs_done"] == 1 and result["stopped"] == "completed" and result["replicas"] == 2
    a, b = _history(one)[0], _history(two)[0]
    # The same global batch, split in two: the same loss and updates up to float rounding.
    np.testing.assert_allclose(float(b["loss"]), float(a["loss"]), rtol=1e-3)
    np.testing.assert_allclose(float(b["val_loss"]), float(a["val_loss"]), rtol=1e-3)
    for wa, wb in zip(_weights(tmp_path / "one.npz"), _weights(tmp_path / "two.npz"), strict=True):
        np.testing.assert_allclose(wb, wa, atol=1e-4)

    # Resume under the strategy: one more epoch, from the saved state (weights and optimizer).
    result = _run(_command(two, tmp_path / "two.npz", devices=2, distribute="mirrored", epochs=2))
    assert result["epochs_done"] == 2
    assert [int(r["epoch"]) for r in _history(two)] == [0, 1]
    assert (two / "checkpoints" / "epoch-000002.weights.h5").is_file()


def _multiworker(base: Path, out: Path, run: str, **overrides) -> list[dict]:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = [subprocess.Popen(_command(base, out / f"{run}-{i}.npz", distribute="multiworker", **overrides),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env({"cluster": cluster, "task": {"type": "worker", "index": i}}))
             for i in range(2)]
    results = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, stdout[-3000:] + stderr[-5000:]
            results.append(json.loads(stdout.split("RESULT", 1)[1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results


def test_multiworker_trains_in_sync_chief_writes_and_resumes(tmp_path):
    base = write_list_folder(tmp_path / "base", SPEAKERS)  # one folder: the shared filesystem
    results = _multiworker(base, tmp_path, "first", epochs=1)
    assert [r["epochs_done"] for r in results] == [1, 1] and [r["replicas"] for r in results] == [2, 2]
    assert results[0]["best"] == results[1]["best"]  # the same validation loss on both workers
    for w0, w1 in zip(_weights(tmp_path / "first-0.npz"), _weights(tmp_path / "first-1.npz"), strict=True):
        np.testing.assert_array_equal(w0, w1)
    # Written once, by the chief: one history row, one state, nothing left over.
    assert [int(r["epoch"]) for r in _history(base)] == [0]
    assert (base / "model.keras").is_file()
    assert sorted(p.name for p in (base / "checkpoints").iterdir()) == ["epoch-000001.json",
                                                                         "epoch-000001.weights.h5"]
    assert not [p for p in base.iterdir() if p.name.startswith(".")]

    # Both workers resume from the chief's state and train one more epoch, still in sync.
    results = _multiworker(base, tmp_path, "second", epochs=2)
    assert [r["epochs_done"] for r in results] == [2, 2]
    assert [int(r["epoch"]) for r in _history(base)] == [0, 1]
    for w0, w1 in zip(_weights(tmp_path / "second-0.npz"), _weights(tmp_path / "second-1.npz"), strict=True):
        np.testing.assert_array_equal(w0, w1)
    first = _weights(tmp_path / "first-0.npz")
    assert any(not np.array_equal(a, b) for a, b in zip(first, _weights(tmp_path / "second-0.npz")))


def test_an_unknown_strategy_is_refused_naming_it():
    from deepclust.config import ConfigError
    from deepclust.training.tf_strategy import Distributed

    with pytest.raises(ConfigError, match=r"expected one of mirrored, multiworker\. Received: distribute='bogus'"):
        Distributed("bogus")
