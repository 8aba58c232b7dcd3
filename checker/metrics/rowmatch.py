"""The full row-matching test, streamed over a submission matrix for many candidates at once.

This is :func:`checker.metrics.stats.match_rows` computed block by block: every
candidate reference's sampled unit rows (standardised, hidden-aligned) are stacked,
each block of submission units is standardised with the column moments of the
first pass, and one product per block gives the search-half correlations of every
reference row with every unit in the block. The best unit per reference row is
kept; its held-out columns score the match. Memory is one block plus the stacked
reference rows; the product runs in torch on the chosen device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from checker.metrics import stats
from checker.metrics.summary import unit_blocks, unit_rows

_EPS = 1e-12


@dataclass(frozen=True)
class Candidate:
    """Reference rows to match against one submission matrix under one alignment."""

    key: object  # the caller's handle
    ref_rows: np.ndarray  # k x aligned dims, standardised, aligned, signs applied


@dataclass(frozen=True)
class Matched:
    key: object
    held_out: stats.HeldOut
    best: np.ndarray  # submission unit chosen for each reference row


def _rownorm_t(x: torch.Tensor) -> torch.Tensor:
    c = x - x.mean(dim=1, keepdim=True)
    n = torch.linalg.vector_norm(c, dim=1, keepdim=True)
    return c / torch.where(n > _EPS, n, torch.ones_like(n))


def match_candidates(native: torch.Tensor, units_axis: int, col_mean: np.ndarray, col_std: np.ndarray,
                     sub_index: np.ndarray, search: np.ndarray, held: np.ndarray,
                     candidates: list[Candidate], device: str = "cpu") -> list[Matched]:
    """Match every candidate's rows against all units of ``native`` (see the module docstring).

    ``sub_index`` maps aligned positions to submission hidden columns; ``search`` and
    ``held`` are aligned positions.
    """
    if not candidates:
        return []
    sd = col_std[sub_index]
    # Only the search half is standardised per block: the submission columns it reads, their moments
    cols = np.asarray(sub_index, dtype=np.int64)[np.asarray(search, dtype=np.int64)]
    mean = torch.as_tensor(col_mean[cols], device=device)
    sd_t = torch.as_tensor(np.where(col_std[cols] > _EPS, col_std[cols], 1.0).astype(np.float32), device=device)
    cols_t = torch.as_tensor(cols, device=device)
    ref = np.concatenate([c.ref_rows[:, search] for c in candidates], axis=0).astype(np.float32)
    r = _rownorm_t(torch.as_tensor(ref, device=device))
    k = r.shape[0]
    best_abs = torch.full((k,), -1.0, device=device)
    best_val = torch.zeros(k, device=device)
    best_idx = torch.zeros(k, dtype=torch.int64, device=device)
    for start, b in unit_blocks(native, units_axis, device=device):
        c = r @ _rownorm_t((b.index_select(1, cols_t) - mean) / sd_t).T  # k x block
        a, j = c.abs().max(dim=1)
        better = a > best_abs
        best_abs = torch.where(better, a, best_abs)
        best_val = torch.where(better, c.gather(1, j[:, None])[:, 0], best_val)
        best_idx = torch.where(better, j + start, best_idx)
    best = best_idx.cpu().numpy()
    sign = np.sign(best_val.cpu().numpy()).astype(np.float64)
    sign[sign == 0] = 1.0
    rows = unit_rows(native, units_axis, best).astype(np.float64)
    sub_std = (rows[:, sub_index] - col_mean[sub_index]) / np.where(sd > _EPS, sd, 1.0)
    out, at = [], 0
    for c in candidates:
        n = c.ref_rows.shape[0]
        sl = slice(at, at + n)
        ho = stats.held_out_score(c.ref_rows[:, held].astype(np.float64), sub_std[sl][:, held].astype(np.float64), sign[sl])
        out.append(Matched(c.key, ho, best[sl]))
        at += n
    return out
