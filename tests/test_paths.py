"""The files of a run folder, and where a model is found: --model, else --base, else $DEEPC_BASE."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepclust import paths


def test_a_run_folder_or_a_model_file(tmp_path):
    assert paths.model_file(tmp_path) == tmp_path / paths.MODEL_FILENAME
    assert paths.model_file(tmp_path / "other.keras") == tmp_path / "other.keras"
    assert paths.saved_config(tmp_path / "run" / "model.keras") == tmp_path / "run" / paths.CONFIG_FILENAME


def test_model_then_base_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.ENV_BASE, str(tmp_path / "env"))
    assert paths.find_model(base="b", model="m.keras") == Path("m.keras")
    assert paths.find_model(base="b") == Path("b") / paths.MODEL_FILENAME
    assert paths.find_model() == tmp_path / "env" / paths.MODEL_FILENAME
    monkeypatch.delenv(paths.ENV_BASE)
    with pytest.raises(paths.ModelNotGiven, match=r"--base DIR.*--model FILE.*DEEPC_BASE"):
        paths.find_model()
