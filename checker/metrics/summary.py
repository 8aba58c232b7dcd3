"""What one read of a weight matrix yields, shared by fingerprints and audits.

A units x hidden matrix (FFN neurons, attention output dims, ... on rows; the
residual stream on columns) is walked once in float32 blocks of units: column
means and spreads (for standardising), the hidden Gram sketches the screen needs
(see :mod:`checker.metrics.screen`), a sample of unit rows, and content digests.
The heavy products run in torch, on the GPU when one is chosen, and are
accumulated in float64 so CPU and GPU agree to far below any threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from checker.metrics.screen import GramSketch
from checker.weights import mapped

BLOCK_ELEMENTS = 8 * 1024 * 1024


def _matrix(native: torch.Tensor) -> torch.Tensor:
    """The stored tensor as a 2-D matrix (a conv kernel flattened after its first axis)."""
    return native.reshape(native.shape[0], -1) if native.dim() > 2 else native


_SAME_SIZE_INT = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def take_columns(m: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``m[:, idx]`` for a 2-D tensor, gathered the fast way for its layout: as rows of the
    transpose when the columns are contiguous, with numpy's ``take`` on the raw bits of a
    row-major CPU tensor (torch's column ``index_select`` is 3-7 times slower there), else
    with ``index_select``. Exact: values are copied bit for bit."""
    if m.stride(0) == 1 and m.shape[0] > 1:
        return m.T.index_select(0, idx).T
    ints = _SAME_SIZE_INT.get(m.element_size())
    if m.device.type == "cpu" and ints is not None and m.stride(1) == 1 and idx.device.type == "cpu":
        take = lambda b: torch.from_numpy(np.take(b.view(ints).numpy(), idx.numpy(), axis=1)).view(m.dtype)  # noqa: E731
        if mapped.large(m):  # a few values of every row: walked in row blocks (mapped.row_blocks)
            out = torch.empty((m.shape[0], len(idx)), dtype=m.dtype)
            for s, b in mapped.row_blocks(m):
                out[s:s + len(b)] = take(b)
            return out
        return take(m)
    return m.index_select(1, idx)


#: Below this norm a float32 row's sum of squares has lost precision to underflow.
_TINY_NORM = 1e-15


def row_norms(x: torch.Tensor) -> torch.Tensor:
    """The Euclidean norm of each row of a 2-D tensor, the fast way for its layout: torch's
    ``vector_norm`` over a row-major tensor, squares summed over a column-major one (where
    ``vector_norm`` is some 30 times slower on CPU)."""
    return torch.linalg.vector_norm(x, dim=1) if x.stride(1) == 1 else torch.sqrt((x * x).sum(dim=1))


def unit_scaled(x: torch.Tensor, by: torch.Tensor | None = None, inplace: bool = False) -> torch.Tensor:
    """``x`` (units on rows, floating) with each row divided by the root mean square of the same
    row of ``by`` (default ``x``; ``by`` may hold a subset of the columns); a zero row stays zero.

    A function-preserving rescaling sets each unit's scale freely (an FFN unit's input row times
    c, its output column divided by c), so no statistic that pools units may see it. Exact for
    any finite input: a float32 row whose sum of squares leaves float32's range (a unit scaled
    by 1e19, or by 1e-25) is scaled in float64. With ``inplace``, ``x`` is overwritten (it must
    not be a view of the weights)."""
    by = x if by is None else by
    n = row_norms(by)
    root = float(by.shape[1]) ** 0.5
    bad = ~torch.isfinite(n) | (n < _TINY_NORM)
    f = torch.where(bad, torch.ones_like(n), root / torch.where(bad, torch.ones_like(n), n))
    y = x.mul_(f[:, None]) if inplace else x * f[:, None]
    if bool(bad.any()):
        idx = torch.nonzero(bad)[:, 0]
        nb = torch.linalg.vector_norm(by.index_select(0, idx).double(), dim=1)
        fb = torch.where(nb > 0, root / torch.where(nb > 0, nb, torch.ones_like(nb)), torch.ones_like(nb))
        y.index_copy_(0, idx, (y.index_select(0, idx).double() * fb[:, None]).to(y.dtype))
    return y


def unit_rows(native: torch.Tensor, units_axis: int, idx: np.ndarray) -> np.ndarray:
    """Units ``idx`` of the units x hidden view, as float32 rows."""
    m = _matrix(native)
    ti = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=m.device)
    picked = take_columns(m, ti).T if units_axis == 1 and m.dim() == 2 else m.index_select(0, ti)
    return picked.to(torch.float32).cpu().numpy().astype(np.float32)


def unit_blocks(native: torch.Tensor, units_axis: int, max_elements: int = BLOCK_ELEMENTS,
                device: str = "cpu", stored: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
    """(first unit, float32 block of units x hidden) over a tensor held in its stored dtype; with
    ``stored``, the blocks as stored, on ``device`` (the caller widens what it uses)."""
    m = _matrix(native)
    walk = mapped.large(m) and m.device.type == "cpu"
    if units_axis == 1 and m.dim() == 2:
        if walk:
            yield from _column_unit_blocks(m, max_elements, device, stored)
            return
        m = m.T
    units, hidden = m.shape
    step = max(1, max_elements // max(hidden, 1))
    for s in range(0, units, step):
        yield s, (m[s:s + step].to(device) if stored else _float32_on(m[s:s + step], device))
        if walk:  # a mapped matrix's pages are dropped as the walk goes on
            mapped.GOVERNOR.pace()


def _column_unit_blocks(m: torch.Tensor, max_elements: int, device: str, stored: bool) -> Iterator[tuple[int, torch.Tensor]]:
    """:func:`unit_blocks` of a large matrix whose units are its columns (hidden x units as stored).
    A block of columns reads a little of every stored row, and the kernel maps whole pages, or
    whole folios, around each read: one block would map the whole matrix. So the units are taken
    GATHER_BYTES at a time, each chunk copied out of the stored rows in row blocks
    (:func:`mapped.row_blocks`, which drop the pages as they go), and the blocks are cut from the
    copy: the same values in the same layout as the plain path's, so the same sums."""
    hidden, units = m.shape
    step = max(1, max_elements // max(hidden, 1))
    chunk = max(step, mapped.GATHER_BYTES // max(1, hidden * m.element_size()) // step * step)
    for c in range(0, units, chunk):
        buf = torch.empty((hidden, min(chunk, units - c)), dtype=m.dtype)
        for r, b in mapped.row_blocks(m):
            buf[r:r + len(b)] = b[:, c:c + chunk]
        bt = buf.T
        for s in range(0, bt.shape[0], step):
            yield c + s, (bt[s:s + step].to(device) if stored else _float32_on(bt[s:s + step], device))


def _float32_on(block: torch.Tensor, device: str) -> torch.Tensor:
    """A block as float32 on ``device``: moved in its stored dtype (half the bytes of bf16 over the
    bus), then converted there. The matrix may already be on the device (see the engine)."""
    if device == "cpu" and block.device.type == "cpu":
        return block.to(torch.float32)
    return block.to(device).to(torch.float32)


def unit_stride(native: torch.Tensor, units_axis: int, step: int, device: str = "cpu") -> torch.Tensor:
    """Every ``step``-th unit of the units x hidden view (from the first), as one float32 block."""
    m = _matrix(native)
    if units_axis == 1 and m.dim() == 2:
        if mapped.large(m) and m.device.type == "cpu":  # every row of the stored matrix: walked in blocks
            # hidden x sampled units, returned transposed: the layout the plain path's conversion
            # of m.T[::step] gives, so the same sums (bit for bit from 16-bit storage; a float32
            # matrix's plain sample is a strided view, whose sums may differ in the last bits)
            out = torch.empty((m.shape[0], -(-m.shape[1] // step)), dtype=m.dtype)
            for s, b in mapped.row_blocks(m):
                out[s:s + len(b)] = b[:, ::step]
            return _float32_on(out.T, device)
        m = m.T
    return _float32_on(m[::step], device)


def units_by_hidden_shape(native_shape: tuple[int, ...], units_axis: int) -> tuple[int, int]:
    units = native_shape[0]
    hidden = int(np.prod(native_shape[1:])) if len(native_shape) > 1 else 1
    return (hidden, units) if units_axis == 1 and len(native_shape) == 2 else (units, hidden)


@dataclass(frozen=True, eq=False)
class MatrixSummary:
    """One pass over a units x hidden matrix."""

    units: int
    hidden: int
    col_mean: np.ndarray  # float32, hidden
    col_std: np.ndarray  # float32, hidden (population sd, as numpy's std)
    grams: dict = field(default_factory=dict)  # key -> GramSketch over those columns
    finite: bool = True  # every value finite (NaN and infinities propagate into the moments)
    rows: np.ndarray | None = None  # sampled unit rows, float32
    row_index: np.ndarray | None = None


class ColumnSums:
    """Column sums and sums of squares of centred blocks of one matrix: float32 within a block
    (pairwise), float64 across blocks, kept on the device (no sync per block). The blocks are
    centred on a shift near the column means, so E[x^2] - E[x]^2 does not cancel."""

    def __init__(self, hidden: int, device: str):
        self._sum = torch.zeros(hidden, dtype=torch.float64, device=device)
        self._sq = torch.zeros(hidden, dtype=torch.float64, device=device)

    def add(self, centred: torch.Tensor) -> torch.Tensor:
        """Add a centred block; returns its column sums of squares (float32). (A norm over dim 0
        would be several times slower in torch.)"""
        sq = (centred * centred).sum(dim=0)
        self._sum += centred.sum(dim=0).double()
        self._sq += sq.double()
        return sq

    def moments(self, shift: torch.Tensor | None, units: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(mean, population sd, all finite) over ``units`` units, given the shift the blocks were centred on."""
        col_sum, col_sq = self._sum.cpu(), self._sq.cpu()
        finite = bool(torch.isfinite(col_sq).all()) and bool(torch.isfinite(col_sum).all())
        shifted = (col_sum / max(units, 1)).numpy()
        var = np.clip((col_sq / max(units, 1)).numpy() - shifted ** 2, 0.0, None)
        mean = shifted + (shift.double().cpu().numpy() if shift is not None else 0.0)
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32), finite


def column_moments(native: torch.Tensor, units_axis: int, device: str = "cpu") -> tuple[np.ndarray, np.ndarray, bool]:
    """(mean, population sd, all finite) of every hidden column over all units, in blocks."""
    units, hidden = units_by_hidden_shape(tuple(native.shape), units_axis)
    sums = ColumnSums(hidden, device)
    shift = None  # moments about the first block's column means
    for _, b in unit_blocks(native, units_axis, device=device):
        if shift is None:
            shift = b.mean(dim=0)
        sums.add(b - shift)
    return sums.moments(shift, units)


def gather_columns(native: torch.Tensor, units_axis: int, cols: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """Hidden columns ``cols`` of the units x hidden view, all units, as float32 (units x len(cols)).
    Gathered in the stored dtype first, so only these columns are ever converted."""
    m = _matrix(native)
    idx = torch.as_tensor(np.asarray(cols, dtype=np.int64), device=m.device)
    if units_axis == 1 and m.dim() == 2:
        return _float32_on(m.index_select(0, idx), device).T  # hidden rows are contiguous
    return _float32_on(take_columns(m, idx), device)


def gram_sketch(native: torch.Tensor, units_axis: int, cols: np.ndarray, device: str = "cpu") -> GramSketch:
    """The correlation matrix of hidden columns ``cols`` over all units (see checker.metrics.screen),
    each unit first scaled to unit root mean square over those columns (:func:`unit_scaled`), so
    that no rescaled unit dominates it. In float32 (the registry stores sketches in float16; the
    scaled units keep every sum within range), the product returned in float64."""
    x = unit_scaled(gather_columns(native, units_axis, cols, device), inplace=True)  # a fresh copy
    x = x - x.mean(dim=0)
    cross = (x.T @ x).double().cpu().numpy()
    sd = np.sqrt(np.clip(np.diag(cross), 0.0, None))
    sd = np.where(sd > 1e-12, sd, 1.0)
    return GramSketch.of(cross / np.outer(sd, sd))


def all_values_finite(native: torch.Tensor) -> bool:
    return not native.dtype.is_floating_point or bool(torch.isfinite(native).all())


def summarize(native: torch.Tensor, units_axis: int, colsets: dict, sample: np.ndarray | None = None,
              device: str = "cpu") -> MatrixSummary:
    """Column moments, Gram sketches over each column set in ``colsets`` and the sampled rows."""
    units, hidden = units_by_hidden_shape(tuple(native.shape), units_axis)
    mean, sd, finite = column_moments(native, units_axis, device)
    grams = {k: gram_sketch(native, units_axis, v, device) for k, v in colsets.items()}
    rows = unit_rows(native, units_axis, sample) if sample is not None and len(sample) else None
    return MatrixSummary(units, hidden, mean, sd, grams, finite, rows, None if sample is None else np.asarray(sample))
