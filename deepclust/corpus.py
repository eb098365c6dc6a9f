"""Corpora: a synthetic demo corpus (espeak-ng) and list files for your own audio.

``make_corpus`` speaks the shipped sentences (``deepclust/texts/sentences.txt``)
with many distinct espeak-ng voices, so the whole pipeline can be tried
without downloading a corpus. ``prepare`` scans a folder of real recordings
(LibriSpeech, VCTK, WSJ0 or any ``speaker/.../file`` tree) and writes the
``train``/``valid``/``test`` lists, split by speaker.

The espeak-ng library and data come from the PyPI package ``espeakng-loader``
(``pip install 'deepclust[demo]'``) and are driven through ctypes; nothing
needs installing system-wide.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import functools
import logging
import math
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf

from . import audio

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- constants --

# espeak-ng synthesises at this rate (Hz) whatever the voice.
ESPEAK_RATE = 22050
# espeak_AUDIO_OUTPUT: samples are handed to our callback, synth returns when done.
AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_Initialize option: return an error instead of calling exit().
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
# espeak_POSITION_TYPE and espeak_Synth flags.
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
# espeak_PARAMETER ids.
ESPEAK_RATE_PARAM, ESPEAK_VOLUME, ESPEAK_PITCH, ESPEAK_RANGE = 1, 2, 3, 4
# espeak volume (0-200, 100 = default); below default so loud variants do not clip int16.
ESPEAK_VOLUME_VALUE = 60
# Seed for espeak's noise generators (its own and libc's): fixed, so output is reproducible.
ESPEAK_NOISE_SEED = 1
# espeakPITCH spans one octave either side of the voice's base: factor 2 ** ((p - 50) / 50).
PITCH_UNITS_PER_OCTAVE = 50
PITCH_CENTRE = 50

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

# Speaker parameter ranges. Test voices are unlike every training voice: they speak
# with accents, base pitches, intonation ranges and speaking rates that no training
# (or validation) voice has, with a gap between the bands, so a held-out score
# measures generalisation beyond the generator's training ranges.
TEST_ACCENTS = ("en-029", "en-gb-scotland")      # Caribbean, Scottish: test voices only
PITCH_SHIFT_OCTAVES = {"train": ((-0.28, 0.28),), "test": ((-0.45, -0.33), (0.33, 0.45))}  # x variant's base pitch
PITCH_RANGE = {"train": ((35, 70),), "test": ((15, 28), (78, 95))}              # espeakRANGE, 50 = default
SPEAKING_RATE_WPM = {"train": ((150, 195),), "test": ((120, 140), (210, 235))}  # final words per minute
TEST_SENTENCE_FRACTION = 0.2       # this share of the sentences is spoken by test voices only
WARP = (0.85, 1.15)                # vocal-tract-length factor (all voices): formants, pitch, tempo scale by it
# The warp is applied by relabelling the 22050 Hz output with a rate that is a multiple
# of this (Hz), keeping the polyphase resampling ratio small.
WARP_RATE_STEP = 50
# Per-utterance jitter, so one speaker's utterances differ: rate x(1 +- 6 %), pitch +- 3 %.
RATE_JITTER = 0.06
PITCH_JITTER_OCTAVES = math.log2(1.03)

# Utterance shaping.
SENTENCES_PER_UTTERANCE = (1, 2)
SILENCE_DB = -50.0                 # frames this far below the peak count as leading/trailing silence
EDGE_SECONDS = 0.1                 # silence kept at either end after trimming
UTTERANCE_RMS = 0.08               # utterances are written at this RMS ...
UTTERANCE_PEAK = 0.95              # ... unless that would put the peak above this

# Demo mixture.
MIXTURE_SECONDS = 3.5
MIXTURE_PEAK = 0.9
MIXTURE_GAP_SECONDS = 0.2          # pause between a speaker's utterances when one is too short
SPLITS = ("train", "valid", "test")
PROGRESS_SECONDS = 0.5             # shortest interval between progress lines
MIN_DEMO_SPEAKERS = 4              # 2 test speakers for the mixture, 1 valid, 1 train

# prepare(): layouts name the folder level holding the speaker (1 = parent of the file).
LAYOUT_LEVELS = {"librispeech": 2, "vctk": 1, "wsj0": 1}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".sph")
AUTO_MAX_LEVEL = 3                 # auto layout looks this many folders up for the speaker
AUTO_MATCH_FRACTION = 0.9          # ... and takes a level whose name prefixes this share of file names
SECONDS_PER_HOUR = 3600.0


class CorpusError(ValueError):
    """A corpus cannot be made or prepared; the message names the cause and the fix."""


# ------------------------------------------------------------------ espeak --

_LOCK = threading.Lock()
_LIBRARY_COPY: list[str] = []
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _loader():
    try:
        import espeakng_loader
    except ImportError:
        raise CorpusError("the demo corpus needs espeak-ng: pip install 'deepclust[demo]'") from None
    return espeakng_loader


def _private_library(loader) -> str:
    """A process-private copy of libespeak-ng, so loading and unloading it resets all its state.

    espeak-ng keeps synthesis state in C statics (gain control, phase,
    flutter, echo buffer) that survive espeak_Terminate, so the same text
    comes out slightly different on every call. Unloading the library and
    loading it afresh gives every utterance the same start; the private copy
    keeps that from disturbing anyone else in the process who loaded
    espeakng_loader's library.
    """
    if not _LIBRARY_COPY:
        folder = tempfile.mkdtemp(prefix="deepclust-espeak-")
        atexit.register(shutil.rmtree, folder, True)
        source = Path(loader.get_library_path())
        target = Path(folder) / source.name
        shutil.copyfile(source, target)
        _LIBRARY_COPY.append(str(target))
    return _LIBRARY_COPY[0]


def _unload(lib: ctypes.CDLL) -> None:
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None)
    except (OSError, TypeError):  # no C library to reach (e.g. Windows)
        return None


def _seed_libc_rand(seed: int) -> None:
    """espeak's voicing noise also draws on libc rand(); seed it for reproducible output."""
    libc = _libc()
    if libc is not None and hasattr(libc, "srand"):
        libc.srand(ctypes.c_uint(seed))


def _open_espeak() -> tuple[ctypes.CDLL, int]:
    """Load a fresh libespeak-ng and initialise it for synchronous synthesis; returns (lib, rate)."""
    loader = _loader()
    try:
        lib = ctypes.CDLL(_private_library(loader))
    except OSError:  # e.g. a temp folder mounted noexec: use the package's own copy
        lib = ctypes.CDLL(loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    data = loader.get_data_path()
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), ESPEAK_INITIALIZE_DONT_EXIT)
    if rate <= 0:
        _unload(lib)
        raise CorpusError(f"{data}: espeak-ng failed to initialise (returned {rate}); "
                          "expected espeakng-loader's data folder. Reinstall with pip install 'deepclust[demo]'.")
    return lib, rate


@dataclass(frozen=True)
class VoiceSpec:
    """One synthetic speaker: an espeak voice plus the knobs that make it distinct.

    ``voice`` is espeak's ``language+variant`` (``en-us+f3``); ``pitch`` and
    ``pitch_range`` are espeakPITCH / espeakRANGE (0-99, 50 = the variant's
    default); ``rate`` is espeak's words per minute; ``warp`` scales the
    vocal tract: formants, pitch and tempo of the output all scale by it, so
    ``make_corpus`` pre-compensates pitch and rate to keep them where it drew
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


def _espeak_samples(text: str, voice: VoiceSpec) -> np.ndarray:
    """Raw int16 samples at espeak's native rate; one fresh library load per call (see _private_library)."""
    chunks: list[np.ndarray] = []

    def collect(wav, count, events):
        if count > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    callback = _CALLBACK(collect)
    with _LOCK:
        lib, _ = _open_espeak()
        try:
            lib.espeak_SetSynthCallback(callback)
            if lib.espeak_SetVoiceByName(voice.voice.encode()) != 0:
                raise CorpusError(f"espeak-ng has no voice {voice.voice!r}; expected 'language+variant' such as "
                                  f"'en-us+f3'. Received: voice={voice.voice!r}")
            for param, value in ((ESPEAK_RATE_PARAM, voice.rate), (ESPEAK_PITCH, voice.pitch),
                                 (ESPEAK_RANGE, voice.pitch_range), (ESPEAK_VOLUME, ESPEAK_VOLUME_VALUE)):
                lib.espeak_SetParameter(param, int(value), 0)
            lib.espeak_ng_SetRandSeed(ctypes.c_long(ESPEAK_NOISE_SEED))
            _seed_libc_rand(ESPEAK_NOISE_SEED)
            encoded = text.encode("utf-8")
            status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            if status != 0:
                raise CorpusError(f"espeak-ng failed to speak (error {status}). Received: text={text[:60]!r}, "
                                  f"voice={voice.voice!r}")
            lib.espeak_Synchronize()
        finally:
            lib.espeak_Terminate()
            _unload(lib)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def _warp_rate(warp: float) -> int:
    """The rate (Hz) to relabel espeak's output with so formants scale by ``warp``; a multiple of WARP_RATE_STEP."""
    return int(round(ESPEAK_RATE * warp / WARP_RATE_STEP)) * WARP_RATE_STEP


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


def synthesize(text: str, voice: VoiceSpec, sample_rate: int = 8000) -> np.ndarray:
    """Speak ``text`` with ``voice``: float32 mono at ``sample_rate``, silence trimmed, level normalised.

    The vocal-tract warp costs nothing extra: espeak's 22050 Hz output is
    relabelled as ``22050 * warp`` Hz before the polyphase resampling to
    ``sample_rate``, which scales every frequency (and the tempo) by ``warp``.
    The same text and voice give the same samples on every call.
    """
    if not text.strip():
        raise CorpusError(f"nothing to speak; expected non-empty text. Received: text={text!r}")
    if sample_rate <= 0:
        raise CorpusError(f"sample_rate must be a positive number of Hz. Received: sample_rate={sample_rate}")
    if not WARP[0] / 2 <= voice.warp <= WARP[1] * 2:
        raise CorpusError(f"warp scales formants and must be near 1 (drawn in {WARP}). Received: warp={voice.warp}")
    raw = _espeak_samples(text, voice).astype(np.float32) / 32768.0
    signal = audio.resample(raw, _warp_rate(voice.warp), int(sample_rate))
    return _normalise(_trim_silence(np.asarray(signal, np.float32), int(sample_rate)))


# ----------------------------------------------------------------- voices --

def _octaves_to_pitch_units(octaves: float) -> float:
    return PITCH_UNITS_PER_OCTAVE * octaves


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
        pitch = int(np.clip(round(PITCH_CENTRE + _octaves_to_pitch_units(shift)), 0, 99))
        rate = int(round(_uniform_bands(rng, SPEAKING_RATE_WPM[group]) / warp))
        pitch_range = int(round(_uniform_bands(rng, PITCH_RANGE[group])))
        voices.append(VoiceSpec(name=f"spk{k:03d}{'fm'[gender]}", voice=espeak_voice, pitch=pitch,
                                pitch_range=pitch_range, rate=rate, warp=warp))
    return voices


def split_sentences(sentences: list[str], seed: int = 0) -> dict[str, list[str]]:
    """Sentences for training/validation voices and the disjoint ones test voices speak."""
    order = np.random.default_rng([seed, 4]).permutation(len(sentences))
    held = max(1, round(TEST_SENTENCE_FRACTION * len(sentences)))
    return {"train": [sentences[i] for i in sorted(order[held:])],
            "test": [sentences[i] for i in sorted(order[:held])]}


def load_sentences() -> list[str]:
    """The shipped sentences (``deepclust/texts/sentences.txt``), comments and blanks dropped."""
    text = resources.files("deepclust").joinpath("texts/sentences.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# ------------------------------------------------------------- demo corpus --

@dataclass
class CorpusSummary:
    """What ``make_corpus`` wrote: counts per split and the paths."""

    directory: Path
    sample_rate: int
    speakers: dict[str, int]
    utterances: dict[str, int]
    seconds: dict[str, float]
    lists: dict[str, Path]
    mixture: Path
    references: tuple[Path, Path]
    voices: dict[str, VoiceSpec] = field(default_factory=dict)
    elapsed: float = 0.0

    def describe(self) -> str:
        rows = [f"{split:5s}: {self.speakers[split]:3d} speakers, {self.utterances[split]:4d} utterances, "
                f"{self.seconds[split] / 60:6.1f} min -> {self.lists[split]}" for split in SPLITS]
        return "\n".join([f"demo corpus in {self.directory} ({self.sample_rate} Hz, {self.elapsed:.1f} s)", *rows,
                          f"mixture: {self.mixture} (references {self.references[0].name}, {self.references[1].name})",
                          "held-out test mixtures: " + ", ".join(
                              str(p) for k in (2, 3) if (p := mixture_list_path(self.directory, k)).is_file())])


def _refuse_existing_lists(base: Path, overwrite: bool) -> None:
    for split in SPLITS:
        path = base / split
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: a list already exists; refusing to overwrite it "
                                  f"(use --force, or overwrite=True, to replace the lists).")


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise CorpusError(f"{name} is the share of speakers held out and must be in [0, 1). "
                          f"Received: {name}={value}")


def _split_sizes(count: int, valid_fraction: float, test_fraction: float, min_test: int = 1) -> dict[str, int]:
    """Speakers per split: rounded fractions, at least one speaker each (``min_test`` for test)."""
    _check_fraction("valid_fraction", valid_fraction)
    _check_fraction("test_fraction", test_fraction)
    if valid_fraction + test_fraction >= 1.0:
        raise CorpusError(f"valid_fraction + test_fraction must leave speakers for training (sum < 1). "
                          f"Received: valid_fraction={valid_fraction}, test_fraction={test_fraction}")
    test = max(min_test, round(test_fraction * count))
    valid = max(1, round(valid_fraction * count))
    while count - valid - test < 1:  # rounding took every speaker: give some back to train
        if valid > 1 and (valid >= test or test <= min_test):
            valid -= 1
        elif test > min_test:
            test -= 1
        else:
            break
    return {"train": count - valid - test, "valid": valid, "test": test}


def _utterance_text(sentences: list[str], rng: np.random.Generator) -> str:
    count = int(rng.integers(SENTENCES_PER_UTTERANCE[0], SENTENCES_PER_UTTERANCE[1] + 1))
    return " ".join(sentences[i] for i in rng.choice(len(sentences), size=count, replace=False))


class _Progress:
    """A one-line counter on stderr: cheap, and no Keras import for a corpus tool."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.start, self.shown = total, enabled, time.monotonic(), -math.inf

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.enabled and (done == self.total or now - self.shown >= PROGRESS_SECONDS):
            self.shown = now
            print(f"\rsynthesising utterance {done}/{self.total} ({time.monotonic() - self.start:.0f} s)",
                  end="\n" if done == self.total else "", file=sys.stderr, flush=True)


def _write_list(path: Path, lines: list[str], header: str) -> None:
    path.write_text(f"# {header}\n" + "".join(f"{line}\n" for line in lines), encoding="utf-8")


def _mixture_source(utterances: list[np.ndarray], length: int, gap: int) -> np.ndarray:
    """``length`` samples of one speaker: utterances joined by ``gap`` zeros until long enough, else zero-padded."""
    pieces, total = [], 0
    for signal in utterances:
        pieces += [signal, np.zeros(gap, np.float32)]
        total += len(signal) + gap
        if total >= length:
            break
    joined = np.concatenate(pieces)[:length]
    return np.pad(joined, (0, length - len(joined)))


def _demo_mixture(directory: Path, first: list[np.ndarray], second: list[np.ndarray],
                  sample_rate: int) -> tuple[Path, Path, Path]:
    """Write test/mixed.wav and references s1/s2: equal-RMS sources, MIXTURE_SECONDS long, peak below MIXTURE_PEAK."""
    length, gap = int(MIXTURE_SECONDS * sample_rate), int(MIXTURE_GAP_SECONDS * sample_rate)
    sources = np.stack([_mixture_source(first, length, gap), _mixture_source(second, length, gap)])
    sources /= np.maximum(np.sqrt(np.mean(np.square(sources), axis=1, keepdims=True)), 1e-9)
    sources *= MIXTURE_PEAK * 0.95 / float(np.max(np.abs(sources.sum(axis=0))))
    # Quantise the references first, so the mixture equals their sum up to its own rounding.
    sources = np.round(sources * 32768.0) / 32768.0
    folder = directory / "data" / "test"
    mixed = audio.write(folder / "mixed.wav", sources.sum(axis=0), sample_rate, overwrite=True)
    s1 = audio.write(folder / "s1.wav", sources[0], sample_rate, overwrite=True)
    s2 = audio.write(folder / "s2.wav", sources[1], sample_rate, overwrite=True)
    return mixed, s1, s2


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


# Held-out test mixtures written with the corpus, in the wsj0-2mix list format
# ("path gain_dB path gain_dB ..."), for `deepclust evaluate`.
TEST_MIXTURES = 40  # per speaker count
TEST_MIXTURE_GAIN_DB = 2.5  # gains uniform in [0, 2.5] dB, the first source up, the others down (wsj0-2mix)


def mixture_list_path(directory: str | Path, num_speakers: int) -> Path:
    return Path(directory) / f"test_mix_{num_speakers}spk.txt"


def write_mixture_list(directory: str | Path, num_speakers: int, count: int = TEST_MIXTURES, seed: int = 0,
                       split: str = "test", path: str | Path | None = None) -> Path:
    """A wsj0-2mix-style list of ``count`` mixtures of ``num_speakers`` distinct speakers of ``split``.

    Paths are as in the split's list (relative to ``directory``), so
    ``deepclust evaluate DIR/test_mix_2spk.txt`` scores held-out voices only.
    ``path`` (default ``DIR/test_mix_<k>spk.txt``) must lie in ``directory``.
    """
    from .data import parse_list

    directory = Path(directory)
    by_speaker: dict[str, list[str]] = {}
    for entry in parse_list(directory / split):
        by_speaker.setdefault(entry.speaker, []).append(entry.path.relative_to(directory).as_posix())
    speakers = sorted(by_speaker)
    if len(speakers) < num_speakers:
        raise CorpusError(f"{directory / split}: {len(speakers)} speakers cannot make {num_speakers}-speaker "
                          f"mixtures. Received: num_speakers={num_speakers}")
    rng = np.random.default_rng([seed, 5, num_speakers])
    lines = []
    for _ in range(count):
        chosen = rng.choice(len(speakers), size=num_speakers, replace=False)
        gain = round(float(rng.uniform(0, TEST_MIXTURE_GAIN_DB)), 4)
        gains = [gain] + [-gain] * (num_speakers - 1)
        paths = [by_speaker[speakers[c]][int(rng.integers(len(by_speaker[speakers[c]])))] for c in chosen]
        lines.append(" ".join(f"{p} {g}" for p, g in zip(paths, gains)))
    path = Path(path) if path is not None else mixture_list_path(directory, num_speakers)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_corpus(directory: str | Path, speakers: int = 200, utterances: int = 6, seed: int = 0,
                sample_rate: int = 8000, valid_fraction: float = 0.15, test_fraction: float = 0.15,
                progress: bool = True, overwrite: bool = False) -> CorpusSummary:
    """Synthesise a speaker-disjoint demo corpus with espeak-ng into ``directory``.

    Writes ``data/<split>/<speaker>/<n>.wav`` (16-bit PCM), the lists
    ``train``, ``valid``, ``test`` (``path speakerID``, paths relative to
    ``directory``) and a demo mixture ``data/test/mixed.wav`` of two test
    speakers with its references ``s1.wav``/``s2.wav``, and held-out test
    mixture lists ``test_mix_2spk.txt``/``test_mix_3spk.txt`` (wsj0-2mix
    format, test speakers only). Test voices are unlike the training ones
    (accents, pitch bands, intonation ranges and rates no training voice has,
    see ``make_voices``) and speak sentences no training voice speaks
    (``split_sentences``). The same seed gives the same bytes. Lists are written last, so an interrupted run leaves
    none and can simply be rerun; existing lists are refused unless
    ``overwrite`` (old audio files not in the new lists stay on disk).
    """
    directory = Path(directory)
    if speakers < MIN_DEMO_SPEAKERS:
        raise CorpusError(f"the demo corpus needs at least {MIN_DEMO_SPEAKERS} speakers (train, valid, and two "
                          f"test speakers for the demo mixture). Received: speakers={speakers}")
    if utterances < 1:
        raise CorpusError(f"utterances is per speaker and must be at least 1. Received: utterances={utterances}")
    sizes = _split_sizes(speakers, valid_fraction, test_fraction, min_test=2)
    _refuse_existing_lists(directory, overwrite)
    _loader()  # fail before any work if espeak-ng is missing
    started = time.monotonic()
    sentences = split_sentences(load_sentences(), seed)
    # Speaker numbers are shuffled over the splits (names say nothing of the split);
    # test numbers get voices of the held-out kind, the others training voices.
    order = np.random.default_rng([seed, 2]).permutation(speakers)
    bounds = np.cumsum([0] + [sizes[s] for s in SPLITS])
    split_of = {int(k): split for i, split in enumerate(SPLITS) for k in order[bounds[i]:bounds[i + 1]]}
    drawn = {group: iter(make_voices(sum(1 for s in split_of.values() if (s == "test") == (group == "test")),
                                     seed, group)) for group in ("train", "test")}
    voices = []
    for k in range(speakers):
        group = "test" if split_of[k] == "test" else "train"
        spec = next(drawn[group])
        gender = spec.name[-1]
        voices.append(replace(spec, name=f"spk{k:03d}{gender}"))

    lines: dict[str, list[str]] = {s: [] for s in SPLITS}
    seconds = {s: 0.0 for s in SPLITS}
    test_audio: dict[int, list[np.ndarray]] = {}
    bar = _Progress(speakers * utterances, progress)
    for k, voice in enumerate(voices):
        split = split_of[k]
        rng = np.random.default_rng([seed, 3, k])
        for n in range(utterances):
            text = _utterance_text(sentences["test" if split == "test" else "train"], rng)
            signal = synthesize(text, voice.jittered(rng), sample_rate)
            relative = Path("data", split, voice.name, f"{n}.wav")
            audio.write(directory / relative, signal, sample_rate, overwrite=True)
            lines[split].append(f"{relative.as_posix()} {voice.name}")
            seconds[split] += len(signal) / sample_rate
            if split == "test":
                test_audio.setdefault(k, []).append(signal)
            bar.update(k * utterances + n + 1)

    test_speakers = sorted(k for k in range(speakers) if split_of[k] == "test")
    first = test_speakers[0]
    # Prefer a mixed-gender pair for the demo (the more convincing separation to listen to).
    second = next((k for k in test_speakers[1:] if voices[k].name[-1] != voices[first].name[-1]), test_speakers[1])
    mixture, s1, s2 = _demo_mixture(directory, test_audio[first], test_audio[second], sample_rate)

    lists = {}
    for split in SPLITS:
        lists[split] = directory / split
        _write_list(lists[split], lines[split], f"deepclust demo corpus, {split} split, seed {seed}")
    for k in (2, 3):
        if len(test_speakers) >= k:
            write_mixture_list(directory, k, seed=seed)
    return CorpusSummary(
        directory=directory, sample_rate=sample_rate, speakers=dict(sizes),
        utterances={s: len(lines[s]) for s in SPLITS}, seconds=seconds, lists=lists, mixture=mixture,
        references=(s1, s2), voices={v.name: v for v in voices}, elapsed=time.monotonic() - started)


# ------------------------------------------------------------------ prepare --

@dataclass
class PrepareSummary:
    """What ``prepare`` found and wrote. Lists hold absolute paths."""

    base: Path
    layout: str
    speaker_level: int
    speakers: dict[str, int]
    files: dict[str, int]
    hours: dict[str, float]
    lists: dict[str, Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def describe(self) -> str:
        rows = [f"{split:5s}: {self.speakers[split]:4d} speakers, {self.files[split]:6d} files, "
                f"{self.hours[split]:7.2f} h -> {self.lists[split]}" for split in SPLITS]
        level = f"speaker = folder {self.speaker_level} level(s) above each file"
        return "\n".join([f"layout {self.layout} ({level})", *rows, f"skipped {len(self.skipped)} unreadable file(s)"])


def _scan(audio_dir: Path, extensions: tuple[str, ...]) -> list[Path]:
    wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    return sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() in wanted and p.is_file())


def _folder_at(path: Path, audio_dir: Path, level: int) -> str | None:
    """The name of the ``level``-th folder above ``path``, if it is inside ``audio_dir``."""
    parts = path.relative_to(audio_dir).parts[:-1]
    return parts[-level] if 1 <= level <= len(parts) else None


def _detect_level(files: list[Path], audio_dir: Path) -> int:
    """Guess the speaker folder level from file names that start with the speaker ID.

    LibriSpeech (``19/198/19-198-0001.flac``), VCTK (``p225/p225_001.wav``)
    and WSJ0 (``01a/01aa0101.wav``) all prefix file names with the speaker;
    the lowest level whose folder name prefixes most file names wins, and
    the parent folder is the fallback.
    """
    for level in range(1, AUTO_MAX_LEVEL + 1):
        hits = 0
        for path in files:
            folder = _folder_at(path, audio_dir, level)
            hits += bool(folder) and path.name.lower().startswith(folder.lower())
        if hits >= AUTO_MATCH_FRACTION * len(files):
            return level
    return 1


def _resolve_level(layout: str, speaker_level: int | None, files: list[Path], audio_dir: Path) -> tuple[str, int]:
    if speaker_level is not None:
        if int(speaker_level) < 1:
            raise CorpusError(f"speaker_level counts folders up from each file (1 = parent) and must be >= 1. "
                              f"Received: speaker_level={speaker_level}")
        return "custom", int(speaker_level)
    if layout == "auto":
        level = _detect_level(files, audio_dir)
        log.info("%s: auto layout: speaker is the folder %d level(s) above each file", audio_dir, level)
        return "auto", level
    if layout not in LAYOUT_LEVELS:
        raise CorpusError(f"unknown layout; expected one of {['auto', *LAYOUT_LEVELS]} or speaker_level=N. "
                          f"Received: layout={layout!r}")
    return layout, LAYOUT_LEVELS[layout]


def _readable_seconds(path: Path) -> tuple[float | None, str]:
    """Duration in seconds from the header, or None and the reason the file cannot be used."""
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        hint = " (SPHERE files are often shorten-compressed: convert them with sph2pipe)" \
            if path.suffix.lower() == ".sph" else ""
        return None, f"cannot read audio: {exc}{hint}"
    if info.frames <= 0:
        return None, "no audio frames"
    return info.frames / info.samplerate, ""


def prepare(audio_dir: str | Path, base: str | Path, speaker_level: int | None = None, layout: str = "auto",
            valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
            extensions: tuple[str, ...] = AUDIO_EXTENSIONS, overwrite: bool = False) -> PrepareSummary:
    """Write ``base/train``, ``base/valid``, ``base/test`` for the audio under ``audio_dir``, split by speaker.

    The speaker is the name of a folder above each file: ``layout``
    ``librispeech`` (2 up: ``speaker/chapter/file``), ``vctk`` / ``wsj0``
    (the parent), ``auto`` (see ``_detect_level``), or ``speaker_level=N``
    (N up, 1 = parent; overrides ``layout``). Speakers are shuffled with
    ``seed`` and dealt to the splits by the fractions, each split getting at
    least one. Paths in the lists are absolute, so the lists can live away
    from the audio. Unreadable files are skipped with a warning and counted.
    """
    audio_dir, base = Path(audio_dir), Path(base)
    if not audio_dir.is_dir():
        raise CorpusError(f"{audio_dir}: not a folder; expected the root of your audio files. "
                          f"Received: audio_dir={str(audio_dir)!r}")
    _refuse_existing_lists(base, overwrite)
    files = _scan(audio_dir, tuple(extensions))
    if not files:
        raise CorpusError(f"{audio_dir}: no audio files found; expected files ending in {tuple(extensions)} "
                          f"somewhere below it. Received: extensions={tuple(extensions)}")
    layout, level = _resolve_level(layout, speaker_level, files, audio_dir)

    by_speaker: dict[str, list[tuple[Path, float]]] = {}
    skipped: list[tuple[Path, str]] = []
    for path in files:
        seconds, reason = _readable_seconds(path)
        speaker = _folder_at(path, audio_dir, level)
        if seconds is not None and speaker is None:
            reason = f"lies fewer than {level} folder(s) below {audio_dir}, so it has no speaker folder"
        elif seconds is not None and "\n" in str(path):
            reason = "path contains a line break, which a list file cannot hold"
        if reason:
            log.warning("%s: skipped: %s", path, reason)
            skipped.append((path, reason))
            continue
        by_speaker.setdefault(re.sub(r"\s+", "_", speaker), []).append((path.absolute(), seconds))
    if skipped:
        log.warning("%s: skipped %d of %d files (see warnings above)", audio_dir, len(skipped), len(files))
    if len(by_speaker) < len(SPLITS):
        raise CorpusError(f"{audio_dir}: found {len(by_speaker)} speaker(s), but at least {len(SPLITS)} speakers are "
                          f"needed for a 3-way train/valid/test split by speaker; check layout or speaker_level. "
                          f"Received: layout={layout!r}, speaker_level={level}, speakers={sorted(by_speaker)[:10]}")

    sizes = _split_sizes(len(by_speaker), valid_fraction, test_fraction)
    names = sorted(by_speaker)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    bounds = np.cumsum([0] + [sizes[s] for s in SPLITS])
    base.mkdir(parents=True, exist_ok=True)
    lists, files_per, hours = {}, {}, {}
    for i, split in enumerate(SPLITS):
        chosen = sorted(order[bounds[i]:bounds[i + 1]])
        entries = [(path, speaker, seconds) for speaker in chosen for path, seconds in by_speaker[speaker]]
        lists[split] = base / split
        _write_list(lists[split], [f"{path} {speaker}" for path, speaker, _ in entries],
                    f"{split} split of {audio_dir.absolute()} (layout {layout}, speaker level {level}, seed {seed})")
        files_per[split] = len(entries)
        hours[split] = sum(s for _, _, s in entries) / SECONDS_PER_HOUR
    return PrepareSummary(base=base, layout=layout, speaker_level=level, speakers=dict(sizes), files=files_per,
                          hours=hours, lists=lists, skipped=skipped)
