"""Loading a config: shipped names and paths, TOML files, overrides, saved configs, keys retired since."""

import re
from pathlib import Path

import pytest

from deepclust.config import CONFIG_DIR, ConfigError, load_config, parse_override, read_config_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
def test_shipped_configs_load_by_name_and_by_path(name):
    import numpy as np

    from deepclust.dsp import features

    cfg = load_config(name)
    assert load_config(ROOT / "configs" / f"{name}.toml") == cfg  # the file a user edits is the one shipped
    # num_bins is what the network reads: the STFT's own number of bins.
    assert cfg.num_bins == features.stft(np.zeros(4000, np.float32), cfg.features).shape[-1]


def test_every_config_the_docs_name_resolves():
    """Each configs/NAME.toml path and each --config NAME in the README and the scripts loads."""
    texts = [ROOT / "README.md", *sorted((ROOT / "scripts").glob("*"))]
    named = set()
    for path in texts:
        text = path.read_text(encoding="utf-8")
        named |= {("path", m) for m in re.findall(r"\bconfigs/[\w-]+\.toml", text)}
        named |= {("name", m) for m in re.findall(r"--config[ =]([a-z][\w-]*)\b(?!/)", text) if m not in ("NAME", "FILE")}
    assert {kind for kind, _ in named} == {"path", "name"}
    for kind, value in sorted(named):
        assert load_config(ROOT / value if kind == "path" else value) is not None, value
    assert CONFIG_DIR.resolve() == (ROOT / "configs").resolve()


def test_seed_config_holds_the_original_constants():
    cfg = load_config("seed")
    assert (cfg.audio.sample_rate, cfg.features.window_length, cfg.features.hop_length) == (8000, 256, 64)
    assert (cfg.model.lstm_layers, cfg.model.lstm_units, cfg.model.embedding_dim) == (2, 300, 40)
    assert (cfg.model.dropout, cfg.model.recurrent_dropout, cfg.model.l2) == (0.5, 0.2, 1e-6)
    assert (cfg.data.chunk_frames, cfg.data.chunk_hop, cfg.data.min_speakers, cfg.data.max_speakers) == (100, 50, 2, 3)
    assert (cfg.train.optimizer, cfg.train.clipnorm, cfg.train.batch_size) == ("nadam", 200.0, 128)
    assert cfg.features.silence_db == 40.0


def test_default_config_keeps_cudnn_eligible():
    assert load_config("default").model.recurrent_dropout == 0.0


def test_unknown_key_wrong_type_and_range(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nlstm_unitz = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key model.lstm_unitz.*Received: model.lstm_unitz=3"):
        load_config(bad)
    bad.write_text('[model]\nlstm_units = "many"\n')
    with pytest.raises(ConfigError, match=r"expected an integer. Received: lstm_units='many'"):
        load_config(bad)
    bad.write_text("[model]\ndropout = 1.5\n")
    with pytest.raises(ConfigError, match=r"at most 1.0. Received: dropout=1.5"):
        load_config(bad)
    bad.write_text("[data]\nmin_speakers = 3\nmax_speakers = 2\n")
    with pytest.raises(ConfigError, match="min_speakers must not exceed"):
        load_config(bad)
    bad.write_text("[nonsense]\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(bad)
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_overrides_and_round_trip(tmp_path):
    cfg = load_config("tiny", {"train.epochs": 7, "separate.mask": "soft"})
    assert cfg.train.epochs == 7 and cfg.separate.mask == "soft"
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert load_config(path) == cfg
    assert parse_override("model.lstm_units=12") == ("model.lstm_units", 12)
    assert parse_override("separate.mask=soft") == ("separate.mask", "soft")
    with pytest.raises(ConfigError, match="not found"):
        load_config("no-such-config")


def test_overrides_give_a_new_config_and_leave_the_one_given_as_it_was():
    from deepclust.config import apply_overrides

    saved = load_config("tiny")
    before = saved.to_dict()
    changed = apply_overrides(saved, {"train.epochs": 9, "data.corpus_weights": {"a": 1.0}})
    assert changed.train.epochs == 9 and changed.data.corpus_weights == {"a": 1.0}
    assert saved.to_dict() == before  # what a resumed run compares its new config with


def test_retired_key_in_an_old_config_is_skipped_with_a_warning(tmp_path, caplog):
    # config.toml saved beside a model by an earlier version must still load
    path = tmp_path / "config.toml"
    path.write_text("[separate]\nauto_threshold = 0.16\nauto_max_speakers = 4\n")
    with caplog.at_level("WARNING"):
        cfg = read_config_file(path)
    assert cfg.separate.auto_max_speakers == 4
    assert "auto_threshold is no longer used" in caplog.text and str(path) in caplog.text


# The options removed as measured worse (README, "Options removed"): each key, the value that asked for
# the removed behaviour, and the RESULTS.md section that measured it.
REMOVED = [
    ("train", "objective", "whitened", "The whitened objective"),
    ("model", "utterance_mean", True, "Utterance mean normalisation in the network"),
    ("separate", "input_mean", "utterance", "The model shipped before, and fine-tuning"),
    ("separate", "phase_iterations", 5, "A fourth hour, the last weights, and phase reconstruction"),
    ("data", "long_chunk_frames", 400, "Magnitude weighting, Chimera++ and the chunk curriculum"),
]


def test_removed_options_at_the_value_kept_in_an_old_run_config_are_skipped_with_a_warning(tmp_path, caplog):
    # Every run's config.toml lists every key: those of a run trained before the options went still load.
    path = tmp_path / "config.toml"
    path.write_text('[data]\nlong_chunk_frames = 0\nlong_chunk_from = 0.5\n'
                    '[model]\nutterance_mean = false\nlstm_units = 12\n[train]\nobjective = "affinity"\n'
                    '[separate]\ninput_mean = "training"\nphase_iterations = 0\n')
    with caplog.at_level("WARNING"):
        cfg = read_config_file(path)
    assert cfg.model.lstm_units == 12
    for section, key, _, results in REMOVED:
        line = next(r.getMessage() for r in caplog.records if f"{section}.{key} is no longer used" in r.getMessage())
        assert str(path) in line and f'RESULTS.md, "{results}"' in line and "Delete the line" in line


@pytest.mark.parametrize("section, key, value, results", REMOVED)
def test_removed_options_asked_for_are_refused_naming_the_key_the_measurement_and_what_to_do(
        tmp_path, section, key, value, results):
    from deepclust.config import RETIRED_KEYS, apply_overrides
    from deepclust.config.values import toml_value

    assert not hasattr(getattr(load_config(), section), key)  # gone from the schema
    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{key} = {toml_value(value)}\n")
    for load in (lambda: load_config(path), lambda: load_config("tiny", {f"{section}.{key}": value})):
        with pytest.raises(ConfigError) as err:
            load()
        message = str(err.value)
        assert f"{section}.{key} = {toml_value(value)} is no longer possible" in message
        assert "was removed, measured worse" in message and f'(RESULTS.md, "{results}")' in message
        assert "Delete the line" in message and f"Received: {section}.{key}={value!r}" in message
    assert (section, key) in RETIRED_KEYS
    with pytest.raises(ConfigError, match="no longer possible"):
        apply_overrides(load_config(), {f"{section}.{key}": value})


@pytest.mark.parametrize("section, key, value, results", REMOVED)
def test_a_trained_runs_config_with_a_removed_option_still_loads_with_a_warning(tmp_path, caplog, section, key,
                                                                                value, results):
    """The config.toml saved beside a model (separation and resuming read it): the network is what it is."""
    from deepclust.config.values import toml_value

    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{key} = {toml_value(value)}\n[audio]\nsample_rate = 16000\n")
    with caplog.at_level("WARNING"):
        assert read_config_file(path).audio.sample_rate == 16000
    assert f"trained with {section}.{key} = {toml_value(value)}, which is no longer possible" in caplog.text
    assert f'RESULTS.md, "{results}"' in caplog.text and str(path) in caplog.text


def test_an_old_config_without_the_chunk_curriculum_loads_whatever_its_start_and_one_with_it_is_refused(
        tmp_path, caplog):
    """data.long_chunk_from only timed the curriculum: with data.long_chunk_frames = 0 any value trained as
    deepclust trains now; data.long_chunk_frames > 0 asked for the curriculum, whatever the start."""
    path = tmp_path / "config.toml"
    path.write_text("[data]\nchunk_frames = 40\nlong_chunk_frames = 0\nlong_chunk_from = 0.25\n")
    with caplog.at_level("WARNING"):
        assert read_config_file(path).data.chunk_frames == 40
    assert "data.long_chunk_from is no longer used" in caplog.text and "data.long_chunk_frames is no" in caplog.text
    path.write_text("[data]\nlong_chunk_from = 0.0\nlong_chunk_frames = 400\n")
    with pytest.raises(ConfigError, match=r"data.long_chunk_frames = 400 is no longer possible.*measured worse.*"
                                          r"data.chunk_frames long throughout"):
        load_config(path)


def test_shipped_configs_carry_no_retired_key():
    import tomllib

    from deepclust.config import RETIRED_KEYS

    files = sorted(CONFIG_DIR.glob("*.toml")) + [ROOT / "deepclust" / "pretrained_model" / "config.toml"]
    for path in files:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert [(s, k) for s, values in data.items() for k in values if (s, k) in RETIRED_KEYS] == [], path


def test_corpus_weights_a_table_of_shares_kept_in_the_saved_config():
    """data.corpus_weights is a TOML table: checked, written into config.toml and read back the same."""
    import tomllib

    from deepclust.config import config_from_dict, parse_override

    cfg = load_config("tiny", dict([parse_override("data.corpus_weights={ so762 = 0.7, espeak = 3 }")]))
    assert cfg.data.corpus_weights == {"so762": 0.7, "espeak": 3.0}
    assert config_from_dict(tomllib.loads(cfg.to_toml())).data.corpus_weights == {"so762": 0.7, "espeak": 3.0}
    for bad in ({"a": -1}, {"a": 0}, "so762", {"a": True}, {"": 1.0}):
        with pytest.raises(ConfigError, match=r"data.corpus_weights: expected .*Received: corpus_weights="):
            load_config("tiny", {"data.corpus_weights": bad})


def test_jit_is_true_false_or_auto_and_auto_follows_the_backend(tmp_path):
    """train.jit = "auto" (every shipped config): compiled on the backends where that was measured faster
    (train.JIT_AUTO); true and false as before, so configs saved by earlier runs still load."""
    import keras

    from deepclust.nn.model import build_model
    from deepclust.training.train import JIT_AUTO, compile_model

    assert all(load_config(name).train.jit == "auto" for name in ("default", "pretrained", "demo", "seed"))
    for value in (True, False, "auto"):
        cfg = load_config("tiny", {"train.jit": value})
        assert cfg.train.jit == value and read_config_file(_written(tmp_path, cfg)).train.jit == value
        expected = JIT_AUTO[keras.backend.backend()] if value == "auto" else value
        assert compile_model(build_model(cfg), cfg).jit_compile is expected
    with pytest.raises(ConfigError, match=r"expected true, false or one of 'auto'. Received: jit='yes'"):
        load_config("tiny", {"train.jit": "yes"})


def _written(folder, cfg):
    path = folder / "config.toml"
    path.write_text(cfg.to_toml())
    return path
