"""Checks on a tensor's values that every consumer relies on: every value finite, within
float32's range, and the tensor's range in one pass (with the columns the fixed-table check
needs, read on the same walk of a mapped matrix)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from checker.errors import WeightsError
from checker.weights import mapped
from checker.weights.interface import TensorInfo


def require_finite(ok: bool, info: TensorInfo) -> None:
    """A statistic over NaN is NaN: refuse rather than report a meaningless score."""
    if not ok:
        raise WeightsError(info.file, f"tensor {info.name!r} holds NaN or infinite values")


_F32_MAX = float(np.finfo(np.float32).max)


def require_in_range(lo: float, hi: float, info: TensorInfo) -> None:
    """Every value finite (:func:`require_finite`) and within float32's range: every statistic
    runs in float32 or from it, so a float64 value beyond 3.4e38 would turn into an infinity."""
    require_finite(math.isfinite(lo) and math.isfinite(hi), info)
    if max(-lo, hi) > _F32_MAX:
        raise WeightsError(info.file, f"tensor {info.name!r} holds values beyond float32's range "
                                      f"({max(-lo, hi):.3g}); not supported")


def value_range(t: torch.Tensor) -> tuple[float, float]:
    """(min, max) in one vectorised pass on the stored dtype (a large tensor in row blocks:
    :func:`mapped.row_blocks`); NaN propagates into both."""
    got = scan(t, head_columns=0)
    return got.lo, got.hi


@dataclass(frozen=True)
class Scan:
    """What one pass over a tensor gives: its range (NaN propagates into both ends) and, for a
    large matrix, its first columns (the fixed-table check's test of a transposed sin-cos table,
    :func:`checker.metrics.fixed_tables.recognise`), so the two need one walk of a mapped
    matrix, not two."""

    lo: float
    hi: float
    head: torch.Tensor | None = None  # rows x head_columns, as stored; None for a small tensor


def scan(t: torch.Tensor, head_columns: int = 2) -> Scan:
    """:class:`Scan` of ``t`` in one vectorised pass on the stored dtype; a large CPU matrix in row
    blocks (:func:`mapped.row_blocks`), its first ``head_columns`` columns copied on the way."""
    if t.numel() == 0:
        return Scan(0.0, 0.0)
    head = None
    if mapped.large(t) and t.dim() > 1 and t.device.type == "cpu":
        ends = []
        if head_columns and t.dim() == 2:
            head = torch.empty((t.shape[0], min(head_columns, t.shape[1])), dtype=t.dtype)
        for s, b in mapped.row_blocks(t):
            ends.append(torch.stack(_aminmax(b)))
            if head is not None:
                head[s:s + len(b)] = b[:, :head.shape[1]]
        ends = torch.stack(ends)
        lo, hi = ends[:, 0].min(), ends[:, 1].max()  # NaN propagates through min and max
    else:
        lo, hi = _aminmax(t)
        if head_columns and t.dim() == 2 and mapped.large(t):
            head = t[:, :head_columns].cpu()
    return Scan(float(lo), float(hi), head)


def _aminmax(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.aminmax(t.reshape(-1)) if t.dtype != torch.bool else torch.aminmax(t.reshape(-1).to(torch.uint8))


def all_finite(t: torch.Tensor) -> bool:
    if not t.dtype.is_floating_point:
        return True
    lo, hi = value_range(t)
    return math.isfinite(lo) and math.isfinite(hi)
