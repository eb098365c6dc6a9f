"""The synthetic demo corpus: designed voices (``voices``) speaking the shipped sentences.

``make_corpus`` speaks ``deepclust/texts/sentences.txt`` with many distinct
voices (:func:`voices.make_voices`, and where asked neural ones,
:func:`voices.make_neural_voices`, Flite's, :func:`voices.make_flite_voices`, and
Festival's, :func:`voices.make_festival_voices`) and writes a speaker-disjoint corpus (split
as ``prepare`` splits), a demo mixture and held-out test mixture lists, so the
whole pipeline can be tried without downloading a corpus. Test voices are
unlike every training voice, so a held-out score measures generalisation.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np

from ..dsp import audio, mixing
from ..progress import Progress
from . import espeak, festival, flite, kokoro, lists
from .split import SPLITS, CorpusError, deal, refuse_existing_lists, split_sizes
from .voices import (AnyVoice, FestivalVoiceSpec, FliteVoiceSpec, NeuralVoiceSpec, make_festival_voices,
                     make_flite_voices, make_neural_voices, make_voices, synthesize)

# Sentences: test voices speak sentences no training voice speaks.
TEST_SENTENCE_FRACTION = 0.2       # this share of the sentences is spoken by test voices only
SENTENCES_PER_UTTERANCE = (1, 2)

# Demo mixture (scaled by mixing.wsj0_scale: equal levels, loudest sample at mixing.MIX_PEAK).
MIXTURE_SECONDS = 3.5
MIXTURE_GAP_SECONDS = 0.2          # pause between a speaker's utterances when one is too short
PCM_16_SCALE = 32768.0             # the references are quantised to 16 bits before they are summed
# Every split needs two speakers: a mixture is of distinct voices (and the demo mixture is of two test speakers).
MIN_SPLIT_SPEAKERS = 2
# Held-out test mixtures written with the corpus, in the wsj0-2mix list format
# ("path gain_dB path gain_dB ..."), for `deepclust evaluate`.
TEST_MIXTURES = 40                 # per speaker count
TEST_MIXTURE_GAIN_DB = 2.5         # gains uniform in [0, 2.5] dB, the first source up, the others down (wsj0-2mix)
# Voices given to a share of the training and validation speakers instead of espeak-ng's: each kind's
# speakers are the next ones of one seeded order, so a kind's picks do not depend on a later kind's share.
EXTRA_VOICES = ("neural", "flite", "festival")
_MAKE = {"neural": make_neural_voices, "flite": make_flite_voices, "festival": make_festival_voices}
_REQUIRE = {"neural": kokoro.require, "flite": flite.require, "festival": festival.require}
_DESCRIBE = {NeuralVoiceSpec: "neural voices (Kokoro-82M blends, names neu...)",
             FliteVoiceSpec: "Flite voices (names fli...)", FestivalVoiceSpec: "Festival voices (names fes...)"}


# --------------------------------------------------------------- sentences --

def load_sentences() -> list[str]:
    """The shipped sentences (``deepclust/texts/sentences.txt``), comments and blanks dropped."""
    text = resources.files("deepclust").joinpath("texts/sentences.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def split_sentences(sentences: list[str], seed: int = 0) -> dict[str, list[str]]:
    """Sentences for training/validation voices and the disjoint ones test voices speak."""
    order = np.random.default_rng([seed, 4]).permutation(len(sentences))
    held = max(1, round(TEST_SENTENCE_FRACTION * len(sentences)))
    return {"train": [sentences[i] for i in sorted(order[held:])],
            "test": [sentences[i] for i in sorted(order[:held])]}


def _utterance_text(sentences: list[str], rng: np.random.Generator) -> str:
    count = int(rng.integers(SENTENCES_PER_UTTERANCE[0], SENTENCES_PER_UTTERANCE[1] + 1))
    return " ".join(sentences[i] for i in rng.choice(len(sentences), size=count, replace=False))


# ---------------------------------------------------------------- mixtures --

def _mixture_source(utterances: list[np.ndarray], length: int, gap: int) -> np.ndarray:
    """``length`` samples of one speaker: utterances joined by ``gap`` zeros until long enough, else zero-padded."""
    pieces, total = [], 0
    for signal in utterances:
        pieces += [signal, np.zeros(gap, np.float32)]
        total += len(signal) + gap
        if total >= length:
            break
    return audio.fit_length(np.concatenate(pieces), length)


def _demo_mixture(directory: Path, first: list[np.ndarray], second: list[np.ndarray],
                  sample_rate: int) -> tuple[Path, Path, Path]:
    """Write data/test/mixed.wav and its references s1/s2, MIXTURE_SECONDS long.

    The sources are scaled as wsj0-2mix does (equal levels, the loudest
    sample of the mixture or a source at ``mixing.MIX_PEAK``), then the
    references are quantised to 16 bits, so the mixture equals their sum up
    to its own rounding.
    """
    length, gap = int(MIXTURE_SECONDS * sample_rate), int(MIXTURE_GAP_SECONDS * sample_rate)
    sources = np.stack([_mixture_source(first, length, gap), _mixture_source(second, length, gap)])
    scaled = mixing.wsj0_scale(sources, [0.0, 0.0]).astype(np.float64)
    scaled = np.round(scaled * PCM_16_SCALE) / PCM_16_SCALE
    folder = directory / "data" / "test"
    mixed = audio.write(folder / "mixed.wav", scaled.sum(axis=0), sample_rate, overwrite=True)
    s1 = audio.write(folder / "s1.wav", scaled[0], sample_rate, overwrite=True)
    s2 = audio.write(folder / "s2.wav", scaled[1], sample_rate, overwrite=True)
    return mixed, s1, s2


def mixture_list_path(directory: str | Path, num_speakers: int) -> Path:
    return Path(directory) / f"test_mix_{num_speakers}spk.txt"


def draw_test_mixtures(by_speaker: dict[str, list], num_speakers: int, count: int,
                       rng: np.random.Generator) -> list[tuple[list, list[float]]]:
    """``count`` test mixtures of ``num_speakers`` distinct speakers of ``by_speaker`` (name -> paths),
    one random file each, gains uniform in [0, TEST_MIXTURE_GAIN_DB] dB, the first up and the others
    down: ``(paths, gains_db)`` for :func:`deepclust.corpus.lists.write_mixture_list`."""
    speakers = sorted(by_speaker)
    mixtures = []
    for _ in range(count):
        chosen = rng.choice(len(speakers), size=num_speakers, replace=False)
        gain = round(float(rng.uniform(0, TEST_MIXTURE_GAIN_DB)), 4)
        gains = [gain] + [-gain] * (num_speakers - 1)
        paths = [by_speaker[speakers[c]][int(rng.integers(len(by_speaker[speakers[c]])))] for c in chosen]
        mixtures.append((paths, gains))
    return mixtures


def draw_mixture_list(directory: str | Path, num_speakers: int, count: int = TEST_MIXTURES, seed: int = 0,
                      split: str = "test", path: str | Path | None = None) -> Path:
    """A wsj0-2mix-style list of ``count`` mixtures of ``num_speakers`` distinct speakers of ``split``, drawn
    (:func:`draw_test_mixtures`) and written (:func:`deepclust.corpus.lists.write_mixture_list`).

    Paths are as in the split's list (relative to ``directory``), so
    ``deepclust evaluate DIR/test_mix_2spk.txt`` scores held-out voices only.
    ``path`` (default ``DIR/test_mix_<k>spk.txt``) must lie in ``directory``.
    """
    directory = Path(directory)
    path = Path(path) if path is not None else mixture_list_path(directory, num_speakers)
    if num_speakers < 2 or count < 1:
        raise CorpusError(f"a mixture list needs at least 2 speakers per mixture and 1 mixture. "
                          f"Received: num_speakers={num_speakers}, count={count}")
    if path.absolute().parent != directory.absolute():
        raise CorpusError(f"{path}: a mixture list must lie in the corpus folder {directory}, since its paths are "
                          f"relative to its own folder. Received: path={str(path)!r}")
    by_speaker: dict[str, list[Path]] = {}
    for entry in lists.parse_list(directory / split):
        by_speaker.setdefault(entry.speaker, []).append(entry.path.relative_to(directory))
    speakers = sorted(by_speaker)
    if len(speakers) < num_speakers:
        raise CorpusError(f"{directory / split}: {len(speakers)} speakers cannot make {num_speakers}-speaker "
                          f"mixtures. Received: num_speakers={num_speakers}")
    mixtures = draw_test_mixtures(by_speaker, num_speakers, count, np.random.default_rng([seed, 5, num_speakers]))
    header = f"deepclust demo corpus, {count} {num_speakers}-speaker mixtures of the {split} split, seed {seed}"
    return lists.write_mixture_list(path, mixtures, header)


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
    voices: dict[str, AnyVoice] = field(default_factory=dict)
    elapsed: float = 0.0

    def describe(self) -> str:
        rows = [f"{split:5s}: {self.speakers[split]:3d} speakers, {self.utterances[split]:4d} utterances, "
                f"{self.seconds[split] / 60:6.1f} min -> {self.lists[split]}" for split in SPLITS]
        for kind, description in _DESCRIBE.items():
            if count := sum(isinstance(v, kind) for v in self.voices.values()):
                rows.append(f"{description}: {count} of the training and validation speakers")
        return "\n".join([f"demo corpus in {self.directory} ({self.sample_rate} Hz, {self.elapsed:.1f} s)", *rows,
                          f"mixture: {self.mixture} (references {self.references[0].name}, {self.references[1].name})",
                          "held-out test mixtures: " + ", ".join(
                              str(p) for k in (2, 3) if (p := mixture_list_path(self.directory, k)).is_file())])


@dataclass
class _Spoken:
    """The utterances ``_speak_all`` wrote: list entries and seconds per split, test speakers' audio."""

    entries: dict[str, list[tuple[Path, str]]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    seconds: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in SPLITS})
    test_audio: dict[int, list[np.ndarray]] = field(default_factory=dict)


def _checked_sizes(speakers: int, utterances: int, valid_fraction: float, test_fraction: float) -> dict[str, int]:
    """Speakers per split, each split at least two (a mixture needs two distinct voices; ``train`` refuses a
    list with fewer): a count that leaves any split fewer is refused, naming the smallest that works."""
    if utterances < 1:
        raise CorpusError(f"utterances is per speaker and must be at least 1. Received: utterances={utterances}")
    sizes = split_sizes(speakers, valid_fraction, test_fraction, min_test=MIN_SPLIT_SPEAKERS,
                         min_valid=MIN_SPLIT_SPEAKERS)
    if min(sizes.values()) < MIN_SPLIT_SPEAKERS:
        least = next(n for n in range(speakers, 10 * speakers + 20)
                     if min(split_sizes(n, valid_fraction, test_fraction, MIN_SPLIT_SPEAKERS,
                                         MIN_SPLIT_SPEAKERS).values()) >= MIN_SPLIT_SPEAKERS)
        raise CorpusError(f"speakers: {speakers} leaves {sizes['train']} for train, {sizes['valid']} for valid and "
                          f"{sizes['test']} for test, and each split needs at least {MIN_SPLIT_SPEAKERS} (mixtures are of "
                          f"distinct voices); use --speakers {least} or more. Received: speakers={speakers}")
    return sizes


def _check_shares(shares: dict[str, float]) -> None:
    """Each of ``shares`` (kind of EXTRA_VOICES -> share) in [0, 1], and all of them together at most 1."""
    for kind, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise CorpusError(f"{kind}_share is a share of the training and validation speakers, from 0 to 1. "
                              f"Received: {kind}_share={share}")
    if sum(shares.values()) > 1.0:
        given = {f"{kind}_share": share for kind, share in shares.items() if share}
        raise CorpusError(f"{' and '.join(given)} together are a share of the training and validation speakers, "
                          f"at most 1. Received: " + ", ".join(f"{name}={share}" for name, share in given.items()))


def _assign_splits(sizes: dict[str, int], seed: int) -> dict[int, str]:
    """Speaker number -> split, the numbers shuffled over the splits (a name says nothing of its split)."""
    order = np.random.default_rng([seed, 2]).permutation(sum(sizes.values()))
    return {int(k): split for split, numbers in deal(order, sizes).items() for k in numbers}


def _voice_groups(split_of: dict[int, str], seed: int, shares: dict[str, float]) -> dict[int, str]:
    """Speaker number -> kind of voice: "test" for test speakers; of the others, for each kind of
    EXTRA_VOICES in turn its share of them (``shares``, kind -> share), the next ones of one seeded
    order, and the rest "train" (espeak-ng)."""
    group_of = {k: "test" if split == "test" else "train" for k, split in split_of.items()}
    others = np.random.default_rng([seed, 5]).permutation([k for k, g in sorted(group_of.items()) if g == "train"])
    start = 0
    for kind in EXTRA_VOICES:
        count = min(int(round(shares.get(kind, 0.0) * len(others))), len(others) - start)
        for k in others[start:start + count]:
            group_of[int(k)] = kind
        start += count
    return group_of


def _draw_voices(split_of: dict[int, str], seed: int, shares: dict[str, float]) -> list[AnyVoice]:
    """One voice per speaker number: held-out kind for test speakers, training or an EXTRA_VOICES kind
    (``shares``, as ``_voice_groups`` gives them) for the others.

    Names are ``spk<k>`` (espeak-ng), ``neu<k>`` (Kokoro), ``fli<k>`` (Flite) or ``fes<k>`` (Festival)
    plus the gender.
    """
    group_of = _voice_groups(split_of, seed, shares)
    count = Counter(group_of.values())
    drawn = {"train": iter(make_voices(count["train"], seed, "train")),
             "test": iter(make_voices(count["test"], seed, "test")),
             # a kind no speaker has is not drawn at all, so it needs no synthesiser (Kokoro's weights)
             **{kind: iter(_MAKE[kind](count[kind], seed) if count[kind] else []) for kind in EXTRA_VOICES}}
    voices = []
    for k in range(len(split_of)):
        spec = next(drawn[group_of[k]])
        voices.append(replace(spec, name=f"{spec.name[:3]}{k:03d}{spec.name[-1]}"))
    return voices


def _speak_all(directory: Path, voices: list[AnyVoice], split_of: dict[int, str],
               utterances: int, seed: int, sample_rate: int, progress: bool) -> _Spoken:
    """Write ``data/<split>/<speaker>/<n>.wav`` for every voice; test voices speak the held-out sentences."""
    sentences = split_sentences(load_sentences(), seed)
    spoken = _Spoken()
    bar = Progress(len(voices) * utterances, "synthesising", unit="utterance", enabled=progress)
    for k, voice in enumerate(voices):
        split = split_of[k]
        rng = np.random.default_rng([seed, 3, k])
        for n in range(utterances):
            text = _utterance_text(sentences["test" if split == "test" else "train"], rng)
            signal = synthesize(text, voice.jittered(rng), sample_rate)
            relative = Path("data", split, voice.name, f"{n}.wav")
            audio.write(directory / relative, signal, sample_rate, overwrite=True)
            spoken.entries[split].append((relative, voice.name))
            spoken.seconds[split] += len(signal) / sample_rate
            if split == "test":
                spoken.test_audio.setdefault(k, []).append(signal)
            bar.step()
    return spoken


def _demo_pair(voices: list[AnyVoice], split_of: dict[int, str]) -> tuple[int, int]:
    """Two test speakers for the demo mixture, of different genders where there are both."""
    test_speakers = sorted(k for k, split in split_of.items() if split == "test")
    first = test_speakers[0]
    gender = voices[first].name[-1]
    return first, next((k for k in test_speakers[1:] if voices[k].name[-1] != gender), test_speakers[1])


def _write_lists(directory: Path, spoken: _Spoken, seed: int) -> dict[str, Path]:
    """The split lists, then the held-out test mixture lists (for as many speaker counts as test speakers allow)."""
    paths = {split: lists.write_list(directory / split, spoken.entries[split],
                                     f"deepclust demo corpus, {split} split, seed {seed}") for split in SPLITS}
    test_speakers = len({speaker for _, speaker in spoken.entries["test"]})
    for k in (2, 3):
        if test_speakers >= k:
            draw_mixture_list(directory, k, seed=seed)
    return paths


def make_corpus(directory: str | Path, speakers: int = 200, utterances: int = 6, seed: int = 0,
                sample_rate: int = 8000, valid_fraction: float = 0.15, test_fraction: float = 0.15,
                progress: bool = True, overwrite: bool = False, neural_share: float = 0.0,
                flite_share: float = 0.0, festival_share: float = 0.0) -> CorpusSummary:
    """Synthesise a speaker-disjoint demo corpus with espeak-ng into ``directory``.

    Writes ``data/<split>/<speaker>/<n>.wav`` (16-bit PCM), the lists
    ``train``, ``valid``, ``test`` (``path speakerID``, paths relative to
    ``directory``) and a demo mixture ``data/test/mixed.wav`` of two test
    speakers with its references ``s1.wav``/``s2.wav``, and held-out test
    mixture lists ``test_mix_2spk.txt``/``test_mix_3spk.txt`` (wsj0-2mix
    format, test speakers only). Test voices are unlike the training ones
    (accents, pitch bands, intonation ranges and rates no training voice has,
    see ``make_voices``) and speak sentences no training voice speaks
    (``split_sentences``). ``neural_share`` of the training and validation
    speakers get neural voices (``make_neural_voices``, Kokoro-82M) instead
    of espeak-ng's, ``flite_share`` Flite's voices of real people
    (``make_flite_voices``) and ``festival_share`` Festival's
    (``make_festival_voices``); test speakers stay espeak-ng voices, so the
    held-out figure means the same whatever the shares. The same seed gives the same
    bytes. Lists are written last, so an interrupted run leaves none and can
    be rerun; existing lists are refused unless ``overwrite`` (old audio
    stays).
    """
    directory = Path(directory)
    sizes = _checked_sizes(speakers, utterances, valid_fraction, test_fraction)
    refuse_existing_lists(directory, overwrite)
    shares = {"neural": neural_share, "flite": flite_share, "festival": festival_share}
    _check_shares(shares)
    espeak.require()  # fail before any work if espeak-ng (or another synthesiser asked for) is missing
    for kind, share in shares.items():
        if share > 0:
            _REQUIRE[kind]()
    started = time.monotonic()
    split_of = _assign_splits(sizes, seed)
    voices = _draw_voices(split_of, seed, shares)
    spoken = _speak_all(directory, voices, split_of, utterances, seed, sample_rate, progress)
    first, second = _demo_pair(voices, split_of)
    mixture, s1, s2 = _demo_mixture(directory, spoken.test_audio[first], spoken.test_audio[second], sample_rate)
    paths = _write_lists(directory, spoken, seed)
    return CorpusSummary(
        directory=directory, sample_rate=sample_rate, speakers=dict(sizes),
        utterances={s: len(spoken.entries[s]) for s in SPLITS}, seconds=spoken.seconds, lists=paths,
        mixture=mixture, references=(s1, s2), voices={v.name: v for v in voices}, elapsed=time.monotonic() - started)
