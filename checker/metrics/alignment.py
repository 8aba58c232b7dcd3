"""Hidden-dimension alignment from anchors: which submission dimension carries each reference one.

Anchors are rows whose meaning is fixed outside the model (token embeddings of shared strings,
pixel inputs of a patch embedding). The permutation and signs are found by linear assignment on
half of the anchors and scored on the other half, against a rotation null; the identity and the
anchor geometry (unchanged by any orthogonal map) decide when no search is needed. Rotations of
the residual stream are :mod:`.rotation`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from checker.hardware import give_back_freed
from checker.metrics.summary import ColumnSums
from checker.metrics.stats import (
    HeldOut, _EPS, held_out_normed, held_out_score, log10_sf, normed_rows, rownorm, shape_seed, split_columns,
    standardize_columns,
)

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
#: Held-out anchors scoring the identity when the geometries are unrelated.
UNRELATED_HELD = 256


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


def _rotation_draw(d: int, rng: np.random.Generator):
    """A random rotation of ``d`` columns, as :func:`_rotate` applies it.

    Up to HAAR_MAX a Haar rotation (QR of a Gaussian matrix); above, two rounds of a
    random permutation followed by random 128 x 128 block rotations, which mix every
    dimension with every other at d * 128 cost per row instead of d * d (and no d x d QR).
    """
    if d <= HAAR_MAX:
        q, rr = np.linalg.qr(rng.standard_normal((d, d)))
        return q * np.sign(np.diag(rr))
    rounds = []
    for _ in range(2):
        perm = rng.permutation(d)
        rounds.append((perm, np.linalg.qr(rng.standard_normal((d // _BLOCK, _BLOCK, _BLOCK)))[0]))
    return rounds


def _rotate(r: np.ndarray, draw) -> np.ndarray:
    """``r`` (t x d) times the rotation ``draw`` of its columns (:func:`_rotation_draw`)."""
    if isinstance(draw, np.ndarray):
        return r @ draw
    out, d = r, r.shape[1]
    full = (d // _BLOCK) * _BLOCK
    for perm, qs in draw:
        out = out[:, perm]
        blocks = out[:, :full].reshape(out.shape[0], -1, _BLOCK).transpose(1, 0, 2)  # b x t x 128
        mixed = np.matmul(blocks, qs).transpose(1, 0, 2).reshape(out.shape[0], full)
        out = np.concatenate([mixed, out[:, full:]], axis=1) if full < d else mixed
    return out


def _assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy's linear assignment (minimal cost), imported on first use: only a permutation search needs it."""
    from scipy.optimize import linear_sum_assignment
    return linear_sum_assignment(cost)


#: Anchor rows rotated at once for the null of a wide alignment (:func:`_rotated_rows`).
_NULL_ROWS = 256


def _rotated_rows(x: np.ndarray, draw, keep: np.ndarray, mean: np.ndarray | None = None,
                  sd: np.ndarray | None = None) -> np.ndarray:
    """Rows ``keep`` of ``standardize_columns(_rotate(standardize_columns(x), draw))``.

    Without ``mean`` and ``sd``, ``x`` is already standardised and is rotated whole. With them (a
    wide table, :func:`_wide_moments`), it is standardised and rotated _NULL_ROWS rows at a time
    and the rotated columns' moments are summed over the blocks, so no whole copy of the table is
    made (256 MiB a copy at 16,384 wide in float32, 512 MiB in float64); the rows are kept in
    ``x``'s dtype: the null decides only whether an alignment is adopted (z >= 8), far from where
    float32 rounding could move it."""
    if mean is None:
        return standardize_columns(_rotate(x, draw))[keep]
    dt = np.promote_types(x.dtype, np.float32)  # a table stored in 16 bits is widened block by block
    sums = ColumnSums(x.shape[1], "cpu")  # the rotated columns of standardised rows: centred already
    out = np.empty((len(keep), x.shape[1]), dtype=dt)
    for i in range(0, len(x), _NULL_ROWS):
        block = _rotate(standardize_columns(x[i:i + _NULL_ROWS], mean, sd), draw).astype(dt, copy=False)
        sums.add(torch.from_numpy(block))
        at = np.flatnonzero((keep >= i) & (keep < i + _NULL_ROWS))
        out[at] = block[keep[at] - i]
    mu, spread, _ = sums.moments(None, len(x))
    out -= mu.astype(dt)  # standardize_columns, in place
    out /= np.where(spread > _EPS, spread, 1.0).astype(dt)
    return out


def _wide_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and population sds of ``x`` (as ``standardize_columns`` takes them) over blocks
    of _NULL_ROWS rows, as a weight matrix's are taken (:class:`summary.ColumnSums`: centred on the
    first block's means, summed in float64), in float32: no whole-table temporary."""
    sums, shift = ColumnSums(x.shape[1], "cpu"), None
    for i in range(0, len(x), _NULL_ROWS):
        block = torch.from_numpy(np.ascontiguousarray(x[i:i + _NULL_ROWS])).to(torch.float32)
        shift = block.mean(dim=0) if shift is None else shift
        sums.add(block - shift)
    mean, sd, _ = sums.moments(shift, len(x))
    return mean, sd


def assign(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-weight matching of the rows of ``c`` to its columns (exact; rows sorted). Wider
    than LARGE_WIDTH on both sides, see :func:`assign_correlated`."""
    ri, ci = _assignment(-c)
    return ri, ci


#: Rows of a wide dimension-correlation matrix computed at once (:func:`assign_correlated`).
_ROW_BLOCK = 1024


def assign_correlated(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``assign(|a @ b.T|)`` and the signs of the chosen entries, for rows of ``a`` (d_a x k) and
    ``b`` (d_b x k), without holding the d_a x d_b matrix when both widths exceed LARGE_WIDTH
    (256 MB at 8192 and 1 GB at 16384 in float32, twice that for the rotation null's float64
    rows, and as much again for its absolute value): it is computed in blocks of rows, once for
    every row's best column and again, over the free columns, for the rows in conflict.

    Wider than LARGE_WIDTH on both sides the matching is blocked: every row whose best column no
    other row wants keeps it (when all rows agree this *is* the optimum: no matching beats every
    row's own maximum), and the rows in conflict are matched by exact assignment in blocks of
    LARGE_WIDTH over the columns still free."""
    if len(a) > len(b):
        bi, ai, signs = assign_correlated(b, a)
        order = np.argsort(ai)
        return ai[order], bi[order], signs[order]
    if len(a) <= LARGE_WIDTH:
        c = a @ b.T
        ri, si = assign(np.abs(c))
        return ri, si, np.sign(c[ri, si])
    best, value = np.empty(len(a), dtype=np.int64), np.empty(len(a))
    for i in range(0, len(a), _ROW_BLOCK):
        c = a[i:i + _ROW_BLOCK] @ b.T
        j = np.argmax(np.abs(c), axis=1)
        best[i:i + len(j)], value[i:i + len(j)] = j, c[np.arange(len(j)), j]
    counts = np.bincount(best, minlength=len(b))
    sole = counts[best] == 1
    rows, cols, vals = [np.flatnonzero(sole)], [best[sole]], [value[sole]]
    free = np.ones(len(b), dtype=bool)
    free[best[sole]] = False
    pending = np.flatnonzero(~sole)
    for i in range(0, len(pending), LARGE_WIDTH):
        blk = pending[i:i + LARGE_WIDTH]
        avail = np.flatnonzero(free)
        # -|a b^T| in the solver's own dtype, made _ROW_BLOCK rows at a time, with the signs kept
        # aside: neither the float32 product nor a copy of it is held beside the costs
        cost = np.empty((len(blk), len(avail)))
        negative = np.empty((len(blk), len(avail)), dtype=bool)
        bt = b[avail].T
        for j in range(0, len(blk), _ROW_BLOCK):
            c = a[blk[j:j + _ROW_BLOCK]] @ bt
            np.less(c, 0, out=negative[j:j + _ROW_BLOCK])
            np.abs(c, out=cost[j:j + _ROW_BLOCK])
        del c, bt
        bi, bj = _assignment(np.negative(cost, out=cost))
        rows.append(blk[bi])
        cols.append(avail[bj])
        vals.append(np.where(negative[bi, bj], cost[bi, bj], -cost[bi, bj]))  # cost holds -|c|: c itself
        del cost, negative
        free[avail[bj]] = False
    rows_a, cols_a, vals_a = (np.concatenate(x) for x in (rows, cols, vals))
    order = np.argsort(rows_a)
    return rows_a[order].astype(int), cols_a[order].astype(int), np.sign(vals_a[order])


def _assign_and_score(r: np.ndarray, s: np.ndarray, search: np.ndarray, held: np.ndarray):
    ri, si, signs = assign_correlated(rownorm(r[search].T), rownorm(s[search].T))
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


def geometry_pick(t: int, n: int = 512) -> np.ndarray:
    """The anchors :func:`geometry_r` compares: the first ``n`` of the search half of ``t``."""
    search, _ = anchor_split(t)
    return search[:n]


def geometry_r(ref_anchor: np.ndarray, sub_anchor: np.ndarray, n: int = 512) -> float:
    """How alike the two anchor geometries are, whatever either hidden basis: the Mantel
    correlation of the anchors' centred cosine matrices (n anchors of the search half).

    Unchanged by any orthogonal transform of the hidden dimension, so a permuted, sign-flipped
    or rotated copy keeps its r (tests/metrics/test_geometry_screen.py: a fine-tuned copy
    1.00, the same rotated 1.00, an independent model 0.04). It has no exact null and decides
    nothing: it only spares the permutation search where the geometries are unrelated.
    """
    pick = geometry_pick(ref_anchor.shape[0], n)
    return geometry_of(geometry_sketch(ref_anchor[pick]), geometry_sketch(sub_anchor[pick]))


def geometry_sketch(rows: np.ndarray):
    """The anchors' centred cosine matrix as a Mantel sketch: one side of :func:`geometry_r`,
    which a caller may keep for the next reference."""
    from checker.metrics.screen import GramSketch

    return GramSketch.of(centred_cosines(rows))


def geometry_of(ref_sketch, sub_sketch) -> float:
    """:func:`geometry_r` from the two sides' :func:`geometry_sketch`."""
    from checker.metrics.screen import mantel_many

    return mantel_many(sub_sketch, [ref_sketch])[0][0]


def held_anchors(t: int, held_max: int = HELD_ANCHORS) -> np.ndarray:
    """The held-out anchors (at most ``held_max``) of ``t`` that :func:`identity_rows` scores."""
    _, held = anchor_split(t)
    return held[:held_max]


@dataclass(frozen=True, eq=False)
class UnrelatedProbe:
    """The reference's side of the unrelated-anchor test (its anchor geometry, and the rows its
    identity comparison holds out) for a token table whose every anchor row the submission shares:
    what :func:`geometry_sketch` and :func:`held_anchors` would take from the whole table, kept at
    registration so that an unrelated reference is not read whole (:func:`unrelated_probe`)."""

    sketch: object  # GramSketch of the rows geometry_pick(t)
    #: normed_rows of the rows held_anchors(t, UNRELATED_HELD) (float64, as the test scores them):
    #: stored rather than the rows, as hashing them costs less than norming them again
    held: tuple[np.ndarray, np.ndarray]


def unrelated_probe(anchor: np.ndarray) -> UnrelatedProbe:
    """The :class:`UnrelatedProbe` of a whole anchor table (t rows, as the registry stores them)."""
    t = anchor.shape[0]
    return UnrelatedProbe(geometry_sketch(anchor[geometry_pick(t)].astype(np.float32)),
                          normed_rows(anchor[held_anchors(t, UNRELATED_HELD)].astype(np.float32)))


def identity_rows(ref_anchor: np.ndarray, sub_anchor: np.ndarray, held_max: int = HELD_ANCHORS) -> HeldOut:
    """Held-out anchors (at most ``held_max``) compared under the identity alignment (equal
    widths), exact null."""
    held = held_anchors(ref_anchor.shape[0], held_max)
    return held_out_normed(normed_rows(ref_anchor[held]), normed_rows(sub_anchor[held]))


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
    # every score reads the search and held-out anchors only: the other rows serve the column
    # moments (and the reference's, the rotations' moments)
    keep = np.union1d(search, held)
    search, held = np.searchsorted(keep, search), np.searchsorted(keep, held)
    width = max(ref_anchor.shape[1], sub_anchor.shape[1])
    if width > LARGE_WIDTH:  # standardised block by block: no whole copy of either table
        moments = _wide_moments(ref_anchor)
        source = (ref_anchor, *moments)
        r = standardize_columns(ref_anchor[keep], *moments)
        s = standardize_columns(sub_anchor[keep], *_wide_moments(sub_anchor))
        give_back_freed()  # the blocks' temporaries: the heap would keep them through the search
    else:
        source = (standardize_columns(ref_anchor),)
        r = source[0][keep]
        s = standardize_columns(sub_anchor)[keep]
    ri, si, signs, rr = _assign_and_score(r, s, search, held)
    # the held-out anchor scores need r, which the null does not: they are taken now and r is
    # let go before the null's rotated copies and assignments are made (128 MiB at 16,384 wide)
    aligned = _anchor_rows(r[held][:, ri] * signs, s[held][:, si])
    identity = _anchor_rows(r[held], s[held]) if r.shape[1] == s.shape[1] else None
    del r
    if width > LARGE_WIDTH:
        give_back_freed()
    rng = np.random.default_rng(seed + 7)
    if rotations is None:
        rotations = N_ROTATIONS if width <= HAAR_MAX else 8 if width <= LARGE_WIDTH else N_ROTATIONS_LARGE
    null = []
    for _ in range(rotations):
        rotated = _rotated_rows(source[0], _rotation_draw(ref_anchor.shape[1], rng), keep, *source[1:])
        null.append(float(np.mean(_assign_and_score(rotated, s, search, held)[3])))
        if width > LARGE_WIDTH:  # each rotation frees a few wide copies the heap would keep
            give_back_freed()
    null = np.array(null)
    del source
    k, m = len(rr), len(held)
    score = float(rr.mean())
    sd = max(float(null.std(ddof=1)), 1.0 / math.sqrt(max(k * (m - 1), 1)))
    mu = float(null.mean())
    z = (score - mu) / sd
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
