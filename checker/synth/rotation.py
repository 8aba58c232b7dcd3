"""Function-preserving rotations of the residual stream (QuaRot / SliceGPT style).

A norm's gain is first folded into the linears it feeds (and a LayerNorm's bias into their
biases), leaving every norm a pure normalisation; then the residual stream x becomes x Q for an
orthogonal Q. RMSNorm commutes with any orthogonal Q (it preserves the norm of x); LayerNorm
also subtracts the mean, which commutes only when Q maps the all-ones direction to itself
(Q 1 = 1), so the vision tower gets such a Q. Every tensor axis that lives in the residual width
(the ``hidden`` space of ``checker.synth.spaces``) is contracted with Q: matrices that read the
stream (q/k/v, gate/up, qkv, fc1, merger input, LM head) become W Q, those that write it
(o_proj, down_proj, attn.proj, fc2, the patch embedding's output channels, output biases)
become Qᵀ W, and the token embeddings and position tables become E Q. The merger's output rows
write the decoder's stream, so they follow the decoder's Q.

Composition: every step here edits only the ``hidden`` axes and norm gains, so it commutes with
``permute_units`` and ``permute_merger`` (which edit the per-layer unit axes). A rotated copy
whose inner units are also permuted is ``permute_merger(permute_units(rotate_residual(s)))``.
"""

from __future__ import annotations

import re
from dataclasses import replace

import torch

from checker.synth.disguises import norm_targets
from checker.synth.models import Subject
from checker.synth.spaces import axes_of, tower_of

NORMS = re.compile(r"norm\d?\.(weight|bias)$")
MERGER_OUT = ("visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias")


def random_orthogonal(d: int, seed: int, fix_ones: bool = False) -> torch.Tensor:
    """A Haar-random orthogonal d x d matrix (float64); ``fix_ones``: one with Q 1 = 1 (then also
    Qᵀ 1 = 1), the rotations that commute with LayerNorm's mean subtraction."""
    g = torch.Generator().manual_seed(seed)

    def haar(n: int) -> torch.Tensor:
        q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
        return q * torch.sign(torch.diagonal(r))

    if not fix_ones:
        return haar(d)
    # An orthonormal basis whose first vector is 1/sqrt(d); rotate only its complement.
    basis, _ = torch.linalg.qr(torch.cat([torch.ones(d, 1, dtype=torch.float64), torch.randn(d, d - 1, generator=g, dtype=torch.float64)], 1))
    u, rest = basis[:, :1], basis[:, 1:]
    return u @ u.T + rest @ haar(d - 1) @ rest.T


def fold_norms(s: Subject, towers: tuple[str, ...] = ("lm", "vit")) -> Subject:
    """Every norm's gain multiplied into the input columns of the linears it feeds, its bias
    (LayerNorm) into their biases; the norm is left with gain 1 and bias 0. Function-preserving.
    On its own this is a weaker disguise than ``rescale`` (the gains become uniform)."""
    out = {k: v for k, v in s.state.items()}
    for name in list(out):
        targets = norm_targets(name, out)
        if not targets or tower_of(name) not in towers:
            continue
        gain = out[name].double()
        bias_name = name[: -len("weight")] + "bias"
        bias = out[bias_name].double() if bias_name in out else None
        for tname in targets:
            w = out[tname].double()
            if bias is not None:
                tb = tname[: -len("weight")] + "bias"
                if tb not in out:
                    raise ValueError(f"{tname}: cannot fold the bias of {name} into a linear without bias")
                out[tb] = (out[tb].double() + w @ bias).to(out[tb].dtype)
            out[tname] = (w * gain).to(out[tname].dtype)
        out[name] = torch.ones_like(out[name])
        if bias is not None:
            out[bias_name] = torch.zeros_like(out[bias_name])
    return replace(s, state=out)


def _contract(t: torch.Tensor, axis: int, q: torch.Tensor) -> torch.Tensor:
    """t with index i of ``axis`` replaced by j: sum_i t[.., i, ..] Q[i, j]."""
    moved = torch.movedim(t.double(), axis, -1) @ q
    return torch.movedim(moved, -1, axis).to(t.dtype).contiguous()


def rotate_residual(s: Subject, towers: tuple[str, ...] = ("lm", "vit"), seed: int = 9,
                    lm_q: torch.Tensor | None = None) -> Subject:
    """Fold the norms of ``towers`` ("lm": the decoder, "vit": the vision tower), then rotate
    each one's residual stream by its own random orthogonal Q (the vision tower's with Q 1 = 1).
    The decoder's logits and the vision tower's features (up to the decoder's Q on the merger
    output, which feeds the decoder) are unchanged up to rounding. ``lm_q``: the decoder's Q itself
    (any orthogonal matrix, e.g. one that turns only some dimensions)."""
    s = fold_norms(s, towers)
    qs = {"lm": random_orthogonal(s.lm.hidden, seed) if lm_q is None else lm_q.double(),
          "vit": random_orthogonal(s.vit.hidden, seed + 1, fix_ones=True)}
    out = {}
    for name, t in s.state.items():
        tower = tower_of(name)
        if tower in towers and not NORMS.search(name):  # folded: gain 1, bias 0
            for axis, space in axes_of(name).items():
                if space == "hidden" and t.shape[axis] == qs[tower].shape[0]:
                    t = _contract(t, axis, qs[tower])
        if "lm" in towers and name in MERGER_OUT and t.shape[0] == s.lm.hidden:
            t = _contract(t, 0, qs["lm"])
        out[name] = t
    return replace(s, state=out)


def mix_heads(s: Subject, seed: int = 12) -> Subject:
    """Function-preserving mixing inside every attention head, each head by its own random
    orthogonal head_dim x head_dim matrices: the value rows by Q with the output projection's
    columns by Qᵀ (o·v is unchanged), the query and key rows by one other matrix R (q·k is
    unchanged; valid without a rotary embedding, as in the synthetic models). No unit keeps its
    weights, so no unit search can pair them; only a comparison of each head's row space could."""
    out = dict(s.state)
    count = [0]

    def heads(n: int, width: int) -> torch.Tensor:
        mats = []
        for _ in range(n):
            count[0] += 1
            mats.append(random_orthogonal(width // n, seed * 1000 + count[0]))
        return torch.block_diag(*mats)

    def turned(name: str, m: torch.Tensor, right: bool = False) -> None:
        t = out[name]
        w = t.double()
        out[name] = (w @ m.T if right else m @ w).to(t.dtype).contiguous()

    for name in sorted(s.state):
        if name.endswith("self_attn.v_proj.weight"):
            q = heads(s.lm.heads, out[name].shape[0])
            turned(name, q)
            turned(name.replace("v_proj", "o_proj"), q, right=True)
        elif name.endswith("self_attn.q_proj.weight"):
            r = heads(s.lm.heads, out[name].shape[0])
            turned(name, r)
            turned(name.replace("q_proj", "k_proj"), r)
        elif name.endswith("attn.qkv.weight"):
            d = out[name].shape[0] // 3
            r, q = heads(s.vit.heads, d), heads(s.vit.heads, d)
            both = torch.block_diag(r, r, q)
            turned(name, both)
            bias = name[: -len("weight")] + "bias"
            if bias in out:
                turned(bias, both)
            turned(name.replace("attn.qkv", "attn.proj"), q, right=True)
    return replace(s, state=out)
