"""The model, loss and separation on the other Keras backends (torch; jax where installed).

Keras fixes its backend when it is first imported, so each backend runs in a
fresh child process with ``KERAS_BACKEND`` set; the child prints one JSON line
that the test checks. A backend that is not installed is skipped. The child
also hides TensorFlow from imports, as on GPU machines that carry only JAX and
PyTorch: nothing on that path may need it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
MARKER = "DEEPCLUST-RESULT "
BACKENDS = ["torch", "jax"]

# Whole training runs in child processes: part of CI, not of the fast loop (-m 'not slow').
pytestmark = pytest.mark.slow

# Makes ``import tensorflow`` (and importlib.util.find_spec) behave as if it were not installed.
HIDE_TENSORFLOW = """
import sys
class _Hide:
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None
    def __getattr__(self, attr):
        return getattr(self.finder, attr)
sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
"""


def needs(backend: str):
    return pytest.mark.skipif(importlib.util.find_spec(backend) is None,
                              reason=f"{backend} is not installed: cannot test the Keras {backend} backend")


def run_child(backend: str, code: str, tmp_path: Path, timeout: float = 240) -> dict:
    script = tmp_path / f"child_{backend}.py"
    script.write_text(HIDE_TENSORFLOW + textwrap.dedent(code))
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    assert proc.returncode == 0 and lines, (
        f"{backend} child failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(lines[-1][len(MARKER):])


TRAIN_AND_SEPARATE = """
import csv, json, math, sys
from pathlib import Path
import numpy as np
import keras
from conftest import synth_voice, write_list_folder
from deepclust import model as model_lib
from deepclust.separate import Separator
from deepclust.train import train

base = write_list_folder(Path("base"), {"low": 110.0, "mid": 180.0, "high": 260.0})
result = train(base, "tiny", verbose=0)
history = list(csv.DictReader(open(base / "history.csv")))

net = model_lib.load(base / "model.keras")  # reload under this backend
x = np.random.default_rng(0).standard_normal((1, 30, net.input_shape[-1])).astype(np.float32)
np.save("embeddings.npy", keras.ops.convert_to_numpy(net(x, training=False)))
np.save("features.npy", x)

mixture = 0.5 * (synth_voice(110, 2.5, 1) + synth_voice(230, 2.5, 2))
np.save("mixture.npy", mixture)
out = Separator.from_path(base).separate(mixture, 2)
np.save("sources.npy", out.sources)
print("DEEPCLUST-RESULT " + json.dumps({
    "backend": keras.backend.backend(),
    "stopped": result.stopped, "epochs": result.epochs_done, "best_val_loss": result.best_val_loss,
    "losses": [float(r["loss"]) for r in history], "val_losses": [float(r["val_loss"]) for r in history],
    "num_speakers": out.num_speakers, "warnings": out.warnings,
    "tensorflow_imported": any(m.split(".")[0] == "tensorflow" for m in sys.modules),
}))
"""


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs(b)) for b in BACKENDS])
def test_train_reload_and_separate(backend, tmp_path):
    r = run_child(backend, TRAIN_AND_SEPARATE, tmp_path)
    assert r["backend"] == backend
    assert not r["tensorflow_imported"]
    assert r["stopped"] == "completed" and r["epochs"] == 2
    assert len(r["losses"]) == 2 and all(np.isfinite(r["losses"] + r["val_losses"]))
    assert np.isfinite(r["best_val_loss"]) and r["best_val_loss"] > 0

    emb = np.load(tmp_path / "embeddings.npy")
    assert emb.shape == (1, 30, 65, 4) and np.all(np.isfinite(emb))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-4)

    mixture, sources = np.load(tmp_path / "mixture.npy"), np.load(tmp_path / "sources.npy")
    assert r["num_speakers"] == 2 and sources.shape == (2, mixture.size) and not r["warnings"]
    # Binary masks partition the bins, so the outputs add up to the mixture.
    np.testing.assert_allclose(sources.sum(axis=0), mixture, atol=1e-4)

    # The model file is backend-neutral: this process's backend computes the same embeddings.
    from deepclust import model as model_lib

    net = model_lib.load(tmp_path / "base" / "model.keras")
    here = net(np.load(tmp_path / "features.npy"), training=False)
    import keras

    np.testing.assert_allclose(keras.ops.convert_to_numpy(here), emb, atol=1e-4)


LOSS = """
import json
import numpy as np
import keras
from keras import ops
from deepclust.losses import DeepClusteringLoss, deep_clustering_loss

data = np.load("inputs.npz")
y, v = data["y"], data["v"]
backend = keras.backend.backend()
if backend == "torch":
    import torch
    vt = torch.tensor(v, requires_grad=True)
    value = deep_clustering_loss(torch.tensor(y), vt)
    value.sum().backward()
    grad = vt.grad.numpy()
elif backend == "jax":
    import jax
    value = deep_clustering_loss(y, v)
    grad = np.asarray(jax.grad(lambda v_: deep_clustering_loss(y, v_).sum())(v))
np.save("grad.npy", grad)
print("DEEPCLUST-RESULT " + json.dumps({
    "backend": backend, "values": ops.convert_to_numpy(value).tolist(),
    "dtype": str(ops.convert_to_numpy(value).dtype),
    "reduced": float(ops.convert_to_numpy(DeepClusteringLoss()(y, v))),
}))
"""


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs(b)) for b in BACKENDS])
def test_loss_matches_this_backend(backend, tmp_path):
    import keras

    from deepclust.losses import DeepClusteringLoss, deep_clustering_loss

    rng = np.random.default_rng(5)
    b, t, f, c, d = 3, 7, 9, 3, 4
    y = np.eye(c, dtype=np.float32)[rng.integers(0, 2, size=(b, t, f))]
    y[rng.random((b, t, f)) < 0.3] = 0  # silent bins
    y[1] *= np.sqrt(rng.uniform(0.1, 3.0, size=(t, f, 1))).astype(np.float32)  # magnitude weights
    y[2] = 0  # an all-silent chunk: loss 0, not NaN
    v = rng.standard_normal((b, t, f, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    np.savez(tmp_path / "inputs.npz", y=y, v=v)

    r = run_child(backend, LOSS, tmp_path)
    assert r["backend"] == backend and r["dtype"] == "float32"
    other = np.array(r["values"])
    assert np.all(np.isfinite(other)) and other[2] == 0.0

    here = keras.ops.convert_to_numpy(deep_clustering_loss(y, v))
    np.testing.assert_allclose(other, here, rtol=1e-5, atol=1e-7)
    assert r["reduced"] == pytest.approx(float(keras.ops.convert_to_numpy(DeepClusteringLoss()(y, v))), rel=1e-5)

    grad = np.load(tmp_path / "grad.npy")
    assert grad.shape == v.shape and np.all(np.isfinite(grad))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        vt = tf.Variable(v)
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(deep_clustering_loss(tf.constant(y), vt))
        np.testing.assert_allclose(grad, tape.gradient(total, vt).numpy(), rtol=1e-4, atol=1e-6)
