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

# Quiet TensorFlow's C++ logging where it still listens (its start-up lines: backend.load).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger("deepclust")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C


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
    from .config import MAX_SPEAKERS

    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_SPEAKERS:
        raise argparse.ArgumentTypeError(f"expected a count from 1 to {MAX_SPEAKERS} or 'auto'. Received: {text!r}")
    return value


def _model_or_shipped(args: argparse.Namespace):
    """The model --model/--base/$DEEPC_BASE name, else the shipped one, said on the first line of output
    (``separate``, ``evaluate``, ``visualize`` and ``export`` alike): :func:`deepclust.paths.locate`."""
    from . import paths

    return paths.locate(args.model, args.base, fallback=lambda line: print(line, flush=True))


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", help="training folder holding model.keras (default: $DEEPC_BASE, else the shipped model)")
    p.add_argument("--model", help="a .keras file, a training folder or 'pretrained' (the shipped model); "
                                   "overrides --base")


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
    "init": "train.init",
}


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a deep clustering model on DIR/train and DIR/valid",
        description="Train on the 'path speakerID' lists DIR/train and DIR/valid. Writes DIR/model.keras (best by "
                    "validation loss), DIR/config.toml, DIR/history.csv and DIR/checkpoints/; running the same "
                    "command again resumes an interrupted run.",
    )
    p.add_argument("--base", required=True, help="folder holding the train and valid lists; outputs are written here")
    p.add_argument("--config", help="a TOML config file, or a shipped config name (seed, default, demo, pretrained, tiny); "
                                    "default: the config saved in DIR by an earlier run, else 'default'")
    p.add_argument("--epochs", type=int, help="number of epochs (train.epochs)")
    p.add_argument("--batch-size", type=int, help="chunks per batch (train.batch_size)")
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (train.steps_per_epoch)")
    p.add_argument("--learning-rate", type=float, help="initial learning rate (train.learning_rate)")
    p.add_argument("--time-limit", help="stop cleanly after this much training time, e.g. 15m or 1h "
                                        "(train.time_limit); counted across resumes")
    p.add_argument("--mixed-precision", action="store_true", default=None,
                   help="float16 compute, float32 loss (train.mixed_precision)")
    p.add_argument("--jit", action="store_true", default=None,
                   help="compile the training step on any backend (train.jit; default 'auto': on JAX, where it "
                        "was measured faster)")
    p.add_argument("--workers", type=int, help="worker processes drawing batches, 0 for none (data.workers)")
    p.add_argument("--seed", type=int, help="random seed (train.seed)")
    p.add_argument("--init", metavar="MODEL", help="start from these weights: 'pretrained' (the shipped model), "
                                                   "a training folder or a .keras file (train.init)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set model.lstm_units=200 (repeatable)")
    p.add_argument("--distribute", choices=("mirrored", "multiworker"),
                   help="train on all local GPUs (mirrored) or on the cluster in TF_CONFIG (multiworker); "
                        "TensorFlow backend only; --batch-size is then the global batch")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .training.train import train

    result = train(args.base, args.config, _overrides(args, TRAIN_FLAGS), verbose=2 if args.quiet else "auto",
                   distribute=args.distribute)
    print(f"model: {result.model_path} ({result.stopped}, {result.epochs_done} epochs, "
          f"best val_loss {result.best_val_loss:.4f}, {result.frames_per_second:.0f} frames/s)")
    # A job scheduler that sees a non-zero status can start the command again, which resumes.
    return {"nan": 1, "interrupted": EXIT_INTERRUPTED}.get(result.stopped, 0)


# -- separate ----------------------------------------------------------------------
def _add_separate(sub) -> None:
    p = sub.add_parser(
        "separate", help="separate mixtures into one file per speaker",
        description="Separate each mixture (a file, or every audio file in a folder) with a trained model, by "
                    "default the shipped one. Writes OUT/<stem>/spk1.wav ... (OUT: --out-dir, else the input's "
                    "folder), at the input's rate and length; inputs of one stem in one folder get their extension "
                    "in the name (mix_flac/, mix_ogg/). Inputs, names and the output folder are checked before the "
                    "model loads; existing outputs are never replaced without --force.",
    )
    p.add_argument("inputs", nargs="+", metavar="MIXTURE", help="audio files (any format libsndfile reads) or folders")
    _add_model_args(p)
    p.add_argument("--num-speakers", type=num_speakers_arg,
                   help="number of speakers k (1-8), or 'auto' to count them from the embeddings "
                        "(default: the model's config)")
    p.add_argument("--mask", choices=("binary", "soft", "network"),
                   help="binary (k-means) or soft (soft k-means) masks, or network: a mask head's own (Chimera++)")
    p.add_argument("--out-dir", help="folder for the outputs (default: each input's own folder)")
    p.add_argument("--filename", metavar="TEMPLATE",
                   help="output names under the output folder, with {speaker} and optionally {stem} and {ext} of "
                        "the input's name (default: '{stem}/spk{speaker}.wav')")
    p.add_argument("--seed-names", action="store_true",
                   help="the 2017 project's names: out_N.wav beside one input, <stem>/out_N.wav for several")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=_run_separate)


def _run_separate(args: argparse.Namespace) -> int:
    from .separation.files import separate_files

    model = _model_or_shipped(args)
    written, failed = separate_files(args.inputs, model, num_speakers=args.num_speakers, out_dir=args.out_dir,
                                     filename=args.filename, seed_names=args.seed_names, mask=args.mask,
                                     force=args.force, report=print,
                                     fail=lambda line: print(f"deepclust separate: error: {line}", file=sys.stderr))
    if failed:
        print(f"{len(failed)} of {len(failed) + len(written)} input(s) failed", file=sys.stderr)
    return 0 if not failed else 1


# -- make-corpus / prepare ---------------------------------------------------------
def _add_make_corpus(sub) -> None:
    p = sub.add_parser(
        "make-corpus", help="synthesise the built-in multi-speaker demo corpus (espeak-ng)",
        description="Synthesise a multi-speaker English corpus with espeak-ng (pip install 'deepclust[demo]'): "
                    "DIR/data/<split>/<speaker>/*.wav, the speaker-disjoint lists DIR/train, DIR/valid, DIR/test, "
                    "and DIR/data/test/mixed.wav with its references s1.wav, s2.wav.",
    )
    p.add_argument("directory", metavar="DIR", help="folder to write the corpus into")
    # Many voices with few utterances each generalise better than few voices with many
    # (see RESULTS.md, "What the levers gave").
    p.add_argument("--speakers", type=int, default=200, help="number of distinct voices (default 200)")
    p.add_argument("--utterances", type=int, default=6, help="utterances per speaker (default 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same corpus")
    p.add_argument("--sample-rate", type=int, default=8000, help="sample rate in Hz (default 8000)")
    p.add_argument("--neural-share", type=float, default=0.0, metavar="FRACTION",
                   help="share of training and validation speakers given neural voices, blends of Kokoro-82M's "
                        "(pip install 'deepclust[neural]'); test speakers stay espeak-ng voices (default 0)")
    p.add_argument("--flite-share", type=float, default=0.0, metavar="FRACTION",
                   help="share of training and validation speakers given Flite's voices of real people "
                        "(apt install flite); test speakers stay espeak-ng voices (default 0)")
    p.add_argument("--festival-share", type=float, default=0.0, metavar="FRACTION",
                   help="share of training and validation speakers given Festival's voices of real people "
                        "(apt install festival and its voices: scripts/setup.sh); test speakers stay espeak-ng "
                        "voices (default 0)")
    p.add_argument("--force", action="store_true", help="replace existing lists in DIR")
    p.set_defaults(func=_run_make_corpus)


def _run_make_corpus(args: argparse.Namespace) -> int:
    from .corpus.demo import make_corpus

    summary = make_corpus(args.directory, speakers=args.speakers, utterances=args.utterances, seed=args.seed,
                          sample_rate=args.sample_rate, overwrite=args.force, neural_share=args.neural_share,
                          flite_share=args.flite_share, festival_share=args.festival_share)
    print(summary.describe())
    return 0


def _add_prepare(sub) -> None:
    p = sub.add_parser(
        "prepare", help="write train/valid/test lists for your own corpus",
        description="Scan AUDIO_DIR (LibriSpeech speaker/chapter/*.flac, VCTK wav48/pNNN/*.wav, WSJ0 si_tr_s/SPK/*.wav "
                    "or any tree with one folder per speaker), or read it as a Kaldi data directory (wav.scp and "
                    "utt2spk), and write speaker-disjoint lists DIR/train, DIR/valid, DIR/test (none with "
                    "--test-fraction 0) with absolute paths. Unreadable files are skipped with a warning.",
    )
    p.add_argument("audio_dir", metavar="AUDIO_DIR", help="root of the corpus, or a Kaldi data directory")
    p.add_argument("--base", required=True, help="folder to write the lists into")
    p.add_argument("--layout", default="auto", choices=("auto", "librispeech", "vctk", "wsj0"),
                   help="where the speaker ID sits in the tree (default: detected)")
    p.add_argument("--speaker-level", type=int, help="speaker = the N-th folder above each file (1 = its folder); "
                                                      "overrides --layout")
    p.add_argument("--valid-fraction", type=float, default=0.1, help="share of speakers for validation (default 0.1)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share of speakers for testing (default 0.1; 0: no test list)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the speaker split")
    p.add_argument("--string-clips", metavar="N or LOW-HIGH", type=_clip_count,
                   help="for corpora of short clips (keywords, digits): trim each clip to its speech and string "
                        "each speaker's clips into utterances of LOW-HIGH clips (such as 4-7), written under "
                        "DIR/strings/; the lists name those")
    p.add_argument("--force", action="store_true", help="replace existing lists in DIR")
    p.set_defaults(func=_run_prepare)


def _clip_count(text: str):
    from .corpus.clipstrings import ClipCount

    try:
        return ClipCount.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_prepare(args: argparse.Namespace) -> int:
    from .corpus.prepare import prepare

    summary = prepare(args.audio_dir, args.base, speaker_level=args.speaker_level, layout=args.layout,
                      valid_fraction=args.valid_fraction, test_fraction=args.test_fraction, seed=args.seed,
                      overwrite=args.force, string_clips=args.string_clips)
    print(summary.describe())
    return 0


# -- evaluate ----------------------------------------------------------------------
def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="SDR/SIR/SAR, SI-SDR (and improvements) on a test set, or oracle-mask baselines",
        description="Score separation on TEST: a wsj0-2mix-style folder (mix/, s1/, s2/ [, s3/] with files of the same "
                    "names) or a wsj0-2mix mixture list ('path1 gain_dB path2 gain_dB [...]' per line). BSS-eval v3 "
                    "(fast_bss_eval), SI-SDR, their improvements over the mixture, and STOI where pystoi is installed. "
                    "Writes per_mixture.csv and summary.json to the report folder.",
    )
    p.add_argument("test", metavar="TEST", help="test folder or mixture list")
    _add_model_args(p)
    p.add_argument("--num-speakers", type=num_speakers_arg,
                   help="separate into k sources (mixtures with another count are skipped), or 'auto': estimate "
                        "the count, report its accuracy, and score with the true count")
    p.add_argument("--oracle", choices=("ibm", "irm", "centres"),
                   help="score the ideal binary/ratio mask instead of a model, or (centres) the model with each "
                        "reference's mean embedding as its k-means centres: what clustering loses")
    p.add_argument("--mask", choices=("binary", "soft", "network"),
                   help="binary (k-means) or soft (soft k-means) masks, or network: a mask head's own (Chimera++)")
    p.add_argument("--out", help="report folder (default: eval_<name>[_<oracle>] beside TEST)")
    p.add_argument("--jobs", type=int, default=1, help="parallel scoring processes (default 1)")
    p.add_argument("--save-audio", action="store_true", help="keep the separated files in REPORT/audio/")
    p.add_argument("--sample-rate", type=int, help="evaluation rate for oracle runs without a model (default 8000)")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.evaluate import evaluate

    model = _model_or_shipped(args) if needs_backend(args) else None
    report = evaluate(args.test, model=model, num_speakers=args.num_speakers,
                      oracle=args.oracle, out=args.out, jobs=args.jobs, save_audio=args.save_audio,
                      sample_rate=args.sample_rate, mask=args.mask)
    print(f"report: {report.out}")
    return 0


# -- visualize ---------------------------------------------------------------------
def _add_visualize(sub) -> None:
    p = sub.add_parser(
        "visualize", help="figures: spectrogram, cluster assignment, ideal mask, embedding PCA; training history",
        description="For a mixture: one figure with its spectrogram, the k-means assignment of every bin, the ideal "
                    "binary mask (with --sources) and a PCA of the embeddings. With --history DIR: training and "
                    "validation loss per epoch. Written without a display unless --show.",
    )
    p.add_argument("mixture", nargs="?", metavar="MIXTURE", help="audio file to separate and plot")
    p.add_argument("--history", metavar="DIR", help="plot DIR/history.csv instead")
    _add_model_args(p)
    p.add_argument("--sources", nargs="+", metavar="SOURCE", help="reference sources: adds the ideal mask and SDRi")
    p.add_argument("--num-speakers", type=int, help="number of clusters (default: number of sources, else config)")
    p.add_argument("--dims", type=int, default=2, choices=(2, 3), help="PCA dimensions of the embedding scatter")
    p.add_argument("--out", help="figure file; .png, .pdf or .svg (default: beside the input)")
    p.add_argument("--show", action="store_true", help="also open a window")
    p.set_defaults(func=_run_visualize)


def _run_visualize(args: argparse.Namespace) -> int:
    from .evaluation import visualize

    if args.history:
        from .evaluation.history import plot_history

        print(plot_history(args.history, out=args.out, show=args.show))
        return 0
    if not args.mixture:
        raise visualize.VisualizeError("give a MIXTURE to plot, or --history DIR for the training history")
    print(visualize.plot_separation(args.mixture, model=_model_or_shipped(args), sources=args.sources,
                                    num_speakers=args.num_speakers, out=args.out, dims=args.dims, show=args.show))
    return 0


# -- export ------------------------------------------------------------------------
def _add_export(sub) -> None:
    p = sub.add_parser(
        "export", help="the network as a TensorFlow SavedModel and an ONNX file",
        description="Write the network (log-magnitude spectrogram in, embeddings out) of a model, by default the "
                    "shipped one, as OUT/savedmodel/ and OUT/model.onnx (pip install 'deepclust[export]'), with "
                    "OUT/EXPORT.md: the STFT before the network and the clustering after it, which stay outside, "
                    "with this model's numbers. Needs the TensorFlow backend.",
    )
    _add_model_args(p)
    p.add_argument("--out", default="export", help="folder to write into (default: export)")
    p.add_argument("--format", nargs="+", choices=("savedmodel", "onnx"), default=["savedmodel", "onnx"],
                   help="what to write (default: both)")
    p.add_argument("--force", action="store_true", help="replace an earlier export in OUT")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from .nn.export import export

    for kind, path in export(_model_or_shipped(args), args.out, formats=tuple(args.format), force=args.force).items():
        print(f"{kind}: {path}")
    return 0


# -- main --------------------------------------------------------------------------
COMMANDS: list[Callable] = [_add_train, _add_separate, _add_evaluate, _add_visualize, _add_make_corpus,
                            _add_prepare, _add_export]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepclust",
        description="Deep Clustering speech separation (Hershey et al. 2015): train on speaker lists, "
                    "separate mixtures of voices.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"deepclust {__version__}")
    _add_console_options(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    for command in sub.choices.values():  # accepted after the command too: deepclust separate -v x.wav
        _add_console_options(command, argparse.SUPPRESS)
    return parser


def _add_console_options(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="debug logging, and the backend's own start-up lines")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="no progress bars (train: one line per epoch)")


class ConsoleFormatter(logging.Formatter):
    """Information as plain lines, warnings and errors marked as such; the logger's name only with -v."""

    def __init__(self, verbose: bool):
        super().__init__("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if self.verbose or record.levelno <= logging.INFO else f"{record.levelname.lower()}: {text}"


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions reported as a message rather than a traceback: bad input, and worker processes
    that failed (the message says how to go on)."""
    from .dsp.audio import AudioError
    from .config import ConfigError
    from .corpus.split import CorpusError
    from .evaluation.evaluate import EvaluationError
    from .evaluation.figure import VisualizeError
    from .data.index import DataError
    from .data.batch_processes import BatchProcessError
    from .corpus.lists import ListFormatError
    from .nn.model import ModelError
    from .paths import ModelNotGiven
    from .training.runlock import RunLocked
    from .separation.separator import SeparationError
    from .separation.files import OutputError
    from .atomic import DiskFull
    from .nn.export import ExportError

    return (AudioError, ConfigError, CorpusError, EvaluationError, VisualizeError, DataError, ListFormatError,
            ModelError, ModelNotGiven, RunLocked, SeparationError, OutputError, ExportError, BatchProcessError, DiskFull,
            FileExistsError, FileNotFoundError, PermissionError)


# Commands that run a network: started from the shell, they re-execute themselves under
# tcmalloc where the system has it (see deepclust.allocator for why), and need a Keras backend.
FAST_ALLOCATOR_COMMANDS = ("train", "separate", "evaluate", "visualize")
NETWORK_COMMANDS = (*FAST_ALLOCATOR_COMMANDS, "export")


def needs_backend(args: argparse.Namespace) -> bool:
    """Whether the command runs a network (an oracle evaluation without a model does not)."""
    if args.command == "evaluate":
        from .dsp.features import IDEAL_MASKS  # the oracles that need no model

        return not (args.oracle in IDEAL_MASKS and args.base is None and args.model is None)
    if args.command == "visualize":
        return not args.history
    return args.command in NETWORK_COMMANDS


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if argv is None and args.command in FAST_ALLOCATOR_COMMANDS:
        from .allocator import reexec_with_fast_allocator

        try:
            reexec_with_fast_allocator(["-m", "deepclust", *sys.argv[1:]])  # returns only when there is nothing to do
        except FileNotFoundError as exc:
            print(f"deepclust {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
    handler = logging.StreamHandler()
    handler.setFormatter(ConsoleFormatter(args.verbose))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    if not args.verbose:  # the backend's own progress notes ("Assets written to ...")
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    if needs_backend(args):
        from .backend import BackendError, load

        try:
            load(quiet=not args.verbose)  # before anything else imports Keras
        except BackendError as exc:
            print(f"deepclust {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
    from . import progress

    progress.ENABLED = not args.quiet
    try:
        return args.func(args)
    except user_errors() as exc:
        print(f"deepclust {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"deepclust {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        progress.ENABLED = True  # for this command alone: main() may run again in one process


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
