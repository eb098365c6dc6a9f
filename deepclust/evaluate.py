"""Evaluation: score a separator (or an oracle mask) the way the papers do.

A test set is a wsj0-2mix-style folder (``mix/``, ``s1/``, ``s2/`` ... with
files of the same names: wsj0-2mix, WHAM!, LibriMix) or a mixture list in the
wsj0-2mix format (``path1 gain_dB path2 gain_dB [...]``), mixed here exactly
as the wsj0-2mix scripts do (with RMS in place of the P.56 active level).

Every mixture is scored at the evaluation rate (the model's sample rate):

* SDR, SIR, SAR: BSS-eval v3, ``mir_eval.separation.bss_eval_sources``, the
  metric of the Deep Clustering papers. Its permutation is the one with the
  best mean SIR (as BSS-eval v3 does); SDRi = SDR(estimate) - SDR(mixture
  used as every estimate).
* SI-SDR and SI-SDRi (Le Roux, Wisdom, Erdogan, Hershey 2019), zero-mean,
  with the permutation of best mean SI-SDR.
* STOI (pystoi) where pystoi is installed, with the BSS-eval permutation.

The network runs in the main process (one copy of the weights, no
TensorFlow in the workers); the slow, pure-numpy scoring runs in a process
pool of ``jobs`` workers. Oracle masks need no network, so with an oracle
each worker does a whole mixture.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import logging
import math
import multiprocessing
import re
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import soundfile as sf
from scipy.optimize import linear_sum_assignment

from . import audio, features
from .config import AudioConfig, FeatureConfig

log = logging.getLogger(__name__)

# wsj0-2mix scales a mixture and its sources together so that no sample of
# any of them exceeds this peak (create_wav_2speakers.m).
MIX_PEAK = 0.9
# Sources below this RMS are treated as silent: not level-normalised when
# mixing, and not scorable as references (BSS-eval is undefined for them).
SILENT_RMS = 1e-6
# Mixture and reference lengths may differ by this fraction of the longer
# one, or by this many seconds, whichever is more; they are then cut to the
# shortest with a warning. Larger differences mean the files do not belong
# together, and the mixture is skipped.
LENGTH_TOLERANCE_FRACTION = 0.01
LENGTH_TOLERANCE_SECONDS = 0.05
# Added to energies in SI-SDR so that silence gives a finite, very low score.
EPS = 1e-10
# A silent estimate (all zeros) makes BSS-eval raise; it is scored as
# white noise at this RMS instead, which gives the very low score it deserves.
SILENT_ESTIMATE_DITHER_RMS = 1e-6
# Exhaustive permutation search up to this many sources; beyond, the
# Hungarian algorithm (same optimum, since the score is a sum over pairs).
MAX_EXHAUSTIVE_SOURCES = 6
# Mixtures scored in parallel wait here at most this many per worker, so a
# long test set does not pile up separated audio in memory.
IN_FLIGHT_PER_JOB = 2
# BLAS threads while scoring (see _one_blas_thread).
BLAS_THREADS = 1
MIXTURE_FOLDERS = ("mix", "mix_clean")  # preferred mixture folders, in order
SOURCE_FOLDER = re.compile(r"^s(\d+)$")
ORACLES = ("ibm", "irm")
METRICS = ("sdr", "sir", "sar", "sdri", "si_sdr", "si_sdri", "stoi")
FOLDER_LAYOUT = ("a folder holding mix/ (or mix_clean/), s1/, s2/ [, s3/ ...] with audio files of the same "
                 "names in each (wsj0-2mix, WHAM!, LibriMix), or a mixture list file with lines "
                 "'path1 gain_dB path2 gain_dB [path3 gain_dB]'")
LIST_LINE = "'path1 gain_dB path2 gain_dB [path3 gain_dB ...]' (two or more pairs of an audio path and a gain in dB)"

try:  # optional: the STOI column is absent without it
    from pystoi import stoi as _stoi
except ImportError:  # pragma: no cover
    _stoi = None
try:  # installed with scikit-learn; without it BLAS keeps its own thread count
    from threadpoolctl import threadpool_limits as _threadpool_limits
except ImportError:  # pragma: no cover
    _threadpool_limits = None


class EvaluationError(ValueError):
    """The test set or the arguments cannot be evaluated; the message says why and how to fix it."""


class SkipMixture(Exception):
    """One mixture cannot be scored; the reason goes into the report and the others go on."""


# -- metrics (pure functions) ----------------------------------------------------------------


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019): both zero-mean, the target is
    the projection of the estimate on the reference, so gain errors cost nothing."""
    s = np.asarray(reference, np.float64) - np.mean(reference)
    e = np.asarray(estimate, np.float64) - np.mean(estimate)
    alpha = np.dot(e, s) / (np.dot(s, s) + EPS)
    target = alpha * s
    noise = e - target
    return float(10.0 * np.log10((np.dot(target, target) + EPS) / (np.dot(noise, noise) + EPS)))


def best_permutation(pairwise: np.ndarray) -> tuple[int, ...]:
    """``pairwise[i, j]`` scores estimate j against reference i; returns perm with
    ``perm[i]`` = the estimate for reference i, maximising the summed score."""
    k = pairwise.shape[0]
    if k <= MAX_EXHAUSTIVE_SOURCES:
        rows = np.arange(k)
        return max(itertools.permutations(range(k)), key=lambda p: pairwise[rows, list(p)].sum())
    _, cols = linear_sum_assignment(-pairwise)
    return tuple(int(c) for c in cols)


def si_sdr_pit(references: np.ndarray, estimates: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Per-reference SI-SDR (k,) under the permutation of best mean SI-SDR, and that permutation."""
    k = references.shape[0]
    pairwise = np.array([[si_sdr(references[i], estimates[j]) for j in range(k)] for i in range(k)])
    perm = best_permutation(pairwise)
    return pairwise[np.arange(k), list(perm)], perm


def _dither_silent(estimates: np.ndarray) -> tuple[np.ndarray, list[int]]:
    estimates = np.array(estimates, np.float64, copy=True)
    silent = [j for j in range(estimates.shape[0]) if not np.any(estimates[j])]
    rng = np.random.default_rng(0)
    for j in silent:
        estimates[j] = rng.standard_normal(estimates.shape[1]) * SILENT_ESTIMATE_DITHER_RMS
    return estimates, silent


def _one_blas_thread():
    """BSS-eval solves many 512k x 512k systems; one BLAS thread does them several times
    faster than a contended pool (measured 5x on 2 cores), and parallelism comes from ``jobs``."""
    if _threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _threadpool_limits(limits=BLAS_THREADS, user_api="blas")


def bss_eval(references: np.ndarray, estimates: np.ndarray, compute_permutation: bool = True) -> dict[str, np.ndarray]:
    """BSS-eval v3 (mir_eval) on (k, samples) arrays: per-reference ``sdr``, ``sir``, ``sar`` (k,)
    and ``permutation`` (``permutation[i]`` = the estimate matched to reference i).

    mir_eval refuses all-zero estimates; they are replaced by faint white noise
    (and score accordingly low) so one dead output does not abort an evaluation.
    """
    import mir_eval  # slow import, only where scoring happens

    references = np.asarray(references, np.float64)
    estimates, _ = _dither_silent(estimates)
    if references.shape != estimates.shape:
        raise ValueError(
            f"bss_eval: references and estimates must have the same (sources, samples) shape. "
            f"Received: references {references.shape}, estimates {estimates.shape}"
        )
    with warnings.catch_warnings(), _one_blas_thread():
        # mir_eval 0.8 marks bss_eval_sources deprecated (museval is BSS-eval v4, not the papers' v3).
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, perm = mir_eval.separation.bss_eval_sources(references, estimates, compute_permutation)
    return {"sdr": sdr, "sir": sir, "sar": sar, "permutation": tuple(int(p) for p in perm)}


def score(references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray, sample_rate: int | None = None) -> dict[str, Any]:
    """All metrics for one mixture: (k, n) references and estimates, (n,) mixture.

    Returns means over sources (``sdr``, ``sir``, ``sar``, ``sdri``, ``si_sdr``,
    ``si_sdri``, and ``stoi`` when pystoi is installed and ``sample_rate`` is
    given), the per-source values (``<metric>_sources``, in reference order) and
    the permutations (``permutation`` from BSS-eval, ``si_sdr_permutation``).
    """
    references = np.asarray(references, np.float64)
    estimates = np.asarray(estimates, np.float64)
    mixture = np.asarray(mixture, np.float64)
    k = references.shape[0]
    if estimates.shape != references.shape or mixture.shape != references.shape[1:]:
        raise ValueError(
            f"score: expected references and estimates of one (sources, samples) shape and a mixture of "
            f"(samples,). Received: references {references.shape}, estimates {estimates.shape}, "
            f"mixture {mixture.shape}"
        )
    est = bss_eval(references, estimates)
    base = bss_eval(references, np.repeat(mixture[None], k, axis=0), compute_permutation=False)
    si, si_perm = si_sdr_pit(references, estimates)
    si_mix = np.array([si_sdr(references[i], mixture) for i in range(k)])
    perm = est["permutation"]
    per = {
        "sdr": est["sdr"], "sir": est["sir"], "sar": est["sar"], "sdri": est["sdr"] - base["sdr"],
        "si_sdr": si, "si_sdri": si - si_mix,
    }
    if _stoi is not None and sample_rate is not None:
        per["stoi"] = np.array([_stoi(references[i], estimates[perm[i]], int(sample_rate)) for i in range(k)])
    result: dict[str, Any] = {name: float(np.mean(values)) for name, values in per.items()}
    result.update({f"{name}_sources": [float(v) for v in values] for name, values in per.items()})
    result["permutation"] = list(perm)
    result["si_sdr_permutation"] = list(si_perm)
    return result


def oracle_masks(sources_spec: np.ndarray, kind: str) -> np.ndarray:
    """Ideal masks (k, T, F) from the sources' STFTs (k, T, F) as they sit in the mixture.

    ``ibm``: 1 where the source is the loudest (the Deep Clustering training
    target, so the bound a perfect clustering reaches). ``irm``: the magnitude
    ratio |S_i| / sum_j |S_j| (sums to one, so the estimates add up to the
    mixture; not the power-ratio sqrt(|S_i|^2 / sum_j |S_j|^2) variant).
    Bins where every source is silent are shared equally.
    """
    magnitude = np.abs(np.asarray(sources_spec))
    k = magnitude.shape[0]
    if kind == "ibm":
        masks = np.zeros(magnitude.shape, np.float32)
        np.put_along_axis(masks, np.argmax(magnitude, axis=0)[None], 1.0, axis=0)
        return masks
    if kind == "irm":
        total = magnitude.sum(axis=0, keepdims=True)
        safe = np.where(total > 0, total, 1.0)
        return np.where(total > 0, magnitude / safe, 1.0 / k).astype(np.float32)
    raise EvaluationError(f"oracle: expected one of {', '.join(ORACLES)}. Received: oracle={kind!r}")


def oracle_separate(mixture: np.ndarray, sources: np.ndarray, kind: str, cfg: FeatureConfig) -> np.ndarray:
    """Apply the ideal mask of the sources to the mixture STFT and invert: (k, samples)."""
    masks = oracle_masks(features.stft(sources, cfg), kind)
    return features.istft(masks * features.stft(mixture, cfg)[None], len(mixture), cfg)


def mix_wsj0(sources: Sequence[np.ndarray], gains_db: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Mix as wsj0-2mix (min mode): returns (mixture (n,), scaled sources (k, n)).

    Each whole source is brought to unit RMS (the wsj0-2mix script uses the
    ITU-T P.56 active speech level; RMS counts pauses too, so levels differ
    slightly from the published files), scaled by 10**(gain/20), all are cut
    to the shortest, and everything is scaled together so that no sample of
    the mixture or of any source exceeds ``MIX_PEAK``.
    """
    if len(sources) != len(gains_db) or not sources:
        raise ValueError(f"mix_wsj0: expected one gain per source. Received: {len(sources)} sources, {len(gains_db)} gains")
    length = min(len(s) for s in sources)
    scaled = []
    for s, gain in zip(sources, gains_db):
        s = np.asarray(s, np.float64)
        rms = float(np.sqrt(np.mean(np.square(s)))) if s.size else 0.0
        scaled.append(s[:length] * (10.0 ** (float(gain) / 20.0) / rms if rms > SILENT_RMS else 1.0))
    scaled = np.stack(scaled)
    mixture = scaled.sum(axis=0)
    peak = max(float(np.max(np.abs(mixture), initial=0.0)), float(np.max(np.abs(scaled), initial=0.0)))
    if peak > 0:
        scaled *= MIX_PEAK / peak
        mixture *= MIX_PEAK / peak
    return mixture.astype(np.float32), scaled.astype(np.float32)


# -- test sets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixtureSpec:
    """Where one mixture comes from. ``mixture`` is None for a list line (mixed here)."""

    id: str
    sources: tuple[Path, ...]
    mixture: Path | None = None
    gains_db: tuple[float, ...] = ()
    where: str = ""  # file:line for list entries
    missing: str = ""  # set when the mixture cannot be complete: it is skipped with this reason

    @property
    def num_speakers(self) -> int:
        return len(self.sources)


def _audio_suffixes() -> set[str]:
    return {"." + ext.lower() for ext in sf.available_formats()} | {".wav", ".flac", ".ogg"}


def _source_folders(folder: Path) -> list[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := SOURCE_FOLDER.match(p.name))]
    return [p for _, p in sorted(found)]


def _mixture_folder(folder: Path) -> tuple[Path, Path] | None:
    """(the mixture folder, the folder holding s1/ ...) for ``folder``, or None if not that layout."""
    if _source_folders(folder):
        for name in MIXTURE_FOLDERS:
            if (folder / name).is_dir():
                return folder / name, folder
        others = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("mix"))
        if len(others) == 1:
            return others[0], folder
        if others:
            raise EvaluationError(
                f"{folder}: several mixture folders ({', '.join(p.name for p in others)}) and no mix/; "
                f"pass the one to evaluate, e.g. test={others[0]}. Received: test={folder}"
            )
        return None
    if folder.name.startswith("mix") and _source_folders(folder.parent):
        return folder, folder.parent  # the mixture folder itself, e.g. wham/tt/mix_both
    return None


def find_folder_mixtures(folder: str | Path) -> list[MixtureSpec]:
    """The mixtures of a wsj0-2mix-style folder, sorted by name.

    A mixture has as many speakers as there are s1/, s2/ ... folders holding
    its file name, counted from s1/ without gaps. One that lacks a source every
    mixture of the set must have (s1/ and s2/ when both exist), or that has a
    gap (s1/ and s3/ but no s2/), is returned with ``missing`` set, so it is
    skipped and reported rather than scored as a smaller mixture.
    ``folder`` may also be the mixture folder itself (``wham/tt/mix_both``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder}: not a folder; expected {FOLDER_LAYOUT}. Received: test={folder}")
    found = _mixture_folder(folder)
    if found is None:
        raise EvaluationError(
            f"{folder}: no mixture folder and s1/, s2/ ... source folders found; expected {FOLDER_LAYOUT}. "
            f"Received: subfolders {sorted(p.name for p in folder.iterdir() if p.is_dir())}"
        )
    mix_dir, root = found
    source_dirs = _source_folders(root)
    required = min(2, len(source_dirs))
    suffixes = _audio_suffixes()
    names = sorted(p.name for p in mix_dir.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)
    if not names:
        raise EvaluationError(
            f"{mix_dir}: no audio files; expected {FOLDER_LAYOUT}. Received: an empty mixture folder"
        )
    specs = []
    for name in names:
        present = [d for d in source_dirs if (d / name).is_file()]
        k = 0
        while k < len(source_dirs) and (source_dirs[k] / name).is_file():
            k += 1
        missing = ""
        if k < required or len(present) > k:
            missing = f"missing {source_dirs[k].name}/{name} (found {', '.join(d.name for d in present) or 'no source'})"
        sources = tuple(source_dirs[i] / name for i in range(k))
        specs.append(MixtureSpec(id=Path(name).stem, sources=sources, mixture=mix_dir / name, missing=missing))
    return specs


def read_mixture_list(path: str | Path) -> list[MixtureSpec]:
    """Parse a wsj0-2mix mixture list (``path1 gain_dB path2 gain_dB [...]`` per line).

    Relative paths are relative to the list's folder; blank lines and ``#``
    comments are allowed. Ids follow the wsj0-2mix file names
    (``<stem1>_<gain1>_<stem2>_<gain2>``), with ``@<line>`` added to repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: mixture list not found; expected {FOLDER_LAYOUT}. Received: test={path}")
    specs, seen = [], set()
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        where = f"{path}:{number}"
        if len(tokens) < 4 or len(tokens) % 2:
            raise EvaluationError(f"{where}: expected {LIST_LINE}. Received: {len(tokens)} fields: {raw.strip()!r}")
        paths, gains = tokens[0::2], tokens[1::2]
        try:
            gains_db = tuple(float(g) for g in gains)
        except ValueError:
            raise EvaluationError(
                f"{where}: expected {LIST_LINE}; every second field must be a gain in dB. "
                f"Received: gains {gains} in {raw.strip()!r}"
            ) from None
        if not all(math.isfinite(g) for g in gains_db):
            raise EvaluationError(f"{where}: expected finite gains in dB. Received: {gains}")
        sources = tuple(p if p.is_absolute() else path.parent / p for p in map(Path, paths))
        mixture_id = "_".join(f"{Path(p).stem}_{g}" for p, g in zip(paths, gains))
        if mixture_id in seen:
            mixture_id = f"{mixture_id}@{number}"
        seen.add(mixture_id)
        specs.append(MixtureSpec(id=mixture_id, sources=sources, gains_db=gains_db, where=where))
    if not specs:
        raise EvaluationError(f"{path}: no mixtures in the list; expected lines {LIST_LINE}. Received: an empty list")
    return specs


def find_mixtures(test: str | Path) -> list[MixtureSpec]:
    """A folder or a mixture list -> mixture specs; anything else is an EvaluationError."""
    test = Path(test)
    if test.is_dir():
        return find_folder_mixtures(test)
    if test.is_file():
        return read_mixture_list(test)
    raise EvaluationError(f"{test}: not found; expected {FOLDER_LAYOUT}. Received: test={test}")


def _match_lengths(mixture: np.ndarray, sources: list[np.ndarray], rate: int, warnings_: list[str]):
    lengths = [len(mixture)] + [len(s) for s in sources]
    shortest, longest = min(lengths), max(lengths)
    if shortest == longest:
        return mixture, np.stack(sources)
    tolerance = max(LENGTH_TOLERANCE_FRACTION * longest, LENGTH_TOLERANCE_SECONDS * rate)
    if longest - shortest > tolerance:
        raise SkipMixture(
            f"lengths differ by {longest - shortest} samples at {rate} Hz (mixture {len(mixture)}, sources "
            f"{[len(s) for s in sources]}), more than the {int(tolerance)} tolerated"
        )
    warnings_.append(f"lengths differ by {longest - shortest} samples (mixture {len(mixture)}, sources "
                     f"{[len(s) for s in sources]}); cut to the shortest, {shortest}")
    return mixture[:shortest], np.stack([s[:shortest] for s in sources])


def load_mixture(spec: MixtureSpec, rate: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mixture (n,), references (k, n), warnings) at ``rate``; SkipMixture if it cannot be scored."""
    if spec.missing:
        raise SkipMixture(spec.missing)
    notes: list[str] = []
    try:
        sources = [audio.read(p, rate)[0] for p in spec.sources]
        if spec.mixture is None:
            mixture, references = mix_wsj0(sources, spec.gains_db)
        else:
            mixture, references = _match_lengths(audio.read(spec.mixture, rate)[0], sources, rate, notes)
    except audio.AudioError as exc:
        raise SkipMixture(str(exc)) from None
    if mixture.size == 0:
        raise SkipMixture("empty audio")
    rms = np.sqrt(np.mean(np.square(references, dtype=np.float64), axis=1))
    silent = [i + 1 for i in range(len(rms)) if rms[i] <= SILENT_RMS]
    if silent:
        raise SkipMixture(f"reference source(s) {silent} are silent; BSS-eval is undefined for a silent reference")
    return mixture, references, notes


# -- running ---------------------------------------------------------------------------------


@dataclass
class Report:
    """What :func:`evaluate` found: one row per scored mixture, the summary, and where they were written."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    out: Path | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)

    def table(self) -> str:
        return format_table(self.summary)


def _finish(spec_id: str, k: int, mixture, references, estimates, rate: int, notes: list[str],
            audio_dir: str | None) -> dict[str, Any]:
    estimates = np.asarray(estimates, np.float32)
    if estimates.shape[1] != references.shape[1]:
        n = references.shape[1]
        estimates = estimates[:, :n] if estimates.shape[1] >= n else np.pad(estimates, ((0, 0), (0, n - estimates.shape[1])))
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


class _Progress:
    """A counter on stderr: in place on a terminal, a line every 10 % otherwise."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done, self.skipped = total, enabled, 0, 0
        self.tty = enabled and sys.stderr.isatty()
        self.start = time.monotonic()
        self._last_decile = -1

    def step(self, skipped: bool) -> None:
        self.done += 1
        self.skipped += int(skipped)
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        text = f"evaluate: {self.done}/{self.total} mixtures, {self.skipped} skipped, {elapsed:.0f} s"
        if self.tty:
            sys.stderr.write("\r" + text + ("\n" if self.done == self.total else ""))
        elif (decile := self.done * 10 // self.total) != self._last_decile or self.done == self.total:
            self._last_decile = decile
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _default_out(test: Path, oracle: str | None) -> Path:
    name = test.stem if test.is_file() else test.name
    if test.is_dir() and name.startswith("mix") and _source_folders(test.parent):
        name = f"{test.parent.name}_{name}"  # wham/tt/mix_both -> eval_tt_mix_both
    return test.parent / (f"eval_{name}" + (f"_{oracle}" if oracle else ""))


def evaluate(test, *, base=None, model=None, num_speakers=None, oracle=None, out=None, jobs=1,
             save_audio=False, sample_rate=None, progress=True, mask=None) -> Report:
    """Score a separator, or an oracle mask (``oracle="ibm"``/``"irm"``), on a test set.

    ``test``: a wsj0-2mix-style folder or a wsj0-2mix mixture list (see the
    module docstring). The model comes from ``find_model(base, model)``; with
    an oracle a model is optional and only sets the rate and STFT. Mixtures
    are separated (``mask``: "binary" or "soft", default the model's config)
    into as many sources as they have references, or
    ``num_speakers`` (mixtures with another count are skipped). Writes
    ``per_mixture.csv`` and ``summary.json`` into ``out`` (default
    ``eval_<name>[_<oracle>]`` beside ``test``; existing results there are
    replaced), and with ``save_audio`` ``audio/<id>/est_N.wav``. ``progress``:
    a counter on stderr and the table on stdout.
    """
    started = time.monotonic()
    test = Path(test)
    if oracle is not None and oracle not in ORACLES:
        raise EvaluationError(f"oracle: expected one of {', '.join(ORACLES)} or none. Received: oracle={oracle!r}")
    if int(jobs) < 1:
        raise EvaluationError(f"jobs: expected a number of worker processes of at least 1. Received: jobs={jobs!r}")
    auto = num_speakers == "auto"
    if num_speakers is not None and not auto and int(num_speakers) < 1:
        raise EvaluationError(f"num_speakers: expected at least 1. Received: num_speakers={num_speakers!r}")
    specs = find_mixtures(test)

    separator = None
    cfg = FeatureConfig()
    rate = int(sample_rate) if sample_rate else AudioConfig().sample_rate
    model_path = None
    if oracle is None or base is not None or model is not None:
        from .separate import Separator, find_model  # TensorFlow only when a model is used

        model_path = find_model(base, model)
        separator = Separator.from_path(model_path, mask=mask)
        if sample_rate and int(sample_rate) != separator.sample_rate:
            raise EvaluationError(
                f"sample_rate: the model {model_path} works at {separator.sample_rate} Hz and evaluation runs at "
                f"the model's rate; leave sample_rate unset. Received: sample_rate={sample_rate}"
            )
        rate, cfg = separator.sample_rate, separator.features
        if oracle is not None:
            separator = None  # only its rate and STFT were wanted

    out = Path(out) if out is not None else _default_out(test, oracle)
    out.mkdir(parents=True, exist_ok=True)
    audio_dir = str(out / "audio") if save_audio else None

    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    meter = _Progress(len(specs), progress)

    def collect(spec: MixtureSpec, result: dict[str, Any]) -> None:
        if "skip" in result:
            skipped.append({"id": spec.id, "where": spec.where or str(spec.mixture), "reason": result["skip"]})
            log.warning("%s: skipped: %s", spec.where or spec.mixture, result["skip"])
        else:
            for note in result["warnings"]:
                log.warning("%s: %s", spec.where or spec.mixture, note)
            rows.append(result)
        meter.step("skip" in result)

    estimated: dict[str, int] = {}

    def separated(spec: MixtureSpec):
        """Main-process part with a model: load and separate; returns job args or a skip.

        With ``num_speakers="auto"`` the count is estimated from the embeddings
        and recorded; a wrong count is reported and the mixture is separated
        again with the true count, so the SDR figures stay comparable.
        """
        if num_speakers is not None and not auto and int(num_speakers) != spec.num_speakers and not spec.missing:
            raise SkipMixture(f"has {spec.num_speakers} reference sources but num_speakers={num_speakers}")
        mixture, references, notes = load_mixture(spec, rate)
        result = separator.separate(mixture, "auto" if auto else spec.num_speakers)
        if auto:
            estimated[spec.id] = result.num_speakers
            if result.num_speakers != spec.num_speakers:
                notes = notes + [f"estimated {result.num_speakers} speakers, not {spec.num_speakers}; "
                                 f"scored with {spec.num_speakers}"]
                result = separator.separate(mixture, spec.num_speakers)
        return (spec.id, spec.num_speakers, mixture, references, result.sources, rate, notes + result.warnings, audio_dir)

    def tasks():
        """(spec, function, args) for each mixture, or (spec, None, skip result)."""
        for spec in specs:
            if separator is None:
                yield spec, _oracle_job, (spec, rate, cfg, oracle, audio_dir)
                continue
            try:
                yield spec, _finish, separated(spec)
            except SkipMixture as exc:
                yield spec, None, {"skip": str(exc)}

    jobs = int(jobs)
    if jobs == 1:
        for spec, fn, args in tasks():
            collect(spec, _call(fn, *args) if fn else args)
    else:
        # fork is quick and works from any script; but a parent running TensorFlow holds
        # threads that fork would copy half-way, so then the workers are spawned afresh.
        method = "spawn" if "tensorflow" in sys.modules or sys.platform != "linux" else "fork"
        context = multiprocessing.get_context(method)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            pending: dict[Future, MixtureSpec] = {}
            for spec, fn, args in tasks():
                if fn is None:
                    collect(spec, args)
                    continue
                pending[pool.submit(_call, fn, *args)] = spec
                while len(pending) >= IN_FLIGHT_PER_JOB * jobs:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        collect(pending.pop(future), future.result())
            for future in list(pending):
                collect(pending.pop(future), future.result())

    order = {spec.id: i for i, spec in enumerate(specs)}
    rows.sort(key=lambda r: order[r["id"]])
    count = None
    if auto:
        for r in rows:
            r["estimated_speakers"] = estimated.get(r["id"])
        hits = [r["estimated_speakers"] == r["num_speakers"] for r in rows]
        count = {"accuracy": float(np.mean(hits)) if hits else None, "count": len(hits),
                 "by_num_speakers": {str(k): float(np.mean([h for h, r in zip(hits, rows) if r["num_speakers"] == k]))
                                     for k in sorted({r["num_speakers"] for r in rows})}}
    summary = {
        "test": str(test),
        "model": str(model_path) if model_path else None,
        "oracle": oracle,
        "sample_rate": rate,
        "stft": {"window_length": cfg.window_length, "hop_length": cfg.hop_length},
        "num_mixtures": len(specs),
        "num_scored": len(rows),
        "num_skipped": len(skipped),
        "method": {
            "bss_eval": "v3: mir_eval.separation.bss_eval_sources, permutation by best mean SIR",
            "si_sdr": "zero-mean scale-invariant SDR (Le Roux et al. 2019), permutation by best mean SI-SDR",
            "stoi": "pystoi, BSS-eval permutation" if _stoi is not None else "unavailable (pystoi not installed)",
            "oracle": {"ibm": "ideal binary mask", "irm": "magnitude ratio |S_i| / sum_j |S_j|"}.get(oracle),
        },
        "seconds": round(time.monotonic() - started, 1),
        **summarize(rows),
        "speaker_count": count,
        "skipped": skipped,
    }
    write_csv(out / "per_mixture.csv", rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    report = Report(rows, summary, out, skipped)
    if progress:
        print(report.table())
        if count is not None:
            print(f"speaker count estimated correctly for {100 * count['accuracy']:.1f} % of {count['count']} mixtures")
        print(f"wrote {out / 'per_mixture.csv'} and {out / 'summary.json'}")
    return report


# -- output ----------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "num_speakers", "estimated_speakers") + METRICS
CSV_SOURCE_COLUMNS = tuple(f"{m}_sources" for m in METRICS) + ("permutation", "si_sdr_permutation", "warnings")


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """One row per mixture: means over sources, then per-source values joined by ';'."""
    present = [c for c in CSV_COLUMNS if c in ("id", "num_speakers") or any(c in r for r in rows)]
    extra = [c for c in CSV_SOURCE_COLUMNS if any(c in r for r in rows)] if rows else []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(present + extra)
        for r in rows:
            values = [r.get(c, "") for c in present]
            values = [f"{v:.4f}" if isinstance(v, float) else v for v in values]
            for c in extra:
                v = r.get(c, "")
                if isinstance(v, list):
                    v = ";".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in v)
                values.append(v)
            writer.writerow(values)


def _stats(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    stats = {}
    for metric in METRICS:
        values = np.array([r[metric] for r in rows if metric in r], np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            stats[metric] = {"mean": float(np.mean(values)), "median": float(np.median(values)), "count": int(values.size)}
    return stats


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, median and count of every metric, overall and per number of speakers."""
    counts = sorted({r["num_speakers"] for r in rows})
    return {
        "overall": _stats(rows),
        "by_num_speakers": {str(k): _stats([r for r in rows if r["num_speakers"] == k]) for k in counts},
    }


def format_table(summary: dict[str, Any]) -> str:
    names = {"sdr": "SDR", "sir": "SIR", "sar": "SAR", "sdri": "SDRi", "si_sdr": "SI-SDR", "si_sdri": "SI-SDRi", "stoi": "STOI"}
    groups = [("all", summary.get("overall", {}))]
    groups += [(f"{k} spk", s) for k, s in summary.get("by_num_speakers", {}).items()]
    metrics = [m for m in METRICS if any(m in s for _, s in groups)]
    header = f"{'':<8}{'':<7}{'count':>6}" + "".join(f"{names[m]:>9}" for m in metrics)
    lines = [header]
    for label, stats in groups:
        count = max((s["count"] for s in stats.values()), default=0)
        for i, stat in enumerate(("mean", "median")):
            cells = "".join(
                f"{stats[m][stat]:>9.{3 if m == 'stoi' else 2}f}" if m in stats else f"{'-':>9}" for m in metrics
            )
            lines.append(f"{label if i == 0 else '':<8}{stat:<7}{count if i == 0 else '':>6}{cells}")
    if summary.get("num_skipped"):
        lines.append(f"skipped {summary['num_skipped']} of {summary.get('num_mixtures')} mixtures (reasons in summary.json)")
    return "\n".join(lines)
