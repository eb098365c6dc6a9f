"""Command line: argparse subcommands, each a thin call into the modules.

Flag names match the keyword arguments of the functions they call. Errors
the user can fix (bad config, bad list, missing model) are printed as one
clear message with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger("deepclust")

EXIT_USER_ERROR = 2


def _overrides(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    """Flags given on the command line -> dotted config overrides (plus any --set KEY=VALUE)."""
    from .config import parse_override

    out: dict[str, Any] = {}
    for pair in getattr(args, "set", None) or []:
        key, value = parse_override(pair)
        out[key] = value
    for flag, dotted in mapping.items():
        value = getattr(args, flag, None)
        if value is not None and value is not False:
            out[dotted] = value
    return out


def num_speakers_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto'. Received: {text!r}")
    return value


# -- train -------------------------------------------------------------------------
TRAIN_FLAGS = {
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "steps_per_epoch": "train.steps_per_epoch",
    "learning_rate": "train.learning_rate",
    "time_limit": "train.time_limit",
    "mixed_precision": "train.mixed_precision",
    "jit": "train.jit",
    "workers": "data.workers",
    "seed": "train.seed",
}


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a deep clustering model on DIR/train and DIR/valid",
        description="Train on the 'path speakerID' lists DIR/train and DIR/valid. Writes DIR/model.keras (best by "
                    "validation loss), DIR/config.toml, DIR/history.csv and DIR/checkpoints/; running the same "
                    "command again resumes an interrupted run.",
    )
    p.add_argument("--base", required=True, help="folder holding the train and valid lists; outputs are written here")
    p.add_argument("--config", help="a TOML config file, or a shipped config name (seed, default, demo, tiny); "
                                    "default: the config saved in DIR by an earlier run, else 'default'")
    p.add_argument("--epochs", type=int, help="number of epochs (train.epochs)")
    p.add_argument("--batch-size", type=int, help="chunks per batch (train.batch_size)")
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (train.steps_per_epoch)")
    p.add_argument("--learning-rate", type=float, help="initial learning rate (train.learning_rate)")
    p.add_argument("--time-limit", help="stop cleanly after this much training time, e.g. 15m or 1h "
                                        "(train.time_limit); counted across resumes")
    p.add_argument("--mixed-precision", action="store_true", default=None,
                   help="float16 compute, float32 loss (train.mixed_precision)")
    p.add_argument("--jit", action="store_true", default=None, help="compile the training step with XLA (train.jit)")
    p.add_argument("--workers", type=int, help="threads preparing batches (data.workers)")
    p.add_argument("--seed", type=int, help="random seed (train.seed)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set model.lstm_units=200 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (one line per epoch)")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .train import train

    result = train(args.base, args.config, _overrides(args, TRAIN_FLAGS), verbose=2 if args.quiet else "auto")
    print(f"model: {result.model_path} ({result.stopped}, {result.epochs_done} epochs, "
          f"best val_loss {result.best_val_loss:.4f}, {result.frames_per_second:.0f} frames/s)")
    return 0 if result.stopped != "nan" else 1


# -- separate ----------------------------------------------------------------------
def _add_separate(sub) -> None:
    p = sub.add_parser(
        "separate", help="separate mixtures into out_1.wav ... out_k.wav",
        description="Separate each mixture with a trained model. One input without --out-dir: out_N.wav beside it. "
                    "Several inputs or --out-dir D: D/<stem>/out_N.wav (D defaults to each input's folder). "
                    "Existing outputs are never replaced without --force.",
    )
    p.add_argument("inputs", nargs="+", metavar="MIXTURE", help="audio files (any format libsndfile reads)")
    p.add_argument("--base", help="training folder holding model.keras (default: $DEEPC_BASE)")
    p.add_argument("--model", help="a model file (overrides --base)")
    p.add_argument("--num-speakers", type=num_speakers_arg,
                   help="number of speakers k, or 'auto' to estimate it from the embeddings "
                        "(default: the model's config)")
    p.add_argument("--mask", choices=("binary", "soft"), help="binary (k-means) or soft (soft k-means) masks")
    p.add_argument("--out-dir", help="write D/<stem>/out_N.wav instead of beside the input")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=_run_separate)


def _run_separate(args: argparse.Namespace) -> int:
    from .separate import separate_files

    written, failed = separate_files(args.inputs, base=args.base, model=args.model, num_speakers=args.num_speakers,
                                     out_dir=args.out_dir, mask=args.mask, force=args.force)
    for src, outs in written.items():
        print(f"{src}: " + " ".join(str(o) for o in outs))
    for src, why in failed.items():
        print(f"{src}: FAILED: {why}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(args.inputs)} file(s) failed", file=sys.stderr)
    return 0 if not failed else 1


# -- main --------------------------------------------------------------------------
COMMANDS: list[Callable] = [_add_train, _add_separate]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepclust",
        description="Deep Clustering speech separation (Hershey et al. 2015): train on speaker lists, "
                    "separate mixtures of voices.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input, reported as a message rather than a traceback."""
    from .audio import AudioError
    from .config import ConfigError
    from .data import DataError, ListFormatError
    from .model import ModelError
    from .separate import SeparationError

    return (AudioError, ConfigError, DataError, ListFormatError, ModelError, SeparationError,
            FileExistsError, FileNotFoundError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except user_errors() as exc:
        print(f"deepclust {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
