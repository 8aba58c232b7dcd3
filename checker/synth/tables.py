"""Fixed (never trained) position tables, built by the formulas real models use.

Two models that carry one of these tables are identical in that tensor although they share
nothing else: the tables are how the benchmark builds independent models that an engine
comparing raw tensors would wrongly accuse.
"""

from __future__ import annotations

import math

import torch


def sinusoidal_table(n: int, d: int, max_timescale: float = 10000.0, interleaved: bool = False) -> torch.Tensor:
    """A 1-D sinusoidal table [n, d].

    Default: Whisper's ``sinusoids`` (``encoder.embed_positions``): the sines of all channels,
    then the cosines, with timescales spaced geometrically from 1 to ``max_timescale``.
    ``interleaved``: the original Transformer's layout (sin on even, cos on odd channels).
    """
    if d % 2:
        raise ValueError(f"sinusoidal table needs an even width, got {d}")
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    half = d // 2
    if interleaved:
        inv = torch.exp(-math.log(max_timescale) * torch.arange(0, d, 2, dtype=torch.float64) / d)
        out = torch.zeros(n, d, dtype=torch.float64)
        out[:, 0::2], out[:, 1::2] = torch.sin(pos * inv), torch.cos(pos * inv)
        return out.float()
    inv = torch.exp(-math.log(max_timescale) / max(half - 1, 1) * torch.arange(half, dtype=torch.float64))
    return torch.cat([torch.sin(pos * inv), torch.cos(pos * inv)], dim=1).float()


def _sincos_1d(d: int, pos: torch.Tensor) -> torch.Tensor:
    omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
    out = pos.reshape(-1)[:, None].double() * omega[None, :]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_2d_table(grid: int, d: int) -> torch.Tensor:
    """MAE's / ViT's fixed 2-D sin-cos table [grid * grid, d] (``get_2d_sincos_pos_embed``,
    no class token): half the channels encode the row, half the column."""
    if d % 4:
        raise ValueError(f"2-D sin-cos table needs a width divisible by 4, got {d}")
    gh, gw = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    # MAE builds the grid as meshgrid(w, h) and encodes grid[0] first: the column comes first.
    return torch.cat([_sincos_1d(d // 2, gw), _sincos_1d(d // 2, gh)], dim=1).float()
