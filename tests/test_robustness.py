"""Bad input, crashes and long runs: training keeps working and loses nothing.

- a training process killed with SIGKILL resumes where its last state left off,
  weights and optimizer state included, and leaves no half-written model;
- a NaN loss stops training with the last good model and state kept;
- Ctrl-C (KeyboardInterrupt) stops cleanly, and the run resumes;
- the list parser and the mixer hold up under any input (hypothesis);
- unreadable audio is skipped with a warning naming file and line; odd but
  valid formats are read; bad config values are one clear error.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RATE, start_training_until_first_state, synth_voice, write_list_folder
from deepclust import atomic, cli
from deepclust.config import load_config
from deepclust.corpus import lists
from deepclust.data import mixer as mixer_lib
from deepclust.data.dataset import MixtureDataset
from deepclust.dsp import audio
from deepclust.dsp.mixing import MIX_PEAK, draw_scaled
from deepclust.paths import MODEL_FILENAME, STATE_DIRNAME
from deepclust.training import callbacks as cb, state as run_state
from deepclust.training.train import load_trained, train

SPEAKERS = {"low": 110.0, "mid": 180.0, "high": 260.0}
STEPS = load_config("tiny").train.steps_per_epoch


def history_epochs(base: Path) -> list[int]:
    return [int(r["epoch"]) for r in csv.DictReader(open(base / "history.csv"))]


def assert_model_finite(base: Path) -> None:
    net = load_trained(base)
    assert all(np.all(np.isfinite(w)) for w in net.get_weights())


def no_temporaries(base: Path) -> bool:
    return not [p for p in [*base.iterdir(), *(base / STATE_DIRNAME).iterdir()] if ".tmp" in p.name]


class Spy:
    """Records what TrainingState left in the model when training (re)started, and at the end."""

    def __init__(self, monkeypatch):
        self.begin_iterations = self.end_iterations = self.learning_rate = None
        self.weights = None
        original = run_state.TrainingState.on_train_begin
        spy = self

        def on_train_begin(state, logs=None):
            original(state, logs)
            spy.begin_iterations = int(state.model.optimizer.iterations.numpy())
            spy.learning_rate = float(state.model.optimizer.learning_rate.numpy())
            spy.weights = [w.numpy().copy() for w in state.model.weights]

        def on_train_end(state, logs=None):
            spy.end_iterations = int(state.model.optimizer.iterations.numpy())

        monkeypatch.setattr(run_state.TrainingState, "on_train_begin", on_train_begin)
        monkeypatch.setattr(run_state.TrainingState, "on_train_end", on_train_end, raising=False)


# -- 1, 2: SIGKILL mid-run, then resume ---------------------------------------------
@pytest.mark.slow
def test_killed_run_resumes_with_weights_and_optimizer_state(tmp_path, monkeypatch):
    base = write_list_folder(tmp_path / "base", SPEAKERS)
    proc = start_training_until_first_state(base)
    try:
        time.sleep(0.3)  # land somewhere inside a later epoch, or inside a save
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # What the kill left: a complete state, a loadable model, nothing that passes for a state.
    saved = run_state.latest_state(base / STATE_DIRNAME)
    assert saved is not None
    epoch, weights_file, meta = saved
    assert 1 <= epoch < 50 and meta["epoch"] == epoch
    for path in (base / STATE_DIRNAME).iterdir():
        assert path.name.startswith(".") or run_state.STATE_PATTERN.match(path.name) or path.suffix == ".json"
    assert_model_finite(base)
    saved_weights = tmp_path / "saved.weights.h5"
    saved_weights.write_bytes(weights_file.read_bytes())

    # The same command, fewer epochs: it goes on from the saved epoch.
    spy = Spy(monkeypatch)
    result = train(base, "tiny", {"train.epochs": epoch + 2}, verbose=0)
    assert result.stopped == "completed" and result.epochs_done == epoch + 2
    assert history_epochs(base) == list(range(epoch + 2))  # each epoch once, none redone from 0
    assert spy.begin_iterations == epoch * STEPS  # optimizer state restored, not reset
    assert spy.end_iterations == (epoch + 2) * STEPS
    assert no_temporaries(base)  # what the killed process left mid-write was cleaned up
    assert_model_finite(base)

    # The resumed run started from exactly the saved weights and optimizer state.
    from deepclust.nn import model as model_lib

    reference = model_lib.load(base / MODEL_FILENAME, compile=True)
    reference.optimizer.build(reference.trainable_variables)
    reference.load_weights(saved_weights)
    assert int(reference.optimizer.iterations.numpy()) == epoch * STEPS
    assert len(spy.weights) == len(reference.weights)
    for got, want in zip(spy.weights, reference.weights):
        np.testing.assert_array_equal(got, want.numpy())


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_the_run_resumes(tmp_path):
    """What kill, Slurm and Kubernetes send: a clean stop (message, exit status 130, state and model
    kept), then the same command goes on from the saved epoch."""
    base = write_list_folder(tmp_path / "base", SPEAKERS)
    proc = start_training_until_first_state(base)
    try:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == cli.EXIT_INTERRUPTED, stderr.decode()[-2000:]
    assert "interrupted" in stderr.decode() and "Traceback" not in stderr.decode()
    epoch = run_state.latest_state(base / STATE_DIRNAME)[0]
    assert 1 <= epoch < 50 and no_temporaries(base)
    assert_model_finite(base)

    result = train(base, "tiny", {"train.epochs": epoch + 1}, verbose=0)
    assert result.stopped == "completed" and result.epochs_done == epoch + 1
    assert history_epochs(base) == list(range(epoch + 1))


def test_stale_temporaries_are_removed_and_history_is_trimmed(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # This version's names (with a random part) and an earlier version's (without).
    stale = [folder / f".epoch-000003.weights.h5.{dead.pid}.x1_yz.tmp.weights.h5",
             folder / f".model.keras.{dead.pid}.ab12cd.tmp.keras", folder / f".epoch-000003.json.{dead.pid}.tmp"]
    live = folder / f".model.keras.{os.getpid()}.q9w8e7.tmp.keras"
    kept = [live, folder / "epoch-000003.json", folder / ".hidden-notes"]
    for path in [*stale, *kept]:
        path.write_bytes(b"half")
    assert sorted(atomic.remove_stale_temporaries(folder)) == sorted(stale)
    assert all(path.exists() for path in kept)

    from deepclust.training import history_csv

    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,val_loss\n0,1.0,1.0\n1,0.9,0.9\n2,nan,nan\n3,0.8")  # killed mid-row
    history_csv.trim(history, 2)
    assert history.read_text() == "epoch,loss,val_loss\n0,1.0,1.0\n1,0.9,0.9\n"
    history_csv.trim(history, 0)
    assert not history.exists()


# -- 3: NaN -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A folder trained for two epochs, copied for each test that needs one."""
    base = write_list_folder(tmp_path_factory.mktemp("nan") / "base", SPEAKERS)
    train(base, "tiny", {"train.epochs": 2}, verbose=0)
    return base


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("where", ["features", "weights"])
def test_nan_stops_training_and_keeps_last_good_model_and_state(where, two_epochs, tmp_path, monkeypatch, caplog):
    base = copy_run(two_epochs, tmp_path / "base")
    good_model = (base / MODEL_FILENAME).read_bytes()
    if where == "features":
        # NaN input from the third epoch on: the loss is NaN at the first step.
        original = MixtureDataset.__getitem__

        def poisoned(dataset, index):
            x, y = original(dataset, index)
            return np.full_like(x, np.nan), y

        monkeypatch.setattr(MixtureDataset, "__getitem__", poisoned)
    else:
        # NaN weights after the epoch's last step: its training loss is still finite.
        from deepclust.training.callbacks import Throughput

        def poison(throughput, batch, logs=None):
            if batch == STEPS - 1:
                for w in throughput.model.trainable_weights:
                    w.assign(np.full(w.shape, np.nan, dtype=w.dtype))

        monkeypatch.setattr(Throughput, "on_train_batch_end", poison)
    with caplog.at_level(logging.WARNING, logger="deepclust"):
        result = train(base, None, {"train.epochs": 5}, verbose=0)
    assert result.stopped == "nan"
    assert any("NaN" in r.getMessage() and "learning_rate" in r.getMessage() for r in caplog.records)
    assert (base / MODEL_FILENAME).read_bytes() == good_model  # the last good model, untouched
    assert_model_finite(base)
    assert run_state.latest_state(base / STATE_DIRNAME)[0] == 2  # no NaN state saved
    assert no_temporaries(base)

    # Run again with a lower learning rate, as the message says: it goes on from epoch 2 at that rate.
    monkeypatch.undo()
    spy = Spy(monkeypatch)
    result = train(base, None, {"train.epochs": 3, "train.learning_rate": 0.001}, verbose=0)
    assert result.stopped == "completed" and result.epochs_done == 3
    assert spy.begin_iterations == 2 * STEPS
    assert spy.learning_rate == pytest.approx(0.001)
    assert history_epochs(base) == [0, 1, 2]  # the NaN epoch's row was replaced, not repeated
    assert_model_finite(base)


# -- 4, 6: Ctrl-C, on a list with bad files -----------------------------------------
def write_bad_files(base: Path) -> list[str]:
    """Append bad lines to base/train; returns the lines."""
    (base / "wav" / "garbage.wav").write_bytes(b"RIFF\x00\x01garbage" + bytes(range(256)))
    sf.write(base / "wav" / "empty.wav", np.zeros(0, np.float32), RATE)
    bad = synth_voice(150, 0.5, 9)
    bad[100] = np.nan
    sf.write(base / "wav" / "nan.wav", bad, RATE, subtype="FLOAT")
    lines = ["wav/missing.wav low", "wav/garbage.wav mid", "wav/empty.wav high", "wav/nan.wav low"]
    with open(base / "train", "a") as f:
        f.write("\n".join(lines) + "\n")
    return lines


@pytest.mark.slow
def test_interrupt_keeps_last_epoch_and_resumes_with_bad_files_skipped(tmp_path, monkeypatch, caplog):
    base = write_list_folder(tmp_path / "base", SPEAKERS)
    bad = write_bad_files(base)
    good_lines = len((base / "valid").read_text().splitlines())

    def interrupt(sync, epoch, logs=None):
        sync.dataset.epoch = epoch
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cb.EpochSync, "on_epoch_begin", interrupt)
    with caplog.at_level(logging.WARNING, logger="deepclust"):
        result = train(base, "tiny", {"train.epochs": 5}, verbose=0)
    assert result.stopped == "interrupted" and result.epochs_done == 2
    for offset, line in enumerate(bad, start=good_lines + 1):
        name = line.split()[0]
        assert any(f"{base / 'train'}:{offset}" in r.getMessage() and name in r.getMessage()
                   for r in caplog.records), (offset, line)
    assert run_state.latest_state(base / STATE_DIRNAME)[0] == 2
    assert history_epochs(base) == [0, 1]
    assert_model_finite(base)
    assert no_temporaries(base)

    monkeypatch.undo()
    result = train(base, None, {"train.epochs": 3}, verbose=0)
    assert result.stopped == "completed" and result.epochs_done == 3
    assert history_epochs(base) == [0, 1, 2]


# -- 6: bad input -------------------------------------------------------------------
def test_bad_files_are_skipped_with_file_and_line_and_all_bad_is_a_data_error(tmp_path, caplog):
    base = write_list_folder(tmp_path / "base", SPEAKERS, utterances=1, seconds=0.5)
    bad = write_bad_files(base)
    with caplog.at_level(logging.WARNING, logger="deepclust"):
        corpus = mixer_lib.load_corpus(base / "train", RATE, 2)
    assert corpus.num_utterances == 3 and len(corpus.skipped) == len(bad)
    assert [e.line for e, _ in corpus.skipped] == [4, 5, 6, 7]
    reasons = [why for _, why in corpus.skipped]
    assert "not found" in reasons[0] and "cannot read" in reasons[1]
    assert "zero-length" in reasons[2] and "NaN" in reasons[3]
    assert any("skipped 4 of 7" in r.getMessage() for r in caplog.records)

    (base / "bad").write_text("\n".join(bad) + "\n")
    with pytest.raises(mixer_lib.DataError, match="none of the 4 listed files could be read"):
        mixer_lib.load_corpus(base / "bad", RATE, 2)


@pytest.mark.parametrize("rate, channels, subtype", [
    (16000, 2, "PCM_24"), (44100, 1, "FLOAT"), (22050, 2, "PCM_32"), (8000, 1, "DOUBLE"), (11025, 1, "PCM_U8"),
])
def test_other_formats_are_downmixed_and_resampled(tmp_path, rate, channels, subtype):
    seconds = 0.75
    voice = synth_voice(200, seconds, 1, rate)
    frames = np.stack([voice, 0.5 * voice], axis=1) if channels == 2 else voice
    path = tmp_path / "x.wav"
    sf.write(path, frames, rate, subtype=subtype)
    signal, got_rate = audio.read(path, RATE)
    assert got_rate == RATE and signal.dtype == np.float32 and signal.ndim == 1
    assert len(signal) == math.ceil(len(voice) * RATE / rate)
    assert np.all(np.isfinite(signal)) and 0.1 < np.abs(signal).max() <= 1.0
    mono = 0.75 * voice if channels == 2 else voice  # channels averaged
    reference = audio.resample(mono.astype(np.float32), rate, RATE)
    np.testing.assert_allclose(signal, reference, atol=0.02)


@pytest.mark.parametrize("setting, key", [
    ("train.bogus=1", "train.bogus"),
    ("train.epochs=many", "train.epochs"),
    ("train.epochs=0", "train.epochs"),
    ("data.min_speakers=4", "data.min_speakers"),
    ("features.weighting=loud", "features.weighting"),
    ("nosuch.key=1", "nosuch"),
])
def test_bad_config_values_are_one_clear_error(list_folder, capsys, setting, key):
    code = cli.main(["train", "--base", str(list_folder), "--config", "tiny", "--set", setting, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "deepclust train: error:" in err and key in err and "Traceback" not in err
    assert not (list_folder / MODEL_FILENAME).exists()


# -- 5: property-based ----------------------------------------------------------------
PATH_CHARS = st.sampled_from(list("abcXYZ019_-./#é ") + ["\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\ufeff"])
LINE = st.one_of(
    st.just(""),
    st.text(PATH_CHARS, max_size=12),  # anything: whitespace, '#', one or more fields
    st.builds(lambda p, s, c: f"{p} {s}{c}", st.text(PATH_CHARS, min_size=1, max_size=10),
              st.text(st.sampled_from(list("spk0123")), min_size=1, max_size=4),
              st.sampled_from(["", " # comment", "#not-a-comment", "  "])),
    st.builds(lambda c: "#" + c, st.text(PATH_CHARS, max_size=10)),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=8), ending=st.sampled_from(["\n", "\r\n", "\r"]), bom=st.booleans())
def test_list_parser_gives_entries_or_a_list_format_error(tmp_path, lines, ending, bom):
    list_file = tmp_path / "list"
    list_file.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ending.join(lines).encode("utf-8"))
    try:
        entries = lists.parse_list(list_file)
    except lists.ListFormatError as exc:
        number = int(str(exc).split(":")[1])
        assert 1 <= number <= len(lines)
        bad = lines[number - 1]
        assert bad.strip() and not bad.strip().startswith("#")
        return
    previous = 0
    for entry in entries:
        assert previous < entry.line <= len(lines)
        previous = entry.line
        line = lines[entry.line - 1].strip()
        assert line and not line.startswith("#") and entry.speaker in line.split()
        assert entry.list_file == list_file and entry.path.is_absolute()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=200))
def test_list_parser_on_any_bytes(tmp_path, blob):
    list_file = tmp_path / "list"
    list_file.write_bytes(blob)
    try:
        entries = lists.parse_list(list_file)
    except lists.ListFormatError:
        return
    assert all(e.line >= 1 and e.speaker for e in entries)


LEVELS = st.sampled_from([0.0, 1e-30, 1e-9, 1e-6, 1e-3, 0.5, 1.0, 30.0, 1e3])


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 3), length=st.integers(1, 3000), levels=st.lists(LEVELS, min_size=3, max_size=3),
       mixing=st.sampled_from(["wsj0", "peak"]), seed=st.integers(0, 2**16), kind=st.sampled_from(["voice", "noise"]))
def test_mixer_any_sources_gives_finite_features_and_one_hot_labels(k, length, levels, mixing, seed, kind):
    config = load_config("tiny", {"data.mixing": mixing, "data.min_speakers": 1})
    rng = np.random.default_rng(seed)
    if kind == "voice":
        sources = np.stack([synth_voice(100 + 60 * i, length / RATE + 1e-6, seed + i)[:length] for i in range(k)])
        sources = np.pad(sources, [(0, 0), (0, length - sources.shape[1])])
    else:
        sources = rng.standard_normal((k, length)).astype(np.float32)
    sources = sources * np.asarray(levels[:k], np.float32)[:, None]
    scaled = draw_scaled(sources, rng, config.data)
    assert scaled.shape == (k, length) and np.all(np.isfinite(scaled))
    loudest = max(np.abs(scaled).max(), np.abs(scaled.sum(axis=0)).max())
    # Scaled together so the loudest sample is the wsj0-2mix peak; all-silent sources stay silent.
    assert loudest == pytest.approx(MIX_PEAK, rel=1e-5) if scaled.any() else loudest == 0
    feats, labels = mixer_lib.example_of_mixture(scaled, config)
    assert np.all(np.isfinite(feats)) and np.all(np.isfinite(labels))
    assert labels.shape == feats.shape + (config.data.max_speakers,)
    assert set(np.unique(labels)) <= {0.0, 1.0}
    assert set(np.unique(labels.sum(axis=-1))) <= {0.0, 1.0}
    assert not labels[..., k:].any()  # columns past the k sources stay empty
