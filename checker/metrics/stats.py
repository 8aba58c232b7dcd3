"""The statistics, each with its null.

Everything here is pure numpy on small arrays; reading and looping live in the
engine. The central idea is *cross-fitting*: whatever alignment is searched for
(which submission unit matches which reference unit, which hidden dimension
matches which) is chosen on one half of the columns and scored on the other
half. Under the null of independent weights the held-out half knows nothing of
the choice, so the held-out correlations centre on zero no matter how hard the
search tried; a permutation null on the held-out half gives their spread,
including any dependence between rows. (Zhu et al., ICML 2025, obtain exact
p-values from a related idea: under independent initialisation the matched
permutation is uniform.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln, log_ndtr, logsumexp

N_PERMUTATIONS = 100
N_ROTATIONS = 16
_EPS = 1e-12
LN10 = math.log(10.0)


@dataclass(frozen=True)
class HeldOut:
    """A held-out score with its null: mean correlation, z-score, log10 p-value."""

    score: float
    z: float
    log10_p: float
    n_rows: int
    n_cols: int
    null_mean: float
    null_sd: float


def log10_sf(z: float) -> float:
    """log10 of the upper normal tail, exact far into the tail (no underflow)."""
    return float(log_ndtr(-z)) / LN10


def standardize_columns(m: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> np.ndarray:
    """Remove each column's mean and scale: undoes per-dimension rescaling (e.g. a norm's
    gamma folded into the next matrix) and shifts."""
    mean = m.mean(axis=0) if mean is None else mean
    std = m.std(axis=0) if std is None else std
    return (m - mean) / np.where(std > _EPS, std, 1.0)


def _rownorm(m: np.ndarray) -> np.ndarray:
    c = m - m.mean(axis=1, keepdims=True)
    n = np.linalg.norm(c, axis=1, keepdims=True)
    return c / np.where(n > _EPS, n, 1.0)


def split_columns(m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random half split of ``m`` column positions: (search half, held-out half)."""
    perm = np.random.default_rng(seed).permutation(m)
    return np.sort(perm[: m // 2]), np.sort(perm[m // 2:])


def _null(a: np.ndarray, b: np.ndarray, sign: np.ndarray, seed: int) -> tuple[float, float]:
    """Mean held-out correlation when a's held-out columns are shuffled (correspondence broken)."""
    rng = np.random.default_rng(seed)
    bn = _rownorm(b)
    vals = np.empty(N_PERMUTATIONS)
    for t in range(N_PERMUTATIONS):
        vals[t] = float(np.mean(np.sum(_rownorm(a[:, rng.permutation(a.shape[1])]) * bn, axis=1) * sign))
    return float(vals.mean()), float(vals.std(ddof=1))


def _held_out(score_rows: np.ndarray, a: np.ndarray, b: np.ndarray, sign: np.ndarray, seed: int) -> HeldOut:
    k, m = a.shape
    score = float(score_rows.mean())
    mu, sd = _null(a, b, sign, seed)
    # The analytic spread of a mean of k independent correlations over m values is a floor:
    # a permutation estimate from N draws can come out too small by chance.
    sd = max(sd, 1.0 / math.sqrt(max(k * (m - 1), 1)))
    z = (score - mu) / sd
    return HeldOut(score, z, log10_sf(z), k, m, mu, sd)


def match_rows(ref_rows: np.ndarray, sub: np.ndarray, seed: int) -> tuple[HeldOut, np.ndarray]:
    """Match each reference unit row to its best submission row, score on held-out columns.

    ``ref_rows`` (k x m) and ``sub`` (n x m) are column-standardised and already
    hidden-aligned. Rows may be permuted, pruned or sign-flipped in the
    submission; the search over all n submission rows absorbs that.
    Returns the held-out score and the submission row chosen for each reference row.
    """
    k, m = ref_rows.shape
    search, held = split_columns(m, seed)
    c = _rownorm(ref_rows[:, search]) @ _rownorm(sub[:, search]).T  # k x n
    best = np.argmax(np.abs(c), axis=1)
    sign = np.sign(c[np.arange(k), best])
    sign[sign == 0] = 1.0
    a, b = ref_rows[:, held], sub[best][:, held]
    r = np.sum(_rownorm(a) * _rownorm(b), axis=1) * sign
    return _held_out(r, a, b, sign, seed + 1), best


@dataclass(frozen=True)
class HiddenAlignment:
    """Which submission hidden dimension (with which sign) carries each reference dimension."""

    ref_index: np.ndarray
    sub_index: np.ndarray
    signs: np.ndarray
    evidence: HeldOut | None  # the anchor's own held-out score; None for identity
    #: held-out anchor rows compared under this alignment / under the identity (equal widths
    #: only), each against a hidden-column permutation null: the decisive token statistic
    aligned_rows: HeldOut | None = None
    identity_rows: HeldOut | None = None

    @property
    def is_identity(self) -> bool:
        return (self.evidence is None or (len(self.ref_index) == len(self.sub_index)
                and bool(np.all(self.ref_index == self.sub_index)) and bool(np.all(self.signs > 0))))


def identity_alignment(d: int) -> HiddenAlignment:
    idx = np.arange(d)
    return HiddenAlignment(idx, idx, np.ones(d), None)


def _random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _assign_and_score(r: np.ndarray, s: np.ndarray, search: np.ndarray, held: np.ndarray):
    c = _rownorm(r[search].T) @ _rownorm(s[search].T).T  # d_r x d_s
    ri, si = linear_sum_assignment(-np.abs(c))
    signs = np.sign(c[ri, si])
    signs[signs == 0] = 1.0
    a = r[held][:, ri].T  # dims x held-out anchors
    b = s[held][:, si].T
    return ri, si, signs, np.sum(_rownorm(a) * _rownorm(b), axis=1) * signs


def align_hidden(ref_anchor: np.ndarray, sub_anchor: np.ndarray, seed: int, rotations: int = N_ROTATIONS) -> HiddenAlignment:
    """Recover the hidden permutation and signs from anchor rows both models share.

    Anchors are rows whose meaning is fixed outside the model: the embeddings
    of token strings both vocabularies contain, or the pixel inputs of a patch
    embedding. Hidden dimensions are matched by linear assignment on |corr|
    over half of the anchors; the other half scores the match (AWM aligns with
    shared-token embeddings in the same way).

    The null is a *rotation* null. Models trained independently on similar data
    learn token geometries that are related by a linear map, so the best
    permutation of one onto the other generalises a little (held-out r ~0.3 at
    hidden size 64 in our tiny models). Only a derivation shares the basis
    itself. The reference anchors are therefore rotated at random (same
    geometry, basis destroyed) and the whole search is rerun: the evidence is
    how far the real score stands above those.
    """
    t = ref_anchor.shape[0]
    search, held = split_columns(t, seed)  # split the anchors (rows), not the dimensions
    r = standardize_columns(ref_anchor)
    s = standardize_columns(sub_anchor)
    ri, si, signs, rr = _assign_and_score(r, s, search, held)
    rng = np.random.default_rng(seed + 7)
    null = np.array([float(np.mean(_assign_and_score(standardize_columns(r @ _random_rotation(r.shape[1], rng)), s, search, held)[3]))
                     for _ in range(rotations)])
    k, m = len(rr), len(held)
    score = float(rr.mean())
    sd = max(float(null.std(ddof=1)), 1.0 / math.sqrt(max(k * (m - 1), 1)))
    mu = float(null.mean())
    z = (score - mu) / sd
    aligned = _anchor_rows(r[held][:, ri] * signs, s[held][:, si], seed + 11)
    identity = _anchor_rows(r[held], s[held], seed + 13) if r.shape[1] == s.shape[1] else None
    return HiddenAlignment(ri, si, signs, HeldOut(score, z, log10_sf(z), k, m, mu, sd), aligned, identity)


def _anchor_rows(a: np.ndarray, b: np.ndarray, seed: int) -> HeldOut:
    """Held-out anchors (tokens both vocabularies share, or pixel inputs) compared row by row
    over the hidden dimensions, against a null that shuffles the hidden columns.

    This, not the rotation-null score above, is the decisive evidence for token and patch
    matrices. Adam-trained models have a privileged basis, so independently trained ones
    match each other's columns a little better than a rotated copy's (rotation-null z ~2
    between our independent seeds): good enough to decide whether to adopt an alignment at
    z >= 8, not to calibrate a p-value. A row-wise correlation under an alignment chosen on
    the other anchors has an exact null instead: under independence the column order of
    the held-out rows carries no information.
    """
    r = np.sum(_rownorm(a) * _rownorm(b), axis=1)
    return _held_out(r, a, b, np.ones(len(r)), seed)


def vector_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Pearson, raw cosine) of two vectors. Raw cosine is shown, never decisive:
    norm weights are positive and near-constant, so it is ~0.99 between unrelated models."""
    cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), _EPS))
    ac, bc = a - a.mean(), b - b.mean()
    pear = float(ac @ bc / max(np.linalg.norm(ac) * np.linalg.norm(bc), _EPS))
    return pear, cos


def scale_ratio(sub_sd: np.ndarray, ref_sd: np.ndarray) -> tuple[float, float]:
    """(median ratio, sd of log ratios) of aligned column spreads: how a role was rescaled.

    Descriptive only: column standardisation already makes every test blind to it.
    """
    ok = (sub_sd > _EPS) & (ref_sd > _EPS)
    if not np.any(ok):
        return 1.0, 0.0
    lr = np.log(sub_sd[ok] / ref_sd[ok])
    return float(np.exp(np.median(lr))), float(lr.std())


def fisher_log10_p(log10_ps: list[float]) -> float:
    """Fisher's combination in log space, exact for its integer degrees of freedom.

    The chi-square tail with 2k degrees of freedom is e^-y * sum_{i<k} y^i / i!
    with y = -sum(ln p); computed as a log-sum-exp it never underflows.
    Assumes independent layers: reported, never decisive on its own.
    """
    if not log10_ps:
        return 0.0
    y = -sum(lp * LN10 for lp in log10_ps)
    i = np.arange(len(log10_ps))
    terms = i * math.log(max(y, _EPS)) - gammaln(i + 1)
    return float((-y + logsumexp(terms)) / LN10)


def stouffer(zs: list[float]) -> float:
    return float(sum(zs) / math.sqrt(len(zs))) if zs else 0.0
