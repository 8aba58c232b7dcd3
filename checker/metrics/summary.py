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

from checker.metrics.screen import GramSketch, correlation_from_moments

BLOCK_ELEMENTS = 8 * 1024 * 1024


def unit_blocks(native: torch.Tensor, units_axis: int, max_elements: int = BLOCK_ELEMENTS,
                device: str = "cpu") -> Iterator[tuple[int, torch.Tensor]]:
    """(first unit, float32 block of units x hidden) over a tensor held in its stored dtype."""
    m = native.reshape(native.shape[0], -1) if native.dim() > 2 else native
    if units_axis == 1 and m.dim() == 2:
        m = m.T
    units, hidden = m.shape
    step = max(1, max_elements // max(hidden, 1))
    for s in range(0, units, step):
        yield s, m[s:s + step].to(device=device, dtype=torch.float32)


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


def summarize(native: torch.Tensor, units_axis: int, colsets: dict, sample: np.ndarray | None = None,
              device: str = "cpu") -> MatrixSummary:
    """Column moments, Gram sketches over each column set in ``colsets`` and the sampled rows."""
    units, hidden = units_by_hidden_shape(tuple(native.shape), units_axis)
    col_sum = torch.zeros(hidden, dtype=torch.float64)
    col_sq = torch.zeros(hidden, dtype=torch.float64)
    cols = {k: torch.as_tensor(np.asarray(v, dtype=np.int64), device=device) for k, v in colsets.items()}
    cross = {k: torch.zeros((len(v), len(v)), dtype=torch.float64) for k, v in colsets.items()}
    full = {k: len(v) == hidden and bool(np.all(np.asarray(v) == np.arange(hidden))) for k, v in colsets.items()}
    picked = []
    for start, b in unit_blocks(native, units_axis, device=device):
        col_sum += b.sum(dim=0, dtype=torch.float64).cpu()
        col_sq += (b * b).sum(dim=0, dtype=torch.float64).cpu()
        for k, c in cols.items():
            x = b if full[k] else b.index_select(1, c)
            cross[k] += (x.T @ x).double().cpu()
        if sample is not None:
            sel = sample[(sample >= start) & (sample < start + b.shape[0])] - start
            if len(sel):
                picked.append(b[torch.as_tensor(sel, device=device)].cpu().numpy())
    finite = bool(torch.isfinite(col_sq).all())
    mean = (col_sum / max(units, 1)).numpy()
    var = np.clip((col_sq / max(units, 1)).numpy() - mean ** 2, 0.0, None)
    grams = {k: GramSketch.of(correlation_from_moments(units, col_sum.numpy()[np.asarray(colsets[k])], cross[k].numpy()))
             for k in colsets}
    rows = np.concatenate(picked, axis=0).astype(np.float32) if picked else None
    return MatrixSummary(units, hidden, mean.astype(np.float32), np.sqrt(var).astype(np.float32), grams, finite, rows,
                         None if sample is None else np.asarray(sample))
