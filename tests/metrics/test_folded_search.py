"""The full test's search on bfloat16 matrices: the folded product (no gather, no widened copy)
chooses the units the exact path chooses wherever one unit stands out, falls back to the exact
path for units it cannot score, and keeps the held-out null calibrated. The fold runs where the
CPU has bfloat16 arithmetic; these tests say it has (``bf16_hardware``), so they exercise the fold
on any machine (torch computes the same bfloat16 products, slowly, without the hardware)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from checker.hardware import ALIGN_BYTES
from checker.metrics import rowmatch, stats
from checker.metrics.rowmatch import Candidate, Group, match_candidates

_BLOCKS = rowmatch.unit_blocks


@pytest.fixture(autouse=True)
def _bf16_arithmetic(monkeypatch):
    monkeypatch.setattr(rowmatch, "bf16_hardware", lambda: True)


def _copy(rng, units=3000, hidden=256, noise=0.9):
    ref = rng.standard_normal((units, hidden)) * rng.uniform(0.5, 2.0, hidden) + rng.uniform(-0.3, 0.3, hidden)
    sub = ref[rng.permutation(units)] + noise * rng.standard_normal((units, hidden))
    return ref, sub


def _run(sub: np.ndarray, axis: int, group: Group, monkeypatch, fold: bool = True):
    native = torch.tensor(sub if axis == 0 else sub.T.copy(), dtype=torch.float32).to(torch.bfloat16)
    monkeypatch.setattr(rowmatch, "bf16_hardware", lambda: fold)
    monkeypatch.setattr(rowmatch, "unit_blocks", lambda n, a, device="cpu", stored=False:  # uneven blocks
                        _BLOCKS(n, a, 700 * sub.shape[1], device, stored))
    return match_candidates(native, axis, [group]).groups[0][0]


def _group(ref, hidden, every=23):
    search, held = stats.split_columns(hidden)
    return Group(np.arange(hidden), search, held, (Candidate("c", stats.standardize_columns(ref)[::every]),))


@pytest.mark.parametrize("axis", [0, 1])
def test_the_folded_search_chooses_the_exact_paths_units(axis, monkeypatch):
    rng = np.random.default_rng(3)
    ref, sub = _copy(rng)
    group = _group(ref, 256)
    exact = _run(sub, axis, group, monkeypatch, fold=False)
    folded = _run(sub, axis, group, monkeypatch)
    assert exact.held_out.z > 20
    assert np.array_equal(folded.best, exact.best)
    assert folded.held_out.z == exact.held_out.z and folded.held_out.log10_p == exact.held_out.log10_p


def test_the_folded_correlations_are_the_exact_ones_to_bfloat16_precision(monkeypatch):
    """The fold is algebra, not an approximation beyond rounding: against the exact path, every
    search correlation agrees to a few thousandths (bfloat16 keeps 8 bits)."""
    rng = np.random.default_rng(4)
    ref, sub = _copy(rng, units=700, hidden=128, noise=3.0)
    block = torch.tensor(sub, dtype=torch.float32).to(torch.bfloat16)
    group = _group(ref, 128, every=7)
    sample = block.float()
    search = rowmatch._Search(group, sample, sample * sample, "cpu")
    assert search.fold is not None
    exact = search._exact(block)
    folded, bad = search.fold.scores(block)
    assert not bool(bad.any())
    assert float((folded - exact).abs().max()) < 5e-3


@pytest.mark.parametrize("axis", [0, 1])
def test_units_out_of_bfloat16_range_take_the_exact_path(axis, monkeypatch):
    """Units scaled by 1e19 (squares overflow), by 1e-24 (squares vanish) and a zero unit cannot be
    scored by the folded sums: they are scored the exact way, and the copy is matched as unscaled."""
    rng = np.random.default_rng(5)
    ref, sub = _copy(rng)
    group = _group(ref, 256)
    plain = _run(sub, axis, group, monkeypatch)
    scaled = sub.copy()
    scaled[::5] *= 1e19
    scaled[1::5] *= 1e-24
    scaled[2] = 0.0
    exact = _run(scaled, axis, group, monkeypatch, fold=False)
    got = _run(scaled, axis, group, monkeypatch)
    assert np.array_equal(got.best, exact.best)
    assert np.mean(got.best == plain.best) > 0.95 and got.held_out.z > 0.9 * plain.held_out.z
    sample = torch.tensor(sub[::3], dtype=torch.float32)
    s = rowmatch._Search(group, sample, sample * sample, "cpu")
    _, bad = s.fold.scores(torch.tensor(scaled[:20], dtype=torch.float32).to(torch.bfloat16))
    assert set(torch.nonzero(bad)[:, 0].tolist()) >= {0, 1, 2, 5, 6, 10, 11, 15, 16}


@pytest.mark.parametrize("offset, folded", [(0.9, True), (1.1, False)])
def test_columns_whose_mean_exceeds_an_sd_are_not_folded(offset, folded):
    """Beyond FOLD_MAX_SHIFT sds of column mean the folded sums of squares would cancel in
    bfloat16: the search keeps the exact path (one such search column is enough)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4000, 64))
    x = (x - x.mean(0)) / x.std(0)
    group = _group(x, 64, every=9)
    col = int(group.search[3])
    x[:, col] += offset
    t = torch.tensor(x, dtype=torch.float32)
    search = rowmatch._Search(group, t, t * t, "cpu")
    assert (search.fold is not None) == folded
    t2 = torch.tensor(np.delete(x, col, axis=1), dtype=torch.float32)  # without it: folded
    g2 = _group(np.delete(x, col, axis=1), 63, every=9)
    assert rowmatch._Search(g2, t2, t2 * t2, "cpu").fold is not None


def test_no_fold_without_bfloat16_arithmetic(monkeypatch):
    """On a CPU without bfloat16 arithmetic the products would be slower than the exact path: the
    search keeps float32 there, and chooses the same units."""
    monkeypatch.setattr(rowmatch, "bf16_hardware", lambda: False)
    x = np.random.default_rng(8).standard_normal((300, 32))
    t = torch.tensor(x, dtype=torch.float32)
    assert rowmatch._Search(_group(x, 32, every=5), t, t * t, "cpu").fold is None


@pytest.mark.parametrize("axis", [0, 1])
def test_the_held_out_null_stays_calibrated_through_the_fold(axis, monkeypatch):
    """Over independent bfloat16 pairs the p-values stay uniform: the fold changes only how the
    search correlations are rounded, and the held-out columns are never seen by the search."""
    rng = np.random.default_rng(11)
    units, hidden = 400, 48
    ps = []
    for _ in range(300):
        ref = rng.standard_normal((units, hidden)) * rng.uniform(0.3, 3.0, hidden)
        sub = rng.standard_normal((units, hidden)) * rng.uniform(0.3, 3.0, hidden) + rng.uniform(-0.2, 0.2, hidden)
        group = _group(ref, hidden, every=16)
        ps.append(10 ** _run(sub, axis, group, monkeypatch).held_out.log10_p)
    ps = np.array(ps)
    assert np.mean(ps < 0.01) <= 0.03
    assert 0.02 <= np.mean(ps < 0.05) <= 0.09
    assert 0.4 < np.mean(ps) < 0.6


def test_a_block_not_64_byte_aligned_is_searched_from_an_aligned_copy_with_the_same_result(monkeypatch):
    """A mapped matrix starts wherever its file put it; its blocks are copied into one aligned buffer
    (rowmatch._Stage) before the bfloat16 products, and the search's choice and score are the ones
    the same values give from an aligned matrix, bit for bit."""
    rng = np.random.default_rng(8)
    ref, sub = _copy(rng, units=2000, hidden=128)
    group = _group(ref, 128)
    values = torch.tensor(sub, dtype=torch.float32).to(torch.bfloat16)
    room = torch.empty(values.numel() + 64, dtype=torch.bfloat16)
    skew = next(i for i in range(1, 32) if (room.data_ptr() + 2 * i) % ALIGN_BYTES)
    shifted = room[skew:skew + values.numel()].view(values.shape)
    shifted.copy_(values)
    assert shifted.data_ptr() % ALIGN_BYTES and values.data_ptr() % ALIGN_BYTES == 0
    staged = []
    real = rowmatch._Stage.__call__
    monkeypatch.setattr(rowmatch._Stage, "__call__", lambda self, b: staged.append(real(self, b)) or staged[-1])
    monkeypatch.setattr(rowmatch, "unit_blocks", lambda n, a, device="cpu", stored=False:
                        _BLOCKS(n, a, 700 * 128, device, stored))
    aligned = match_candidates(values, 0, [group]).groups[0][0]
    assert all(b.data_ptr() % ALIGN_BYTES == 0 for b in staged)
    from_aligned = len(staged)
    moved = match_candidates(shifted, 0, [group]).groups[0][0]
    copies = staged[from_aligned:]
    assert len(copies) == 3 and all(b.data_ptr() % ALIGN_BYTES == 0 for b in copies)
    assert copies[0].data_ptr() == copies[1].data_ptr()  # one buffer, reused
    assert np.array_equal(moved.best, aligned.best) and moved.held_out == aligned.held_out
    assert aligned.held_out.z > 10
