"""The Separator on a tiny trained network: outputs beside the input, any rate and length, long inputs in segments,
the speaker count, refusals that name what they got, and the mask head's own masks."""

import csv

import numpy as np
import pytest
import soundfile as sf

from conftest import synth_voice
from deepclust import cli
from deepclust.dsp import features
from deepclust.separation import separator
from deepclust.separation.files import save, separate_files
from deepclust.training.train import train


def write_mixture(path, rate=8000, seconds=2.3):
    mix = 0.5 * (synth_voice(110, seconds, 1, rate) + synth_voice(260, seconds, 2, rate))
    sf.write(path, mix, rate)
    return mix


def test_separate_outputs_beside_input(trained, tmp_path):
    base, _ = trained
    mix = write_mixture(tmp_path / "mixed.wav")
    written, failed = separate_files([tmp_path / "mixed.wav"], base)
    assert not failed
    outs = written[tmp_path / "mixed.wav"]
    assert outs == [tmp_path / "mixed" / "spk1.wav", tmp_path / "mixed" / "spk2.wav"]
    signals = []
    for o in outs:
        data, rate = sf.read(o)
        assert rate == 8000 and len(data) == len(mix)
        assert np.all(np.isfinite(data)) and np.abs(data).max() > 1e-3 and np.abs(data).max() < 1.0
        signals.append(data)
    # binary masks partition the bins: the outputs add up to the mixture
    np.testing.assert_allclose(np.sum(signals, axis=0), mix, atol=2e-3)


def test_separate_keeps_input_rate_and_length_and_refuses_overwrite(trained, tmp_path):
    base, _ = trained
    mix = synth_voice(120, 1.7, 3, 16000) + synth_voice(240, 1.7, 4, 16000)
    stereo = np.stack([mix, mix * 0.5], axis=1)
    sf.write(tmp_path / "hi.flac", stereo, 16000)
    sep = separator.Separator.load(base)
    result = sep.separate_file(tmp_path / "hi.flac", num_speakers=3)
    assert result.sources.shape == (3, len(mix)) and result.sample_rate == 16000
    assert result.notes[0] == "2 channels downmixed to mono" and "16000 Hz" in result.notes[1]
    outs = save(result, tmp_path / "out")
    assert [o.name for o in outs] == ["spk1.wav", "spk2.wav", "spk3.wav"]
    for o in outs:
        info = sf.info(o)
        assert info.samplerate == 16000 and info.frames == len(mix)
    before = outs[0].read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite.*--force"):
        save(result, tmp_path / "out")
    assert outs[0].read_bytes() == before
    save(sep.separate_file(tmp_path / "hi.flac", num_speakers=2), tmp_path / "out", overwrite=True)
    assert outs[0].read_bytes() != before


def test_long_input_is_segmented_and_clustered_jointly(trained):
    base, _ = trained
    sep = separator.Separator.from_path(base)  # tiny.toml: 2-second segments
    mix = np.concatenate([synth_voice(110, 5.5, 5) + synth_voice(260, 5.5, 6)])
    result = sep.separate(mix, 2)
    assert result.sources.shape == (2, len(mix))
    np.testing.assert_allclose(result.sources.sum(0), mix, atol=2e-3)  # cross-fades add up


def test_kmeans_sample_carries_the_mixture_magnitude_of_each_bin(trained):
    base, _ = trained
    sep = separator.Separator.from_path(base)
    mix = synth_voice(110, 1.5, 5) + 0.3 * synth_voice(260, 1.5, 6)
    analysis = sep.analyse(mix, 2)
    assert len(analysis.segments) == 1 and len(analysis.sample_magnitudes) == len(analysis.samples) > 100
    _, frames, bins = analysis.sample_bins.T
    spec = features.stft(mix * analysis.gain, sep.features)
    np.testing.assert_allclose(analysis.sample_magnitudes, np.abs(spec)[frames, bins], rtol=1e-4)


def test_several_inputs_out_dir_and_failures_continue(trained, tmp_path, monkeypatch, capsys):
    base, _ = trained
    write_mixture(tmp_path / "a.wav")
    write_mixture(tmp_path / "b.wav")
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    monkeypatch.setenv("DEEPC_BASE", str(base))  # found through the environment, as the original
    code = cli.main(["separate", str(tmp_path / "a.wav"), str(tmp_path / "broken.wav"), str(tmp_path / "b.wav"),
                     "--out-dir", str(tmp_path / "sep")])
    assert code == 1
    assert (tmp_path / "sep/a/spk2.wav").is_file() and (tmp_path / "sep/b/spk2.wav").is_file()
    assert not (tmp_path / "sep/broken").exists()
    err = capsys.readouterr().err
    assert err.count("broken.wav") == 1 and "cannot read audio" in err  # reported once


def test_separate_without_model_says_how_to_fix(tmp_path, monkeypatch, capsys):
    from deepclust import paths

    monkeypatch.delenv("DEEPC_BASE", raising=False)
    monkeypatch.setattr(paths, "SHIPPED_DIR", tmp_path / "no_pretrained")  # an install without one
    write_mixture(tmp_path / "m.wav")
    assert cli.main(["separate", str(tmp_path / "m.wav")]) == 2
    err = capsys.readouterr().err
    assert "--base DIR" in err and "DEEPC_BASE" in err and "Traceback" not in err
    assert "carries no pretrained model" in err


def test_silent_inputs_do_not_crash_and_empty_or_tiny_ones_are_refused(trained):
    sep = separator.Separator.from_path(trained[0])
    silent = sep.separate(np.zeros(3000, np.float32), 2)
    assert silent.sources.shape == (2, 3000) and np.all(silent.sources == 0) and silent.warnings
    with pytest.raises(separator.SeparationError, match=r"0\.006 s long; expected at least 0\.25 s.*50 samples"):
        sep.separate(np.random.default_rng(0).standard_normal(50).astype(np.float32) * 0.1, 2)
    with pytest.raises(separator.SeparationError, match=r"empty.*Received: shape \(0,\)"):
        sep.separate(np.zeros(0, np.float32), 2)


def test_auto_speaker_count_in_separation_and_cli_flag(trained, tmp_path, monkeypatch):
    """With "auto" the count is estimated on the analysis's sample of active-bin embeddings, with the
    config's limits, and the separation has that many outputs, which still add up to the mixture."""
    sep = separator.Separator.from_path(trained[0], mask="binary")
    mix = 0.5 * (synth_voice(110, 2.0, 1) + synth_voice(260, 2.0, 2))
    seen = []

    for count in (3, 1):
        def estimate(samples, most, max_cosine, max_cosine_many, seed, count=count):
            seen.append((samples.shape, most, max_cosine, max_cosine_many))
            return count

        monkeypatch.setattr(separator, "estimate_num_speakers", estimate)
        result = sep.separate(mix, "auto")
        assert result.num_speakers == count and result.sources.shape == (count, len(mix))
        np.testing.assert_allclose(result.sources.sum(axis=0), mix, atol=2e-3)
    shape, most, max_cosine, many = seen[0]
    assert shape[0] > 100 and shape[1] == sep.embedding_dim
    assert (most, max_cosine, many) == (sep.config.auto_max_speakers, sep.config.auto_max_cosine,
                                        sep.config.auto_max_cosine_many)
    assert cli.num_speakers_arg("auto") == "auto" and cli.num_speakers_arg("3") == 3
    for wrong in ("zero", "0", "9"):  # 1 to 8 (separate.num_speakers' range), refused before any model loads
        with pytest.raises(Exception, match=r"a count from 1 to 8 or 'auto'"):
            cli.num_speakers_arg(wrong)


@pytest.mark.slow
def test_mask_head_trains_and_separates_with_its_own_masks(tmp_path):
    from conftest import write_list_folder

    base = write_list_folder(tmp_path / "base", {"low": 110.0, "mid": 180.0, "high": 260.0})
    result = train(base, "tiny", {"model.mask_head": True}, verbose=0)
    assert result.stopped == "completed" and np.isfinite(result.best_val_loss)
    rows = list(csv.DictReader(open(base / "history.csv")))
    assert {"embedding_loss", "mask_loss"} <= set(rows[0])  # both heads' losses are logged
    mix = 0.5 * (synth_voice(110, 5.0, 1) + synth_voice(260, 5.0, 2))  # 5 s: three 2 s segments
    for mask in ("network", "soft"):
        sep = separator.Separator.from_path(base, mask=mask)
        out = sep.separate(mix, 2)
        assert out.sources.shape == (2, len(mix)) and np.all(np.isfinite(out.sources))
        # Masks sum to one at every bin, so the sources add up to the mixture.
        np.testing.assert_allclose(out.sources.sum(0), mix, atol=2e-3)
    with pytest.raises(separator.SeparationError, match="Received: num_speakers=4"):
        separator.Separator.from_path(base, mask="network").separate(mix, 4)


def test_network_masks_need_a_mask_head(trained):
    with pytest.raises(separator.SeparationError, match="Received: mask='network'"):
        separator.Separator.from_path(trained[0], mask="network")


def test_a_run_trained_with_a_removed_option_still_separates(trained, caplog):
    """A run whose config.toml holds an option removed since (the GPU recipe's chunk curriculum) is a plain
    network: it loads with a warning and separates."""
    base, _ = trained
    config = base / "config.toml"
    config.write_text(config.read_text().replace("[data]\n", "[data]\nlong_chunk_frames = 400\n", 1))
    mix = 0.5 * (synth_voice(110, 2.0, 1) + synth_voice(260, 2.0, 2))
    with caplog.at_level("WARNING"):
        out = separator.Separator.load(base).separate(mix, 2)
    assert out.sources.shape == (2, len(mix)) and "trained with data.long_chunk_frames = 400" in caplog.text
