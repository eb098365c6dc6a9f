"""Segments: they cover the signal, go through the network in batches, and cross-fade back into it."""

import numpy as np
import pytest

from deepclust.separation import segments as segments_lib
from deepclust.separation.segments import Segment, batched, crossfade, fits_cache, overlap_add, replay, segments, split

RATE = 8000


@pytest.mark.parametrize("total", [8001, 10 * 8000, 17 * 8000 + 3, 60 * 8000 + 17])
def test_segments_equal_evenly_spaced_and_crossfades_sum_to_one(total):
    length, overlap = 8 * 8000, 8000
    segs = segments(np.zeros(total, np.float32), length, overlap)
    sizes = {len(s.signal) for s in segs}
    assert len(sizes) == 1 and sizes.pop() <= length  # one batch through the network
    assert len(segs) == int(np.ceil((total - overlap) / (length - overlap)))  # the fewest pieces
    assert segs[0].start == 0 and segs[-1].start + len(segs[-1].signal) == total
    for a, b in zip(segs, segs[1:]):
        assert a.fade_out == b.fade_in == a.start + len(a.signal) - b.start >= overlap
    weight = np.zeros(total)
    for s in segs:
        weight[s.start:s.start + len(s.signal)] += crossfade(len(s.signal), s.fade_in, s.fade_out)
    np.testing.assert_allclose(weight, 1.0, atol=1e-6)


def test_segments_are_views_of_the_signal_at_their_start():
    signal = np.arange(10 * RATE, dtype=np.float32)
    for seg in segments(signal, 3 * RATE, RATE):
        np.testing.assert_array_equal(seg.signal, signal[seg.start:seg.start + len(seg.signal)])


def test_a_signal_shorter_than_a_segment_is_one_segment_without_fades():
    signal = np.ones(RATE, np.float32)
    (seg,) = segments(signal, 2 * RATE, RATE // 2)
    assert (seg.start, len(seg.signal), seg.fade_in, seg.fade_out) == (0, RATE, 0, 0)
    np.testing.assert_array_equal(crossfade(RATE, 0, 0), 1.0)


def test_crossfade_ramps_strictly_between_zero_and_one():
    w = crossfade(100, 10, 20)
    assert np.all(np.diff(w[:10]) > 0) and np.all(np.diff(w[80:]) < 0) and np.all((w[:10] > 0) & (w[:10] < 1))
    assert np.all(w[10:80] == 1.0) and 0 < w[-1] < w[80] < 1


def test_split_overlaps_by_a_second_or_a_quarter_of_a_shorter_segment():
    signal = np.zeros(30 * RATE, np.float32)
    long = split(signal, RATE, 8.0, 256)
    assert len(long[0].signal) <= 8 * RATE and min(s.fade_out for s in long[:-1]) >= RATE
    short = split(signal, RATE, 2.0, 256)  # a second would be half of each segment
    assert len(short[0].signal) <= 2 * RATE and min(s.fade_out for s in short[:-1]) >= 2 * RATE // 4
    assert max(s.fade_out for s in short) < RATE
    tiny = split(signal[:1000], RATE, 0.01, 256)  # never shorter than one STFT window
    assert len(tiny) == 5 and min(len(s.signal) for s in tiny) > 200
    assert split(np.zeros(0, np.float32), RATE, 8.0, 256) == []


@pytest.mark.parametrize("total", [RATE, 10 * RATE + 7, 41 * RATE])
def test_constant_mask_over_the_segments_gives_back_the_signal(total):
    signal = np.random.default_rng(total).standard_normal(total).astype(np.float32)
    segs = split(signal, RATE, 4.0, 256)
    share = np.array([[0.25], [0.75]], np.float32)
    out = overlap_add(((seg, share * seg.signal) for seg in segs), 2, total)
    np.testing.assert_allclose(out[0], 0.25 * signal, atol=1e-5)
    np.testing.assert_allclose(out.sum(axis=0), signal, atol=1e-5)


def test_batched_runs_consecutive_segments_of_one_shape_together_in_order():
    segs = segments(np.zeros(40 * RATE, np.float32), 2 * RATE, RATE // 2)
    segs.append(Segment(40 * RATE, np.zeros(RATE, np.float32)))  # a shorter one: a batch of its own
    calls = []

    def network(inputs):
        calls.append(inputs.shape)
        return [f"out of {row[0, 0]}" for row in inputs]

    def featurize(seg):
        return np.full((3, len(seg.signal)), seg.start), seg.start

    out = list(batched(segs, featurize, network, size=8))
    assert [i for i, _, _ in out] == list(range(len(segs)))
    assert all(payload == seg.start and output == f"out of {seg.start}" for (_, payload, output), seg in zip(out, segs))
    sizes = [shape[0] for shape in calls]
    assert sum(sizes) == len(segs) and max(sizes) == 8 and sizes[-1] == 1 and calls[-1][2] == RATE
    assert len(calls) == int(np.ceil((len(segs) - 1) / 8)) + 1


def test_replay_hands_out_what_was_kept_or_runs_the_network_again():
    cached = {0: ("a",), 1: ("b",)}
    assert list(replay(cached, 2, lambda: iter([("rerun",)]))) == [(0, "a"), (1, "b")]
    assert cached == {}  # each taken out as it is used
    assert list(replay({0: ("a",)}, 2, lambda: iter([(0, "x"), (1, "y")]))) == [(0, "x"), (1, "y")]


def test_embeddings_are_kept_up_to_the_cache_size():
    assert fits_cache(segments_lib.EMBEDDING_CACHE_BYTES // 4)
    assert not fits_cache(segments_lib.EMBEDDING_CACHE_BYTES // 4 + 1)


def test_running_the_network_again_separates_as_the_kept_embeddings_do(monkeypatch):
    from conftest import synth_voice
    from deepclust.config import load_config
    from deepclust.nn.model import build_model
    from deepclust.separation.separator import Separator

    cfg = load_config("tiny")  # 2-second segments
    sep = Separator(build_model(cfg), cfg.separate)
    mix = synth_voice(110, 5.0, 1) + synth_voice(260, 5.0, 2)
    kept = sep.separate(mix, 2)
    monkeypatch.setattr(segments_lib, "EMBEDDING_CACHE_BYTES", 0)
    analysis = sep.analyse(mix, 2)
    assert len(analysis.segments) > 1 and not analysis.cached
    np.testing.assert_allclose(sep.render(analysis).sources, kept.sources, atol=1e-6)
    np.testing.assert_allclose(kept.sources.sum(axis=0), mix, atol=2e-3)  # the cross-fades add up
