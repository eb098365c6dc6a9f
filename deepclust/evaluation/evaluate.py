"""Evaluation: score a separator (or an oracle mask) on a test set, the way the papers do.

The test set (a wsj0-2mix-style folder or a mixture list) is found by
:mod:`deepclust.evaluation.testsets`, every mixture is scored at the evaluation rate (the
model's sample rate) by :func:`deepclust.evaluation.metrics.score` (BSS-eval v3 SDR, SIR,
SAR and SDRi; SI-SDR and SI-SDRi; STOI where pystoi is installed), and the
report is written by :mod:`deepclust.evaluation.report`. This module only runs them.

The network runs in the main process (one copy of the weights, no
TensorFlow in the workers); the slow, pure-numpy scoring runs in a process
pool of ``jobs`` workers. Ideal masks need no network, so with one each
worker does a whole mixture.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .. import backend, paths, pool
from ..config import AudioConfig, FeatureConfig
from ..dsp import audio, features
from ..progress import Progress
from . import report
from .metrics import score, stoi_available
from .report import Report
from .testsets import EvaluationError, MixtureSpec, SkipMixture, find_mixtures, load_mixture, source_folders

__all__ = ["EvaluationError", "SkipMixture", "Report", "ORACLES", "evaluate", "oracle_separate"]

log = logging.getLogger(__name__)

# "ibm", "irm": masks of the references alone; "centres": the model's embeddings clustered around
# centres taken from the references (clustering.oracle_centers), so it needs a model.
ORACLES = (*features.IDEAL_MASKS, "centres")
ORACLE_METHODS = {"ibm": "ideal binary mask", "irm": "magnitude ratio |S_i| / sum_j |S_j|",
                  "centres": "the model's masks, its k-means centres replaced by each reference's mean embedding "
                             "over the bins where it is the loudest"}
# The backends' runtimes hold threads a fork would copy half-way: with one loaded, workers are spawned afresh.
RUNTIMES = tuple(backend.MODULES[name] for name in backend.PREFERENCE)

# (spec, _call, (job, its args)), or (spec, None, a skip result): a call of deepclust.pool.in_order
Task = tuple[MixtureSpec, Callable | None, Any]


def oracle_separate(mixture: np.ndarray, sources: np.ndarray, kind: str, cfg: FeatureConfig) -> np.ndarray:
    """Apply the ideal mask (``features.ideal_masks``) of the sources to the mixture STFT and invert
    with the mixture's phase (``features.reconstruct``), as the papers' IBM: (k, samples)."""
    masks = features.ideal_masks(features.stft(sources, cfg), kind)
    return features.reconstruct(features.stft(mixture, cfg), masks, len(mixture), cfg)


# -- jobs (run in the workers) ---------------------------------------------------------------


def _finish(spec_id: str, k: int, mixture, references, estimates, rate: int, notes: list[str],
            audio_dir: str | None) -> dict[str, Any]:
    """Score one separated mixture (estimates cut or padded to the references), and save its audio."""
    estimates = audio.fit_length(np.asarray(estimates, np.float32), references.shape[1])
    silent = [j + 1 for j in range(estimates.shape[0]) if not np.any(estimates[j])]
    if silent:
        notes = notes + [f"estimate(s) {silent} are silent; scored as faint noise"]
    result = score(references, estimates, mixture, rate)
    if audio_dir is not None:  # in reference order: est_1 is the estimate matched to s1
        for i, j in enumerate(result["permutation"], start=1):
            audio.write(Path(audio_dir) / spec_id / f"est_{i}.wav", estimates[j], rate, subtype="FLOAT", overwrite=True)
    return {"id": spec_id, "num_speakers": k, **result, "warnings": notes}


def _oracle_job(spec: MixtureSpec, rate: int, cfg: FeatureConfig, kind: str, audio_dir: str | None) -> dict[str, Any]:
    """One whole mixture with an oracle mask (runs in a worker)."""
    mixture, references, notes = load_mixture(spec, rate)
    estimates = oracle_separate(mixture, references, kind, cfg)
    return _finish(spec.id, spec.num_speakers, mixture, references, estimates, rate, notes, audio_dir)


def _call(fn: Callable, *args) -> dict[str, Any]:
    """Run a job; a SkipMixture becomes a ``skip`` result (exceptions cross processes badly).

    A ValueError from the metrics (e.g. non-finite estimates) skips that mixture
    with the error as the reason, so one bad item does not lose hours of scoring.
    """
    try:
        return fn(*args)
    except SkipMixture as exc:
        return {"skip": str(exc)}
    except ValueError as exc:
        return {"skip": f"scoring failed ({type(exc).__name__}: {exc})"}


# -- the steps of evaluate() -----------------------------------------------------------------


@dataclass
class _Setup:
    """What the arguments resolve to: the separator (None with an ideal mask), the rate, the STFT."""

    oracle: str | None
    num_speakers: int | str | None
    rate: int
    cfg: FeatureConfig
    separator: Any = None
    model_path: Path | None = None
    audio_dir: str | None = None
    estimated: dict[str, int] = field(default_factory=dict)  # id -> estimated count, with "auto"

    @property
    def auto(self) -> bool:
        return self.num_speakers == "auto"


def _check_arguments(oracle, jobs, num_speakers) -> None:
    if oracle is not None and oracle not in ORACLES:
        raise EvaluationError(f"oracle: expected one of {', '.join(ORACLES)} or none. Received: oracle={oracle!r}")
    if oracle == "centres" and num_speakers == "auto":
        raise EvaluationError("num_speakers: oracle centres take the count from the references; leave it unset. "
                              "Received: num_speakers='auto'")
    if int(jobs) < 1:
        raise EvaluationError(f"jobs: expected a number of worker processes of at least 1. Received: jobs={jobs!r}")
    if num_speakers is not None and num_speakers != "auto" and int(num_speakers) < 1:
        raise EvaluationError(f"num_speakers: expected at least 1. Received: num_speakers={num_speakers!r}")


def _resolve(oracle, num_speakers, base, model, mask, sample_rate) -> _Setup:
    """The separator and the evaluation rate and STFT: the model's when one is given (with an ideal
    mask it only sets those), else ``sample_rate`` (default 8000 Hz) and the default STFT."""
    setup = _Setup(oracle, num_speakers, int(sample_rate) if sample_rate else AudioConfig().sample_rate, FeatureConfig())
    if oracle in features.IDEAL_MASKS and base is None and model is None:
        return setup
    from ..separation.separator import Separator  # TensorFlow only when a model is used

    setup.model_path = paths.locate(model, base, fallback=log.info)
    separator = Separator.load(setup.model_path, mask=mask)
    if sample_rate and int(sample_rate) != separator.sample_rate:
        raise EvaluationError(
            f"sample_rate: the model {setup.model_path} works at {separator.sample_rate} Hz and evaluation runs at "
            f"the model's rate; leave sample_rate unset. Received: sample_rate={sample_rate}"
        )
    setup.rate, setup.cfg = separator.sample_rate, separator.features
    # with an ideal mask only its rate and STFT were wanted
    setup.separator = None if oracle in features.IDEAL_MASKS else separator
    return setup


def _separated(spec: MixtureSpec, setup: _Setup) -> tuple:
    """Main-process part with a model: load and separate; returns the args of :func:`_finish`.

    With ``num_speakers="auto"`` the count is estimated from the embeddings
    and recorded; a wrong count is reported and the mixture is separated
    again with the true count, so the SDR figures stay comparable.
    """
    wanted = setup.num_speakers
    if wanted is not None and not setup.auto and int(wanted) != spec.num_speakers and not spec.missing:
        raise SkipMixture(f"has {spec.num_speakers} reference sources but num_speakers={wanted}")
    mixture, references, notes = load_mixture(spec, setup.rate)
    if setup.oracle == "centres":
        result = setup.separator.render(setup.separator.analyse_oracle(mixture, references))
    else:
        result = setup.separator.separate(mixture, "auto" if setup.auto else spec.num_speakers)
    if setup.auto:
        setup.estimated[spec.id] = result.num_speakers
        if result.num_speakers != spec.num_speakers:
            notes = notes + [f"estimated {result.num_speakers} speakers, not {spec.num_speakers}; "
                             f"scored with {spec.num_speakers}"]
            result = setup.separator.separate(mixture, spec.num_speakers)
    return (spec.id, spec.num_speakers, mixture, references, result.sources, setup.rate, notes + result.warnings,
            setup.audio_dir)


def _tasks(specs: Iterable[MixtureSpec], setup: _Setup) -> Iterator[Task]:
    """(spec, _call, (job, args)) for each mixture, or (spec, None, skip result); separates lazily."""
    for spec in specs:
        if setup.separator is None:
            yield spec, _call, (_oracle_job, spec, setup.rate, setup.cfg, setup.oracle, setup.audio_dir)
            continue
        try:
            yield spec, _call, (_finish, *_separated(spec, setup))
        except SkipMixture as exc:
            yield spec, None, {"skip": str(exc)}


class _Collector:
    """Gathers the results in arrival order: rows, skips (with their reasons logged), progress."""

    def __init__(self, total: int, progress: bool):
        self.rows: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.meter = Progress(total, "evaluate", unit="mixture", enabled=progress)

    def __call__(self, spec: MixtureSpec, result: dict[str, Any]) -> None:
        where = spec.where or spec.mixture
        if "skip" in result:
            self.skipped.append({"id": spec.id, "where": str(where), "reason": result["skip"]})
            log.warning("%s: skipped: %s", where, result["skip"])
        else:
            for note in result["warnings"]:
                log.warning("%s: %s", where, note)
            self.rows.append(result)
        self.meter.step(skipped="skip" in result)


def _start_method() -> str:
    """fork is quick and works from any script, unless a network runtime is loaded (RUNTIMES)."""
    return "spawn" if any(m in sys.modules for m in RUNTIMES) or sys.platform != "linux" else "fork"


def _run(specs: list[MixtureSpec], setup: _Setup, jobs: int, progress: bool) -> _Collector:
    """Every mixture separated and scored, in the main process (``jobs=1``) or ``jobs`` worker processes
    (:func:`deepclust.pool.in_order`: a bounded number of separated mixtures waiting); rows and skips in
    test-set order."""
    collect = _Collector(len(specs), progress)
    for spec, result in pool.in_order(_tasks(specs, setup), jobs, _start_method()):
        collect(spec, result)
    return collect


def _summary(test: Path, setup: _Setup, specs: list, found: _Collector, started: float) -> dict[str, Any]:
    """summary.json: what was scored and how, the statistics, the speaker count (``auto``), the skips."""
    count = None
    if setup.auto:
        for r in found.rows:
            r["estimated_speakers"] = setup.estimated.get(r["id"])
        count = report.speaker_count(found.rows)
    return {
        "test": str(test),
        "model": str(setup.model_path) if setup.model_path else None,
        "oracle": setup.oracle,
        "sample_rate": setup.rate,
        "stft": {"window_length": setup.cfg.window_length, "hop_length": setup.cfg.hop_length},
        "num_mixtures": len(specs),
        "num_scored": len(found.rows),
        "num_skipped": len(found.skipped),
        "method": {
            "bss_eval": "v3 (fast_bss_eval; mir_eval.separation.bss_eval_sources' numbers), permutation by best mean SIR",
            "si_sdr": "zero-mean scale-invariant SDR (Le Roux et al. 2019), permutation by best mean SI-SDR",
            "stoi": "pystoi, BSS-eval permutation" if stoi_available() else "unavailable (pystoi not installed)",
            "oracle": ORACLE_METHODS.get(setup.oracle),
        },
        "seconds": round(time.monotonic() - started, 1),
        **report.summarize(found.rows),
        "speaker_count": count,
        "skipped": found.skipped,
    }


def _print(result: Report) -> None:
    print(result.table())
    count = result.summary.get("speaker_count")
    if count is not None:
        print(f"speaker count estimated correctly for {100 * count['accuracy']:.1f} % of {count['count']} mixtures")
    print(f"wrote {result.out / report.CSV_NAME} and {result.out / report.SUMMARY_NAME}")


def _default_out(test: Path, oracle: str | None) -> Path:
    name = test.stem if test.is_file() else test.name
    if test.is_dir() and name.startswith("mix") and source_folders(test.parent):
        name = f"{test.parent.name}_{name}"  # wham/tt/mix_both -> eval_tt_mix_both
    return test.parent / (f"eval_{name}" + (f"_{oracle}" if oracle else ""))


def evaluate(test, *, base=None, model=None, num_speakers=None, oracle=None, out=None, jobs=1,
             save_audio=False, sample_rate=None, progress=True, mask=None) -> Report:
    """Score a separator, an oracle mask (``oracle="ibm"``/``"irm"``) or the separator with the oracle's
    k-means centres (``oracle="centres"``), on a test set.

    ``test``: a wsj0-2mix-style folder or a wsj0-2mix mixture list (see
    :mod:`deepclust.evaluation.testsets`). The model is ``model`` (``"pretrained"``, a run folder or a
    ``.keras`` file), else ``base`` or ``$DEEPC_BASE``'s, else the shipped one
    (:func:`deepclust.paths.locate`); with an ideal mask a model is optional and only sets the rate
    and STFT. Mixtures are separated (``mask``: "binary", "soft" or "network",
    default the model's config) into as many sources as they have references,
    or ``num_speakers`` (mixtures with another count are skipped; "auto":
    estimated, its accuracy reported, scored with the true count). Writes
    ``per_mixture.csv`` and ``summary.json`` into ``out`` (default
    ``eval_<name>[_<oracle>]`` beside ``test``; existing results there are
    replaced), and with ``save_audio`` ``audio/<id>/est_N.wav``. ``progress``:
    a counter on stderr and the table on stdout.
    """
    started = time.monotonic()
    test = Path(test)
    _check_arguments(oracle, jobs, num_speakers)
    specs = find_mixtures(test)
    setup = _resolve(oracle, num_speakers, base, model, mask, sample_rate)
    out = Path(out) if out is not None else _default_out(test, oracle)
    out.mkdir(parents=True, exist_ok=True)
    setup.audio_dir = str(out / "audio") if save_audio else None
    found = _run(specs, setup, int(jobs), progress)
    result = report.write(out, found.rows, _summary(test, setup, specs, found, started), found.skipped)
    if progress:
        _print(result)
    return result
