"""Choosing the Keras backend before Keras loads, and what a missing one says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from deepclust import backend

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """As before Keras is imported, with an empty Keras home and no KERAS_BACKEND."""
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    # set, then removed: monkeypatch records the variable's state before the test (choose() sets it directly),
    # so no backend a test chose leaks into later tests' subprocesses
    monkeypatch.setenv(backend.ENV, "")
    monkeypatch.delenv(backend.ENV)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def with_installed(*names):
        monkeypatch.setattr(backend, "installed", lambda name: name in names)

    return with_installed


def test_the_first_installed_backend_is_taken_when_none_is_named(fresh, monkeypatch):
    import os

    fresh("jax", "torch")
    assert backend.choose() == "jax" and os.environ[backend.ENV] == "jax"
    monkeypatch.delenv(backend.ENV)
    fresh("torch")
    assert backend.require() == "torch"


def test_a_config_file_naming_a_missing_backend_is_passed_over(fresh, tmp_path, monkeypatch):
    # Keras writes keras.json with its default, TensorFlow, by itself: that names no choice.
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "tensorflow"}))
    fresh("torch")
    assert backend.choose() == "torch"
    monkeypatch.delenv(backend.ENV)
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    fresh("jax", "tensorflow")
    assert backend.choose() == "jax"  # an installed backend in the file is the user's choice


def test_a_named_backend_that_is_missing_says_what_to_install(fresh, monkeypatch):
    fresh("jax")
    monkeypatch.setenv(backend.ENV, "torch")
    with pytest.raises(backend.BackendError, match=r"pip install 'deepclust\[torch\]', or set KERAS_BACKEND=jax "
                                                   r"\(installed\)\. Received: KERAS_BACKEND=torch"):
        backend.require()


def test_no_backend_at_all_lists_the_extras(fresh):
    fresh()
    with pytest.raises(backend.BackendError, match=r"none is installed.*deepclust\[tensorflow\].*deepclust\[jax\]"
                                                   r".*deepclust\[torch\]"):
        backend.require()


def test_tensorflow_is_an_extra_not_a_dependency():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.lower().startswith("tensorflow") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert {"tensorflow", "jax", "torch"} <= set(extras)
    assert all(any(d.startswith(name) for d in extras[name]) for name in ("tensorflow", "jax", "torch"))
