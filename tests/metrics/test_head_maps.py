"""Invertible maps inside attention heads (q -> A q, k -> A^-T k per head; v -> M v, o -> o M^-1) keep
the function of an attention without rotary embeddings, and scramble the unit rows of q, k, v and o.
The FFN cannot be mixed that way (its nonlinearity allows only permutation and scaling), so the copy
is still derived, through the FFN roles."""

from __future__ import annotations

import torch

from checker import synth
from checker.audit import audit
from checker.rules import load_pack


def head_maps(state: dict, heads: int, seed: int = 3) -> dict:
    s = {k: v.clone() for k, v in state.items()}
    g = torch.Generator().manual_seed(seed)
    layers = sorted({int(k.split(".")[2]) for k in s if k.startswith("model.layers.")})
    for i in layers:
        p = f"model.layers.{i}.self_attn."
        q, k, v, o = (s[p + n + ".weight"].double() for n in ("q_proj", "k_proj", "v_proj", "o_proj"))
        d = q.shape[0] // heads
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            a = torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5 + torch.eye(d, dtype=torch.float64)
            m = torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5 + torch.eye(d, dtype=torch.float64)
            q[sl] = a @ q[sl]  # q.k = (A q).(A^-T k)
            k[sl] = torch.linalg.inv(a).T @ k[sl]
            v[sl] = m @ v[sl]
            o[:, sl] = o[:, sl] @ torch.linalg.inv(m)
        for n, t in (("q_proj", q), ("k_proj", k), ("v_proj", v), ("o_proj", o)):
            s[p + n + ".weight"] = t.float()
    return s


def test_per_head_invertible_maps_keep_the_function_and_the_copy_is_still_derived(zoo):
    cfg = zoo.ref_lm.config
    mapped = head_maps(synth.state(zoo.ft_lm), cfg.heads)
    a, b = synth.new_lm(cfg, 0), synth.new_lm(cfg, 0)
    a.load_state_dict(synth.state(zoo.ft_lm))
    b.load_state_dict(mapped)
    ids = torch.randint(0, len(zoo.vocab), (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.max(torch.abs(a(ids) - b(ids))) < 1e-3
    folder = synth.save_checkpoint(zoo.root / "head-maps", mapped, zoo.vocab)
    mv = {m.name: m for m in audit(str(folder), zoo.registry, load_pack()).modules}["model"]
    assert mv.status == "derived", mv.reason
    assert dict(mv.best.layer_map) == {0: 0, 1: 1, 2: 2, 3: 3}
    cell = next(c for c in mv.best.cells if c.sub_layer == c.ref_layer == 1 and c.roles)
    z = {r.role: r.z for r in cell.roles}
    assert min(z.get(r, 0) for r in ("gate", "up", "down")) > 8
