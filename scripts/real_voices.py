"""Real-voice test sets, and one table of a model's scores on them with the ideal binary mask beside.

    python scripts/real_voices.py make --out DIR [--mixtures 60]
    python scripts/real_voices.py score --out DIR --base RUN [--corpus DEMO_DIR] [--jobs 2]

``make`` writes wsj0-2mix mixture lists (gains uniform in [0, 2.5] dB, the
first source up, the others down; cut to the shortest) of 2 and 3 speakers of
- FSDD (``../shared/data/fsdd``, 6 men): each "utterance" 5 random digits of one
  speaker joined by 0.1-0.3 s pauses (a check, never training data);
- speechocean762 ``test/`` (125 speakers no training list holds);
- librispeech-excerpts ``test/`` (40 adult readers, one sentence each);
- speech-commands ``test/`` (40 speakers): each speaker's one-second words trimmed and strung
  4-7 to an utterance (``deepclust.corpus.clipstrings``, as ``prepare --string-clips`` strings them for training);
- long recordings (``so762_test_long``): 40 s of each of those speakers, their
  utterances joined by short pauses, 20 mixtures each: long files are separated
  in segments clustered jointly, which these score.
``score`` runs ``deepclust evaluate`` on each list with the model and with
``--oracle ibm``, and prints SDRi and SI-SDRi with the model's share of the
IBM's SDRi; with ``--corpus`` the built-in corpus's held-out lists join in.
Each report is kept under ``DIR/reports`` and reused: the model's under its
folder's name and its file's place and time, the IBM's under its STFT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DIGITS_PER_UTTERANCE = 5
UTTERANCES_PER_SPEAKER = 30
LONG_SECONDS = 40.0  # several of separate.segment_seconds' segments: the long-file path (segments clustered jointly)
LONG_MIXTURES = 20


def fsdd_utterances(fsdd: Path, out: Path, rng: np.random.Generator) -> list[tuple[Path, str]]:
    """Digit strings of each FSDD speaker written to ``out`` as 8 kHz WAV files: (path, speaker)."""
    by_speaker: dict[str, list[Path]] = {}
    for path in sorted((fsdd / "recordings").glob("*.wav")):
        by_speaker.setdefault(path.stem.split("_")[1], []).append(path)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for speaker, files in sorted(by_speaker.items()):
        for u in range(UTTERANCES_PER_SPEAKER):
            pieces = []
            for f in rng.choice(len(files), DIGITS_PER_UTTERANCE, replace=False):
                signal, rate = sf.read(files[f], dtype="float32")
                pieces += [signal, np.zeros(int(rng.uniform(0.1, 0.3) * rate), np.float32)]
            path = out / f"{speaker}_{u:02d}.wav"
            sf.write(path, np.concatenate(pieces), rate)
            entries.append((path, speaker))
    return entries


def long_recordings(entries, out: Path, seconds: float, rng: np.random.Generator) -> list[tuple[Path, str]]:
    """One recording of ``seconds`` per speaker of ``entries`` (path, speaker): the speaker's utterances
    in random order joined by 0.2-1.0 s pauses, written to ``out``; speakers with too little speech are left out."""
    by_speaker: dict[str, list[Path]] = {}
    for p, s in entries:
        by_speaker.setdefault(s, []).append(Path(p))
    out.mkdir(parents=True, exist_ok=True)
    recordings = []
    for speaker, files in sorted(by_speaker.items()):
        pieces, length = [], 0
        for f in rng.permutation(len(files)):
            signal, rate = sf.read(files[f], dtype="float32")
            pieces += [signal, np.zeros(int(rng.uniform(0.2, 1.0) * rate), np.float32)]
            length += len(pieces[-2]) + len(pieces[-1])
            if length >= seconds * rate:
                path = out / f"{speaker}.wav"
                sf.write(path, np.concatenate(pieces)[: int(seconds * rate)], rate)
                recordings.append((path, speaker))
                break
    return recordings


def command_strings(data_dir: Path, out: Path, rng: np.random.Generator) -> list[tuple[Path, str]]:
    """Speech Commands words of each speaker of ``data_dir`` strung 4-7 to an utterance, written to ``out``."""
    from deepclust.corpus import clipstrings

    by_speaker: dict[str, list[Path]] = {}
    for path, speaker in kaldi_utterances(data_dir):
        by_speaker.setdefault(speaker, []).append(path)
    written, skipped = clipstrings.string_clips(by_speaker, out, clipstrings.ClipCount(4, 7), rng)
    if skipped:
        print(f"{data_dir}: {len(skipped)} clip(s) left out of the strings", file=sys.stderr)
    return written


def kaldi_utterances(data_dir: Path) -> list[tuple[Path, str]]:
    from deepclust.corpus import lists

    entries, problems = lists.read_kaldi_dir(data_dir)
    if problems:
        print(f"{data_dir}: {len(problems)} unusable line(s) skipped", file=sys.stderr)
    return [(e.path, e.speaker) for e in entries]


def write_mixtures(entries, path: Path, k: int, count: int, seed: int) -> Path:
    from deepclust.corpus import lists
    from deepclust.corpus.demo import draw_test_mixtures

    by_speaker: dict[str, list[Path]] = {}
    for p, s in entries:
        by_speaker.setdefault(s, []).append(Path(p).resolve())
    mixtures = draw_test_mixtures(by_speaker, k, count, np.random.default_rng([seed, k]))
    return lists.write_mixture_list(path, mixtures, f"{count} {k}-speaker mixtures of {len(by_speaker)} speakers, "
                                                    f"seed {seed}")


def make(args) -> None:
    from deepclust.corpus import lists

    out = Path(args.out)
    sets = {"fsdd": fsdd_utterances(DATA / "fsdd", out / "fsdd", np.random.default_rng(args.seed)),
            "so762_test": kaldi_utterances(DATA / "speechocean762" / "test"),
            "libri_test": kaldi_utterances(DATA / "librispeech-excerpts" / "test"),
            "commands_test": command_strings(DATA / "speech-commands" / "test", out / "commands",
                                             np.random.default_rng(args.seed))}
    # The digit strings as a speaker list too: count_accuracy.py's single voices (--speakers DIR/fsdd/list).
    print(lists.write_list(out / "fsdd" / "list", sets["fsdd"], "FSDD digit strings, one speaker each"))
    for name, entries in sets.items():
        for k in (2, 3):
            print(write_mixtures(entries, out / f"{name}_{k}spk.txt", k, args.mixtures, args.seed))
    long = long_recordings(sets["so762_test"], out / "so762_long", LONG_SECONDS, np.random.default_rng(args.seed))
    for k in (2, 3):
        print(write_mixtures(long, out / f"so762_test_long_{k}spk.txt", k, LONG_MIXTURES, args.seed))


def lists_to_score(args) -> dict[str, Path]:
    out = Path(args.out)
    found = {p.stem: p for p in sorted(out.glob("*_[23]spk.txt"))}
    if args.corpus:
        found.update({f"espeak_test_{k}spk": Path(args.corpus) / f"test_mix_{k}spk.txt" for k in (2, 3)})
    return found


def evaluate(listing: Path, k: int, report: Path, args, oracle: bool) -> dict:
    if not (report / "summary.json").is_file():
        command = [sys.executable, "-m", "deepclust", "evaluate", str(listing), "--base", args.base,
                   "--num-speakers", str(k), "--out", str(report), "--jobs", str(args.jobs)]
        subprocess.run(command + (["--oracle", "ibm"] if oracle else []), check=True, stdout=subprocess.DEVNULL)
    return json.loads((report / "summary.json").read_text())["overall"]


def ibm_tag(base: str) -> str:
    """The IBM's report name for the STFT the model at ``base`` uses: an IBM is only comparable with its own STFT."""
    from deepclust.config import read_config_file
    from deepclust.paths import locate, saved_config

    saved = saved_config(locate(base))
    if not saved.is_file():
        return "ibm"
    cfg = read_config_file(saved)
    default = (8000, 256, 64)  # reports of this STFT were made before the name carried it: they keep "ibm"
    stft = (cfg.audio.sample_rate, cfg.features.window_length, cfg.features.hop_length)
    return "ibm" if stft == default else "ibm_{}hz_w{}_h{}".format(*stft)


def model_tag(base: str) -> str:
    """The model's report name: its folder's name and a hash of its file's place and time, so that a
    retrained model or another run of the same folder name is scored afresh, never read from a cache."""
    from deepclust.paths import locate

    path = locate(base).resolve()
    stamp = f"{path}:{path.stat().st_mtime_ns}"
    return f"{Path(base).resolve().name}-{hashlib.sha1(stamp.encode()).hexdigest()[:8]}"


def score(args) -> None:
    rows = []
    tag, oracle_tag = model_tag(args.base), ibm_tag(args.base)
    for name, listing in lists_to_score(args).items():
        k = int(name[-4])
        model = evaluate(listing, k, Path(args.out) / "reports" / f"{name}_{tag}", args, oracle=False)
        ibm = evaluate(listing, k, Path(args.out) / "reports" / f"{name}_{oracle_tag}", args, oracle=True)
        rows.append((name[:-5], k, model["sdri"]["count"], model["sdri"]["mean"], model["si_sdri"]["mean"],
                     ibm["sdri"]["mean"], ibm["si_sdri"]["mean"]))
    print(f"model: {args.base}")
    print("| test set | speakers | mixtures | SDRi | SI-SDRi | IBM SDRi | IBM SI-SDRi | share of the IBM (SDRi) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, k, n, sdri, si, ibm_sdri, ibm_si in rows:
        print(f"| {name} | {k} | {n} | {sdri:.2f} | {si:.2f} | {ibm_sdri:.2f} | {ibm_si:.2f} | {sdri / ibm_sdri:.2f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make", help="write the mixture lists")
    p.add_argument("--out", required=True)
    p.add_argument("--mixtures", type=int, default=60, help="mixtures per set and speaker count")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("score", help="score a model and the IBM on every list in --out")
    p.add_argument("--out", required=True)
    p.add_argument("--base", required=True, help="training folder (or the shipped model's folder)")
    p.add_argument("--corpus", help="the built-in corpus's folder: its held-out test lists too")
    p.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    make(args) if args.command == "make" else score(args)


if __name__ == "__main__":
    main()
