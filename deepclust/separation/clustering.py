"""From embeddings to masks: k-means, the speaker count, and the k-means masker.

A masker turns a file's embeddings into one mask per speaker. It sees every
segment of the file once (:meth:`observe`), is fitted once for the whole
file (:meth:`fit`, so speaker n is the same voice from start to end), and then
gives each segment's masks (:meth:`masks`), which sum to one at every bin:

- :class:`KMeansMasker`: k-means (scikit-learn) on a sample of the file's
  active bins, weighted by the mixture's magnitude; binary masks (nearest
  centre) or soft ones (soft k-means). For evaluation its centres can instead
  be the oracle's (:func:`oracle_centers`), which bounds what clustering loses.
- :class:`deepclust.nn.chimera.HeadMasker`: the masks of a Chimera++ mask head, its
  speaker slots kept in the same order from segment to segment by their overlap
  (the mask head's plug-in holds it).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from ..config import SeparateConfig

# Speaker counting considers k clusters only with at least this many active bins each.
MIN_BINS_PER_CLUSTER = 10


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalise along the last axis (the original clustered unnormalised vectors)."""
    norm = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    return embeddings / np.maximum(norm, 1e-8)


def estimate_num_speakers(samples: np.ndarray, max_speakers: int, max_cosine: float,
                          max_cosine_many: float | None = None, seed: int = 0, n_init: int = 3) -> int:
    """How many speakers the embeddings of active bins hold: the most clusters
    (at most ``max_speakers``) whose k-means centres are all less alike than
    ``max_cosine`` (two clusters) or ``max_cosine_many`` (three or more;
    default ``max_cosine``). :func:`centre_cosines` then :func:`count_from_cosines`.

    Deep clustering trains embeddings of different speakers to be orthogonal
    (target affinity 0) and those of one speaker to coincide: split one voice
    in two and the halves' centres stay close; two voices give centres far
    apart. Counting on the centres is more robust than counting eigenvalues of
    the embeddings' second moment, since a network that has not fully
    converged spreads every speaker over a few directions (RESULTS.md,
    "Speaker counting").
    """
    return count_from_cosines(centre_cosines(samples, max_speakers, seed, n_init), max_cosine, max_cosine_many)


def centre_cosines(samples: np.ndarray, max_speakers: int, seed: int = 0, n_init: int = 3) -> dict[int, float]:
    """(n, D) embeddings -> {k: the largest cosine between two of the k centres k-means finds} for
    k = 2 ... ``max_speakers``, leaving out each k with fewer than ``MIN_BINS_PER_CLUSTER`` bins per
    cluster. Apart from :func:`count_from_cosines` so that many thresholds can be tried on one fit."""
    cosines = {}
    for k in range(2, max_speakers + 1):
        if samples.shape[0] >= MIN_BINS_PER_CLUSTER * k:
            centres = normalize(KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(samples).cluster_centers_)
            cosines[k] = float(np.max((centres @ centres.T)[np.triu_indices(k, 1)]))
    return cosines


def count_from_cosines(cosines: dict[int, float], max_cosine: float, max_cosine_many: float | None = None) -> int:
    """The most clusters k of ``cosines`` (:func:`centre_cosines`) whose centres' largest cosine is below
    ``max_cosine`` (k = 2) or ``max_cosine_many`` (k > 2; default ``max_cosine``); 1 if none is."""
    many = max_cosine if max_cosine_many is None else max_cosine_many
    below = [k for k, cosine in cosines.items() if cosine < (max_cosine if k == 2 else many)]
    return max(below, default=1)


def distance_masks(centers: np.ndarray, embeddings: np.ndarray, mask: str, temperature: float) -> np.ndarray:
    """(T, F, D) unit embeddings -> (k, T, F) masks from their distances to ``centers`` (k, D):
    one-hot on the nearest centre (``binary``) or a softmax of minus the squared distance over
    ``temperature`` (``soft``); they sum to one at every bin."""
    k = centers.shape[0]
    flat = embeddings.reshape(-1, embeddings.shape[-1])
    # ||v - c||^2 = ||v||^2 - 2 v.c + ||c||^2; ||v|| = 1 for every bin.
    dist = 1.0 - 2.0 * flat @ centers.T + np.sum(centers**2, axis=1)[None, :]
    if mask == "soft" and k > 1:
        logits = -dist / temperature
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        weights /= weights.sum(axis=1, keepdims=True)
    else:
        weights = np.zeros_like(dist)
        weights[np.arange(dist.shape[0]), np.argmin(dist, axis=1)] = 1.0
    return weights.T.reshape((k,) + embeddings.shape[:-1]).astype(np.float32)


def fit_centers(samples: np.ndarray, num_speakers: int, n_init: int, seed: int = 0,
                weights: np.ndarray | None = None) -> np.ndarray:
    """k-means centres (k, D) of (n, D) embeddings of active bins, each bin counting by its (n,)
    ``weights`` (None: alike). With one speaker, or fewer bins than speakers (a (nearly) silent
    input), the mean, nudged apart so masks are defined."""
    if num_speakers == 1 or samples.shape[0] < num_speakers:
        center = samples.mean(axis=0, keepdims=True) if samples.size else np.zeros((1, samples.shape[-1]), np.float32)
        centers = np.repeat(center, num_speakers, axis=0)
        if num_speakers > 1:  # too few active bins to tell voices apart: split nothing
            centers = centers + np.eye(num_speakers, centers.shape[1], dtype=centers.dtype) * 1e-3
        return centers.astype(np.float32)
    kmeans = KMeans(n_clusters=num_speakers, n_init=n_init, random_state=seed).fit(samples, sample_weight=weights)
    return kmeans.cluster_centers_.astype(np.float32)


def oracle_centers(samples: np.ndarray, labels: np.ndarray, num_speakers: int,
                   weights: np.ndarray | None = None) -> np.ndarray:
    """(k, D) unit centres of (n, D) embeddings whose (n,) ``labels`` (0 to k-1) name the reference
    speaker loudest at each bin: each speaker's mean embedding, each bin counting by its (n,)
    ``weights`` (None: alike); a speaker loud at no bin gets a zero centre, as far from every bin.

    Masks from these centres instead of k-means's show what the embeddings give when clustering
    is ideal: the gap to k-means is what clustering loses, the gap to the ideal binary mask what
    the embeddings lose (the oracle centres, or attractors, of Luo, Chen and Mesgarani's
    DANet, 2017)."""
    weights = np.ones(len(samples), np.float32) if weights is None else np.asarray(weights, np.float32)
    onehot = (np.asarray(labels)[:, None] == np.arange(num_speakers)[None, :]) * weights[:, None]
    return normalize(onehot.T @ samples).astype(np.float32)  # normalize leaves a zero sum zero


class KMeansMasker:
    """Binary or soft k-means masks, the centres fitted once on a sample of the whole file's active bins."""

    def __init__(self, cfg: SeparateConfig, seed: int = 0):
        self.cfg, self.seed = cfg, seed
        self.centers: np.ndarray | None = None

    def observe(self, index: int, start: int, stop: int, spec: np.ndarray, head: np.ndarray | None) -> None:
        """k-means needs nothing but the sampled embeddings."""

    def fit(self, samples: np.ndarray, num_speakers: int, magnitudes: np.ndarray | None = None) -> None:
        """Centres of the (n, D) sampled embeddings, weighted by their bins' (n,) mixture ``magnitudes``
        where ``kmeans_weighting`` asks for it."""
        self.centers = fit_centers(samples, num_speakers, self.cfg.kmeans_init, self.seed, self._weights(magnitudes))

    def fit_oracle(self, samples: np.ndarray, labels: np.ndarray, num_speakers: int,
                   magnitudes: np.ndarray | None = None) -> None:
        """The oracle's centres (:func:`oracle_centers`) of the (n, D) sampled embeddings from their (n,)
        reference ``labels``, weighted as :meth:`fit` weighs them."""
        self.centers = oracle_centers(samples, labels, num_speakers, self._weights(magnitudes))

    def _weights(self, magnitudes: np.ndarray | None) -> np.ndarray | None:
        """Each sampled bin's weight in fitting the centres: its mixture magnitude, or None (alike),
        as ``kmeans_weighting`` says."""
        return magnitudes if self.cfg.kmeans_weighting == "magnitude" else None

    def masks(self, index: int, embeddings: np.ndarray, head: np.ndarray | None) -> np.ndarray:
        return distance_masks(self.centers, embeddings, self.cfg.mask, self.cfg.soft_temperature)
