"""The model, loss and separation on the other Keras backends (torch; jax where installed).

Keras fixes its backend when it is first imported, so each backend runs in a
fresh child process with ``KERAS_BACKEND`` set; the child prints one JSON line
that the test checks. A backend that is not installed is skipped. The child
also hides TensorFlow from imports, as on GPU machines that carry only JAX and
PyTorch: nothing on that path may need it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import child_pythonpath, require_backend, start_training_until_first_state, write_list_folder

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


def backend_env(backend: str) -> dict:
    return dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
                PYTHONPATH=child_pythonpath())


def cli_without_tensorflow() -> list[str]:
    """``deepclust`` as a command whose process cannot import TensorFlow."""
    return [sys.executable, "-c", HIDE_TENSORFLOW + "from deepclust.cli import main\nsys.exit(main(sys.argv[1:]))"]


def run_child(backend: str, code: str, tmp_path: Path, timeout: float = 300) -> dict:
    script = tmp_path / f"child_{backend}.py"
    script.write_text(HIDE_TENSORFLOW + textwrap.dedent(code))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=backend_env(backend), capture_output=True,
                          text=True, timeout=timeout)
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
from deepclust.nn import model as model_lib
from deepclust.config import load_config
from deepclust.separation.separator import Separator
from deepclust.training.train import compile_model, train

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

from evaluation_data import make_mixture_list
from deepclust.evaluation.evaluate import evaluate
from deepclust.evaluation.visualize import plot_separation
import soundfile as sf
report = evaluate(make_mixture_list(Path("eval")), base=base, out=Path("report"), progress=False)
sf.write("mixed.wav", mixture, 8000)
figure = plot_separation("mixed.wav", base=base, out="figure.png")
print("DEEPCLUST-RESULT " + json.dumps({
    "evaluated": report.summary["num_scored"], "sdri": report.summary["overall"]["sdri"]["mean"],
    "figure": figure.read_bytes()[:4] == b"\\x89PNG",
    "backend": keras.backend.backend(),
    "stopped": result.stopped, "epochs": result.epochs_done, "best_val_loss": result.best_val_loss,
    "losses": [float(r["loss"]) for r in history], "val_losses": [float(r["val_loss"]) for r in history],
    "num_speakers": out.num_speakers, "warnings": out.warnings,
    "tensorflow_imported": any(m.split(".")[0] == "tensorflow" for m in sys.modules),
    "jit": compile_model(model_lib.build_model(load_config("tiny")), load_config("tiny")).jit_compile,
}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_reload_separate_evaluate_visualize(backend, tmp_path):
    require_backend(backend)
    r = run_child(backend, TRAIN_AND_SEPARATE, tmp_path)
    assert r["backend"] == backend
    assert not r["tensorflow_imported"]
    assert r["jit"] is (backend == "jax")  # train.jit = "auto": compiled where it pays (train.JIT_AUTO)
    assert r["stopped"] == "completed" and r["epochs"] == 2
    assert r["evaluated"] > 0 and np.isfinite(r["sdri"]) and r["figure"]
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
    from deepclust.nn import model as model_lib

    net = model_lib.load(tmp_path / "base" / "model.keras")
    here = net(np.load(tmp_path / "features.npy"), training=False)
    import keras

    np.testing.assert_allclose(keras.ops.convert_to_numpy(here), emb, atol=1e-4)


LOSS = """
import json
import numpy as np
import keras
from keras import ops
from deepclust.nn.losses import DeepClusteringLoss, deep_clustering_loss

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


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_matches_this_backend(backend, tmp_path):
    require_backend(backend)
    import keras

    from deepclust.nn.losses import DeepClusteringLoss, deep_clustering_loss

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


STEPS = """
import json
import numpy as np
import keras
from deepclust.nn import model as model_lib
from deepclust.config import load_config
from deepclust.training.train import compile_model

data = np.load("batch.npz")
cfg = load_config("tiny")
net = compile_model(model_lib.build_model(cfg, data["mean"], data["variance"]), cfg)
net.load_weights("initial.weights.h5")
losses = [float(keras.ops.convert_to_numpy(net.train_on_batch(data["x"], data["y"]))) for _ in range(3)]
np.savez("trained.npz", *[keras.ops.convert_to_numpy(w) for w in net.weights])
print("DEEPCLUST-RESULT " + json.dumps({"losses": losses}))
"""


def _steps_here(tmp_path: Path):
    """The tiny model, its initial weights saved for the child, three steps on one real batch, in this process."""
    import keras

    from deepclust.config import load_config
    from deepclust.data import mixer as mixer_lib
    from deepclust.data.validation import feature_statistics
    from deepclust.nn import model as model_lib
    from deepclust.training.train import compile_model

    cfg = load_config("tiny")
    base = write_list_folder(tmp_path / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(base / "train", 8000), cfg)
    x, y = mixer.batch(np.random.default_rng(0), cfg.train.batch_size)
    mean, variance = feature_statistics(mixer, cfg, 0)
    np.savez(tmp_path / "batch.npz", x=x, y=y, mean=mean, variance=variance)
    keras.utils.set_random_seed(0)
    net = compile_model(model_lib.build_model(cfg, mean, variance), cfg)
    net.save_weights(tmp_path / "initial.weights.h5")
    losses = [float(keras.ops.convert_to_numpy(net.train_on_batch(x, y))) for _ in range(3)]
    return losses, [keras.ops.convert_to_numpy(w) for w in net.weights]


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_steps_from_the_same_weights_match_this_backend(backend, tmp_path):
    """Features and labels are the same arrays on every backend (numpy); from the same initial weights,
    three Adam steps on the same batch give the same losses and weights up to float32 rounding."""
    require_backend(backend)
    losses, weights = _steps_here(tmp_path)
    r = run_child(backend, STEPS, tmp_path)
    np.testing.assert_allclose(r["losses"], losses, rtol=2e-4)
    assert losses[2] < losses[0]  # the steps learn something: the comparison is not of three constants
    other = np.load(tmp_path / "trained.npz")
    assert len(other.files) == len(weights)
    for i, w in enumerate(weights):
        np.testing.assert_allclose(other[f"arr_{i}"], w, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_run_resumes_and_time_limit_stops_without_tensorflow(backend, tmp_path):
    """``deepclust train`` on this backend, in a process that cannot import TensorFlow: killed with
    SIGKILL after its first saved epoch, the same command resumes there; a time limit stops it cleanly."""
    import csv
    import signal

    require_backend(backend)
    cli = cli_without_tensorflow()
    env = {"KERAS_BACKEND": backend}
    base = write_list_folder(tmp_path / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})
    proc = start_training_until_first_state(base, command=cli, env=env, timeout=240)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    saved = sorted(int(p.name[6:12]) for p in (base / "checkpoints").glob("epoch-*.json"))[-1]
    resumed = subprocess.run(cli + ["train", "--base", str(base), "--set", f"train.epochs={saved + 1}", "--quiet"],
                             env=backend_env(backend), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr and f"epoch {saved}" in resumed.stderr
    epochs = [int(r["epoch"]) for r in csv.DictReader(open(base / "history.csv"))]
    assert epochs == list(range(saved + 1))  # the killed run's epochs kept, one more trained, none redone

    limited = write_list_folder(tmp_path / "limited", {"low": 110.0, "high": 260.0})
    stopped = subprocess.run(cli + ["train", "--base", str(limited), "--config", "tiny", "--set", "train.epochs=500",
                                    "--time-limit", "3s", "--quiet"],
                             env=backend_env(backend), capture_output=True, text=True, timeout=240)
    assert stopped.returncode == 0 and "(time limit," in stopped.stdout, stopped.stderr[-3000:]
    assert (limited / "model.keras").is_file()


def test_a_missing_backend_is_a_clear_error(tmp_path):
    """KERAS_BACKEND names a backend that cannot be imported: one message naming the extra, exit 2."""
    base = write_list_folder(tmp_path / "base", {"low": 110.0, "high": 260.0})
    done = subprocess.run(cli_without_tensorflow() + ["train", "--base", str(base), "--config", "tiny"],
                          env=backend_env("tensorflow"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "the Keras backend 'tensorflow' is not installed: pip install 'deepclust[tensorflow]'" in done.stderr
    assert "Traceback" not in done.stderr


DEVICE_FEATURES = """
import json
import numpy as np
import keras
from deepclust.config import load_config
from deepclust.dsp.device_features import SourceFeatures

stack = np.load("stack.npy")
cfg = load_config("tiny", {"features.weighting": "magnitude"})
x, y = (keras.ops.convert_to_numpy(t) for t in SourceFeatures.for_config(cfg)(stack))
np.savez("device.npz", x=x, y=y)
print("DEEPCLUST-RESULT " + json.dumps({"backend": keras.backend.backend()}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_device_features_on_this_backend_equal_the_host_features(backend, tmp_path):
    """The training features in keras.ops (features.on_device) on this backend: the numpy path's numbers."""
    from deepclust.config import load_config
    from test_device_features import host_examples, random_sources

    require_backend(backend)
    cfg = load_config("tiny", {"features.weighting": "magnitude"})
    stack = random_sources(cfg, seed=4)
    np.save(tmp_path / "stack.npy", stack)
    assert run_child(backend, DEVICE_FEATURES, tmp_path)["backend"] == backend
    device = np.load(tmp_path / "device.npz")
    x_host, y_host = host_examples(stack, cfg)
    for b in range(len(stack)):
        np.testing.assert_allclose(np.exp(device["x"][b]), np.exp(x_host[b]), atol=2e-6 * np.exp(x_host[b]).max())
    np.testing.assert_allclose(device["y"], y_host, atol=1e-4)
