"""The full row-matching test, streamed over a submission matrix for many candidates at once.

This is :func:`checker.metrics.stats.match_rows` computed block by block:

- at most ``MOMENT_SAMPLE`` units taken evenly through the matrix (all units when there are no
  more) are read once, as float32;
- every unit is first divided by its root mean square over the group's search columns: a
  function-preserving rescaling of single units (an FFN unit's input row times c, its output
  column divided by c; a value row and its output column; a query row and its key row) sets
  each unit's scale freely, and must neither dominate the column moments nor overflow them;
- the column moments of the sampled units, so scaled, standardise every unit;
- every candidate reference's sampled unit rows (standardised, hidden-aligned) are stacked and
  row-normalised once;
- each block of submission units gives only its search-half columns, gathered in the stored
  dtype, then widened, scaled and standardised;
- one product per block gives the search-half correlations of every reference row with every
  unit in the block; the best unit per reference row is kept. Where bfloat16 arithmetic is in
  hardware (AMX, AVX512-BF16, a GPU), a bfloat16 block is not gathered nor widened: the scaling
  and standardisation are folded into the reference side, and the block as stored is multiplied
  by it in bfloat16 (:class:`_Fold`);
- after the pass, the chosen units' held-out columns, scaled and standardised the same way,
  score the match.

The moments do not depend on how the pass is cut into blocks (CPU and GPU agree), nor on the
reference: a fixed affine map of each column, after a scale per unit taken from the search
columns, commutes with the column shuffle of the held-out null, and the choice of units sees the
search columns only, so the null holds whatever standardised them, and however precisely the
choice was computed. The folded product rounds the reference side, the squares and the sums to
bfloat16 (the search correlations move by up to about 0.1-0.3%, more where column means approach
FOLD_MAX_SHIFT sds): it can only pick another unit where two nearly tie, which is also where
two machines (hardware and summation order) may differ; the held-out score is exact either way.
Memory is the moment sample and its square, one block of search columns (or a bfloat16 block's
square and the folded reference rows) and the stacked reference rows; the products run in torch
on the chosen device.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from checker.hardware import ALIGN_BYTES, bf16_hardware
from checker.metrics import stats
from checker.metrics.summary import (row_norms, take_columns, unit_blocks, unit_rows, unit_scaled, unit_stride,
                                     units_by_hidden_shape)

_EPS = 1e-12
_TINY_SQ = 1e-30  # a float32 sum of squares below this has lost precision to underflow
_CANCEL = 1e3  # mean^2 / variance beyond which E[y^2] - E[y]^2 in float32 loses digits
MOMENT_SAMPLE = 2048  # units whose column moments standardise the search half of a larger matrix
#: The folded product (:class:`_Fold`) is used only where every search column's mean is within this
#: many of its sds: its sums of squares expand around the means, which bfloat16 rounding would
#: swamp if they dwarfed the spread.
FOLD_MAX_SHIFT = 1.0


@dataclass(frozen=True)
class Candidate:
    """Reference rows to match against one submission matrix under one alignment."""

    key: object  # the caller's handle
    ref_rows: np.ndarray  # k x aligned dims, standardised, aligned, signs applied


@dataclass(frozen=True)
class Group:
    """Candidates sharing one hidden alignment: ``sub_index`` maps aligned positions to submission
    columns; ``search`` and ``held`` are aligned positions."""

    sub_index: np.ndarray
    search: np.ndarray
    held: np.ndarray
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Matched:
    key: object
    held_out: stats.HeldOut
    best: np.ndarray  # submission unit chosen for each reference row


@dataclass(frozen=True, eq=False)
class Matches:
    """The raw column moments of the matrix (float32, population sd; over the sampled units:
    descriptive, they report how a role was rescaled) and each group's matches."""

    col_mean: np.ndarray
    col_std: np.ndarray
    groups: tuple[tuple[Matched, ...], ...]


def _rownorm_t(x: torch.Tensor) -> torch.Tensor:
    c = x - x.mean(dim=1, keepdim=True)
    n = torch.linalg.vector_norm(c, dim=1, keepdim=True)
    return c / torch.where(n > _EPS, n, torch.ones_like(n))


def _weighted_moments(w: torch.Tensor, sample: torch.Tensor, sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Column means and population sds of the units scaled by ``w`` (``sq``: the sample squared), as
    weighted sums; None where float32 cannot give them exactly enough: a non-finite sum, or a column
    whose mean dwarfs its spread (over 30 sds), where E[y^2] - E[y]^2 would cancel."""
    n = sample.shape[0]
    mean = (w @ sample) / n
    var = (w * w) @ sq / n - mean * mean
    if not (bool(torch.isfinite(var).all()) and bool(torch.isfinite(mean).all())):
        return None
    var = torch.clamp(var, min=0.0)
    return None if bool((mean * mean > _CANCEL * var).any()) else (mean, torch.sqrt(var))


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and population sds of ``x`` in float64 (any finite float32 value squares
    within range), returned as float32: the exact path where :func:`_weighted_moments` cannot be
    used."""
    sd, mean = torch.std_mean(x.double(), dim=0, correction=0)
    return mean.to(x.dtype), sd.to(x.dtype)


def sampled_units(native: torch.Tensor, units_axis: int, device: str = "cpu") -> torch.Tensor:
    """Every k-th unit (float32, on ``device``), k the smallest step that takes at most
    MOMENT_SAMPLE units: all units when there are no more. May be a view of a float32 matrix."""
    units, _ = units_by_hidden_shape(tuple(native.shape), units_axis)
    return unit_stride(native, units_axis, -(-units // MOMENT_SAMPLE), device)


def group_moments(sample: torch.Tensor, cols: torch.Tensor, sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and population sds of the sampled units, each unit first scaled to unit root
    mean square over ``cols`` (a group's search columns), as its units are in the pass.

    As weighted sums (:func:`_weighted_moments`; ``sq`` is the sample squared, if already made; no
    scaled copy) where that is exact enough; the sample is scaled explicitly when its squares
    leave float32's range (units scaled by 1e19, or by 1e-24: a nonzero unit whose squares sum to
    0), or when a column's mean dwarfs its spread."""
    sq = sample * sample if sq is None else sq
    on = torch.zeros(sample.shape[1], dtype=sample.dtype, device=sample.device)
    on[cols] = 1.0
    ss = sq @ on  # each unit's sum of squares over the search columns
    zero = ss == 0
    fast = bool(torch.isfinite(ss).all()) and bool((ss[~zero] >= _TINY_SQ).all())
    if fast and bool(zero.any()):  # a unit without spread must really be zero on the search columns
        fast = not bool(take_columns(sample[zero], cols).any())
    if fast:
        got = _weighted_moments(torch.sqrt(len(cols) / torch.where(zero, torch.full_like(ss, float(len(cols))), ss)),
                                sample, sq)
        if got is not None:
            return got
    return _moments(unit_scaled(sample, by=take_columns(sample, cols)))


class _Search:
    """One group's running best: search-half correlations of its stacked reference rows."""

    def __init__(self, g: Group, sample: torch.Tensor, sq: torch.Tensor, device: str):
        self.group = g
        cols = np.asarray(g.sub_index, dtype=np.int64)[np.asarray(g.search, dtype=np.int64)]
        order = np.argsort(cols, kind="stable")  # gathered in storage order (faster); the rows follow
        self.cols = torch.as_tensor(cols[order], device=device)
        mean, sd = group_moments(sample, self.cols, sq)
        self.col_mean, self.col_std = mean.cpu().numpy(), sd.cpu().numpy()
        self.shift = mean[self.cols]
        self.inv = 1.0 / torch.where(sd[self.cols] > _EPS, sd[self.cols], torch.ones_like(sd[self.cols]))
        ref = np.concatenate([c.ref_rows[:, g.search[order]] for c in g.candidates] or [np.zeros((0, len(cols)))],
                             axis=0).astype(np.float32)
        self.r = _rownorm_t(torch.as_tensor(ref, device=device))
        k = self.r.shape[0]
        self.best_abs = torch.full((k,), -1.0, device=device)
        self.best_val = torch.zeros(k, device=device)
        self.best_idx = torch.zeros(k, dtype=torch.int64, device=device)
        self.hidden = sample.shape[1]

    @cached_property
    def fold(self) -> _Fold | None:
        """The folded product (:class:`_Fold`), or None where the search keeps the exact path: a
        CPU without bfloat16 arithmetic (there the products would be slower than the exact path,
        not faster), a search column whose mean exceeds FOLD_MAX_SHIFT sds, or a column repeated.
        Built when a bfloat16 matrix's pass starts: a search of another dtype never makes it."""
        usable = self.cols.device.type != "cpu" or bf16_hardware()
        usable = usable and bool((self.shift.abs() * self.inv <= FOLD_MAX_SHIFT).all())
        usable = usable and len(torch.unique(self.cols)) == len(self.cols)
        return _Fold(self.r, self.cols, self.shift, self.inv, self.hidden) if usable else None

    def _exact(self, block: torch.Tensor) -> torch.Tensor:
        """Search correlations (reference rows x units) from the search columns gathered, widened,
        scaled and standardised; the reference rows are centred, so the product needs no per-unit
        centring, and the unit's centred norm comes from its sums."""
        z = unit_scaled(take_columns(block, self.cols).to(torch.float32), inplace=True)  # a fresh copy
        z.sub_(self.shift).mul_(self.inv)
        s1 = z.sum(dim=1)
        norm = torch.sqrt(torch.clamp(row_norms(z) ** 2 - s1 * s1 / z.shape[1], min=0.0))
        return (self.r @ z.T) / torch.where(norm > _EPS, norm, torch.ones_like(norm))

    def update(self, start: int, block: torch.Tensor) -> None:
        """``block``: units x hidden as stored. A bfloat16 block goes through the folded product
        (units it cannot score, the exact way); any other, the exact way."""
        if block.dtype == torch.bfloat16 and self.fold is not None:
            c, bad = self.fold.scores(block)
            if bool(bad.any()):
                at = torch.nonzero(bad)[:, 0]
                c[:, at] = self._exact(block.index_select(0, at))
        else:
            c = self._exact(block)
        a, j = c.abs().max(dim=1)
        better = a > self.best_abs
        self.best_abs = torch.where(better, a, self.best_abs)
        self.best_val = torch.where(better, c.gather(1, j[:, None])[:, 0], self.best_val)
        self.best_idx = torch.where(better, j + start, self.best_idx)


class _Fold:
    """The search correlations of a bfloat16 block, from the block as stored.

    Unit u's standardised search row is z_c = a_c x_c / rho_u - a_c m_c (a = 1/sd, m the column
    means, rho_u the unit's root mean square over the search columns), so with the reference rows r:

        r . z = (r a) . x / rho - r . (a m)
        sum z = a . x / rho - sum a m
        sum z^2 = (a^2) . x^2 / rho^2 - 2 (a^2 m) . x / rho + sum (a m)^2,   rho^2 = 1_search . x^2 / n

    Two products of the block (and of its square) with reference-side rows of full width, zero off
    the search columns, give every term: no gather, no widened copy, and bfloat16 products
    (:func:`_bf16_products`; ``w``, ``v`` and the squares are rounded to bfloat16 too). Units whose
    squares leave bfloat16's range (a unit scaled by 1e19 or 1e-20, a zero unit) are marked for the
    exact path, which scores them on their search columns; so is a unit with a value beyond 1.8e19
    in a held-out column (0 x inf is NaN in the products): only how its search correlations are
    rounded depends on that, never which columns the choice sees."""

    def __init__(self, r: torch.Tensor, cols: torch.Tensor, shift: torch.Tensor, inv: torch.Tensor, hidden: int):
        k, dev = r.shape[0], r.device
        self.k, self.n = k, len(cols)
        b = inv * shift
        w = torch.zeros((k + 2, hidden), dtype=torch.float32, device=dev)
        w[:k, cols] = r * inv
        w[k, cols] = inv
        w[k + 1, cols] = inv * b
        v = torch.zeros((2, hidden), dtype=torch.float32, device=dev)
        v[0, cols] = 1.0
        v[1, cols] = inv * inv
        self.w, self.v = w.to(torch.bfloat16), v.to(torch.bfloat16)
        self.dot_shift = r @ b
        self.sum_shift = b.sum()
        self.sq_shift = (b * b).sum()

    def scores(self, block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(search correlations, reference rows x units; the units to score the exact way)."""
        k, n = self.k, self.n
        p = _bf16_products(block, self.w)
        q = _bf16_products(block.square(), self.v)
        bad = ~(torch.isfinite(q).all(dim=1) & torch.isfinite(p).all(dim=1)) | (q[:, 0] < _TINY_SQ)
        f = 1.0 / torch.sqrt(torch.where(bad, torch.full_like(q[:, 0], float(n)), q[:, 0]) / n)
        s1 = f * p[:, k] - self.sum_shift
        s2 = f * f * q[:, 1] - 2.0 * f * p[:, k + 1] + self.sq_shift
        norm = torch.sqrt(torch.clamp(s2 - s1 * s1 / n, min=0.0))
        dot = p[:, :k].mul_(f[:, None]).sub_(self.dot_shift)
        return (dot / torch.where(norm > _EPS, norm, torch.ones_like(norm))[:, None]).T, bad


def _bf16_products(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``a @ w.T`` for bfloat16 ``a`` and ``w``, as float32: the products exact, summed in float32,
    the sums rounded to bfloat16 (AMX or AVX512-BF16 on a CPU, tensor cores on a GPU, where torch
    is told not to reduce in bfloat16)."""
    if a.device.type == "cuda":
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    if a.dim() == 2 and a.stride(1) != 1 and a.stride(0) == 1:  # units cut from a column gather: a.T is row-major
        return (w @ a.T).float().T
    return (a @ w.T).float()


class _Stage:
    """A bfloat16 block of a memory-mapped matrix starts wherever its file put it (a safetensors
    file aligns its data to 8 bytes at most), and products of an operand not ALIGN_BYTES-aligned
    run slower (:data:`checker.hardware.ALIGN_BYTES`). Such a block is copied into one aligned
    buffer, reused from block to block, before the folded products; the copy costs less than it
    saves. Any other block, and every block where no search is folded (``on`` false: the exact
    path gathers its own copy), is used as it is."""

    def __init__(self, on: bool):
        self._buf: torch.Tensor | None = None
        self._on = on

    def __call__(self, b: torch.Tensor) -> torch.Tensor:
        if not (self._on and b.dtype == torch.bfloat16 and b.device.type == "cpu" and b.is_contiguous()
                and b.data_ptr() % ALIGN_BYTES):
            return b
        if self._buf is None or self._buf.numel() < b.numel():
            self._buf = torch.empty(b.numel(), dtype=b.dtype)
        return self._buf[:b.numel()].view(b.shape).copy_(b)


def match_candidates(native: torch.Tensor, units_axis: int, groups: list[Group], device: str = "cpu") -> Matches:
    """The raw column moments of ``native`` and every group's matches: one pass over the search
    columns, after one read of the sampled units (:func:`sampled_units`)."""
    sample = sampled_units(native, units_axis, device)
    sq = sample * sample
    raw = _weighted_moments(torch.ones(sample.shape[0], dtype=sample.dtype, device=sample.device), sample, sq)
    raw_mean, raw_sd = raw if raw is not None else _moments(sample)
    searches = [_Search(g, sample, sq, device) for g in groups]
    del sample, sq
    if searches:
        # only a folded search multiplies the blocks as they are (the exact path gathers a copy)
        stage = _Stage(native.dtype == torch.bfloat16 and any(s.fold is not None for s in searches))
        for start, b in unit_blocks(native, units_axis, device=device, stored=True):
            b = stage(b)
            for s in searches:
                s.update(start, b)
    # finiteness: checked by the engine
    return Matches(raw_mean.cpu().numpy(), raw_sd.cpu().numpy(), tuple(_held_out(native, units_axis, s) for s in searches))


def _held_out(native, units_axis: int, s: _Search) -> tuple[Matched, ...]:
    """Score each candidate on the held-out columns of the units its rows chose, scaled and
    standardised as the pass did."""
    g = s.group
    best = s.best_idx.cpu().numpy()
    sign = np.sign(s.best_val.cpu().numpy()).astype(np.float64)
    sign[sign == 0] = 1.0
    rows = unit_rows(native, units_axis, best).astype(np.float64)
    rows = stats.unit_scaled(rows, by=rows[:, s.cols.cpu().numpy()])
    sd = s.col_std[g.sub_index]
    sub_std = (rows[:, g.sub_index] - s.col_mean[g.sub_index]) / np.where(sd > _EPS, sd, 1.0)
    out, at = [], 0
    for c in g.candidates:
        n = c.ref_rows.shape[0]
        sl = slice(at, at + n)
        ho = stats.held_out_score(c.ref_rows[:, g.held].astype(np.float64), sub_std[sl][:, g.held], sign[sl])
        out.append(Matched(c.key, ho, best[sl]))
        at += n
    return tuple(out)
