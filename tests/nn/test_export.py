"""deepclust export: the SavedModel and the ONNX file compute what the Keras network does; EXPORT.md names the
steps outside them with the model's numbers; an earlier export is never replaced by accident."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from deepclust import cli
from deepclust.config import load_config
from deepclust.nn import model as model_lib


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    config = load_config("tiny")
    net = model_lib.build_model(config, mean=np.linspace(-3, 1, config.num_bins),
                                variance=np.linspace(1, 4, config.num_bins))
    net.save(folder / "model.keras")
    assert cli.main(["export", "--model", str(folder / "model.keras"), "--out", str(folder / "out")]) == 0
    return folder, net


@pytest.mark.slow
def test_savedmodel_and_onnx_compute_what_keras_does(exported):
    import tensorflow as tf

    folder, net = exported
    x = np.random.default_rng(0).standard_normal((2, 37, net.inputs[0].shape[-1])).astype(np.float32)
    want = np.asarray(net.predict_on_batch(x))
    loaded = tf.saved_model.load(str(folder / "out" / "savedmodel"))  # kept: its variables live as long as it
    np.testing.assert_allclose(np.asarray(loaded.serve(tf.constant(x))), want, atol=1e-5)
    if importlib.util.find_spec("tf2onnx") is None and not __import__("os").environ.get("CI"):
        pytest.skip("tf2onnx not installed (pip install 'deepclust[export]'; scripts/setup.sh does)")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "out" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["log_magnitude"]  # the statistics are inside, not inputs
    np.testing.assert_allclose(session.run(None, {"log_magnitude": x})[0], want, atol=1e-5)


@pytest.mark.slow
def test_export_notes_and_no_accidental_overwrite(exported, capsys):
    folder, net = exported
    notes = (folder / "out" / "EXPORT.md").read_text()
    spec = model_lib.feature_spec(net)
    assert f"hann({spec.window_length}, sym=False))`, hop {spec.hop_length}" in notes
    assert f"at {spec.sample_rate} Hz" in notes and f"({spec.window_length // 2 + 1} bins)" in notes
    before = (folder / "out" / "EXPORT.md").stat().st_mtime_ns
    assert cli.main(["export", "--model", str(folder / "model.keras"), "--out", str(folder / "out")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (folder / "out" / "EXPORT.md").stat().st_mtime_ns == before
    assert cli.main(["export", "--model", str(folder / "model.keras"), "--out", str(folder / "out"), "--format",
                     "savedmodel", "--force"]) == 0
    assert not [p.name for p in (folder / "out").iterdir() if p.name.startswith(".")]  # no temporaries left
