"""Voice design for the demo corpus: distinct synthetic speakers and speaking one utterance.

:class:`VoiceSpec` is one speaker (an espeak-ng voice plus pitch, intonation
range, rate and vocal-tract warp); :func:`make_voices` draws many distinct
ones, training and held-out test voices from disjoint accents and parameter
bands. :class:`NeuralVoiceSpec` is a neural speaker (a mix of Kokoro-82M's
voice styles, an accent, a speed and a warp), :func:`make_neural_voices`
draws them; :class:`FliteVoiceSpec` is a speaker of Flite's voices of real
people (a voice, a pitch, a tempo and a warp), :func:`make_flite_voices`
draws them, and :class:`FestivalVoiceSpec` one of Festival's (a voice, a
tempo and a warp), :func:`make_festival_voices`. :func:`synthesize` speaks
a text with any kind (through ``espeak``, ``kokoro``, ``flite`` or
``festival``), trimmed and level-normalised.
:func:`harmonic_voice` is an espeak-free stand-in voice for tests and
benchmarks. What to say and where to write it is the demo corpus's job
(:mod:`deepclust.corpus.demo`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..dsp import audio
from . import espeak, festival, flite, kokoro
from .espeak import ESPEAK_RATE, PITCH_CENTRE, PITCH_UNITS_PER_OCTAVE
from .split import CorpusError

# English accents shipped in espeak-ng-data/lang/gmw (en-shaw is a script, not an accent).
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
# Voice variants in espeak-ng-data/voices/!v that sound like a voiced talker; robots,
# whispers, heavy echo and creaky voices are left out (they teach the model oddities).
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty", "belinda",
                   "grandma", "linda", "shelby", "steph", "steph2", "steph3", "zac")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "AnxiousAndy", "Denis", "Diogo",
                 "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen",
                 "Reed", "Tweaky", "adam", "antonio", "benjamin", "boris", "david", "ed", "edward", "edward2",
                 "gustave", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta", "klatt", "klatt2", "klatt3",
                 "klatt4", "klatt5", "klatt6", "marcelo", "max", "michel", "miguel", "mike2", "norbert", "pablo",
                 "paul", "pedro", "quincy", "rob", "robert", "sandro", "travis", "victor")

# Speaker parameter ranges. Test voices speak with accents, base pitches, intonation
# ranges and speaking rates that no training (or validation) voice has, with a gap
# between the bands.
TEST_ACCENTS = ("en-029", "en-gb-scotland")      # Caribbean, Scottish: test voices only
PITCH_SHIFT_OCTAVES = {"train": ((-0.28, 0.28),), "test": ((-0.45, -0.33), (0.33, 0.45))}  # x variant's base pitch
PITCH_RANGE = {"train": ((35, 70),), "test": ((15, 28), (78, 95))}              # espeakRANGE, 50 = default
SPEAKING_RATE_WPM = {"train": ((150, 195),), "test": ((120, 140), (210, 235))}  # final words per minute
NEURAL_SPEED = (0.85, 1.15)        # neural voices' final tempo, x the voice's own
NEURAL_MALE_WEIGHT = {"f": (0.0, 0.15), "m": (0.6, 1.0)}  # share of the male styles in a neural voice's mix
NEURAL_MIX_CONCENTRATION = 0.5     # Dirichlet over the female styles: most mixes lean on one or two
# Flite voices (``flite.VOICES``) by gender, their final mean pitch (Hz) and its spread (a share of the mean).
FLITE_VOICES = {"f": ("slt",), "m": ("awb", "kal", "kal16", "rms")}
FLITE_F0_HZ = {"f": (160.0, 250.0), "m": (85.0, 145.0)}
FLITE_F0_SPREAD = (0.08, 0.25)
# Flite's and Festival's voices' final duration stretch (> 1 slower).
STRETCH = (0.87, 1.18)
WARP = (0.85, 1.15)                # vocal-tract-length factor (all voices): formants, pitch, tempo scale by it
# The warp is applied by relabelling the synthesiser's output with a rate that is a multiple
# of this (Hz), keeping the polyphase resampling ratio small.
WARP_RATE_STEP = 50
# Per-utterance jitter, so one speaker's utterances differ: rate x(1 +- 6 %), pitch +- 3 %.
RATE_JITTER = 0.06
PITCH_JITTER_OCTAVES = math.log2(1.03)

# Utterance shaping (synthesize).
SILENCE_DB = -50.0                 # frames this far below the peak count as leading/trailing silence
EDGE_SECONDS = 0.1                 # silence kept at either end after trimming
UTTERANCE_RMS = 0.08               # utterances are written at this RMS ...
UTTERANCE_PEAK = 0.95              # ... unless that would put the peak above this


# ------------------------------------------------------------------ voices --

@dataclass(frozen=True)
class VoiceSpec:
    """One synthetic speaker: an espeak voice plus the knobs that make it distinct.

    ``voice`` is espeak's ``language+variant`` (``en-us+f3``); ``pitch`` and
    ``pitch_range`` are espeakPITCH / espeakRANGE (0-99, 50 = the variant's
    default); ``rate`` is espeak's words per minute; ``warp`` scales the
    vocal tract: formants, pitch and tempo of the output all scale by it, so
    ``make_voices`` pre-compensates pitch and rate to keep them where it drew
    them.
    """

    name: str
    voice: str
    pitch: int = 50
    pitch_range: int = 50
    rate: int = 175
    warp: float = 1.0

    def jittered(self, rng: np.random.Generator) -> VoiceSpec:
        """This voice with a slightly different rate and pitch, as one utterance of a talker differs from the next."""
        rate = self.rate * (1.0 + rng.uniform(-RATE_JITTER, RATE_JITTER))
        pitch = self.pitch + PITCH_UNITS_PER_OCTAVE * rng.uniform(-PITCH_JITTER_OCTAVES, PITCH_JITTER_OCTAVES)
        return replace(self, rate=int(round(rate)), pitch=int(np.clip(round(pitch), 0, 99)))


@dataclass(frozen=True)
class NeuralVoiceSpec:
    """One neural speaker: a mix of Kokoro-82M's voice styles speaking English phonemes.

    ``mix`` weighs ``kokoro.anchor_styles()`` in their sorted order (sums to
    1); ``accent`` is the espeak-ng language that writes the phonemes;
    ``speed`` is Kokoro's (1 = the style's own tempo); ``warp`` scales the
    vocal tract as :class:`VoiceSpec`'s does.
    """

    name: str
    mix: tuple[float, ...]
    accent: str = "en-us"
    speed: float = 1.0
    warp: float = 1.0

    def jittered(self, rng: np.random.Generator) -> NeuralVoiceSpec:
        """This voice at a slightly different tempo, as one utterance of a talker differs from the next."""
        return replace(self, speed=self.speed * (1.0 + rng.uniform(-RATE_JITTER, RATE_JITTER)))

    def style(self) -> np.ndarray:
        """The (phonemes, 256) style table of this mix."""
        anchors = kokoro.anchor_styles()
        if len(self.mix) != len(anchors):
            raise CorpusError(f"mix weighs Kokoro's {len(anchors)} voice styles {sorted(anchors)}; expected "
                              f"{len(anchors)} weights. Received: mix={self.mix}")
        return sum(w * table for w, table in zip(self.mix, anchors.values()))


@dataclass(frozen=True)
class FliteVoiceSpec:
    """One speaker of Flite's voices of real people (``flite.VOICES``).

    ``voice`` is flite's voice name; ``f0_mean`` and ``f0_stddev`` (Hz) its
    intonation target and spread as flite is asked for them;
    ``duration_stretch`` flite's (> 1 slower); ``warp`` scales the vocal
    tract as :class:`VoiceSpec`'s does (``make_flite_voices`` pre-compensates
    pitch and tempo for it).
    """

    name: str
    voice: str
    f0_mean: float = 120.0
    f0_stddev: float = 20.0
    duration_stretch: float = 1.0
    warp: float = 1.0

    def jittered(self, rng: np.random.Generator) -> FliteVoiceSpec:
        """This voice with a slightly different tempo and pitch, as one utterance of a talker differs from the next."""
        pitch = 2.0 ** rng.uniform(-PITCH_JITTER_OCTAVES, PITCH_JITTER_OCTAVES)
        return replace(self, f0_mean=self.f0_mean * pitch, f0_stddev=self.f0_stddev * pitch,
                       duration_stretch=self.duration_stretch * (1.0 + rng.uniform(-RATE_JITTER, RATE_JITTER)))


def make_flite_voices(count: int, seed: int = 0) -> list[FliteVoiceSpec]:
    """``count`` distinct Flite speakers drawn deterministically from ``seed`` (training voices only).

    Genders alternate; each speaker gets a voice of FLITE_VOICES[gender]
    (in turn), a mean pitch in FLITE_F0_HZ[gender] with a spread in
    FLITE_F0_SPREAD, a stretch in STRETCH and a warp in WARP, pitch
    and stretch compensated for the warp. Names are ``fli<k>`` plus the gender.
    """
    rng = np.random.default_rng([seed, 6])
    voices = []
    for k in range(count):
        gender = "fm"[k % 2]
        pool = FLITE_VOICES[gender]
        voice = pool[(k // 2) % len(pool)]
        warp = float(rng.uniform(*WARP))
        f0 = rng.uniform(*FLITE_F0_HZ[gender]) / warp
        voices.append(FliteVoiceSpec(name=f"fli{k:03d}{gender}", voice=voice, f0_mean=round(float(f0), 2),
                                     f0_stddev=round(float(f0 * rng.uniform(*FLITE_F0_SPREAD)), 2),
                                     duration_stretch=round(float(rng.uniform(*STRETCH) * warp), 4),
                                     warp=round(warp, 4)))
    return voices


@dataclass(frozen=True)
class FestivalVoiceSpec:
    """One speaker of Festival's voices of real people (``festival.VOICES``).

    ``voice`` is Festival's voice name; ``duration_stretch`` Festival's (> 1
    slower); ``warp`` scales the vocal tract as :class:`VoiceSpec`'s does,
    and with it the voice's own pitch (``make_festival_voices``
    pre-compensates the tempo).
    """

    name: str
    voice: str
    duration_stretch: float = 1.0
    warp: float = 1.0

    def jittered(self, rng: np.random.Generator) -> FestivalVoiceSpec:
        """This voice at a slightly different tempo, as one utterance of a talker differs from the next."""
        return replace(self, duration_stretch=self.duration_stretch * (1.0 + rng.uniform(-RATE_JITTER, RATE_JITTER)))


def make_festival_voices(count: int, seed: int = 0) -> list[FestivalVoiceSpec]:
    """``count`` distinct Festival speakers drawn deterministically from ``seed`` (training voices only).

    Genders alternate; each speaker gets a voice of ``festival.VOICES`` of
    its gender (in turn), a stretch in STRETCH and a warp in WARP, the
    stretch compensated for the warp. Names are ``fes<k>`` plus the gender.
    """
    pools = {g: tuple(v for v, who in festival.VOICES.items() if who == g) for g in "fm"}
    rng = np.random.default_rng([seed, 7])
    voices = []
    for k in range(count):
        gender = "fm"[k % 2]
        warp = float(rng.uniform(*WARP))
        voices.append(FestivalVoiceSpec(name=f"fes{k:03d}{gender}", voice=pools[gender][(k // 2) % len(pools[gender])],
                                        duration_stretch=round(float(rng.uniform(*STRETCH) * warp), 4),
                                        warp=round(warp, 4)))
    return voices


def make_neural_voices(count: int, seed: int = 0) -> list[NeuralVoiceSpec]:
    """``count`` distinct neural voices drawn deterministically from ``seed`` (training voices only).

    Genders alternate: a voice's mix gives the male styles a share in
    NEURAL_MALE_WEIGHT[gender] and spreads the rest over the female styles
    (Dirichlet), so every voice is a new blend. Accents are the training
    accents; tempo is uniform in NEURAL_SPEED and the warp in WARP, the speed
    compensated for the warp. Names are ``neu<k>`` plus the gender.
    """
    names = list(kokoro.anchor_styles())
    male = np.array([name.startswith("jm") for name in names])
    accents = tuple(a for a in ACCENTS if a not in TEST_ACCENTS)
    rng = np.random.default_rng([seed, 4])
    voices = []
    for k in range(count):
        gender = "fm"[k % 2]
        share = rng.uniform(*NEURAL_MALE_WEIGHT[gender])
        mix = np.zeros(len(names))
        mix[male] = share * rng.dirichlet(np.ones(male.sum()))
        mix[~male] = (1 - share) * rng.dirichlet(np.full((~male).sum(), NEURAL_MIX_CONCENTRATION))
        warp = _warp_rate(rng.uniform(*WARP), kokoro.KOKORO_RATE) / kokoro.KOKORO_RATE
        voices.append(NeuralVoiceSpec(name=f"neu{k:03d}{gender}", mix=tuple(float(w) for w in mix),
                                      accent=accents[int(rng.integers(len(accents)))],
                                      speed=float(rng.uniform(*NEURAL_SPEED) / warp), warp=warp))
    return voices


AnyVoice = VoiceSpec | NeuralVoiceSpec | FliteVoiceSpec | FestivalVoiceSpec


def _warp_rate(warp: float, rate: int = ESPEAK_RATE) -> int:
    """The rate (Hz) to relabel a synthesiser's output (at ``rate``) with so formants scale by ``warp``.

    A multiple of WARP_RATE_STEP, so the resampling ratio stays small.
    """
    return int(round(rate * warp / WARP_RATE_STEP)) * WARP_RATE_STEP


def _voice_pool(variants: tuple[str, ...], accents: tuple[str, ...], rng: np.random.Generator) -> list[str]:
    """Every accent+variant pair in a seeded order where consecutive voices use different variants."""
    order = rng.permutation(len(variants))
    picks = [rng.permutation(len(accents)) for _ in variants]
    return [f"{accents[picks[v][r]]}+{variants[v]}" for r in range(len(accents)) for v in order]


def _uniform_bands(rng: np.random.Generator, bands: tuple[tuple[float, float], ...]) -> float:
    """Uniform over the union of disjoint intervals (a band drawn in proportion to its width)."""
    widths = np.array([hi - lo for lo, hi in bands], float)
    lo, hi = bands[int(rng.choice(len(bands), p=widths / widths.sum()))]
    return float(rng.uniform(lo, hi))


def make_voices(count: int, seed: int = 0, group: str = "train") -> list[VoiceSpec]:
    """``count`` distinct voices of ``group`` (``"train"`` or ``"test"``), drawn deterministically from ``seed``.

    Genders alternate; each voice gets its own (accent, variant) pair (no
    repeats until every pair is used), base pitch, pitch range, speaking rate
    and vocal-tract warp. Pitch and rate are compensated for the warp, so the
    three vary independently. Train voices use the accents not in
    TEST_ACCENTS and the "train" bands; test voices only TEST_ACCENTS and the
    "test" bands, so no test voice resembles a training voice in accent,
    pitch, intonation range or rate. Names are ``spk<k>`` plus the gender (f/m).
    """
    if group not in ("train", "test"):
        raise CorpusError(f"group must be 'train' or 'test'. Received: group={group!r}")
    accents = TEST_ACCENTS if group == "test" else tuple(a for a in ACCENTS if a not in TEST_ACCENTS)
    rng = np.random.default_rng([seed, 1, 0 if group == "train" else 1])
    pools = [_voice_pool(FEMALE_VARIANTS, accents, rng), _voice_pool(MALE_VARIANTS, accents, rng)]
    voices = []
    for k in range(count):
        gender = k % 2
        pool = pools[gender]
        espeak_voice = pool[(k // 2) % len(pool)]
        warp = _warp_rate(rng.uniform(*WARP)) / ESPEAK_RATE
        shift = _uniform_bands(rng, PITCH_SHIFT_OCTAVES[group]) - math.log2(warp)
        pitch = int(np.clip(round(PITCH_CENTRE + PITCH_UNITS_PER_OCTAVE * shift), 0, 99))
        rate = int(round(_uniform_bands(rng, SPEAKING_RATE_WPM[group]) / warp))
        pitch_range = int(round(_uniform_bands(rng, PITCH_RANGE[group])))
        voices.append(VoiceSpec(name=f"spk{k:03d}{'fm'[gender]}", voice=espeak_voice, pitch=pitch,
                                pitch_range=pitch_range, rate=rate, warp=warp))
    return voices


# -------------------------------------------------------------- synthesis --

def _trim_silence(signal: np.ndarray, rate: int) -> np.ndarray:
    """Cut leading and trailing silence, keeping EDGE_SECONDS either side."""
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    if peak == 0.0:
        return signal
    loud = np.flatnonzero(np.abs(signal) > peak * 10 ** (SILENCE_DB / 20))
    edge = int(EDGE_SECONDS * rate)
    return signal[max(0, loud[0] - edge):loud[-1] + edge + 1]


def _normalise(signal: np.ndarray) -> np.ndarray:
    """Scale to UTTERANCE_RMS, or lower if the peak would pass UTTERANCE_PEAK."""
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    if rms == 0.0:
        return signal
    gain = min(UTTERANCE_RMS / rms, UTTERANCE_PEAK / peak)
    return (signal * gain).astype(np.float32)


def _speak(text: str, voice: AnyVoice) -> tuple[np.ndarray, int]:
    """``text`` from the voice's synthesiser: float samples and their rate."""
    if isinstance(voice, FestivalVoiceSpec):
        return festival.speak(text, voice.voice, voice.duration_stretch)
    if isinstance(voice, FliteVoiceSpec):
        return flite.speak(text, voice.voice, voice.f0_mean, voice.f0_stddev, voice.duration_stretch)
    if isinstance(voice, NeuralVoiceSpec):
        return kokoro.speak(espeak.phonemes(text, voice.accent), voice.style(), voice.speed), kokoro.KOKORO_RATE
    raw = espeak.speak(text, voice.voice, pitch=voice.pitch, pitch_range=voice.pitch_range, rate=voice.rate)
    return raw.astype(np.float32) / 32768.0, ESPEAK_RATE


def synthesize(text: str, voice: AnyVoice, sample_rate: int = 8000) -> np.ndarray:
    """Speak ``text`` with ``voice``: float32 mono at ``sample_rate``, silence trimmed, level normalised.

    The vocal-tract warp costs nothing extra: the synthesiser's output (22050
    Hz for espeak-ng) is relabelled as ``22050 * warp`` Hz before the
    polyphase resampling to ``sample_rate``, which scales every frequency (and
    the tempo) by ``warp``. The same text and voice give the same samples on
    every call.
    """
    if sample_rate <= 0:
        raise CorpusError(f"sample_rate must be a positive number of Hz. Received: sample_rate={sample_rate}")
    if not WARP[0] / 2 <= voice.warp <= WARP[1] * 2:
        raise CorpusError(f"warp scales formants and must be near 1 (drawn in {WARP}). Received: warp={voice.warp}")
    raw, rate = _speak(text, voice)
    signal = audio.resample(raw, _warp_rate(voice.warp, rate), int(sample_rate))
    return _normalise(_trim_silence(np.asarray(signal, np.float32), int(sample_rate)))


def harmonic_voice(f0: float, seconds: float, seed: int, sample_rate: int = 8000, level: float = 0.3) -> np.ndarray:
    """A stand-in "voice" without espeak-ng: a harmonic tone at ``f0`` Hz with vibrato and a
    syllable-like envelope. Different f0s occupy different bins, which is what tests and
    benchmarks of the pipeline need (not what a model should be judged on)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    tone = sum(np.sin(h * phase) / h for h in range(1, 8) if h * f0 < sample_rate / 2.2)
    syllables = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6)))
    return (level * tone * syllables).astype(np.float32)
