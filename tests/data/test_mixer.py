import numpy as np
import pytest

from deepclust.config import load_config
from deepclust.corpus import lists
from deepclust.data import mixer as mixer_lib
from deepclust.dsp import features, mixing


def test_parse_list_relative_absolute_comments_blank(tmp_path):
    (tmp_path / "a.wav").touch()
    lst = tmp_path / "train"
    lst.write_text(f"# header\n\nsub/x.wav spk1\n{tmp_path}/a.wav  spk2   # trailing comment\n"
                   "   \n# another\nfolder with space/y.flac spk3\n")
    entries = lists.parse_list(lst)
    assert [e.speaker for e in entries][:1] == ["spk1"]
    assert entries[0].path == tmp_path / "sub/x.wav" and entries[0].line == 3
    assert entries[1].path == tmp_path / "a.wav" and entries[1].speaker == "spk2"
    assert entries[-1].path == tmp_path / "folder with space/y.flac" and entries[-1].speaker == "spk3"
    assert entries[-1].line == 7


def test_parse_list_malformed_line_names_file_and_line(tmp_path):
    lst = tmp_path / "valid"
    lst.write_text("a.wav s1\nlonely_path.wav\n")
    with pytest.raises(lists.ListFormatError, match=r"valid:2: expected 'path speakerID'.*lonely_path"):
        lists.parse_list(lst)


def test_missing_list_file(tmp_path):
    with pytest.raises(lists.ListFormatError, match="list file not found"):
        lists.parse_list(tmp_path / "nope")


def test_load_corpus_groups_speakers_and_skips_bad_files(list_folder, caplog):
    lst = list_folder / "train"
    lst.write_text(lst.read_text() + "wav/missing.wav ghost\n")
    corpus = mixer_lib.load_corpus(lst, 8000, min_speakers=2)
    assert sorted(corpus.speakers) == ["high", "low", "mid"]
    assert corpus.num_utterances == 9
    assert len(corpus.skipped) == 1 and corpus.skipped[0][0].line == 10
    assert "train:10" in caplog.text


def test_load_corpus_too_few_speakers(list_folder):
    lst = list_folder / "train"
    lst.write_text("wav/low_0.wav low\n")
    with pytest.raises(mixer_lib.DataError, match="1 speaker.*need 2 distinct speakers"):
        mixer_lib.load_corpus(lst, 8000, min_speakers=2)


def speakers_by_utterance(mixer: mixer_lib.Mixer) -> dict[int, str]:
    """The speaker of each utterance id a mixer picks."""
    return {uid: name for name, uids in zip(mixer.names, mixer.utterances) for uid in uids}


def test_mixer_distinct_speakers_counts_and_levels(list_folder, tiny_config):
    cfg = tiny_config
    corpus = mixer_lib.load_corpus(list_folder / "train", 8000)
    mixer = mixer_lib.Mixer(corpus, cfg)
    rng = np.random.default_rng(0)
    counts = set()
    for _ in range(40):
        k = mixer.num_speakers(rng)
        counts.add(k)
        assert cfg.data.min_speakers <= k <= cfg.data.max_speakers
    assert counts == {2, 3}
    # Every mixture's utterances come from distinct speakers.
    speaker_of = speakers_by_utterance(mixer)
    for _ in range(100):
        picked = mixer.pick(rng, k=3)
        assert len({speaker_of[u] for u in picked}) == 3


def two_corpora(tmp_path):
    """A list of two corpora: 'real-' speakers (3) and 'synth-' speakers (4)."""
    from conftest import write_list_folder

    return write_list_folder(tmp_path / "two", {"real-a": 110.0, "real-b": 150.0, "real-c": 200.0,
                                                "synth-a": 120.0, "synth-b": 170.0, "synth-c": 230.0,
                                                "synth-d": 280.0}, utterances=1, seconds=0.5)


def test_corpus_weights_draw_each_mixture_from_one_corpus_at_its_share(tmp_path, tiny_config):
    """data.corpus_weights: every mixture's speakers share one corpus, and the corpora come up at their
    weights' shares, whatever their sizes (without weights the larger corpus would be drawn more)."""
    corpus = mixer_lib.load_corpus(two_corpora(tmp_path) / "train", 8000)
    tiny_config.data.corpus_weights = {"real": 3.0, "synth": 1.0}
    mixer = mixer_lib.Mixer(corpus, tiny_config)
    speaker_of = speakers_by_utterance(mixer)
    rng = np.random.default_rng(0)
    corpora = []
    for _ in range(2000):
        names = {speaker_of[u] for u in mixer.pick(rng)}
        assert len({n.split("-")[0] for n in names}) == 1
        corpora.append(next(iter(names)).split("-")[0])
    assert abs(corpora.count("real") / len(corpora) - 0.75) < 0.03


def test_corpus_weights_off_draw_what_was_drawn_before(tmp_path, tiny_config):
    corpus = mixer_lib.load_corpus(two_corpora(tmp_path) / "train", 8000)
    mixer = mixer_lib.Mixer(corpus, tiny_config)
    before = [mixer.pick(np.random.default_rng(i)) for i in range(50)]
    speaker_of = speakers_by_utterance(mixer)
    assert {speaker_of[u].split("-")[0] for uids in before for u in uids} == {"real", "synth"}
    rngs = [np.random.default_rng(i) for i in range(50)]
    expected = []
    for rng in rngs:  # the draw as it was before corpora: speakers of the whole list
        k = mixer.num_speakers(rng)
        chosen = rng.choice(len(mixer.names), size=k, replace=False)
        expected.append([mixer.utterances[s][int(rng.integers(len(mixer.utterances[s])))] for s in chosen])
    assert before == expected


def test_corpus_weights_longest_prefix_and_zero_weight(tmp_path, tiny_config):
    """A speaker belongs to the longest corpus name its ID starts with; a corpus of weight 0 is never drawn."""
    corpus = mixer_lib.load_corpus(two_corpora(tmp_path) / "train", 8000)
    tiny_config.data.corpus_weights = {"real": 0.0, "synth": 1.0, "synth-d": 0.0}
    mixer = mixer_lib.Mixer(corpus, tiny_config)
    rng = np.random.default_rng(1)
    speaker_of = speakers_by_utterance(mixer)
    drawn = {speaker_of[u] for _ in range(300) for u in mixer.pick(rng)}
    assert drawn == {"synth-a", "synth-b", "synth-c"}


def test_corpus_weights_refuse_a_speaker_of_no_corpus_and_a_corpus_too_small(tmp_path, tiny_config):
    corpus = mixer_lib.load_corpus(two_corpora(tmp_path) / "train", 8000)
    tiny_config.data.corpus_weights = {"real": 1.0}
    with pytest.raises(mixer_lib.DataError, match=r"train: speaker 'synth-a' belongs to no corpus.*Received: speaker="):
        mixer_lib.Mixer(corpus, tiny_config)
    tiny_config.data.corpus_weights = {"real": 1.0, "synth": 1.0, "synth-d": 1.0}
    tiny_config.data.min_speakers = 2
    with pytest.raises(mixer_lib.DataError, match=r"corpus 'synth-d' .* has 1 speaker\(s\) but mixtures need 2"):
        mixer_lib.Mixer(corpus, tiny_config)


def test_corpus_weights_leave_out_a_corpus_the_list_lacks(tmp_path, tiny_config):
    """A validation list of one corpus draws from it alone; a k no corpus can fill is refused by name."""
    folder = two_corpora(tmp_path)
    lines = [line for line in (folder / "valid").read_text().splitlines() if line.endswith(("real-a", "real-b",
                                                                                            "real-c"))]
    (folder / "valid").write_text("\n".join(lines) + "\n")
    tiny_config.data.corpus_weights = {"real": 1.0, "synth": 9.0}
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(folder / "valid", 8000), tiny_config)
    rng = np.random.default_rng(0)
    assert all(len(mixer.pick(rng)) in (2, 3) for _ in range(50))
    with pytest.raises(mixer_lib.DataError, match="no corpus of data.corpus_weights has 4 speakers"):
        mixer.pick(rng, k=4)


def test_single_speaker_fraction(list_folder, tiny_config):
    """data.single_speaker_fraction: that share of mixtures holds one voice, labelled as one cluster;
    the rest keep min_speakers..max_speakers; 0 draws exactly the mixtures it drew before."""
    corpus = mixer_lib.load_corpus(list_folder / "train", 8000)
    before = [mixer_lib.Mixer(corpus, tiny_config).num_speakers(np.random.default_rng(i)) for i in range(200)]
    tiny_config.data.single_speaker_fraction = 0.0
    assert [mixer_lib.Mixer(corpus, tiny_config).num_speakers(np.random.default_rng(i)) for i in range(200)] == before
    tiny_config.data.single_speaker_fraction = 0.25
    mixer = mixer_lib.Mixer(corpus, tiny_config)
    rng = np.random.default_rng(0)
    counts = [mixer.num_speakers(rng) for _ in range(2000)]
    assert abs(counts.count(1) / len(counts) - 0.25) < 0.03
    assert set(counts) == {1, tiny_config.data.min_speakers, tiny_config.data.max_speakers}
    x, y = mixer.batch(np.random.default_rng(3), 64)
    # single-voice chunks: every non-silent bin belongs to the first label
    singles = [b for b in range(64) if y[b].sum() > 0 and not y[b][..., 1:].any()]
    assert singles and all(np.all(y[b].sum(-1) <= 1) for b in singles)


def test_wsj0_training_gains_span_the_level_range(tiny_config):
    """Training draws each source's gain uniformly in [-level_db, level_db]: the level
    differences between two sources fill [-2 level_db, 2 level_db], and every mixture's
    loudest sample (mixture or source) is mixing.MIX_PEAK."""
    cfg = tiny_config.data
    cfg.level_db = 2.5
    rng = np.random.default_rng(1)
    src = np.random.default_rng(2).standard_normal((2, 4000)).astype(np.float32) * [[0.01], [0.3]]
    diffs = []
    for _ in range(400):
        scaled = mixing.draw_scaled(src, rng, cfg).astype(np.float64)
        rms = np.sqrt((scaled ** 2).mean(axis=1))
        diffs.append(20 * np.log10(rms[0] / rms[1]))
        loudest = max(np.abs(scaled).max(), np.abs(scaled.sum(0)).max())
        assert loudest == pytest.approx(mixing.MIX_PEAK, rel=1e-5)
    diffs = np.array(diffs)
    assert diffs.min() >= -5.0 - 1e-4 and diffs.max() <= 5.0 + 1e-4
    assert diffs.min() < -4.0 and diffs.max() > 4.0  # the whole range is used, not a narrow part of it
    assert abs(np.mean(diffs)) < 0.5  # symmetric: neither source is favoured


def test_peak_training_gains_span_the_gain_range(tiny_config):
    """The original's mixing: each source at unit peak times a gain in [peak_gain_min, peak_gain_max),
    then all scaled together; the ratio of two sources' peaks is the ratio of their gains."""
    cfg = tiny_config.data
    cfg.mixing, cfg.peak_gain_min, cfg.peak_gain_max = "peak", 0.5, 1.0
    rng = np.random.default_rng(3)
    src = np.random.default_rng(4).standard_normal((2, 4000)).astype(np.float32) * [[0.02], [0.7]]
    ratios = []
    for _ in range(300):
        scaled = mixing.draw_scaled(src, rng, cfg)
        peaks = np.abs(scaled).max(axis=1)
        ratios.append(peaks[0] / peaks[1])
    ratios = np.array(ratios)
    assert ratios.min() >= 0.5 - 1e-5 and ratios.max() <= 2.0 + 1e-5
    assert ratios.min() < 0.55 and ratios.max() > 1.8


def test_chunk_shapes_and_one_hot_or_zero_labels(list_folder, tiny_config):
    cfg = tiny_config
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), cfg)
    x, y = mixer.batch(np.random.default_rng(0), 6)
    assert x.shape == (6, cfg.data.chunk_frames, cfg.num_bins)
    assert y.shape == (6, cfg.data.chunk_frames, cfg.num_bins, cfg.data.max_speakers)
    sums = y.sum(-1)
    assert set(np.unique(sums).tolist()) <= {0.0, 1.0}
    assert np.all((y == 0) | (y == 1))
    assert 0.2 < sums.mean() < 1.0  # some bins silent, most not


def test_batched_examples_match_one_mixture_at_a_time(list_folder, tiny_config):
    # The batch path pads absent speakers with zero sources and takes the mixture's
    # spectrum as the sum of the sources' spectra; both must change nothing.
    cfg = tiny_config
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), cfg)
    rng = np.random.default_rng(1)
    drawn = [mixer.draw_sources(rng, mixer.chunk_samples, k=k) for k in (2, 3, 2)]
    stack = np.zeros((3, cfg.data.max_speakers, mixer.chunk_samples), np.float32)
    for b, sources in enumerate(drawn):
        stack[b, :len(sources)] = sources
    feats, labels = mixer_lib.examples_of_stack(stack, cfg)
    for b, sources in enumerate(drawn):
        spec = features.stft(sources.sum(0) * features.level_gain(sources.sum(0), cfg.features), cfg.features)
        # equal up to float32 rounding (which only shows in the log of bins far below the silence threshold)
        np.testing.assert_allclose(np.exp(feats[b]), np.abs(spec), atol=1e-5 * np.abs(spec).max())
        single_feats, single_labels = mixer_lib.example_of_mixture(sources, cfg)
        np.testing.assert_array_equal(feats[b], single_feats)
        np.testing.assert_array_equal(labels[b], single_labels)
        assert np.all(labels[b][..., len(sources):] == 0)


def _varied_length_folder(root):
    """Six speakers whose utterances last 0.3 to 3 s, so whole-utterance mixtures vary in length."""
    import soundfile as sf
    from conftest import synth_voice

    (root / "wav").mkdir(parents=True)
    lines = []
    rng = np.random.default_rng(0)
    for s in range(6):
        for u in range(4):
            path = root / "wav" / f"s{s}_{u}.wav"
            sf.write(path, synth_voice(100 + 40 * s, float(rng.uniform(0.3, 3.0)), 10 * s + u), 8000)
            lines.append(f"wav/{path.name} s{s}")
    (root / "train").write_text("\n".join(lines) + "\n")
    return root


def _real_frames(feats):
    """Frames holding signal: padding is digital silence, the log floor in every bin."""
    return int(np.sum(feats.max(axis=-1) > np.log(features.LOG_FLOOR) + 1.0))


def test_whole_utterance_batches_are_bucketed_by_length(tmp_path):
    cfg = load_config("tiny", {"data.whole_utterances": True, "data.bucket_frames": 40, "data.max_frames": 600,
                               "train.batch_size": 5})
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(_varied_length_folder(tmp_path) / "train", 8000), cfg)
    lengths, padding = set(), []
    for i in range(12):
        x, y = mixer.batch(np.random.default_rng(i), 5)
        assert x.shape[0] == 5 and y.shape[:3] == x.shape and x.shape[1] <= 600
        lengths.add(x.shape[1])
        real = [_real_frames(item) for item in x]
        # every mixture of the batch falls in the batch's bucket: padded by less than one bucket
        assert all(x.shape[1] - 40 < n <= x.shape[1] for n in real), (x.shape[1], real)
        assert np.all(y[:, max(real):] == 0)  # padding carries no weight
        padding.append(1 - sum(real) / x.size * x.shape[-1])
    assert len(lengths) > 2  # batches of several lengths
    # without buckets each batch is padded to its longest mixture: more padding
    plain = load_config("tiny", {"data.whole_utterances": True, "data.bucket_frames": 0, "train.batch_size": 5})
    plain_mixer = mixer_lib.Mixer(mixer_lib.load_corpus(tmp_path / "train", 8000), plain)
    plain_padding = []
    for i in range(12):
        x, _ = plain_mixer.batch(np.random.default_rng(i), 5)
        plain_padding.append(1 - sum(_real_frames(item) for item in x) / x.size * x.shape[-1])
    assert np.mean(padding) < 0.5 * np.mean(plain_padding)
    # the longest mixtures are cut to max_frames
    short = load_config("tiny", {"data.whole_utterances": True, "data.max_frames": 30, "train.batch_size": 3})
    x, _ = mixer_lib.Mixer(mixer_lib.load_corpus(tmp_path / "train", 8000), short).batch(np.random.default_rng(0), 3)
    assert x.shape[1] <= 30


@pytest.mark.slow
def test_training_on_bucketed_whole_utterances(tmp_path):
    # batches of different lengths go through fit (the model's time axis is free)
    from deepclust.training.train import train

    base = _varied_length_folder(tmp_path)
    (base / "valid").write_text((base / "train").read_text())
    result = train(base, "tiny", {"data.whole_utterances": True, "data.bucket_frames": 40, "train.epochs": 1,
                                  "train.steps_per_epoch": 4}, verbose=0)
    import csv

    rows = list(csv.DictReader((base / "history.csv").open()))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["loss"])) and np.isfinite(float(rows[0]["val_loss"]))
    assert float(rows[0]["frames_per_second"]) > 0  # counted from the batches' own lengths
    assert result.epochs_done == 1 and result.frames_per_second > 0




def test_a_batch_draws_the_mixtures_draw_sources_draws(list_folder, tiny_config):
    """Training batches are drawn mixture by mixture and scaled all at once: the same sources as
    drawing each mixture alone with the same generator (so validation and training mix alike)."""
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", 8000), tiny_config)
    samples = mixer.chunk_samples
    stack = mixer.scaled_stack(np.random.default_rng(5), 6, samples)
    rng = np.random.default_rng(5)
    for b in range(6):
        alone = mixer.draw_sources(rng, samples)
        np.testing.assert_allclose(stack[b, :len(alone)], alone, rtol=1e-5, atol=1e-7)
        assert not stack[b, len(alone):].any()
