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
import zlib
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, gammaln, hyp2f1, log_ndtr, logsumexp, ndtri_exp, stdtr

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


def log10_sf(z):
    """log10 of the upper normal tail, exact far into the tail (no underflow): a float for a
    number, an array for an array (the screen's layer pairs at once)."""
    if np.ndim(z) == 0:
        return float(log_ndtr(-z)) / LN10
    return log_ndtr(-np.asarray(z, dtype=np.float64)) / LN10


def log10_t_sf(z: float, dof: float) -> float:
    """log10 of the upper Student-t tail with ``dof`` degrees of freedom, without underflow.

    Beyond double precision it uses the exact identity (DLMF 8.17.8)
    I_x(a, b) = x^a (1-x)^b F(a+b, 1; a+1; x) / (a B(a, b)), x = dof / (dof + z^2), a = dof/2, b = 1/2.
    """
    sf = float(stdtr(dof, -z))  # the t upper tail (scipy.stats' t.logsf is the log of the same, at 70x the cost)
    if z <= 0.0 or (sf > 0.0 and math.log(sf) > -700.0):
        return math.log(sf) / LN10
    x, a = dof / (dof + z * z), dof / 2.0
    ln = (a * math.log(x) + 0.5 * math.log1p(-x) - math.log(a) - float(betaln(a, 0.5))
          + math.log(float(hyp2f1(a + 0.5, 1.0, a + 1.0, x))) - math.log(2.0))
    return ln / LN10


#: The t tail's degrees of freedom are capped here (there t and normal differ by < 0.05 in
#: log10 p wherever p > 1e-15; the cap only makes the tail heavier).
DOF_MAX = 10_000.0


def held_out_log10_p(z: float, sd: float, m: int) -> float:
    """The p-value of a held-out mean correlation ``z`` null sds above 0 (see :func:`held_out_from_sd`).

    Student t with dof = 1 / sd^2 - 2: a mean of row correlations whose exact permutation
    variance is sd^2 counts as that many independent column pairs (k(m-1) for k independent
    rows, m-3 when every row is the same row), and the t tail is heavier than the normal for
    few of them. Never below 1 / m!: the exact permutation p-value counts the observed
    column order itself, so no p smaller than that is possible under this null.
    """
    dof = min(max(1.0 / (sd * sd) - 2.0, 1.0), DOF_MAX)
    return max(log10_t_sf(z, dof), -float(gammaln(m + 1)) / LN10)


def equivalent_z(log10_p: float) -> float:
    """The normal z with the same upper tail as ``log10_p``: what a combination of z-scores
    (Stouffer) must add up so that each term carries its calibrated tail, not its raw z."""
    return max(float(-ndtri_exp(min(log10_p, 0.0) * LN10)), -8.0)  # p = 1 would be z = -inf


def standardize_columns(m: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> np.ndarray:
    """Remove each column's mean and scale: undoes per-dimension rescaling (e.g. a norm's
    gamma folded into the next matrix) and shifts."""
    mean = m.mean(axis=0) if mean is None else mean
    std = m.std(axis=0) if std is None else std
    out, by = m - mean, np.where(std > _EPS, std, 1.0)
    if np.result_type(out, by) != out.dtype:
        return out / by
    out /= by  # in place: one copy of a wide table, not two
    return out


def unit_scaled(rows: np.ndarray, by: np.ndarray | None = None) -> np.ndarray:
    """Each row (a unit) divided by the root mean square of the same row of ``by`` (default
    ``rows``), in float64; a zero row stays zero. A function-preserving rescaling sets each unit's
    scale freely (an FFN unit's input row times c, its output column divided by c): removed before
    any statistic pools units (column moments, Gram matrices)."""
    x = rows.astype(np.float64)
    b = x if by is None else by.astype(np.float64)
    n = np.sqrt(np.mean(b * b, axis=1, keepdims=True)) if b.shape[1] else np.zeros((b.shape[0], 1))
    return x / np.where(n > 0, n, 1.0)


def rownorm(m: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (a zero row stays zero)."""
    c = m - m.mean(axis=1, keepdims=True)
    n = np.linalg.norm(c, axis=1, keepdims=True)
    return c / np.where(n > _EPS, n, 1.0)


def shape_seed(*dims: int) -> int:
    """A seed that depends on shapes only: every random choice in the engine is a function of
    the tensors' shapes (and so of their content), never of names, paths or registry ids, so
    `compare`, `audit` and any registry id give the same figures for the same weights."""
    return int(zlib.crc32(repr(tuple(int(d) for d in dims)).encode()) & 0x7FFFFFFF)


def split_columns(m: int) -> tuple[np.ndarray, np.ndarray]:
    """A random half split of ``m`` column positions, fixed by ``m``: (search half, held-out half).

    The split is a function of the width alone, so the screen (which must only see the
    search half) and the full test agree on it for every tensor of that width.
    """
    perm = np.random.default_rng(shape_seed(m, 1)).permutation(m)
    return np.sort(perm[: m // 2]), np.sort(perm[m // 2:])


def null_moments(an: np.ndarray, bn: np.ndarray, sign: np.ndarray,
                 grams: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float]:
    """Exact mean and sd of the mean held-out correlation under the column-shuffle null.

    ``an`` and ``bn`` are row-centred, unit-norm rows over m held-out columns. When one
    random permutation of the columns is applied to every row of ``an`` (the correspondence
    of columns broken, each row's own values kept), each row correlation has mean 0 and
    Cov(r_i, r_l) = (an_i . an_l)(bn_i . bn_l) / (m - 1), the classical moments of a
    permutation statistic. The variance of their mean therefore needs two k x k Gram
    matrices, not shuffles, and includes whatever dependence the rows have. ``grams`` are
    ``an @ an.T`` and ``bn @ bn.T`` when the caller already has them (signs all +1).
    """
    k, m = an.shape
    if k == 0 or m < 2:
        return 0.0, 1.0
    if grams is not None:
        total = float(np.sum(grams[0] * grams[1]))
    elif k <= m:  # sum_il s_i s_l (a_i.a_l)(b_i.b_l), through two k x k Gram matrices ...
        sa = an * sign[:, None]
        total = float(np.sum((sa @ sa.T) * (bn @ bn.T)))
    else:  # ... or, the same number, ||A^T diag(s) B||_F^2 through one m x m product
        total = float(np.sum(np.square((an * sign[:, None]).T @ bn)))
    return 0.0, gram_null_sd(total, k, m)


def gram_null_sd(total: float, k: int, m: int) -> float:
    """The column-shuffle null's sd of a mean of k row correlations over m columns, from
    ``total`` = sum_il (a_i . a_l)(b_i . b_l) (:func:`null_moments`)."""
    return math.sqrt(max(total, 0.0) / (k * k * (m - 1)))


def normed_rows(rows: np.ndarray, units: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows as the exact-null held-out tests score them, and their Gram matrix: columns
    standardised over the rows themselves (a per-column affine map commutes with the column
    shuffle of the null, and undoes a folded norm gain), then rows centred and unit-norm. With
    ``units`` (rows that are a matrix's units), each row is first scaled (:func:`unit_scaled`)."""
    x = rownorm(standardize_columns(unit_scaled(rows) if units else rows.astype(np.float64)))
    return x, x @ x.T


def held_out_normed(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> HeldOut:
    """The held-out score of rows given as :func:`normed_rows` on both sides, row i against row i,
    with the exact column-shuffle null (each side's Gram matrix computed once by the caller)."""
    (an, ga), (bn, gb) = a, b
    k, m = an.shape
    _, sd = null_moments(an, bn, np.ones(k), grams=(ga, gb))
    return held_out_from_sd(float(np.mean(np.sum(an * bn, axis=1))), sd, k, m)


def permutation_check(a: np.ndarray, b: np.ndarray, sign: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """Monte Carlo draws of the same null (shuffled held-out columns), all in one batched
    product: a check on :func:`null_moments` where its normal tail could be doubted."""
    rng = np.random.default_rng(seed)
    an, bn = rownorm(a), rownorm(b)
    perms = np.stack([rng.permutation(a.shape[1]) for _ in range(draws)])  # draws x m
    out = np.empty(draws)
    for i in range(0, draws, 16):
        chunk = an[:, perms[i:i + 16]]  # k x c x m
        out[i:i + 16] = np.einsum("kcm,km,k->c", chunk, bn, sign) / a.shape[0]
    return out


def held_out_from_sd(score: float, sd: float, k: int, m: int) -> HeldOut:
    """The held-out score of k row correlations over m columns, given the exact null sd (mean 0)."""
    mu = 0.0
    # The spread of a mean of k independent correlations over m values is kept as a floor:
    # rows that happen to be anti-correlated would otherwise narrow the null below it.
    sd = max(sd, 1.0 / math.sqrt(max(k * (m - 1), 1)))
    z = (score - mu) / sd
    # The tail (benchmarks/NULL_TAIL.md): exact permutation mean and variance, a Student-t tail
    # with the variance's effective degrees of freedom, floored at the exact null's 1 / m!.
    # Assumes the held-out columns exchangeable under the null (independent initialisation and
    # training: any order of the hidden units is as likely as any other).
    return HeldOut(score, z, held_out_log10_p(z, sd, m), k, m, mu, sd)


def match_rows(ref_rows: np.ndarray, sub: np.ndarray, search: np.ndarray | None = None,
               held: np.ndarray | None = None) -> tuple[HeldOut, np.ndarray]:
    """Match each reference unit row to its best submission row, score on held-out columns.

    ``ref_rows`` (k x m) and ``sub`` (n x m) are column-standardised and already
    hidden-aligned. Rows may be permuted, pruned or sign-flipped in the
    submission; the search over all n submission rows absorbs that.
    Returns the held-out score and the submission row chosen for each reference row.
    (The engine streams large tensors through :mod:`checker.metrics.rowmatch`, which
    computes the same thing block by block, on units first scaled to unit RMS over the search
    columns: this with ``sub = standardize_columns(unit_scaled(x, by=x[:, search]))``.)
    """
    k, m = ref_rows.shape
    if search is None or held is None:
        search, held = split_columns(m)
    c = rownorm(ref_rows[:, search]) @ rownorm(sub[:, search]).T  # k x n
    best = np.argmax(np.abs(c), axis=1)
    sign = np.sign(c[np.arange(k), best])
    sign[sign == 0] = 1.0
    return held_out_score(ref_rows[:, held], sub[best][:, held], sign), best


def held_out_score(a: np.ndarray, b: np.ndarray, sign: np.ndarray) -> HeldOut:
    """Row-wise held-out correlations of matched rows (signs chosen on the search half)."""
    an, bn = rownorm(a), rownorm(b)  # once: the score and its null read the same normed rows
    k, m = a.shape
    _, sd = null_moments(an, bn, sign)
    return held_out_from_sd(float((np.sum(an * bn, axis=1) * sign).mean()), sd, k, m)


@dataclass(frozen=True, eq=False)
class VectorRefs:
    """Reference vectors stacked once for :func:`vector_stats_many` (float64), with their norms and
    their centred copies: every submission vector of the role and shape reuses them."""

    raw: np.ndarray
    norm: np.ndarray
    centred: np.ndarray
    centred_norm: np.ndarray


def vector_refs(refs: np.ndarray) -> VectorRefs:
    r = refs.astype(np.float64)
    rc = r - r.mean(axis=1, keepdims=True) if r.size else r
    return VectorRefs(r, np.linalg.norm(r, axis=1), rc, np.linalg.norm(rc, axis=1))


def vector_stats_many(a: np.ndarray, refs: VectorRefs) -> list[tuple[float, float]]:
    """(Pearson, raw cosine) of vector ``a`` with each reference vector, in one product. Raw cosine is
    shown, never decisive: norm weights are positive and near-constant, so it is ~0.99 between
    unrelated models."""
    a = a.astype(np.float64)
    cos = (refs.raw @ a) / np.maximum(refs.norm * np.linalg.norm(a), _EPS)
    ac = a - a.mean()
    pear = (refs.centred @ ac) / np.maximum(refs.centred_norm * np.linalg.norm(ac), _EPS)
    return [(float(p), float(c)) for p, c in zip(pear, cos)]


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
