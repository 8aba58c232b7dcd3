"""The hidden assignment of wide models is computed without the width x width matrix, and finds
the same matching as the whole-matrix algorithm it replaced."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from checker.metrics import alignment
from checker.metrics.stats import rownorm


def _whole_matrix(a: np.ndarray, b: np.ndarray, large: int):
    """The algorithm before blocking: the whole |a @ b.T|, each row's best column kept where no
    other row wants it, the rest matched exactly in blocks over the free columns."""
    c = a @ b.T
    if c.shape[0] > c.shape[1]:
        bi, ai, sg = _whole_matrix(b, a, large)
        order = np.argsort(ai)
        return ai[order], bi[order], sg[order]
    w = np.abs(c)
    if w.shape[0] <= large:
        ri, ci = linear_sum_assignment(-w)
        return ri, ci, np.sign(c[ri, ci])
    best = np.argmax(w, axis=1)
    counts = np.bincount(best, minlength=w.shape[1])
    sole = counts[best] == 1
    rows, cols = list(np.flatnonzero(sole)), list(best[sole])
    free = np.ones(w.shape[1], dtype=bool)
    free[best[sole]] = False
    pending = np.flatnonzero(~sole)
    for i in range(0, len(pending), large):
        blk = pending[i:i + large]
        avail = np.flatnonzero(free)
        bi, bj = linear_sum_assignment(-w[np.ix_(blk, avail)])
        rows += list(blk[bi])
        cols += list(avail[bj])
        free[avail[bj]] = False
    rows_a, cols_a = np.array(rows), np.array(cols)
    order = np.argsort(rows_a)
    return rows_a[order], cols_a[order], np.sign(c[rows_a[order], cols_a[order]])


def _planted(rng, d_a: int, d_b: int, k: int, noise: float):
    """Rows of b are a's rows permuted and sign-flipped (plus extra rows when wider), with noise."""
    a = rng.standard_normal((d_a, k))
    perm = rng.permutation(d_b)[:d_a]
    b = rng.standard_normal((d_b, k))
    b[perm] = a * rng.choice([-1.0, 1.0], size=(d_a, 1)) + noise * rng.standard_normal((d_a, k))
    return rownorm(a), rownorm(b), perm


@pytest.mark.parametrize("d_a,d_b", [(200, 200), (180, 240), (240, 180)])
@pytest.mark.parametrize("noise", [0.3, 3.0])  # 3.0: most rows in conflict
def test_blocked_assignment_matches_the_whole_matrix(monkeypatch, d_a, d_b, noise):
    monkeypatch.setattr(alignment, "LARGE_WIDTH", 64)
    monkeypatch.setattr(alignment, "_ROW_BLOCK", 48)  # blocks that do not divide the width
    rng = np.random.default_rng(d_a * 7 + d_b + int(noise * 10))
    a, b, _ = _planted(rng, min(d_a, d_b), max(d_a, d_b), 32, noise)
    if d_a > d_b:
        a, b = b, a
    got = alignment.assign_correlated(a, b)
    want = _whole_matrix(a, b, 64)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_blocked_assignment_recovers_a_planted_permutation(monkeypatch):
    monkeypatch.setattr(alignment, "LARGE_WIDTH", 64)
    rng = np.random.default_rng(3)
    a, b, perm = _planted(rng, 300, 300, 64, 0.2)
    ri, si, signs = alignment.assign_correlated(a, b)
    np.testing.assert_array_equal(si, perm[ri])
    assert np.all(np.abs(signs) == 1)


def test_exact_below_the_blocked_width():
    rng = np.random.default_rng(4)
    a, b, _ = _planted(rng, 50, 70, 16, 2.0)
    ri, si, signs = alignment.assign_correlated(a, b)
    c = a @ b.T
    r2, c2 = linear_sum_assignment(-np.abs(c))
    np.testing.assert_array_equal(ri, r2)
    np.testing.assert_array_equal(si, c2)
    np.testing.assert_array_equal(signs, np.sign(c[r2, c2]))


def test_the_wide_rotation_null_never_holds_the_rotated_table_and_gives_the_same_rows(monkeypatch):
    """Wider than LARGE_WIDTH the null's rotated anchors are made a few rows at a time, with the
    column moments summed over the blocks: the kept rows equal the whole table's, standardised."""
    rng = np.random.default_rng(3)
    raw = (rng.standard_normal((700, 384)) * rng.uniform(0.5, 2, 384) + rng.standard_normal(384)).astype(np.float32)
    r = alignment.standardize_columns(raw)
    draw = alignment._rotation_draw(384, np.random.default_rng(9))  # block rotations (above HAAR_MAX)
    keep = np.sort(rng.choice(700, 300, replace=False))
    whole = alignment._rotated_rows(r, draw, keep)  # the whole table, standardised, rotated at once
    monkeypatch.setattr(alignment, "_NULL_ROWS", 97)  # uneven blocks
    mean, sd = alignment._wide_moments(raw)
    np.testing.assert_allclose(mean, raw.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sd, raw.std(axis=0), rtol=1e-5)
    blocked = alignment._rotated_rows(raw, draw, keep, mean, sd)
    assert blocked.shape == (300, 384) and blocked.dtype == np.float32
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=2e-4)
    assert not np.allclose(whole, r[keep], atol=0.1)  # the rows were really turned


def test_a_wide_permuted_anchor_set_is_aligned_through_the_blocked_null(monkeypatch):
    monkeypatch.setattr(alignment, "LARGE_WIDTH", 64)
    monkeypatch.setattr(alignment, "_NULL_ROWS", 100)
    rng = np.random.default_rng(4)
    ref = rng.standard_normal((600, 320)).astype(np.float32)
    perm, signs = rng.permutation(320), rng.choice([-1.0, 1.0], 320).astype(np.float32)
    sub = ref[:, perm] * signs + 0.3 * rng.standard_normal((600, 320)).astype(np.float32)
    al = alignment.align_hidden(ref, sub)
    assert np.array_equal(perm[al.sub_index], al.ref_index)  # sub column j holds ref column perm[j]
    assert al.evidence.z > 8 and al.aligned_rows.z > 8
    independent = alignment.align_hidden(ref, rng.standard_normal((600, 320)).astype(np.float32))
    assert independent.evidence.z < 4


def test_a_wide_reference_table_in_16_bits_aligns_as_its_float32_widening(monkeypatch):
    monkeypatch.setattr(alignment, "LARGE_WIDTH", 64)
    monkeypatch.setattr(alignment, "_NULL_ROWS", 100)
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((500, 288)).astype(np.float16)
    perm = rng.permutation(288)
    sub = ref[:, perm].astype(np.float32) + 0.5 * rng.standard_normal((500, 288)).astype(np.float32)
    a, b = alignment.align_hidden(ref, sub), alignment.align_hidden(ref.astype(np.float32), sub)
    assert np.array_equal(a.sub_index, b.sub_index) and np.array_equal(a.signs, b.signs)
    assert a.evidence == b.evidence and a.aligned_rows == b.aligned_rows
