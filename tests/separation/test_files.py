"""The separate command on files: names that cannot collide, folders as inputs, every check before the model
loads, each failure said once, the decisions said in one line per file, a full disk named."""

from __future__ import annotations

import errno

import numpy as np
import pytest
import soundfile as sf

from conftest import synth_voice
from deepclust import atomic, cli
from deepclust.config import load_config
from deepclust.dsp import audio
from deepclust.nn import model as model_lib
from deepclust.separation import files as sf_lib


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An untrained tiny network saved as a run folder would hold it (labels 3 wide, [separate] of tiny.toml):
    the file handling does not depend on how well it separates."""
    from deepclust.atomic import write_text

    folder = tmp_path_factory.mktemp("model")
    config = load_config("tiny")
    model_lib.build_model(config).save(folder / "model.keras")
    write_text(folder / "config.toml", config.to_toml())
    return folder


@pytest.fixture
def loads(monkeypatch):
    """Counts the models loaded, to check what happens before one is."""
    calls = []
    real = model_lib.load

    def load(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(model_lib, "load", load)
    return calls


def mixture(path, rate=8000, seconds=1.2, channels=1):
    mix = 0.5 * (synth_voice(110, seconds, 1, rate) + synth_voice(260, seconds, 2, rate))
    sf.write(path, np.stack([mix] * channels, axis=1) if channels > 1 else mix, rate)
    return mix


def run(args, model_dir):
    return cli.main(["separate", *map(str, args), "--model", str(model_dir)])


def test_two_files_of_one_folder_one_after_the_other(model_dir, tmp_path, capsys):
    """The seed wrote out_N.wav beside the input, so the second file of a folder was refused."""
    mixture(tmp_path / "a.flac")
    mixture(tmp_path / "b.flac")
    assert run([tmp_path / "a.flac"], model_dir) == 0
    assert run([tmp_path / "b.flac"], model_dir) == 0
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("spk*.wav")) == \
        ["a/spk1.wav", "a/spk2.wav", "b/spk1.wav", "b/spk2.wav"]


def test_three_files_of_one_stem_and_a_folder_as_input(model_dir, tmp_path, capsys):
    formats = [ext for ext, name in ((".mp3", "MP3"), (".ogg", "OGG"), (".flac", "FLAC"))
               if name in sf.available_formats()]
    folder = tmp_path / "in"
    folder.mkdir()
    for ext in formats:
        mixture(folder / f"mix{ext}")
    (folder / "notes.txt").write_text("not audio")
    assert run([folder, "--out-dir", tmp_path / "D"], model_dir) == 0
    made = sorted(p.relative_to(tmp_path / "D").as_posix() for p in (tmp_path / "D").rglob("*.wav"))
    assert made == sorted(f"mix_{ext[1:]}/spk{n}.wav" for ext in formats for n in (1, 2))
    assert len(formats) >= 2


def test_inputs_and_the_output_folder_are_checked_before_the_model_loads(model_dir, tmp_path, loads, capsys):
    (tmp_path / "empty_folder").mkdir()
    sf.write(tmp_path / "silent0.wav", np.zeros(0), 8000)
    sf.write(tmp_path / "tiny.wav", np.zeros(800), 8000)  # 0.1 s
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    bad = [tmp_path / "missing.wav", tmp_path / "empty_folder", tmp_path / "silent0.wav", tmp_path / "tiny.wav",
           tmp_path / "broken.wav"]
    assert run(bad, model_dir) == 1
    err = capsys.readouterr().err
    assert loads == []  # nothing could be separated: the model was never loaded
    for path, why in zip(bad, ("file not found", "no audio files in this folder", "no audio (0 samples)",
                               "0.100 s long; expected at least 0.25 s", "cannot read audio")):
        assert err.count(str(path) + ":") == 1 and why in err  # each said once
    assert "5 of 5 input(s) failed" in err and "Traceback" not in err
    mixture(tmp_path / "ok.wav")
    (tmp_path / "file").write_text("x")
    for out_dir, why in ((tmp_path / "file" / "sub", "is a file, not a folder"),):
        assert run([tmp_path / "ok.wav", "--out-dir", out_dir], model_dir) == 2
        assert why in capsys.readouterr().err and loads == []
    assert run([tmp_path / "ok.wav", "--filename", "{stem}.wav"], model_dir) == 2
    assert "holding {speaker}" in capsys.readouterr().err and loads == []


def test_existing_outputs_are_refused_before_the_model_loads_and_replaced_with_force(model_dir, tmp_path, loads,
                                                                                       capsys):
    mixture(tmp_path / "a.wav")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "spk2.wav").write_bytes(b"mine")
    assert run([tmp_path / "a.wav"], model_dir) == 1
    assert "output exists" in capsys.readouterr().err and loads == []
    assert (tmp_path / "a" / "spk2.wav").read_bytes() == b"mine"
    assert run([tmp_path / "a.wav", "--force"], model_dir) == 0
    assert sf.info(tmp_path / "a" / "spk2.wav").frames > 0


def test_one_line_per_file_says_the_count_downmix_and_resampling(model_dir, tmp_path, capsys, monkeypatch):
    from deepclust.separation import separator

    monkeypatch.setattr(separator, "estimate_num_speakers", lambda *args: 2)
    mix = mixture(tmp_path / "hi.wav", rate=16000, channels=2)
    assert run([tmp_path / "hi.wav", "--num-speakers", "auto"], model_dir) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{tmp_path / 'hi.wav'}: 2 speakers (counted); 2 channels downmixed to mono; "
                           "resampled from 16000 Hz to the model's 8000 Hz and back (separated below 4000 Hz")
    assert line.endswith(f"{tmp_path / 'hi' / 'spk1.wav'}, {tmp_path / 'hi' / 'spk2.wav'}")
    info = sf.info(tmp_path / "hi" / "spk1.wav")
    assert info.samplerate == 16000 and info.frames == len(mix) and info.channels == 1


def test_more_speakers_than_the_model_was_trained_on_is_warned_of_and_above_eight_refused(model_dir, tmp_path,
                                                                                         capsys):
    mixture(tmp_path / "m.wav")
    assert run([tmp_path / "m.wav", "--num-speakers", "4"], model_dir) == 0  # tiny.toml: mixtures of at most 3
    out = capsys.readouterr().out
    assert "warning: asked for 4 speakers, and the model was trained on mixtures of at most 3" in out
    with pytest.raises(SystemExit):
        run([tmp_path / "m.wav", "--num-speakers", "9"], model_dir)
    assert "a count from 1 to 8" in capsys.readouterr().err


def test_seed_names_beside_one_input(model_dir, tmp_path):
    mixture(tmp_path / "m.wav")
    assert run([tmp_path / "m.wav", "--seed-names"], model_dir) == 0
    assert (tmp_path / "out_1.wav").is_file() and (tmp_path / "out_2.wav").is_file()
    mixture(tmp_path / "n.wav")
    assert run([tmp_path / "m.wav", tmp_path / "n.wav", "--seed-names", "--out-dir", tmp_path / "D"], model_dir) == 0
    assert (tmp_path / "D" / "m" / "out_2.wav").is_file() and (tmp_path / "D" / "n" / "out_2.wav").is_file()


def test_a_full_disk_stops_the_loop_in_one_line_naming_the_folder(model_dir, tmp_path, monkeypatch, capsys):
    for name in ("a", "b", "c"):
        mixture(tmp_path / f"{name}.wav")
    real_write = sf.write
    written = []

    def write(path, *args, **kwargs):
        if len(written) == 2:  # a's two files fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(audio.sf, "write", write)
    assert run([tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"], model_dir) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'b'}: no space left on the device (spk1.wav was not written)" in err
    assert "kept: the 2 file(s) of the 1 input(s) separated before" in err and "Traceback" not in err
    assert err.count("c.wav") == 0 and "2 of 3 input(s) failed" in err  # one line of the full disk
    assert (tmp_path / "a" / "spk2.wav").is_file() and not list((tmp_path / "b").glob("*"))


def test_save_writes_each_speaker_and_refuses_what_exists(tmp_path):
    from deepclust.separation.separator import Separation

    sources = np.stack([np.full(800, 0.5), np.full(800, 2.0)]).astype(np.float32)  # would clip
    result = Separation(sources, 16000, 2)
    outs = sf_lib.save(result, tmp_path / "o")
    assert outs == [tmp_path / "o" / "spk1.wav", tmp_path / "o" / "spk2.wav"]
    back = np.stack([sf.read(o)[0] for o in outs])
    assert sf.info(outs[0]).samplerate == 16000 and np.abs(back).max() <= 1.0
    assert back[1, 0] / back[0, 0] == pytest.approx(4.0, rel=1e-3)  # scaled together
    with pytest.raises(FileExistsError, match="spk1.wav"):
        sf_lib.save(result, tmp_path / "o")
    assert sf_lib.save(result, tmp_path / "o", "{stem}_{speaker}.wav", stem="take")[0].name == "take_1.wav"
    with pytest.raises(sf_lib.OutputError, match=r"Received: filename='\{stem\}.wav'"):
        sf_lib.save(result, tmp_path / "o", "{stem}.wav")


def test_disk_full_is_named_by_the_atomic_writer(tmp_path):
    (tmp_path / "kept.txt").write_text("old")
    with pytest.raises(atomic.DiskFull) as caught:
        with atomic.replacing(tmp_path / "kept.txt") as tmp:
            tmp.write_text("new, half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(caught.value) == (f"{tmp_path}: no space left on the device (kept.txt there is unchanged); free some "
                                 "space and run the command again")
    assert (tmp_path / "kept.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["kept.txt"]
