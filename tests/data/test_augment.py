"""Augmentation: each change's contract (length, what it does to a spectrum or a level), and the mixer's use of it."""

from fractions import Fraction

import numpy as np
import pytest

from deepclust.config import ConfigError, load_config
from deepclust.data import augment, mixer as mixer_lib, validation

RATE = 8000
EVERYTHING = {"augment.speed": 0.1, "augment.vtlp": 0.1, "augment.tilt_db": 3.0, "augment.eq_db": 6.0,
              "augment.band_limit": 0.5, "augment.codec": 0.5, "augment.reverb": 0.5, "augment.noise": 0.5}


def sine(freq, n=RATE, rate=RATE):
    return np.sin(2 * np.pi * freq * np.arange(n) / rate)


def peak_hz(x, rate=RATE):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)]


def band_energy_db(x, lo, hi, rate=RATE):
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return 10 * np.log10(spectrum[(freqs >= lo) & (freqs < hi)].sum() + 1e-20)


@pytest.mark.parametrize("key", list(EVERYTHING))
def test_each_change_keeps_the_length_and_draws_the_same_for_the_same_seed(key):
    cfg = load_config("tiny", {key: EVERYTHING[key] * 2 if key.endswith(("band_limit", "codec", "reverb", "noise"))
                               else EVERYTHING[key]})
    aug = augment.Augmenter(cfg.augment, RATE)
    utterance = np.random.default_rng(0).standard_normal(3 * RATE).astype(np.float32)
    asked = []

    def read(n):
        asked.append(n)
        return utterance[:n]

    first = aug.source(read, 6400, np.random.default_rng(5))
    again = aug.source(read, 6400, np.random.default_rng(5))
    assert first.shape == (6400,) and first.dtype == np.float32 and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, utterance[:6400], atol=1e-3)  # it changed something
    if key != "augment.speed":
        assert asked == [6400, 6400]


def test_switched_off_it_is_the_plain_segment_and_draws_nothing(list_folder):
    cfg = load_config("tiny")
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", RATE), cfg)
    assert not mixer.augmenter.active
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(mixer.segment(0, 5000, a, augment=True), mixer.segment(0, 5000, b))
    assert a.random() == b.random()


def test_speed_reads_factor_times_the_length_and_moves_the_pitch():
    factor = Fraction(6, 5)
    out = augment.speed(sine(400, int(np.ceil(8000 * factor))), factor, 8000)
    assert len(out) == 8000
    assert peak_hz(out) == pytest.approx(480, abs=2)
    assert peak_hz(augment.speed(sine(400, 8000), Fraction(9, 10), 8000)[:7000]) == pytest.approx(360, abs=2)


@pytest.mark.parametrize("factor", [Fraction(6, 5), Fraction(9, 10), Fraction(37, 40), Fraction(41, 40), Fraction(1)])
def test_speed_with_its_filter_designed_once_is_scipys_resampling(factor):
    import scipy.signal

    x = np.random.default_rng(0).standard_normal(4000)
    expected = scipy.signal.resample_poly(x, factor.denominator, factor.numerator)[:3000]
    np.testing.assert_allclose(augment.speed(x, factor, 3000), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(augment.speed(x, factor, 3000), expected, rtol=0, atol=1e-12)  # from the cache


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_vtlp_moves_a_frequency_by_its_factor_and_keeps_nyquist(alpha):
    freqs = np.fft.rfftfreq(augment.WINDOW, 1 / RATE)
    bins = augment.vtlp_source_bins(freqs, alpha, RATE)
    assert bins[0] == 0 and bins[-1] == pytest.approx(len(freqs) - 1)
    assert np.all(np.diff(bins) > 0)  # a warp, not a fold
    out = augment.shape_spectrum(sine(1000), RATE, bins, np.ones_like(freqs))
    assert peak_hz(out) == pytest.approx(1000 * alpha, abs=freqs[1])


def test_tilt_and_eq_shape_the_spectrum_the_way_they_say():
    noise = np.random.default_rng(0).standard_normal(4 * RATE)
    freqs = np.fft.rfftfreq(augment.WINDOW, 1 / RATE)
    identity = np.arange(len(freqs), dtype=float)
    up = augment.shape_spectrum(noise, RATE, identity, 10 ** (6 * np.log2(np.maximum(freqs, 50) / 1000) / 20))
    tilt = (band_energy_db(up, 2000, 4000) - band_energy_db(up, 250, 500)) - \
        (band_energy_db(noise, 2000, 4000) - band_energy_db(noise, 250, 500))
    assert tilt == pytest.approx(6 * 3, abs=3)  # 3 octaves from 250-500 Hz to 2-4 kHz, at 6 dB per octave
    gains = augment.peaking_db(freqs, 1000.0, 6.0, 1.0)
    assert gains[np.argmin(np.abs(freqs - 1000))] == pytest.approx(6.0, abs=0.1)
    assert abs(gains[-1]) < 1.0 and abs(gains[1]) < 1.0


def test_band_limit_removes_what_a_telephone_line_does_not_carry():
    noise = np.random.default_rng(1).standard_normal(4 * RATE)
    out = augment.band_limit(noise, RATE, 300.0, 3400.0)
    assert band_energy_db(noise, 0, 100) - band_energy_db(out, 0, 100) > 25
    assert band_energy_db(noise, 3900, 4000) - band_energy_db(out, 3900, 4000) > 25
    assert abs(band_energy_db(noise, 800, 2000) - band_energy_db(out, 800, 2000)) < 1


def test_mu_law_has_256_levels_and_telephone_quality():
    x = np.random.default_rng(2).laplace(size=RATE) * 0.1
    out = augment.mu_law(x)
    companded = np.sign(out) * np.log1p(augment.MU * np.abs(out) / np.abs(x).max())
    assert len(np.unique(np.round(companded, 6))) <= 256
    snr = 10 * np.log10(np.sum(x**2) / np.sum((x - out) ** 2))
    assert 25 < snr < 45  # G.711 gives about 38 dB on speech
    assert np.all(augment.mu_law(np.zeros(10)) == 0)


def test_room_response_decays_by_60_db_in_rt60_behind_a_direct_path():
    rt60 = 0.5
    h = augment.room_response(np.random.default_rng(3), RATE, rt60)
    assert len(h) == int(rt60 * RATE) and h[0] == 1.0
    tail = h[1:] ** 2
    early, late = tail[:400].mean(), tail[-400:].mean()
    assert 10 * np.log10(early / late) == pytest.approx(60 * (len(tail) - 400) / len(tail), abs=6)
    drr = 10 * np.log10(1.0 / tail.sum())
    assert augment.DIRECT_TO_REVERB_DB[0] <= drr <= augment.DIRECT_TO_REVERB_DB[1]
    out = augment.reverberate(sine(500), h)
    assert len(out) == RATE


def test_noise_sits_at_the_snr_it_was_given():
    x = np.random.default_rng(4).laplace(size=RATE)
    out = augment.add_noise(x, np.random.default_rng(5), 20.0)
    assert 10 * np.log10(np.mean(x**2) / np.mean((out - x) ** 2)) == pytest.approx(20.0, abs=0.01)
    assert np.all(augment.add_noise(np.zeros(100), np.random.default_rng(5), 20.0) == 0)  # absent stays absent


def test_the_mixer_augments_training_batches_only_and_repeatably(list_folder):
    plain = load_config("tiny")
    cfg = load_config("tiny", EVERYTHING)
    corpus = mixer_lib.load_corpus(list_folder / "train", RATE)
    mixer, plain_mixer = mixer_lib.Mixer(corpus, cfg), mixer_lib.Mixer(corpus, plain)
    spec = mixer_lib.BatchSpec(seed=0, shard=(0, 1), epoch=2, index=7, size=4)
    feats, labels = mixer_lib.draw_batch(mixer, spec)
    again, _ = mixer_lib.draw_batch(mixer, spec)
    np.testing.assert_array_equal(feats, again)
    assert feats.shape == mixer_lib.draw_batch(plain_mixer, spec)[0].shape
    assert labels.shape == feats.shape + (cfg.data.max_speakers,)
    active = labels.sum(axis=-1)
    assert set(np.unique(active)) <= {0.0, 1.0} and active.mean() > 0.3  # every weighted bin has one speaker
    sources = mixer.source_batch(np.random.default_rng(1), 4)
    assert not np.allclose(sources, plain_mixer.source_batch(np.random.default_rng(1), 4))
    host, _ = mixer_lib.examples_of_stack(sources, cfg)
    np.testing.assert_array_equal(host, mixer.batch(np.random.default_rng(1), 4)[0])  # one draw serves both paths
    valid, _ = validation.validation_set(mixer, cfg)
    np.testing.assert_array_equal(valid, validation.validation_set(plain_mixer, plain)[0])  # validation stays clean
    assert cfg.stft.num_frames(sources.shape[-1]) >= feats.shape[1]


def test_inverted_ranges_are_refused():
    with pytest.raises(ConfigError, match="rt60_min=0.9, rt60_max=0.5"):
        load_config("tiny", {"augment.rt60_min": 0.9, "augment.rt60_max": 0.5})
    with pytest.raises(ConfigError, match=r"augment.speed.*at most 0.5"):
        load_config("tiny", {"augment.speed": 0.7})


@pytest.mark.parametrize("length", [256, 1001, 6399, 25792])
def test_inverse_stft_is_scipys_istft(length):
    """The overlap-add by strided sums gives scipy.signal.istft's signal for a modified spectrum, any length."""
    import scipy.signal

    rng = np.random.default_rng(length)
    window = scipy.signal.windows.hann(augment.WINDOW, sym=False)
    args = dict(window=window, nperseg=augment.WINDOW, noverlap=3 * augment.WINDOW // 4)
    _, _, spec = scipy.signal.stft(rng.standard_normal(length), 8000, **args)
    spec *= 1 + rng.random(spec.shape)  # not the spectrum of any signal: the least-squares estimate is
    _, expected = scipy.signal.istft(spec, 8000, **args)
    np.testing.assert_allclose(augment.inverse_stft(spec, window, length), expected[:length], atol=1e-12)



# -- recorded noise and rooms (augment.noise_list, augment.rir_list) ------------------------------------
def write_noise_list(folder, kaldi=False):
    """Two noise recordings (a hum, a hiss) and one room response, listed as a file or a Kaldi directory."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "hum.wav", 0.1 * sine(60, RATE // 2), RATE)
    sf.write(folder / "hiss.wav", 0.01 * np.random.default_rng(0).standard_normal(3 * RATE), RATE)
    room = np.zeros(800)
    room[40], room[400] = 0.5, 0.25  # the direct path 40 samples in, one echo
    sf.write(folder / "room.wav", room, RATE)
    if kaldi:
        (folder / "wav.scp").write_text("hum hum.wav\nhiss hiss.wav\n")
        (folder / "utt2spk").write_text("hum noise\nhiss noise\n")
    else:
        (folder / "noise").write_text("# path label\nhum.wav noise\n" + str(folder / "hiss.wav") + "\n")
    (folder / "rooms").write_text("room.wav\n")
    return folder


@pytest.mark.parametrize("kaldi", [False, True])
def test_clip_bank_reads_a_list_or_a_kaldi_directory_and_loops_short_recordings(tmp_path, kaldi):
    write_noise_list(tmp_path / "noise", kaldi)
    bank = augment.ClipBank("augment.noise_list", "noise" if kaldi else "noise/noise", RATE, base=tmp_path)
    assert sorted(p.name for p in bank.paths) == ["hiss.wav", "hum.wav"]
    rng = np.random.default_rng(1)
    lengths = {len(bank.draw(rng)) for _ in range(20)}
    assert lengths == {RATE // 2, 3 * RATE}
    for _ in range(10):
        piece = bank.excerpt(rng, 2 * RATE)  # longer than the hum: looped, never padded with silence
        assert piece.shape == (2 * RATE,) and np.sqrt(np.mean(piece[-RATE // 2:] ** 2)) > 1e-3


def test_recorded_noise_is_added_at_the_drawn_snr(tmp_path):
    write_noise_list(tmp_path)
    cfg = load_config("tiny", {"augment.noise": 1.0, "augment.noise_list": "noise", "augment.snr_min_db": 10.0,
                               "augment.snr_max_db": 10.0})
    aug = augment.Augmenter(cfg.augment, RATE, base=tmp_path)
    x = sine(440, 2 * RATE).astype(np.float32)
    out = aug.source(lambda n: x[:n], 2 * RATE, np.random.default_rng(2))
    noise = out - x
    snr = 10 * np.log10(np.mean(x**2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.01)
    hum = band_energy_db(noise, 50, 70) - band_energy_db(noise, 500, 4000)
    assert hum > 20 or abs(hum) < 6  # one of the recordings (the hum, or white hiss), not coloured noise


def test_a_recorded_room_starts_at_its_direct_path(tmp_path):
    write_noise_list(tmp_path)
    cfg = load_config("tiny", {"augment.reverb": 1.0, "augment.rir_list": str(tmp_path / "rooms")})
    aug = augment.Augmenter(cfg.augment, RATE)
    x = np.zeros(RATE, np.float32)
    x[100] = 1.0
    out = aug.source(lambda n: x[:n], RATE, np.random.default_rng(0))
    np.testing.assert_allclose(out[[100, 460]], [1.0, 0.5], atol=1e-6)  # direct path at 1, the echo 360 later
    assert np.count_nonzero(np.abs(out) > 1e-6) == 2


def test_recordings_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match=r"augment.noise_list: .*missing: no such list file or Kaldi data directory"
                                         r".*Received: augment.noise_list='missing'"):
        augment.ClipBank("augment.noise_list", "missing", RATE, base=tmp_path)
    (tmp_path / "empty").write_text("nothing.wav\n")
    with pytest.raises(ValueError, match=r"lists no readable audio.*Received: augment.rir_list='empty'"):
        augment.ClipBank("augment.rir_list", "empty", RATE, base=tmp_path)
    with pytest.raises(ConfigError, match=r"augment.noise_list gives recordings, but augment.noise = 0"):
        load_config("tiny", {"augment.noise_list": "noise"})


def test_the_mixer_finds_the_noise_list_beside_its_lists(list_folder):
    write_noise_list(list_folder / "noise")
    cfg = load_config("tiny", {"augment.noise": 1.0, "augment.noise_list": "noise/noise"})
    mixer = mixer_lib.Mixer(mixer_lib.load_corpus(list_folder / "train", RATE), cfg)
    assert mixer.augmenter.noises is not None and len(mixer.augmenter.noises.paths) == 2
    batch = mixer.batch(np.random.default_rng(0), 2)
    assert all(np.all(np.isfinite(part)) for part in batch)
