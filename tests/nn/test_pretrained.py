"""The shipped pretrained model: it loads and separates, separate falls back to it, export and --init work."""

import importlib.util
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deepclust import cli, paths
from deepclust.config import ConfigError, load_config, read_config_file
from deepclust.nn import model as model_lib, pretrained
from deepclust.separation.separator import Separator
from deepclust.training.train import train

from test_separator import write_mixture


def load_script(name: str):
    """scripts/NAME.py as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[2] / "scripts" / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_packaged_model_loads_without_optimizer_and_separates():
    path = paths.shipped_model()
    assert path.is_file(), "the package ships deepclust/pretrained_model/model.keras (scripts/pretrained.py export)"
    assert (path.parent / paths.CARD_FILENAME).is_file()
    cfg = read_config_file(path.parent / paths.CONFIG_FILENAME)
    net = model_lib.load(path)
    assert path.stat().st_size < 1.2 * 4 * net.count_params()  # float32 weights alone: Adam's state would triple it
    spec = model_lib.feature_spec(net)
    assert spec.feature_config().window_length == cfg.features.window_length
    # The FeatureSpec layer's saved config is the model file format: the shipped file's written back the same,
    # its STFT settings the config's one Stft object.
    with zipfile.ZipFile(path) as archive:
        saved = [layer for layer in json.loads(archive.read("config.json"))["config"]["layers"]
                 if layer["class_name"] == "FeatureSpec"]
    assert len(saved) == 1 and spec.get_config() == saved[0]["config"]
    assert spec.stft == cfg.stft and spec.stft.num_bins == net.input_shape[-1]
    sep = Separator.from_path(path.parent)
    rng = np.random.default_rng(0)
    mix = (rng.standard_normal(8000) * 0.05).astype(np.float32)
    out = sep.separate(mix, 2)
    assert out.sources.shape == (2, 8000) and np.all(np.isfinite(out.sources))


def test_export_drops_the_optimizer_and_keeps_the_network(trained, tmp_path):
    base, _ = trained
    shipped = pretrained.export(base, tmp_path / "pre")
    assert shipped.stat().st_size < (base / "model.keras").stat().st_size  # the run's file holds Adam's state
    assert read_config_file(tmp_path / "pre" / paths.CONFIG_FILENAME) == read_config_file(base / "config.toml")
    x = np.random.default_rng(1).standard_normal((1, 30, 65)).astype(np.float32)
    np.testing.assert_allclose(model_lib.load(shipped).predict(x, verbose=0),
                               model_lib.load(base / "model.keras").predict(x, verbose=0), rtol=1e-6)


def test_separate_names_the_shipped_model_first_when_none_is_given(trained, tmp_path, monkeypatch, capsys):
    base, _ = trained
    pretrained.export(base, tmp_path / "pre")
    monkeypatch.setattr(paths, "SHIPPED_DIR", tmp_path / "pre")
    monkeypatch.delenv("DEEPC_BASE", raising=False)
    write_mixture(tmp_path / "m.wav")
    assert cli.main(["separate", str(tmp_path / "m.wav")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "pretrained model shipped in deepclust" in first and str(tmp_path / "pre") in first
    assert (tmp_path / "m" / "spk2.wav").is_file()
    monkeypatch.setenv("DEEPC_BASE", str(base))  # a named model wins, and nothing is said
    said = []
    assert paths.locate(fallback=said.append) == base / "model.keras" and not said


@pytest.mark.parametrize("overrides", [{}, {"data.max_speakers": 2}], ids=["same config", "narrower labels"])
def test_init_starts_from_the_given_weights(trained, tmp_path, overrides):
    """Also from a model trained on more speakers per mixture: the label width is not in the network's weights
    (fine-tuning the shipped 2- and 3-speaker model on 2-speaker data, as demo.toml draws, must work)."""
    base, _ = trained
    shutil.copy(base / "train", tmp_path / "train")
    shutil.copytree(base / "wav", tmp_path / "wav")
    shutil.copy(base / "valid", tmp_path / "valid")
    # A learning rate too small to move anything: the new run's model is the one it started from.
    train(tmp_path, "tiny", {"train.init": str(base), "train.learning_rate": 1e-12, "train.epochs": 1,
                           "train.seed": 1, **overrides}, verbose=0)
    started, source = model_lib.load(tmp_path / "model.keras"), model_lib.load(base / "model.keras")
    for ours, theirs in zip(started.get_weights(), source.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
    for stat in ("mean", "variance"):  # the features are read as the source model learnt to read them
        np.testing.assert_array_equal(*(np.asarray(getattr(m.get_layer(model_lib.NORMALIZATION_LAYER), stat))
                                        for m in (started, source)))
    assert read_config_file(tmp_path / "config.toml").train.init == str(base)  # the recipe says where it began


def test_init_refuses_a_missing_or_different_network(trained, tmp_path):
    base, _ = trained
    with pytest.raises(ConfigError, match=r"no model at .*nowhere.*Received: init="):
        pretrained.init_model(str(tmp_path / "nowhere"), load_config("tiny"))
    wider = model_lib.build_model(load_config("tiny", {"model.lstm_units": 12}))
    with pytest.raises(ConfigError, match=r"different network .*is \(.*\) there and \(.*\) here"):
        pretrained.load_initial_weights(wider, pretrained.init_model(str(base), load_config("tiny")), str(base))
    with pytest.raises(ConfigError, match=r"reads other features \(features.silence_db 40.0 there, 30.0 here\)"):
        pretrained.init_model(str(base), load_config("tiny", {"features.silence_db": 30.0}))


def test_init_with_other_features_is_refused_before_anything_is_built(tmp_path):
    """The shipped model reads 129 bins, the tiny config 65: refused by name at once, not a broadcasting error
    deep in the network's construction."""
    with pytest.raises(ConfigError, match=r"reads other features \(.*features.window_length 256 there, 128 here.*"
                                          r"Received: init='pretrained'"):
        train(tmp_path / "run", "tiny", {"train.init": "pretrained"}, verbose=0)


def test_recipe_joins_corpora_its_config_can_weigh(tmp_path, monkeypatch):
    """scripts/pretrained.py's lists: every corpus's train speakers prefixed by its name (so the recipe's
    data.corpus_weights finds each, and weighs every one), absolute paths from any folder, validation of
    the real corpora of VALID_FROM alone, and the noise list the recipe's config names beside them."""
    import soundfile as sf

    from conftest import synth_voice, write_list_folder

    from deepclust.corpus import lists
    from deepclust.data import mixer as mixer_lib

    recipe = load_script("pretrained")
    corpora = {"espeak": {"spk000f": 220.0, "spk001m": 110.0, "spk002f": 250.0}}
    corpora.update({name: {f"{name}{i}": 120.0 + 40 * i for i in range(2)} for name in recipe.REAL})
    for name, speakers in corpora.items():
        write_list_folder(tmp_path / name, speakers, utterances=2, seconds=1.0)
    noise = tmp_path / "noise_dir"
    noise.mkdir()
    sf.write(noise / "n.wav", 0.01 * synth_voice(60.0, 1.0, 0), 8000)
    (noise / "wav.scp").write_text("n n.wav\n")
    (noise / "utt2spk").write_text("n noise\n")
    monkeypatch.setattr(recipe, "NOISE", noise)
    monkeypatch.chdir(tmp_path)
    recipe.join_lists({name: Path(name) for name in corpora}, Path("run"), recipe.VALID_FROM)
    recipe.write_noise_list(Path("run") / "noise")
    train_entries = lists.parse_list(tmp_path / "run" / "train")
    assert all(Path(line.split()[0]).is_absolute() for line in (tmp_path / "run" / "train").read_text().splitlines()
               if not line.startswith("#"))
    assert {e.speaker for e in train_entries} == {f"{name}-{s}" for name, speakers in corpora.items() for s in speakers}
    assert all(e.path.is_file() for e in train_entries)
    valid = {e.speaker.split("-")[0] for e in lists.parse_list(tmp_path / "run" / "valid")}
    assert valid == set(recipe.VALID_FROM) and "pico" not in valid  # no pseudo-speakers pick the model
    cfg = load_config("pretrained")
    assert set(cfg.data.corpus_weights) == set(corpora)  # the config weighs every corpus the recipe lists
    for split in ("train", "valid"):
        mixer = mixer_lib.Mixer(mixer_lib.load_corpus(tmp_path / "run" / split, 8000), cfg)
        names = corpora if split == "train" else recipe.VALID_FROM
        assert sorted(w for w, _ in mixer.corpora) == sorted(cfg.data.corpus_weights[n] for n in names)
        assert [p.name for p in mixer.augmenter.noises.paths] == ["n.wav"]  # run/noise, found from the lists


def test_held_out_speakers_and_recordings_are_found_in_lists(tmp_path, capsys):
    """scripts/held_out.py: a Kaldi test directory's speakers (also under the recipe's corpus prefix) and
    files, and every file of a plain folder (FSDD's), are reported with their list line; a clean list passes."""
    held = load_script("held_out")
    kaldi, fsdd = tmp_path / "test", tmp_path / "fsdd"
    (kaldi / "audio").mkdir(parents=True)
    fsdd.mkdir()
    for name in ("a.wav", "b.wav"):
        (kaldi / "audio" / name).write_bytes(b"")
    (fsdd / "0_jackson_0.wav").write_bytes(b"")
    (tmp_path / "mine.wav").write_bytes(b"")
    (kaldi / "wav.scp").write_text("u1 audio/a.wav\nu2 audio/b.wav\n")
    (kaldi / "utt2spk").write_text("u1 ls_7\nu2 ls_7\n")
    clean = tmp_path / "clean"
    clean.write_text(f"{tmp_path / 'mine.wav'} libri-ls_8\n")
    assert held.main(["--lists", str(clean), "--held-out", str(kaldi), str(fsdd)]) == 0
    mixed = tmp_path / "mixed"
    mixed.write_text(f"{tmp_path / 'mine.wav'} libri-ls_8\n{tmp_path / 'mine.wav'} libri-ls_7\n"
                     f"{fsdd / '0_jackson_0.wav'} fsdd-jackson\n{kaldi / 'audio' / 'a.wav'} x\n")
    assert held.main(["--lists", str(mixed), "--held-out", str(kaldi), str(fsdd)]) == 1
    out = capsys.readouterr().out
    assert "3 entries held out" in out
    assert f"{mixed}:2: speaker libri-ls_7 is held out" in out and f"{mixed}:3:" in out and f"{mixed}:4:" in out
    assert f"{mixed}:1:" not in out
    # The recipe runs the check on its lists, with the held-out folders that exist.
    recipe = load_script("pretrained")
    command = recipe.held_out_check(tmp_path / "run", held_out=(kaldi, tmp_path / "absent", fsdd))
    assert command[-3:] == ["--held-out", str(kaldi), str(fsdd)] and command[1].endswith("held_out.py")
    assert recipe.held_out_check(tmp_path / "run", held_out=(tmp_path / "absent",)) == []


def test_gpu_recipe_is_the_cpu_recipe_with_its_overrides(tmp_path):
    """scripts/pretrained.py build --gpu: each training command parses to configs/pretrained.toml with
    GPU_RECIPE on top (a valid config, a larger network), and without --gpu to the recipe alone."""
    recipe = load_script("pretrained")
    parser = cli.get_parser()
    configs = {}
    for gpu in (False, True):
        args = parser.parse_args(recipe.train_args(tmp_path / "run", "60m", gpu))
        assert (args.base, args.time_limit) == (str(tmp_path / "run"), "60m")
        overrides = cli._overrides(args, cli.TRAIN_FLAGS)
        configs[gpu] = load_config(args.config, overrides)
    assert configs[False] == load_config("pretrained")
    assert configs[True] == load_config("pretrained", recipe.GPU_RECIPE) != configs[False]
    assert configs[True].model.lstm_units > configs[False].model.lstm_units
    # A fine-tune of the shipped model (build --init pretrained --set ...): every budget starts from it.
    args = parser.parse_args(recipe.train_args(tmp_path / "run", "6h", False, "pretrained", ("train.learning_rate=0.0005",)))
    tuned = load_config(args.config, cli._overrides(args, cli.TRAIN_FLAGS))
    assert tuned.train.init == "pretrained" and tuned.train.learning_rate == 0.0005 and args.time_limit == "6h"


def test_real_voice_scores_keep_one_ibm_per_stft(tmp_path):
    """scripts/real_voices.py reuses its reports: another STFT gets an IBM of its own, a new model new scores."""
    real_voices = load_script("real_voices")
    shipped = paths.shipped_model().parent
    assert real_voices.ibm_tag(str(shipped)) == "ibm"
    text = (shipped / paths.CONFIG_FILENAME).read_text()
    assert "hop_length = 64" in text
    (tmp_path / paths.CONFIG_FILENAME).write_text(text.replace("hop_length = 64", "hop_length = 128"))
    (tmp_path / paths.MODEL_FILENAME).write_bytes(b"weights")
    assert real_voices.ibm_tag(str(tmp_path)) == "ibm_8000hz_w256_h128"
    before = real_voices.model_tag(str(tmp_path))
    os.utime(tmp_path / paths.MODEL_FILENAME, ns=(1, 10**18))
    assert real_voices.model_tag(str(tmp_path)) != before and before.startswith(tmp_path.name + "-")


def voice(f0: float, seconds: float, rate: int = 8000, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise: a stand-in utterance of one "speaker"."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    return (0.1 * tone + 0.01 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


def write_voices(folder: Path, speakers: dict[str, tuple[float, int, float]]) -> list[tuple[Path, str]]:
    """{speaker: (f0, files, seconds each)} -> 8 kHz WAV files in ``folder`` as (path, speaker)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for speaker, (f0, files, seconds) in speakers.items():
        for i in range(files):
            path = folder / f"{speaker}_{i}.wav"
            sf.write(path, voice(f0, seconds, seed=i), 8000)
            entries.append((path, speaker))
    return entries


def test_long_recordings_join_each_speakers_utterances(tmp_path):
    import soundfile as sf

    real_voices = load_script("real_voices")
    entries = write_voices(tmp_path / "in", {"a": (120.0, 3, 1.0), "b": (200.0, 1, 0.5)})
    long = real_voices.long_recordings(entries, tmp_path / "long", 2.0, np.random.default_rng(0))
    assert [speaker for _, speaker in long] == ["a"]  # b has half a second of speech: left out
    signal, rate = sf.read(long[0][0], dtype="float32")
    assert rate == 8000 and len(signal) == 2 * rate
    silent = np.abs(signal) < 1e-6
    assert 0 < silent.mean() < 0.5  # utterances with pauses between them


def test_count_accuracy_tries_every_pair_of_limits_on_the_same_centres(tmp_path, capsys):
    import json

    from deepclust.corpus import lists

    count_accuracy = load_script("count_accuracy")
    entries = write_voices(tmp_path / "in", {"low": (110.0, 2, 1.5), "mid": (180.0, 2, 1.5), "high": (290.0, 2, 1.5)})
    listing = lists.write_list(tmp_path / "speakers", entries)
    model = str(paths.shipped_model())
    limits = ["-1.01", "1.01"]
    assert count_accuracy.main(["--base", model, "--speakers", str(listing), "--mixtures", "2",
                                "--max-cosine", *limits, "--max-cosine-many", *limits]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # No two centres are less alike than -1.01 and all are less alike than 1.01: the limits alone decide.
    expected = {(-1.01, -1.01): 1, (-1.01, 1.01): 3, (1.01, -1.01): 2, (1.01, 1.01): 3}
    assert {(r["max_cosine"], r["max_cosine_many"]): r["by_count"] for r in results} == {
        pair: {str(k): {"accuracy": float(k == count), "count": 2, "estimates": {str(count): 2}} for k in (1, 2, 3)}
        for pair, count in expected.items()}
    with pytest.raises(SystemExit):
        count_accuracy.main(["--base", model, "--corpus", str(tmp_path), "--mixture-lists", "a", "b"])
    assert "--mixture-lists goes with --speakers" in capsys.readouterr().err


# The shipped model on the README's example (two of speechocean762's test speakers, a woman and a man): it gains
# 11.5 dB SDR there (README, "Quick start"). A model that separates that much worse is not the one to ship.
EXAMPLE_MIN_SDRI = 10.5


def test_shipped_model_separates_the_readme_example_by_its_stated_sdri():
    import soundfile as sf

    from deepclust.evaluation.metrics import score
    from deepclust.separation.separator import Separator

    examples = Path(__file__).resolve().parents[2] / "examples"
    mixture, rate = sf.read(examples / "speechocean762_2spk.wav", dtype="float32")
    references = np.stack([sf.read(examples / f"speechocean762_2spk_s{i}.wav", dtype="float32")[0] for i in (1, 2)])
    separated = Separator.load("pretrained").separate(mixture, 2, sample_rate=rate)
    result = score(references, separated.sources, mixture)
    assert result["sdri"] >= EXAMPLE_MIN_SDRI, result
