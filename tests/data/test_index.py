"""The corpus index and its cache: the mixtures of the in-memory corpus, built once, kept up to date."""

from __future__ import annotations

import logging
import os

import numpy as np
import soundfile as sf

from conftest import RATE, synth_voice, write_list_folder
from deepclust.corpus.lists import parse_list
from deepclust.data import index as corpus_index, mixer as mixer_lib
from deepclust.dsp import audio

SPEAKERS = {"low": 110.0, "mid": 180.0, "high": 260.0}


class InMemory:
    """What training held before the cache: every utterance decoded into memory (the reference)."""

    def __init__(self, list_file, rate):
        entries = parse_list(list_file)
        self.list_file = list_file  # named in the mixer's messages, as a CorpusIndex's
        self.signals = [audio.read(e.path, rate)[0] for e in entries]
        self.lengths = np.array([len(s) for s in self.signals])
        self.speakers = {}
        for i, e in enumerate(entries):
            self.speakers.setdefault(e.speaker, []).append(i)

    def read(self, uid, start=0, stop=None):
        return self.signals[uid][start:stop]


def test_cached_mixtures_are_the_in_memory_mixtures_to_16_bit_rounding(list_folder, tiny_config):
    cached = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", RATE), tiny_config)
    memory = mixer_lib.Mixer(InMemory(list_folder / "train", RATE), tiny_config)
    for seed in range(20):
        a = cached.draw_sources(np.random.default_rng(seed), cached.chunk_samples)
        b = memory.draw_sources(np.random.default_rng(seed), memory.chunk_samples)
        assert a.shape == b.shape  # the same speakers, utterances and segments ...
        np.testing.assert_allclose(a, b, atol=3 * mixing_scale(b))  # ... to the cache's 16-bit rounding
    x1, _ = cached.batch(np.random.default_rng(99), 4)
    x2, _ = memory.batch(np.random.default_rng(99), 4)
    assert np.corrcoef(x1.ravel(), x2.ravel())[0, 1] > 0.999


def mixing_scale(sources):
    """One 16-bit step of the loudest source, after the mixer's scaling."""
    return float(np.max(np.abs(sources))) / 32767 + 1e-7


def test_a_warm_cache_decodes_nothing_and_a_file_listed_twice_is_stored_once(list_folder, monkeypatch):
    first = mixer_lib.load_corpus(list_folder / "train", RATE)
    data_file = first.data_path
    size = data_file.stat().st_size
    assert size == 2 * int(first.lengths.sum())

    def no_decoding(*args):
        raise AssertionError("a warm cache decoded a file")

    monkeypatch.setattr(corpus_index, "_decode", no_decoding)
    again = mixer_lib.load_corpus(list_folder / "train", RATE)
    np.testing.assert_array_equal(again.read(3), first.read(3))
    monkeypatch.undo()
    lines = (list_folder / "train").read_text().splitlines()
    (list_folder / "train").write_text("\n".join(lines + [lines[0].split()[0] + " twin"]) + "\n")
    twice = mixer_lib.load_corpus(list_folder / "train", RATE)
    assert "twin" in twice.speakers and twice.num_utterances == first.num_utterances + 1
    assert data_file.stat().st_size == size  # the twin reads the stored samples


def test_a_changed_file_is_read_again_and_a_deleted_one_skipped(list_folder, caplog):
    first = mixer_lib.load_corpus(list_folder / "train", RATE)
    changed = list_folder / "wav" / "mid_1.wav"
    louder = 0.9 * synth_voice(400.0, 1.0, 7)
    sf.write(changed, louder, RATE)
    os.utime(changed, ns=(1, 1))  # a different modification time whatever the clock's resolution
    (list_folder / "wav" / "high_2.wav").unlink()
    with caplog.at_level(logging.INFO, logger="deepclust"):
        again = mixer_lib.load_corpus(list_folder / "train", RATE)
    text = caplog.text
    assert "train:5: changed since the cache was built" in text
    assert "train:9: skipped" in text and "high_2.wav: file not found" in text
    assert again.num_utterances == first.num_utterances - 1 and len(again.skipped) == 1
    uid = [e.path for e in again.entries].index(changed)
    now, _ = audio.read(changed, RATE)
    np.testing.assert_allclose(again.read(uid), now, atol=max(1.0, np.abs(now).max()) / 32767)


def test_decoding_in_processes_gives_the_same_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_index, "POOL_FROM_FILES", 2)
    one = write_list_folder(tmp_path / "one", SPEAKERS, utterances=2)
    two = write_list_folder(tmp_path / "two", SPEAKERS, utterances=2)
    serial = mixer_lib.load_corpus(one / "train", RATE, jobs=1)
    pooled = mixer_lib.load_corpus(two / "train", RATE, jobs=2)
    assert serial.data_path.read_bytes() == pooled.data_path.read_bytes()


def test_loud_float_audio_keeps_its_level(tmp_path):
    base = write_list_folder(tmp_path / "base", SPEAKERS, utterances=1)
    loud = 3.0 * synth_voice(150.0, 1.0, 3)
    sf.write(base / "wav" / "low_0.wav", loud, RATE, subtype="FLOAT")
    index = mixer_lib.load_corpus(base / "train", RATE)
    np.testing.assert_allclose(index.read(0), loud, atol=3.0 / 32767 + 1e-6)  # scaled, not clipped


def test_the_index_holds_no_audio(list_folder):
    index = mixer_lib.load_corpus(list_folder / "train", RATE)
    arrays = [v for v in vars(index).values() if isinstance(v, np.ndarray)]
    assert all(a.size == index.num_utterances for a in arrays)  # one number per utterance, not per sample
    assert index.read(0, 100, 50).size == 0 and index.read(0, 0, 10 ** 9).size == index.lengths[0]
