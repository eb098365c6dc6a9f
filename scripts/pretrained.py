"""Build the pretrained model deepclust ships (deepclust/pretrained_model/), from a fresh clone and the public corpora.

    python scripts/pretrained.py build --work DIR [--time-limits 60m 120m 180m] [--backend jax] [--gpu]
    python scripts/pretrained.py export RUN      # a finished run folder -> deepclust/pretrained_model/

``build`` runs the recipe step by step, each a command a user could type:
1. ``deepclust make-corpus DIR/espeak --speakers 600 --neural-share 0.2`` (synthetic voices, 420 of them for
   training, one in five a Kokoro-82M blend: the ``neural`` extra);
2. ``deepclust prepare CORPUS/train --base DIR/NAME --test-fraction 0`` for each real corpus of :data:`REAL`
   (speechocean762, LibriSpeech excerpts, Speech Commands words strung 4-7 to an utterance with
   ``--string-clips``, Picovoice; about 680 real voices, a tenth of each corpus's held out for validation;
   no ``test/`` speaker is ever listed);
3. every corpus's train list joined into DIR/run, speaker IDs prefixed by corpus (the names of
   ``data.corpus_weights``), the valid lists of :data:`VALID_FROM` (held-out real voices pick the model),
   and DIR/run/noise listing Speech Commands' background-noise recordings (``augment.noise_list``);
   ``scripts/held_out.py`` then stops the build if any list holds a speaker or recording of
   :data:`HELD_OUT` (the corpora's ``test/`` directories and FSDD);
4. ``deepclust train --base DIR/run --config configs/pretrained.toml --time-limit T`` for each T of
   ``--time-limits`` in turn (augmentation; the run resumes, its cosine schedule restarting from where the
   longer budget puts it: 60 minutes, then a second and a third hour, as the shipped model was trained);
5. :func:`deepclust.nn.pretrained.export` into deepclust/pretrained_model/ (network only, with its config);
6. ``scripts/real_voices.py`` make and score: the figures of the model card and RESULTS.md.
A step whose output is there is not run again, so a killed build resumes where it stopped.

``--gpu`` trains the GPU recipe instead: the same config with :data:`GPU_RECIPE` on top (a larger network,
larger batches), what the GPU sessions of RESULTS.md prepared; pass it with
``--backend torch`` or ``jax`` and ``--time-limits`` that fit the GPU's time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
# The real training corpora: name (data.corpus_weights's) -> (its train/ Kaldi directory, prepare's extra arguments).
REAL = {
    "so762": (DATA / "speechocean762" / "train", []),
    "libri": (DATA / "librispeech-excerpts" / "train", []),
    "commands": (DATA / "speech-commands" / "train", ["--string-clips", "4-7"]),  # one-second words
    "pico": (DATA / "picovoice" / "train", []),  # no speaker IDs: one pseudo-speaker per file, never validation
}
# Never in a training or validation list: the test speakers of the real corpora, and FSDD (a check only).
HELD_OUT = (DATA / "speechocean762" / "test", DATA / "librispeech-excerpts" / "test", DATA / "speech-commands" / "test",
            DATA / "fsdd")
NOISE = DATA / "speech-commands" / "noise"  # real background noise, the [augment] noise_list of the recipe
ESPEAK_SPEAKERS = 600
NEURAL_SHARE = 0.2  # neural voices among the synthetic ones help unheard adult voices (RESULTS.md, "Neural voices")
# A second and a third hour each helped every test set (RESULTS.md, "... and a second hour", "A third hour").
TIME_LIMITS = ("60m", "120m", "180m")
# The model is chosen by its loss on real speakers alone: with espeak-ng voices in the validation list
# too, validation kept a later model that separated real voices worse (RESULTS.md, "Real voices").
VALID_FROM = ("so762", "libri", "commands")
# A GPU's step takes about as long for a larger network and batch as for the CPU recipe's, so its recipe
# spends the step on both; the larger network wants the lower peak rate at large batches (RESULTS.md, "A
# larger network at equal frames", "Batch size at equal frames").
GPU_RECIPE = {
    "model.lstm_layers": 4, "model.lstm_units": 300,
    "train.batch_size": 64, "train.learning_rate": 0.001, "train.steps_per_epoch": 100,
}


def deepclust(*args: str, env: dict | None = None) -> None:
    print("+ deepclust " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "deepclust", *args], check=True, env=env)


def join_lists(parts: dict[str, Path], run: Path, valid_from: tuple[str, ...]) -> None:
    """``run/train``: each corpus's list, its speaker IDs prefixed by the corpus's name (what
    ``data.corpus_weights`` goes by); ``run/valid``: the same of the corpora in ``valid_from``."""
    from deepclust.corpus import lists

    run.mkdir(parents=True, exist_ok=True)
    for split, names in (("train", tuple(parts)), ("valid", valid_from)):
        entries = [(e.path.resolve(), f"{name}-{e.speaker}") for name in names
                   for e in lists.parse_list(parts[name] / split)]
        lists.write_list(run / split, entries, f"{split}: " + " + ".join(f"{n} ({parts[n] / split})" for n in names))


def held_out_check(run: Path, held_out=HELD_OUT) -> list[str]:
    """The command (scripts/held_out.py) that stops the recipe if a held-out speaker or recording of
    ``held_out`` (those present) is in ``run``'s lists; empty where none of them is present."""
    present = [str(path) for path in held_out if path.is_dir()]
    if not present:
        return []
    return [sys.executable, str(ROOT / "scripts" / "held_out.py"), "--lists", str(run / "train"), str(run / "valid"),
            "--held-out", *present]


def write_noise_list(path: Path) -> Path:
    """``path``: :data:`NOISE`'s recordings as a list (``augment.noise_list = "noise"`` finds it in the run folder)."""
    from deepclust.corpus import lists

    entries, problems = lists.read_kaldi_dir(NOISE)
    if problems:
        print(f"{NOISE}: {len(problems)} unusable line(s) skipped", file=sys.stderr)
    return lists.write_list(path, [(e.path.resolve(), "noise") for e in entries], f"background noise of {NOISE}")


def train_args(run: Path, limit: str, gpu: bool, init: str | None = None, sets: tuple[str, ...] = ()) -> list[str]:
    """``deepclust train``'s arguments for one budget of the recipe (the GPU recipe's overrides with ``gpu``;
    ``init``: the model the run starts from, ``sets``: further ``KEY=VALUE`` overrides)."""
    overrides = [f"{key}={value}" for key, value in GPU_RECIPE.items()] if gpu else []
    return ["train", "--base", str(run), "--config", str(ROOT / "configs" / "pretrained.toml"), "--quiet",
            "--time-limit", limit, *(["--init", init] if init else []),
            *[arg for item in [*overrides, *sets] for arg in ("--set", item)]]


def build(args) -> None:
    work = Path(args.work)
    env = dict(os.environ, **({"KERAS_BACKEND": args.backend} if args.backend else {}))
    if not (work / "espeak" / "train").is_file():
        deepclust("make-corpus", str(work / "espeak"), "--speakers", str(ESPEAK_SPEAKERS), "--seed", "0",
                  "--neural-share", str(NEURAL_SHARE))
    for name, (source, extra) in REAL.items():
        if not (work / name / "train").is_file():
            deepclust("prepare", str(source), "--base", str(work / name), "--test-fraction", "0", *extra)
    run = work / "run"
    if not (run / "train").is_file():
        join_lists({"espeak": work / "espeak", **{name: work / name for name in REAL}}, run, valid_from=VALID_FROM)
        write_noise_list(run / "noise")
    if held_out_check(run):
        subprocess.run(held_out_check(run), check=True)
    for limit in args.time_limits:  # each a resume of the same run with a longer budget
        deepclust(*train_args(run, limit, args.gpu, args.init, tuple(args.set)), env=env)
    export(argparse.Namespace(run=str(run)))
    real = [sys.executable, str(ROOT / "scripts" / "real_voices.py")]
    subprocess.run(real + ["make", "--out", str(work / "real")], check=True)
    subprocess.run(real + ["score", "--out", str(work / "real"), "--base", str(run), "--corpus",
                           str(work / "espeak")], check=True)


def export(args) -> None:
    from deepclust import paths
    from deepclust.nn import pretrained

    path = pretrained.export(args.run)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB (no optimizer state); update "
          f"{path.parent / paths.CARD_FILENAME} with the run's figures")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="the whole recipe")
    p.add_argument("--work", required=True, help="folder for the corpora, the run and the test sets")
    p.add_argument("--time-limits", nargs="+", default=list(TIME_LIMITS),
                   help="training budgets the run is trained to in turn (default: %(default)s)")
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras backend (a GPU's: jax or torch)")
    p.add_argument("--init", help="start the run from this model (pretrained, a run folder or a .keras file): "
                   "a fine-tune of the network it has")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for training")
    p.add_argument("--gpu", action="store_true", help="the GPU recipe: configs/pretrained.toml with GPU_RECIPE's "
                   "larger network and batches")
    p = sub.add_parser("export", help="a run folder's model into deepclust/pretrained_model/")
    p.add_argument("run")
    args = parser.parse_args(argv)
    build(args) if args.command == "build" else export(args)


if __name__ == "__main__":
    main()
