"""Disguises that re-index the axes of a saved state by their "space".

Each tensor name of the two synthetic layouts says which of its axes lives in which
# "space": the residual width (``hidden``, one per tower), a layer's FFN neurons (``ffn``),
its attention heads (``heads``; ``qkv`` for a fused q|k|v), the vision merger's inner units
(``merger``), or neither. A permutation of a space applied to every axis in it preserves the
model's function.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import replace

import torch

from checker.synth.models import Subject

_AXES: tuple[tuple[re.Pattern, dict[int, str]], ...] = tuple((re.compile(p), a) for p, a in (
    (r"(embed_tokens|lm_head)\.weight$", {1: "hidden"}),
    (r"(q_proj|k_proj|v_proj)\.weight$", {0: "heads", 1: "hidden"}),
    (r"o_proj\.weight$", {0: "hidden", 1: "heads"}),
    (r"(gate_proj|up_proj)\.weight$", {0: "ffn", 1: "hidden"}),
    (r"down_proj\.weight$", {0: "hidden", 1: "ffn"}),
    (r"norm\d?\.(weight|bias)$", {0: "hidden"}),
    (r"patch_embed\.proj\.weight$", {0: "hidden"}),
    (r"attn\.qkv\.weight$", {0: "qkv", 1: "hidden"}),
    (r"attn\.qkv\.bias$", {0: "qkv"}),
    (r"attn\.proj\.weight$", {0: "hidden", 1: "heads"}),
    (r"attn\.proj\.bias$", {0: "hidden"}),
    (r"mlp\.fc1\.weight$", {0: "ffn", 1: "hidden"}),
    (r"mlp\.fc1\.bias$", {0: "ffn"}),
    (r"mlp\.fc2\.weight$", {0: "hidden", 1: "ffn"}),
    (r"mlp\.fc2\.bias$", {0: "hidden"}),
    (r"merger\.mlp\.0\.weight$", {0: "merger", 1: "hidden"}),
    (r"merger\.mlp\.0\.bias$", {0: "merger"}),
    (r"merger\.mlp\.2\.weight$", {1: "merger"}),
    (r"embed_positions\.weight$", {1: "hidden"}),
    (r"pos_embed$", {1: "hidden"}),
))
LAYER = re.compile(r"\.(layers|blocks)\.(\d+)\.")


def axes_of(name: str) -> dict[int, str]:
    return next((a for p, a in _AXES if p.search(name)), {})


def tower_of(name: str) -> str:
    return "vit" if name.startswith("visual.") else "lm"


def layer_of(name: str) -> int | None:
    m = LAYER.search(name)
    return int(m.group(2)) if m else None


def along(t: torch.Tensor, axis: int, v: torch.Tensor) -> torch.Tensor:
    shape = [1] * t.dim()
    shape[axis] = -1
    return t * v.view(shape).to(t.dtype)


def map_spaces(s: Subject, edit) -> Subject:
    """Re-index (and optionally rescale) every axis by its space.

    ``edit(tower, space, layer, size)`` returns None (leave alone) or
    ``(index, multiplier or None)``; multipliers are not applied to norm weights
    (a sign flip of the residual commutes with RMSNorm's positive gain).
    """
    out = {}
    for name, t in s.state.items():
        for axis, space in axes_of(name).items():
            got = edit(tower_of(name), space, layer_of(name), t.shape[axis])
            if got is None:
                continue
            idx, mult = got
            t = t.index_select(axis, idx)
            if mult is not None and not re.search(r"norm\d?\.(weight|bias)$", name):
                t = along(t, axis, mult)
        out[name] = t.contiguous()
    return replace(s, state=out)


def _heads(s: Subject, tower: str) -> int:
    return s.lm.heads if tower == "lm" else s.vit.heads


def permute_units(s: Subject, seed: int = 1) -> Subject:
    """FFN neurons and attention heads permuted within every layer (function-preserving)."""
    cache: dict = {}

    def edit(tower, space, layer, size):
        if space not in ("ffn", "heads", "qkv"):
            return None
        key = (tower, "heads" if space == "qkv" else space, layer)
        if key not in cache:
            g = torch.Generator().manual_seed(seed * 1000 + zlib.crc32(repr(key).encode()) % 997)
            cache[key] = torch.randperm(_heads(s, tower) if key[1] == "heads" else size, generator=g)
        perm = cache[key]
        if space == "ffn":
            return perm, None
        nh = _heads(s, tower)
        hd = (size // 3 if space == "qkv" else size) // nh
        head_idx = (perm[:, None] * hd + torch.arange(hd)).flatten()
        if space == "qkv":
            head_idx = torch.cat([head_idx + i * nh * hd for i in range(3)])
        return head_idx, None

    return map_spaces(s, edit)


def permute_hidden(s: Subject, seed: int = 2) -> Subject:
    """One permutation with random sign flips of each tower's residual width."""
    cache: dict = {}

    def edit(tower, space, layer, size):
        if space != "hidden":
            return None
        if tower not in cache:
            g = torch.Generator().manual_seed(seed + (7 if tower == "vit" else 0))
            cache[tower] = (torch.randperm(size, generator=g), torch.where(torch.rand(size, generator=g) < 0.5, -1.0, 1.0))
        return cache[tower]

    return map_spaces(s, edit)


def prune_ffn(s: Subject, keep: float = 0.5, seed: int = 3) -> Subject:
    """Keep a random ``keep`` share of every layer's FFN neurons."""
    cache: dict = {}

    def edit(tower, space, layer, size):
        if space != "ffn":
            return None
        if (tower, layer) not in cache:
            g = torch.Generator().manual_seed(seed * 100 + (layer or 0) + (50 if tower == "vit" else 0))
            cache[(tower, layer)] = torch.sort(torch.randperm(size, generator=g)[: int(size * keep)]).values
        return cache[(tower, layer)], None

    return map_spaces(s, edit)


def prune_hidden(s: Subject, keep: float = 0.75, towers: tuple[str, ...] = ("lm", "vit"), seed: int = 6) -> Subject:
    """Width pruning of the residual stream (as Minitron prunes embedding channels): keep a
    random ``keep`` share of each named tower's hidden dimensions, the same subset removed
    everywhere the residual lives (embedding and LM-head columns, q/k/v/gate/up/fc1/qkv
    columns, o/down/proj/fc2 rows, norm weights, the patch embedding's output channels, the
    merger's input; for the decoder also the merger's output rows, which feed the decoder's
    residual). Attention and FFN widths stay, so ``TinyLM`` cannot load the result; the
    configs still describe the reference's widths."""
    cache: dict = {}

    def kept(tower: str, size: int) -> torch.Tensor:
        if tower not in cache:
            g = torch.Generator().manual_seed(seed + (7 if tower == "vit" else 0))
            cache[tower] = torch.sort(torch.randperm(size, generator=g)[: int(size * keep)]).values
        return cache[tower]

    def edit(tower, space, layer, size):
        return (kept(tower, size), None) if space == "hidden" and tower in towers else None

    out = map_spaces(s, edit)
    if "lm" in towers:
        state = dict(out.state)
        for name in ("visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias"):
            if name in state and state[name].shape[0] == s.lm.hidden:
                state[name] = state[name].index_select(0, kept("lm", s.lm.hidden)).contiguous()
        out = replace(out, state=state)
    return out


def permute_merger(s: Subject, seed: int = 8) -> Subject:
    """The vision merger's inner units permuted (function-preserving: its activation is
    elementwise). ``permute_units`` leaves them alone; a rotation of the residual streams does not
    reach them either, so a rotated copy keeps them in place unless this is applied too."""
    g = torch.Generator().manual_seed(seed)
    cache: dict = {}

    def edit(tower, space, layer, size):
        if space != "merger":
            return None
        return cache.setdefault(size, (torch.randperm(size, generator=g), None))

    return map_spaces(s, edit)
