"""The command line: --help lists every subcommand; its console: nothing from the backend before deepclust's first
line, one line per epoch in a log, the console options after the command too, --version, and a full disk as one line."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepclust import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "speechocean762_2spk.wav"
BACKEND_NOISE = ("oneDNN", "cuInit", "absl::", "cudart", "I0000", "E0000", "W0000")


def plain_env() -> dict:
    """The user's environment: none of the test runner's settings that quieten TensorFlow."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_nothing_from_the_backend_before_deepclusts_first_line(tmp_path, backend):
    from conftest import require_backend

    require_backend(backend)  # Keras's JAX and torch backends import TensorFlow too, where it is installed
    done = subprocess.run([sys.executable, "-m", "deepclust", "separate", str(EXAMPLE), "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, env={**plain_env(), "KERAS_BACKEND": backend}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not [word for word in BACKEND_NOISE if word in done.stderr + done.stdout], done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("no --base, --model or $DEEPC_BASE given: using the pretrained model")
    assert lines[1].startswith(f"{EXAMPLE}: 2 speakers -> {tmp_path / 'speechocean762_2spk' / 'spk1.wav'}")
    # -v shows what was kept off the console, for whoever needs to see it
    if backend != "tensorflow":
        return
    verbose = subprocess.run([sys.executable, "-m", "deepclust", "separate", str(EXAMPLE), "-v", "--out-dir",
                              str(tmp_path / "v")], capture_output=True, text=True, env=plain_env(), timeout=300)
    assert verbose.returncode == 0 and "DEBUG" in verbose.stderr


def test_console_options_after_the_command_and_version(capsys):
    parser = cli.get_parser()
    for argv in (["-v", "separate", "x.wav"], ["separate", "x.wav", "-v"], ["separate", "-v", "x.wav"]):
        args = parser.parse_args(argv)
        assert args.verbose is True and args.quiet is False
    args = parser.parse_args(["train", "--base", "b", "--quiet"])
    assert args.quiet is True and args.verbose is False
    assert parser.parse_args(["-q", "evaluate", "t"]).quiet is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--version"])
    from deepclust import __version__

    assert capsys.readouterr().out.strip() == f"deepclust {__version__}" and __version__ != "0+unknown"


def test_log_lines_are_plain_and_warnings_marked():
    import logging

    plain, verbose = cli.ConsoleFormatter(False), cli.ConsoleFormatter(True)
    info = logging.LogRecord("deepclust.training.train", logging.INFO, "", 0, "epoch %d saved", (3,), None)
    warning = logging.LogRecord("deepclust.data.mixer", logging.WARNING, "", 0, "skipped", (), None)
    assert plain.format(info) == "epoch 3 saved" and plain.format(warning) == "warning: skipped"
    assert verbose.format(info) == "INFO deepclust.training.train: epoch 3 saved"


@pytest.mark.slow
def test_training_in_a_log_writes_one_line_per_epoch_without_colour_codes(list_folder):
    done = subprocess.run([sys.executable, "-m", "deepclust", "train", "--base", str(list_folder), "--config",
                           "tiny", "--set", "train.epochs=2", "--workers", "0"],
                          capture_output=True, text=True, env=plain_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout and "\b" not in done.stdout and "\r" not in done.stdout
    epochs = [line for line in done.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs == ["Epoch 1/2", "Epoch 2/2"]
    assert not [word for word in BACKEND_NOISE if word in done.stderr], done.stderr


def test_a_full_disk_while_training_is_one_line_naming_the_folder_and_what_was_kept(list_folder, monkeypatch,
                                                                                    capsys):
    import keras

    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full)
    code = cli.main(["train", "--base", str(list_folder), "--config", "tiny", "--set", "train.epochs=1",
                     "--workers", "0", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "Errno" not in err
    lines = [line for line in err.splitlines() if line.startswith("deepclust train: error:")]
    assert lines == [f"deepclust train: error: {list_folder}: no space left on the device (model.keras was not "
                     f"written); free some space and run the command again; the last checkpoint in "
                     f"{list_folder / 'checkpoints'} is whole, and the same command resumes from it"]


def test_cli_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "deepclust", "--help"], capture_output=True, text=True, check=True)
    for command in ("train", "separate", "evaluate", "visualize", "make-corpus", "prepare", "export"):
        assert command in out.stdout, command
    out = subprocess.run([sys.executable, "-m", "deepclust", "train", "--help"], capture_output=True, text=True,
                         check=True)
    assert "--time-limit" in out.stdout and "--base" in out.stdout
