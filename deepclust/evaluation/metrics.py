"""Separation metrics as pure functions on numpy arrays, the way the papers compute them.

* SDR, SIR, SAR: BSS-eval v3, the metric of the Deep Clustering papers, computed
  by ``fast_bss_eval`` (the numbers of ``mir_eval.separation.bss_eval_sources``
  to within 0.01 dB, a test checks it, several times faster). Its permutation is
  the one with the best mean SIR (as BSS-eval v3 does); SDRi = SDR(estimate) -
  SDR(mixture used as every estimate).
* SI-SDR and SI-SDRi (Le Roux, Wisdom, Erdogan, Hershey 2019), zero-mean,
  with the permutation of best mean SI-SDR.
* STOI (pystoi) where pystoi is installed (:func:`stoi_available`), with the
  BSS-eval permutation.

Arrays are (sources, samples) for references and estimates, (samples,) for a
mixture. :func:`best_permutation` solves any "which estimate goes with which
reference" problem from a matrix of pairwise scores.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

# Added to energies in SI-SDR so that silence gives a finite, very low score.
EPS = 1e-10
# A silent estimate (all zeros) makes BSS-eval raise; it is scored as
# white noise at this RMS instead, which gives the very low score it deserves.
SILENT_ESTIMATE_DITHER_RMS = 1e-6
# Exhaustive permutation search up to this many sources; beyond, the
# Hungarian algorithm (same optimum, since the score is a sum over pairs).
MAX_EXHAUSTIVE_SOURCES = 6
# BLAS threads while scoring (see _one_blas_thread).
BLAS_THREADS = 1
# The per-mixture metrics, in report order (``stoi`` only where pystoi is installed).
METRICS = ("sdr", "sir", "sar", "sdri", "si_sdr", "si_sdri", "stoi")

try:  # optional: the STOI column is absent without it
    from pystoi import stoi as _stoi
except ImportError:  # pragma: no cover
    _stoi = None
try:  # installed with scikit-learn; without it BLAS keeps its own thread count
    from threadpoolctl import threadpool_limits as _threadpool_limits
except ImportError:  # pragma: no cover
    _threadpool_limits = None


def stoi_available() -> bool:
    """Whether STOI is computed (pystoi is installed: ``pip install -e ".[stoi]"``)."""
    return _stoi is not None


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
    """The assignment of estimates to references that maximises the summed score.

    ``pairwise`` is a (k, k) matrix: ``pairwise[i, j]`` scores estimate j
    against reference i (higher is better). Returns ``perm`` with ``perm[i]``
    = the estimate for reference i, so ``estimates[list(perm)]`` is in
    reference order. Exhaustive up to ``MAX_EXHAUSTIVE_SOURCES`` (ties go to
    the first permutation in lexicographic order), the Hungarian algorithm
    beyond (same optimum).
    """
    pairwise = np.asarray(pairwise, np.float64)
    if pairwise.ndim != 2 or pairwise.shape[0] != pairwise.shape[1]:
        raise ValueError(f"best_permutation: expected a square (k, k) score matrix. Received: shape {pairwise.shape}")
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
    """A float64 copy with every all-zero row replaced by faint white noise, and those rows' indices."""
    estimates = np.array(estimates, np.float64, copy=True)
    silent = [j for j in range(estimates.shape[0]) if not np.any(estimates[j])]
    rng = np.random.default_rng(0)
    for j in silent:
        estimates[j] = rng.standard_normal(estimates.shape[1]) * SILENT_ESTIMATE_DITHER_RMS
    return estimates, silent


def _one_blas_thread():
    """BSS-eval solves 512k x 512k systems; one BLAS thread does them several times
    faster than a contended pool, and parallelism comes from ``jobs``."""
    if _threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _threadpool_limits(limits=BLAS_THREADS, user_api="blas")


def bss_eval(references: np.ndarray, estimates: np.ndarray) -> dict[str, Any]:
    """BSS-eval v3 on (k, samples) arrays: per-reference ``sdr``, ``sir``, ``sar`` (k,) and
    ``permutation`` (``permutation[i]`` = the estimate matched to reference i, the best mean SIR).

    All-zero estimates have no defined SDR; they are replaced by faint white
    noise (and score accordingly low) so one dead output does not abort an evaluation.
    """
    import fast_bss_eval  # only where scoring happens

    references = np.asarray(references, np.float64)
    estimates, _ = _dither_silent(estimates)
    if references.shape != estimates.shape:
        raise ValueError(
            f"bss_eval: references and estimates must have the same (sources, samples) shape. "
            f"Received: references {references.shape}, estimates {estimates.shape}"
        )
    with _one_blas_thread():
        sdr, sir, sar, perm = fast_bss_eval.bss_eval_sources(references, estimates, compute_permutation=True)
    return {"sdr": np.asarray(sdr), "sir": np.asarray(sir), "sar": np.asarray(sar),
            "permutation": tuple(int(p) for p in perm)}


def mixture_sdr(references: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """BSS-eval v3 SDR (k,) of the mixture itself taken as the estimate of every reference: the
    baseline of SDRi. (Every pairing of identical estimates scores the same.)"""
    references = np.asarray(references, np.float64)
    return bss_eval(references, np.repeat(np.asarray(mixture, np.float64)[None], len(references), axis=0))["sdr"]


def _check_shapes(references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> None:
    if estimates.shape != references.shape or mixture.shape != references.shape[1:]:
        raise ValueError(
            f"score: expected references and estimates of one (sources, samples) shape and a mixture of "
            f"(samples,). Received: references {references.shape}, estimates {estimates.shape}, "
            f"mixture {mixture.shape}"
        )


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
    _check_shapes(references, estimates, mixture)
    k = references.shape[0]
    est = bss_eval(references, estimates)
    base_sdr = mixture_sdr(references, mixture)
    si, si_perm = si_sdr_pit(references, estimates)
    si_mix = np.array([si_sdr(references[i], mixture) for i in range(k)])
    perm = est["permutation"]
    per = {
        "sdr": est["sdr"], "sir": est["sir"], "sar": est["sar"], "sdri": est["sdr"] - base_sdr,
        "si_sdr": si, "si_sdri": si - si_mix,
    }
    if stoi_available() and sample_rate is not None:
        per["stoi"] = np.array([_stoi(references[i], estimates[perm[i]], int(sample_rate)) for i in range(k)])
    result: dict[str, Any] = {name: float(np.mean(values)) for name, values in per.items()}
    result.update({f"{name}_sources": [float(v) for v in values] for name, values in per.items()})
    result["permutation"] = list(perm)
    result["si_sdr_permutation"] = list(si_perm)
    return result
