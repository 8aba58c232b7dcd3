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
from scipy.optimize import linear_sum_assignment
from scipy.special import betaln, gammaln, hyp2f1, log_ndtr, logsumexp, ndtri_exp
from scipy.stats import t as t_dist

N_ROTATIONS = 16
#: Above this width the assignment is solved in blocks (an exact 8k x 8k assignment costs
#: minutes) and the rotation null uses fewer rotations.
LARGE_WIDTH = 2048
N_ROTATIONS_LARGE = 4
#: Above this width a null rotation is block-structured instead of a Haar rotation
#: (no d x d QR, d * 128 work per row).
HAAR_MAX = 256
#: The assignment search uses at most this many anchors, and at most HELD_ANCHORS of the
#: others score it (a mean of 1,024 row correlations already puts a copy at z > 30; the exact
#: null costs held^2 x width).
SEARCH_ANCHORS = 1024
HELD_ANCHORS = 1024
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


def log10_t_sf(z: float, dof: float) -> float:
    """log10 of the upper Student-t tail with ``dof`` degrees of freedom, without underflow.

    Beyond double precision it uses the exact identity (DLMF 8.17.8)
    I_x(a, b) = x^a (1-x)^b F(a+b, 1; a+1; x) / (a B(a, b)), x = dof / (dof + z^2), a = dof/2, b = 1/2.
    """
    if z <= 0.0:
        return float(t_dist.logsf(z, dof)) / LN10
    lp = float(t_dist.logsf(z, dof))
    if math.isfinite(lp) and lp > -700.0:
        return lp / LN10
    x, a = dof / (dof + z * z), dof / 2.0
    ln = (a * math.log(x) + 0.5 * math.log1p(-x) - math.log(a) - float(betaln(a, 0.5))
          + math.log(float(hyp2f1(a + 0.5, 1.0, a + 1.0, x))) - math.log(2.0))
    return ln / LN10


#: The t tail's degrees of freedom are capped here (there t and normal differ by < 0.05 in
#: log10 p wherever p > 1e-15; the cap only makes the tail heavier).
DOF_MAX = 10_000.0


def held_out_log10_p(z: float, sd: float, m: int) -> float:
    """The p-value of a held-out mean correlation ``z`` null sds above 0 (see :func:`_held_out`).

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
    return (m - mean) / np.where(std > _EPS, std, 1.0)


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


def null_moments(an: np.ndarray, bn: np.ndarray, sign: np.ndarray) -> tuple[float, float]:
    """Exact mean and sd of the mean held-out correlation under the column-shuffle null.

    ``an`` and ``bn`` are row-centred, unit-norm rows over m held-out columns. When one
    random permutation of the columns is applied to every row of ``an`` (the correspondence
    of columns broken, each row's own values kept), each row correlation has mean 0 and
    Cov(r_i, r_l) = (an_i . an_l)(bn_i . bn_l) / (m - 1), the classical moments of a
    permutation statistic. The variance of their mean therefore needs two k x k Gram
    matrices, not shuffles, and includes whatever dependence the rows have.
    """
    k, m = an.shape
    if k == 0 or m < 2:
        return 0.0, 1.0
    if k <= m:  # sum_il s_i s_l (a_i.a_l)(b_i.b_l), through two k x k Gram matrices ...
        sa = an * sign[:, None]
        total = float(np.sum((sa @ sa.T) * (bn @ bn.T)))
    else:  # ... or, the same number, ||A^T diag(s) B||_F^2 through one m x m product
        total = float(np.sum(np.square((an * sign[:, None]).T @ bn)))
    var = total / (k * k * (m - 1))
    return 0.0, math.sqrt(max(var, 0.0))


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


def _held_out(score_rows: np.ndarray, a: np.ndarray, b: np.ndarray, sign: np.ndarray) -> HeldOut:
    k, m = a.shape
    _, sd = null_moments(rownorm(a), rownorm(b), sign)
    return held_out_from_sd(float(score_rows.mean()), sd, k, m)


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
    computes the same thing block by block.)
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
    r = np.sum(rownorm(a) * rownorm(b), axis=1) * sign
    return _held_out(r, a, b, sign)


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
    searched: bool = True  # False: the anchor geometries were unrelated, no permutation was searched
    #: an orthogonal map of the residual stream (submission hidden x reference hidden): the
    #: submission's units x hidden rows times it are in the reference's basis; ``*_index`` are then
    #: the identity (see checker/metrics/rotation.py). None for a permutation alignment.
    rotation: np.ndarray | None = None
    #: with ``rotation``: the reference's map into the same comparison space (reference hidden x
    #: columns), for a projection onto shared anchors; None when ``rotation`` lands in the
    #: reference's own basis
    ref_map: np.ndarray | None = None

    @property
    def is_identity(self) -> bool:
        return self.rotation is None and (self.evidence is None or (len(self.ref_index) == len(self.sub_index)
                and bool(np.all(self.ref_index == self.sub_index)) and bool(np.all(self.signs > 0))))


def identity_alignment(d: int) -> HiddenAlignment:
    idx = np.arange(d)
    return HiddenAlignment(idx, idx, np.ones(d), None)


_BLOCK = 128


def _random_rotation(r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``r`` (t x d) times a random rotation of its columns.

    Up to HAAR_MAX a Haar rotation (QR of a Gaussian matrix); above, two rounds of a
    random permutation followed by random 128 x 128 block rotations, which mix every
    dimension with every other at d * 128 cost per row instead of d * d (and no d x d QR).
    """
    d = r.shape[1]
    if d <= HAAR_MAX:
        q, rr = np.linalg.qr(rng.standard_normal((d, d)))
        return r @ (q * np.sign(np.diag(rr)))
    out = r
    for _ in range(2):
        out = out[:, rng.permutation(d)]
        full = (d // _BLOCK) * _BLOCK
        blocks = out[:, :full].reshape(out.shape[0], -1, _BLOCK).transpose(1, 0, 2)  # b x t x 128
        qs = np.linalg.qr(rng.standard_normal((blocks.shape[0], _BLOCK, _BLOCK)))[0]
        mixed = np.matmul(blocks, qs).transpose(1, 0, 2).reshape(out.shape[0], full)
        out = np.concatenate([mixed, out[:, full:]], axis=1) if full < d else mixed
    return out


def assign(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-weight matching of the rows of ``c`` to its columns (rows <= columns after a
    transpose), exact up to LARGE_WIDTH rows.

    Wider, in blocks: every row whose best column no other row wants keeps it (when all rows
    agree this *is* the optimum: no matching beats every row's own maximum), and the rows in
    conflict are matched by exact assignment in blocks of 1024 over the columns still free.
    """
    if c.shape[0] > c.shape[1]:
        ci, ri = assign(c.T)
        order = np.argsort(ri)
        return ri[order], ci[order]
    if c.shape[0] <= LARGE_WIDTH:
        return linear_sum_assignment(-c)
    best = np.argmax(c, axis=1)
    counts = np.bincount(best, minlength=c.shape[1])
    sole = counts[best] == 1
    rows, cols = list(np.flatnonzero(sole)), list(best[sole])
    free = np.ones(c.shape[1], dtype=bool)
    free[best[sole]] = False
    pending = np.flatnonzero(~sole)
    for i in range(0, len(pending), LARGE_WIDTH):
        blk = pending[i:i + LARGE_WIDTH]
        avail = np.flatnonzero(free)
        bi, bj = linear_sum_assignment(-c[np.ix_(blk, avail)])
        rows += list(blk[bi])
        cols += list(avail[bj])
        free[avail[bj]] = False
    rows_a, cols_a = np.array(rows, dtype=int), np.array(cols, dtype=int)
    order = np.argsort(rows_a)
    return rows_a[order], cols_a[order]


def _assign_and_score(r: np.ndarray, s: np.ndarray, search: np.ndarray, held: np.ndarray):
    c = rownorm(r[search].T) @ rownorm(s[search].T).T  # d_r x d_s
    ri, si = assign(np.abs(c))
    signs = np.sign(c[ri, si])
    signs[signs == 0] = 1.0
    a = r[held][:, ri].T  # dims x held-out anchors
    b = s[held][:, si].T
    return ri, si, signs, np.sum(rownorm(a) * rownorm(b), axis=1) * signs


def anchor_split(t: int) -> tuple[np.ndarray, np.ndarray]:
    """Anchors (rows) for the search and held out for scoring: disjoint halves, each capped."""
    search, held = split_columns(t)
    return search[:SEARCH_ANCHORS], held[:HELD_ANCHORS]


def centred_cosines(x: np.ndarray) -> np.ndarray:
    """Cosines between rows after removing the mean row: unchanged by any orthogonal map of the
    columns (rotations, permutations, sign flips), unlike per-column scaling or row centring."""
    c = x - x.mean(axis=0)
    n = np.linalg.norm(c, axis=1, keepdims=True)
    c = c / np.where(n > _EPS, n, 1.0)
    return c @ c.T


def geometry_r(ref_anchor: np.ndarray, sub_anchor: np.ndarray, n: int = 512) -> float:
    """How alike the two anchor geometries are, whatever either hidden basis: the Mantel
    correlation of the anchors' centred cosine matrices (n anchors of the search half).

    Unchanged by any orthogonal transform of the hidden dimension, so a permuted, sign-flipped
    or rotated copy keeps its r (tests/metrics/test_geometry_screen.py: a fine-tuned copy
    1.00, the same rotated 1.00, an independent model 0.04). It has no exact null and decides
    nothing: it only spares the permutation search where the geometries are unrelated.
    """
    from checker.metrics.screen import GramSketch, mantel_many

    search, _ = anchor_split(ref_anchor.shape[0])
    pick = search[:n]
    a, b = centred_cosines(ref_anchor[pick]), centred_cosines(sub_anchor[pick])
    return mantel_many(GramSketch.of(b), [GramSketch.of(a)])[0][0]


def identity_rows(ref_anchor: np.ndarray, sub_anchor: np.ndarray, held_max: int = HELD_ANCHORS) -> HeldOut:
    """Held-out anchors (at most ``held_max``) compared under the identity alignment (equal
    widths), exact null."""
    _, held = anchor_split(ref_anchor.shape[0])
    held = held[:held_max]
    # Columns standardised over the held-out anchors themselves: a per-column affine map commutes
    # with the column shuffle of the null, and only these rows are touched.
    return _anchor_rows(standardize_columns(ref_anchor[held]), standardize_columns(sub_anchor[held]))


def identity_only(ident: HeldOut, d: int, evidence: HeldOut | None = None) -> HiddenAlignment:
    """The identity alignment, with no permutation searched: either the held-out anchors already
    confirm it (``evidence`` is then ``ident`` itself, z >= the adoption level), or the anchor
    geometries are unrelated (``evidence`` records r with z = 0: never adopted)."""
    idx = np.arange(d)
    return HiddenAlignment(idx, idx, np.ones(d), evidence or HeldOut(0.0, 0.0, 0.0, 0, 0, 0.0, 1.0), ident, ident,
                           searched=False)


def align_hidden(ref_anchor: np.ndarray, sub_anchor: np.ndarray, rotations: int | None = None) -> HiddenAlignment:
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
    how far the real score stands above those. Above LARGE_WIDTH the null uses
    N_ROTATIONS_LARGE rotations: it decides only whether an alignment is adopted
    (z >= 8), and a derived model stands far above it. The search uses at most
    SEARCH_ANCHORS anchors; every other anchor is held out.
    """
    t = ref_anchor.shape[0]
    seed = shape_seed(t, ref_anchor.shape[1], sub_anchor.shape[1])
    search, held = anchor_split(t)
    r = standardize_columns(ref_anchor)
    s = standardize_columns(sub_anchor)
    ri, si, signs, rr = _assign_and_score(r, s, search, held)
    rng = np.random.default_rng(seed + 7)
    if rotations is None:
        width = max(r.shape[1], s.shape[1])
        rotations = N_ROTATIONS if width <= HAAR_MAX else 8 if width <= LARGE_WIDTH else N_ROTATIONS_LARGE
    null = np.array([float(np.mean(_assign_and_score(standardize_columns(_random_rotation(r, rng)), s, search, held)[3]))
                     for _ in range(rotations)])
    k, m = len(rr), len(held)
    score = float(rr.mean())
    sd = max(float(null.std(ddof=1)), 1.0 / math.sqrt(max(k * (m - 1), 1)))
    mu = float(null.mean())
    z = (score - mu) / sd
    aligned = _anchor_rows(r[held][:, ri] * signs, s[held][:, si])
    identity = _anchor_rows(r[held], s[held]) if r.shape[1] == s.shape[1] else None
    return HiddenAlignment(ri, si, signs, HeldOut(score, z, log10_sf(z), k, m, mu, sd), aligned, identity)


def _anchor_rows(a: np.ndarray, b: np.ndarray) -> HeldOut:
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
    return held_out_score(a, b, np.ones(a.shape[0]))


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
