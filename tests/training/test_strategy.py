"""The strategy per backend: JAX data parallelism on two host devices gives the losses of one
device for the same global batch; unsupported combinations are refused with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import child_pythonpath
from deepclust.config import ConfigError
from deepclust.training import strategy

MARKER = "DEEPCLUST-RESULT "

TWO_DEVICES = """
import csv, json, shutil
from pathlib import Path
import keras
from conftest import write_list_folder
from deepclust.training.train import train

one = write_list_folder(Path("one"), {"low": 110.0, "mid": 180.0, "high": 260.0})
two = Path(shutil.copytree(one, "two"))
plain = train(one, "tiny", {"train.epochs": 2}, verbose=0)
shared = train(two, "tiny", {"train.epochs": 2}, verbose=0, distribute="mirrored")
again = train(two, None, {"train.epochs": 3}, verbose=0, distribute="mirrored")  # resumes on both devices
history = lambda b: [[float(r["loss"]), float(r["val_loss"])] for r in csv.DictReader(open(b / "history.csv"))]
print("DEEPCLUST-RESULT " + json.dumps({
    "devices": len(keras.distribution.list_devices()), "one": history(one), "two": history(two),
    "epochs": [plain.epochs_done, shared.epochs_done, again.epochs_done],
    "distribution_left": keras.distribution.distribution() is not None}))
"""


@pytest.mark.slow
def test_jax_data_parallel_on_two_devices_matches_one_device(tmp_path):
    pytest.importorskip("jax")
    script = tmp_path / "child.py"
    script.write_text(TWO_DEVICES)
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=child_pythonpath())
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    r = json.loads(lines[-1][len(MARKER):])
    assert r["devices"] == 2 and r["epochs"] == [2, 2, 3] and not r["distribution_left"]
    one, two = np.array(r["one"]), np.array(r["two"])
    # The same global batches, initial weights and updates: the same losses to float32 rounding.
    np.testing.assert_allclose(two[:2], one, rtol=1e-4)
    assert two.shape == (3, 2) and np.all(np.isfinite(two))


def test_unsupported_strategies_are_refused_by_name(monkeypatch):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(ConfigError, match=r"--distribute mirrored is not supported on the Keras torch backend.*"
                                          r"Received: distribute='mirrored', backend='torch'"):
        strategy.strategy("mirrored")
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ConfigError, match="multiworker is not supported on the Keras jax backend"):
        strategy.strategy("multiworker")
