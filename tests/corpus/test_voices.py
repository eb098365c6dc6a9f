"""Voice design and synthesis: make_voices, VoiceSpec.jittered, trimming, level and synthesize."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepclust.corpus import voices as vc
from deepclust.corpus.espeak import ESPEAK_RATE, PITCH_CENTRE, PITCH_UNITS_PER_OCTAVE
from deepclust.corpus.split import CorpusError

from conftest import RATE, assert_utterance_level, needs_espeak, needs_festival, needs_flite, needs_kokoro, rms

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


# ------------------------------------------------------------------ voices --

def _final_rate_and_shift(v: vc.VoiceSpec) -> tuple[float, float]:
    """Undo make_voices' warp compensation: the rate (wpm) and pitch shift (octaves) the listener hears."""
    return v.rate * v.warp, (v.pitch - PITCH_CENTRE) / PITCH_UNITS_PER_OCTAVE + math.log2(v.warp)


def _in_bands(value: float, bands, slack: float) -> bool:
    return any(lo - slack <= value <= hi + slack for lo, hi in bands)


def test_voice_specs_are_distinct_and_seeded():
    voices = vc.make_voices(40, seed=0)
    assert len({v.voice for v in voices}) == 40
    assert len({v.name for v in voices}) == 40
    assert voices == vc.make_voices(40, seed=0)
    assert voices != vc.make_voices(40, seed=1)
    assert [v.name[-1] for v in voices[:4]] == ["f", "m", "f", "m"]  # genders alternate
    for v in voices:
        # the warp is a relabelled rate on the WARP_RATE_STEP grid ...
        assert round(v.warp * ESPEAK_RATE) % vc.WARP_RATE_STEP == 0
        # ... and compensated: what the listener hears lies in the bands make_voices drew from
        heard_rate, heard_shift = _final_rate_and_shift(v)
        assert _in_bands(heard_rate, vc.SPEAKING_RATE_WPM["train"], slack=0.5 * v.warp)
        assert _in_bands(heard_shift, vc.PITCH_SHIFT_OCTAVES["train"], slack=0.5 / PITCH_UNITS_PER_OCTAVE)
    assert len({v.warp for v in voices}) > 10  # warps vary from voice to voice
    with pytest.raises(CorpusError, match="Received: group='valid'"):
        vc.make_voices(2, group="valid")


def test_test_voices_unlike_training_voices():
    train, test = vc.make_voices(120, seed=0), vc.make_voices(40, seed=0, group="test")
    train_accents = {v.voice.split("+")[0] for v in train}
    test_accents = {v.voice.split("+")[0] for v in test}
    assert test_accents <= set(vc.TEST_ACCENTS) and not train_accents & test_accents
    train_rates, train_shifts = zip(*map(_final_rate_and_shift, train))
    test_rates, test_shifts = zip(*map(_final_rate_and_shift, test))
    slack = 3  # words/min of rounding
    assert all(r < min(train_rates) - slack or r > max(train_rates) + slack for r in test_rates)
    assert min(test_rates) < min(train_rates) and max(test_rates) > max(train_rates)  # both bands used
    assert all(abs(s) > max(map(abs, train_shifts)) for s in test_shifts)
    train_ranges = [v.pitch_range for v in train]
    assert all(r < min(train_ranges) or r > max(train_ranges) for r in (v.pitch_range for v in test))


def test_jittered_changes_only_rate_and_pitch():
    voice = vc.make_voices(1, seed=0)[0]
    rng = np.random.default_rng(0)
    jittered = [voice.jittered(rng) for _ in range(20)]
    assert {(j.name, j.voice, j.pitch_range, j.warp) for j in jittered} == {
        (voice.name, voice.voice, voice.pitch_range, voice.warp)}
    assert len({(j.rate, j.pitch) for j in jittered}) > 5  # utterances of one talker differ


# -------------------------------------------------------------- synthesis --

def test_trim_silence_keeps_edge_seconds():
    edge = int(vc.EDGE_SECONDS * RATE)
    tone = np.sin(np.arange(RATE) * 0.3).astype(np.float32)
    padded = np.concatenate([np.zeros(3 * edge, np.float32), tone, np.zeros(5 * edge, np.float32)])
    trimmed = vc._trim_silence(padded, RATE)
    assert len(trimmed) == len(tone) + 2 * edge - 1  # the tone's first sample sin(0) is silent itself
    assert np.array_equal(trimmed[edge - 1:edge - 1 + len(tone)], tone)
    short = np.concatenate([np.zeros(edge // 2, np.float32), tone])  # less lead than EDGE_SECONDS: all kept
    assert len(vc._trim_silence(short, RATE)) == len(short)


def test_normalise_rms_or_peak_cap():
    rng = np.random.default_rng(0)
    speechlike = (0.3 * rng.standard_normal(RATE)).astype(np.float32)  # crest ~4: RMS sets the level
    out = vc._normalise(speechlike)
    assert rms(out) == pytest.approx(vc.UTTERANCE_RMS, rel=1e-5)
    spiky = np.zeros(RATE, np.float32)
    spiky[::800] = 1.0  # crest ~28: the peak cap sets the level
    out = vc._normalise(spiky)
    assert float(np.max(np.abs(out))) == pytest.approx(vc.UTTERANCE_PEAK) and rms(out) < vc.UTTERANCE_RMS
    assert not np.any(vc._normalise(np.zeros(10, np.float32)))


def test_synthesize_refuses_bad_rate_and_warp():
    with pytest.raises(CorpusError, match="Received: sample_rate=0"):
        vc.synthesize(TEXT, vc.VoiceSpec("v", "en-us"), 0)
    with pytest.raises(CorpusError, match="Received: warp=3.0"):
        vc.synthesize(TEXT, vc.VoiceSpec("v", "en-us", warp=3.0), RATE)


def dominant_pitch(signal: np.ndarray, rate: int = RATE) -> float:
    """Median autocorrelation pitch (Hz) over the loud frames."""
    frame, hop = int(0.04 * rate), int(0.02 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    pitches = []
    threshold = 0.3 * np.sqrt(np.mean(signal ** 2))
    for start in range(0, len(signal) - frame, hop):
        x = signal[start:start + frame] - signal[start:start + frame].mean()
        if np.sqrt(np.mean(x ** 2)) < threshold:
            continue
        ac = np.correlate(x, x, "full")[frame - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


def test_synthesize_audio_and_determinism():
    needs_espeak()
    low = vc.VoiceSpec("low", "en-us+m3", pitch=30, pitch_range=50, rate=175, warp=0.9)
    high = vc.VoiceSpec("high", "en-gb-scotland+f3", pitch=70, pitch_range=50, rate=175, warp=1.1)
    a = vc.synthesize(TEXT, low, RATE)
    b = vc.synthesize(TEXT, high, RATE)
    edge = int(vc.EDGE_SECONDS * RATE)
    for x in (a, b):
        assert x.dtype == np.float32 and x.ndim == 1 and np.all(np.isfinite(x))
        assert 1.5 < len(x) / RATE < 10  # a sentence
        assert_utterance_level(x)
        loud = np.flatnonzero(np.abs(x) > np.max(np.abs(x)) * 10 ** (vc.SILENCE_DB / 20))
        assert loud[0] <= edge + 1 and len(x) - 1 - loud[-1] <= edge + 1  # silence trimmed to the edge
    assert np.array_equal(a, vc.synthesize(TEXT, low, RATE))  # same voice and text: same samples
    assert dominant_pitch(b) > 1.5 * dominant_pitch(a)
    # the rate argument is honoured: twice the rate, about twice the samples
    wide = vc.synthesize(TEXT, low, 2 * RATE)
    assert abs(len(wide) / (2 * len(a)) - 1) < 0.01
    with pytest.raises(CorpusError, match="no voice"):  # the voice reaches espeak as given
        vc.synthesize(TEXT, vc.VoiceSpec("x", "xx-nowhere+m1"), RATE)


def test_warp_moves_formants():
    needs_espeak()

    def centroid(x):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        return float(np.sum(spectrum * np.fft.rfftfreq(len(x), 1 / RATE)) / np.sum(spectrum))

    low = vc.synthesize(TEXT, vc.VoiceSpec("v", "en-us+m1", warp=0.85), RATE)
    base = vc.synthesize(TEXT, vc.VoiceSpec("v", "en-us+m1", warp=1.0), RATE)
    high = vc.synthesize(TEXT, vc.VoiceSpec("v", "en-us+m1", warp=1.15), RATE)
    assert centroid(high) > 1.1 * centroid(low)
    assert centroid(low) < centroid(base) < centroid(high)
    assert len(high) < len(base) < len(low)  # the warp speeds speech up too; make_voices compensates the rate


# ------------------------------------------------------------ neural voices --

def test_neural_voices_are_distinct_seeded_blends():
    needs_kokoro()
    drawn = vc.make_neural_voices(8, seed=0)
    assert drawn == vc.make_neural_voices(8, seed=0) != vc.make_neural_voices(8, seed=1)
    assert vc.make_neural_voices(4, seed=0) == drawn[:4]  # a prefix: more voices never change the first ones
    names = list(vc.kokoro.anchor_styles())
    male = np.array([n.startswith("jm") for n in names])
    assert len({v.mix for v in drawn}) == len(drawn)
    for v in drawn:
        mix = np.array(v.mix)
        assert np.all(mix >= 0) and abs(mix.sum() - 1) < 1e-9
        lo, hi = vc.NEURAL_MALE_WEIGHT[v.name[-1]]
        assert lo <= mix[male].sum() <= hi
        assert v.accent in vc.ACCENTS and v.accent not in vc.TEST_ACCENTS
        assert vc.WARP[0] - 0.01 <= v.warp <= vc.WARP[1] + 0.01
        assert vc.NEURAL_SPEED[0] - 1e-9 <= v.speed * v.warp <= vc.NEURAL_SPEED[1] + 1e-9  # tempo after the warp
    assert [v.name[-1] for v in drawn] == list("fmfmfmfm")
    jittered = drawn[0].jittered(np.random.default_rng(0))
    assert jittered.mix == drawn[0].mix and jittered.speed != drawn[0].speed
    with pytest.raises(CorpusError, match=r"Received: mix=\(1\.0,\)"):
        vc.NeuralVoiceSpec("x", mix=(1.0,)).style()


def assert_low_and_high_voice(low, high) -> None:
    """``low`` and ``high`` speak TEXT at the utterance level, the same samples twice, ``high`` well above in pitch."""
    a, b = vc.synthesize(TEXT, low, RATE), vc.synthesize(TEXT, high, RATE)
    for x in (a, b):
        assert x.dtype == np.float32 and x.ndim == 1 and 1.0 < len(x) / RATE < 10
        assert_utterance_level(x)
    assert np.array_equal(a, vc.synthesize(TEXT, low, RATE))
    assert dominant_pitch(b) > 1.5 * dominant_pitch(a)


def test_synthesize_neural_voice():
    needs_kokoro()
    names = list(vc.kokoro.anchor_styles())
    low = vc.NeuralVoiceSpec("low", mix=tuple(float(n == "jm_kumo") for n in names), warp=0.9)
    high = vc.NeuralVoiceSpec("high", mix=tuple(float(n == "jf_alpha") for n in names), accent="en-gb-x-rp",
                              warp=1.1)
    assert_low_and_high_voice(low, high)


# ------------------------------------------------------------- Flite voices --

def test_flite_voices_are_distinct_seeded_and_in_their_bands():
    drawn = vc.make_flite_voices(8, seed=0)
    assert drawn == vc.make_flite_voices(8, seed=0) != vc.make_flite_voices(8, seed=1)
    assert vc.make_flite_voices(4, seed=0) == drawn[:4]  # a prefix: more voices never change the first ones
    assert [v.name[-1] for v in drawn] == list("fmfmfmfm")
    assert len({(v.voice, v.f0_mean, v.warp) for v in drawn}) == len(drawn)
    assert {v.voice for v in drawn if v.name[-1] == "m"} == set(vc.FLITE_VOICES["m"])  # the men's voices in turn
    for v in drawn:
        assert v.voice in vc.FLITE_VOICES[v.name[-1]] and v.voice in vc.flite.VOICES
        assert vc.WARP[0] <= v.warp <= vc.WARP[1]
        lo, hi = vc.FLITE_F0_HZ[v.name[-1]]
        assert lo - 0.1 <= v.f0_mean * v.warp <= hi + 0.1  # the pitch heard, after the warp
        assert vc.FLITE_F0_SPREAD[0] - 1e-3 <= v.f0_stddev / v.f0_mean <= vc.FLITE_F0_SPREAD[1] + 1e-3
        assert vc.STRETCH[0] - 1e-3 <= v.duration_stretch / v.warp <= vc.STRETCH[1] + 1e-3
    jittered = drawn[0].jittered(np.random.default_rng(0))
    assert jittered.voice == drawn[0].voice and jittered.warp == drawn[0].warp
    assert jittered.f0_mean != drawn[0].f0_mean and jittered.duration_stretch != drawn[0].duration_stretch


def test_synthesize_flite_voice():
    needs_flite()
    low = vc.FliteVoiceSpec("low", "awb", f0_mean=100.0, f0_stddev=10.0, warp=0.9)
    high = vc.FliteVoiceSpec("high", "slt", f0_mean=220.0, f0_stddev=10.0, warp=1.1)
    assert_low_and_high_voice(low, high)


# ---------------------------------------------------------- Festival voices --

def test_festival_voices_are_distinct_seeded_and_in_their_bands():
    drawn = vc.make_festival_voices(20, seed=0)
    assert drawn == vc.make_festival_voices(20, seed=0) != vc.make_festival_voices(20, seed=1)
    assert vc.make_festival_voices(4, seed=0) == drawn[:4]  # a prefix: more voices never change the first ones
    assert [v.name[-1] for v in drawn] == list("fm" * 10)
    assert {v.voice for v in drawn} == set(vc.festival.VOICES)  # every voice, in turn within its gender
    assert len({(v.voice, v.warp) for v in drawn}) == len(drawn)
    for v in drawn:
        assert vc.festival.VOICES[v.voice] == v.name[-1]
        assert v.name.startswith("fes") and vc.WARP[0] <= v.warp <= vc.WARP[1]
        assert vc.STRETCH[0] - 1e-3 <= v.duration_stretch / v.warp <= vc.STRETCH[1] + 1e-3
    jittered = drawn[0].jittered(np.random.default_rng(0))
    assert (jittered.voice, jittered.warp) == (drawn[0].voice, drawn[0].warp)
    assert jittered.duration_stretch != drawn[0].duration_stretch


def test_synthesize_festival_voice():
    needs_festival()
    low = vc.FestivalVoiceSpec("low", "ked_diphone", warp=0.9)
    high = vc.FestivalVoiceSpec("high", "czech_dita", warp=1.1)
    assert_low_and_high_voice(low, high)
