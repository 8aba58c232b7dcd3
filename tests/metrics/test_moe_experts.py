"""Mixture-of-experts layouts: fused 3-D experts are split into experts and compared like dense FFNs.

The submissions are built from the session zoo's trained TinyLMs: a decoder whose dense FFNs
are replaced by experts, stored fused (transformers v5: ``mlp.experts.gate_up_proj`` [E, 2I, H],
``mlp.experts.down_proj`` [E, H, I]) or per expert (Mixtral: ``block_sparse_moe.experts.N.w1``).
"""

from __future__ import annotations


import torch

from checker import synth
from checker.audit import audit
from checker.metrics.experts import ExpertPlan, expert_plans, expert_slices
from checker.modules import split_modules
from checker.references.fingerprint import load_fingerprint
from checker.references.registry import add_reference
from checker.verdicts.shares import coverage
from checker.rules import load_pack
from checker.weights.interface import TensorInfo

E = 4


def _ffn(lm, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mlp = lm.model.layers[layer].mlp
    return tuple(mlp[n].weight.detach().clone() for n in ("gate_proj", "up_proj", "down_proj"))


def _fresh(like: tuple, seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(w.shape, generator=g) * w.std() for w in like)


def _moe_state(body, experts: dict[int, list[tuple]], fused: bool = True, seed: int = 11) -> dict:
    """``body``'s tensors with each layer's dense FFN replaced by its experts (gate, up, down) and a router."""
    state = {k: v for k, v in synth.state(body).items() if ".mlp." not in k}
    g = torch.Generator().manual_seed(seed)
    for layer, ex in experts.items():
        p = f"model.layers.{layer}"
        hidden = ex[0][0].shape[1]
        if fused:
            state[f"{p}.mlp.gate.weight"] = torch.randn(len(ex), hidden, generator=g) * 0.1  # the router
            state[f"{p}.mlp.experts.gate_up_proj"] = torch.stack([torch.cat([gt, up]) for gt, up, _ in ex])
            state[f"{p}.mlp.experts.down_proj"] = torch.stack([dn for _, _, dn in ex])
        else:
            state[f"{p}.block_sparse_moe.gate.weight"] = torch.randn(len(ex), hidden, generator=g) * 0.1
            for e, (gt, up, dn) in enumerate(ex):
                q = f"{p}.block_sparse_moe.experts.{e}"
                state.update({f"{q}.w1.weight": gt, f"{q}.w3.weight": up, f"{q}.w2.weight": dn})
    return state


def _layers(lm) -> range:
    return range(lm.config.layers)


def _borrowed(zoo) -> dict:
    """Experts 1 and 3 of every layer are the reference's FFN of that layer; the others are fresh."""
    return {i: [_ffn(zoo.ref_lm, i) if e in (1, 3) else _fresh(_ffn(zoo.ind_lm, i), 100 * i + e) for e in range(E)]
            for i in _layers(zoo.ref_lm)}


def _audit(zoo, name: str, state: dict, registry=None):
    folder = synth.save_checkpoint(zoo.root / name, state, zoo.vocab)
    result = audit(str(folder), registry or zoo.registry, load_pack())
    return {mv.name: mv for mv in result.modules}, {c.id: c.status for c in result.criteria}, result


def _assert_derived(mods, crit) -> None:
    mv = mods["model"]
    assert mv.status == "derived", mv.reason
    assert (mv.best.reference, mv.best.reference_module) == ("foreign-vlm", "model")
    assert crit["W1"] == "fail"


def test_upcycled_dense_ffn_in_fused_experts_is_derived_and_covered(zoo):
    """Upcycling: the fine-tuned copy's dense FFN copied into every expert, then nudged apart."""
    experts = {i: [tuple(w + 0.02 * w.std() * torch.randn(w.shape, generator=torch.Generator().manual_seed(10 * i + e))
                         for w in _ffn(zoo.ft_lm, i)) for e in range(E)] for i in _layers(zoo.ft_lm)}
    mods, crit, result = _audit(zoo, "moe-upcycled", _moe_state(zoo.ft_lm, experts))
    _assert_derived(mods, crit)
    assert dict(mods["model"].best.layer_map) == {0: 0, 1: 1, 2: 2, 3: 3}
    roles = {(r.role, r.reference_role) for c in mods["model"].best.cells for r in c.roles}
    assert {("gate", "gate"), ("up", "up"), ("down", "down")} <= roles
    ev = next(e for e in result.facts.modules if e.module.name == "model")
    fused = [t for t in ev.module.tensors if ".experts." in t.name]
    assert fused and {t.role for t in fused} == {"gate_up", "down"}
    assert coverage(ev.module, ev.matches) > 0.95  # the fused experts count as compared
    assert not [s for s in ev.skipped if s.reason.startswith("not compared")]


def test_reference_ffns_borrowed_as_fused_experts_of_an_independent_body_are_derived(zoo):
    mods, crit, _ = _audit(zoo, "moe-borrowed", _moe_state(zoo.ind_lm, _borrowed(zoo)))
    _assert_derived(mods, crit)
    assert dict(mods["model"].best.layer_map) == {0: 0, 1: 1, 2: 2, 3: 3}
    assert mods["model.embed_tokens"].status == "independent"


def test_reference_ffns_borrowed_as_per_expert_matrices_are_derived(zoo):
    mods, crit, _ = _audit(zoo, "moe-borrowed-2d", _moe_state(zoo.ind_lm, _borrowed(zoo), fused=False))
    _assert_derived(mods, crit)


def test_independent_moe_is_not_flagged_and_unknown_3d_tensors_are_listed(zoo):
    """Control: an independent body whose experts are its own FFN (upcycled) and fresh ones. Two
    3-D tensors the tool cannot split are listed as not compared, never dropped."""
    experts = {i: [_ffn(zoo.ind_lm, i)] + [_fresh(_ffn(zoo.ind_lm, i), 50 * i + e) for e in range(1, E)]
               for i in _layers(zoo.ind_lm)}
    state = _moe_state(zoo.ind_lm, experts)
    state["model.layers.0.mlp.experts.router_table"] = torch.randn(E, 8, 8)  # no role: not understood
    state["model.layers.1.mlp.shared.experts.gate_up_proj"] = torch.randn(E, 6, 10)  # no axis of width 64
    mods, crit, _ = _audit(zoo, "moe-independent", state)
    assert mods["model"].status == "independent", mods["model"].reason
    assert crit["W1"] == "pass"
    skipped = {s.what: s.key for s in mods["model"].skipped if s.reason.startswith("not compared")}
    assert skipped == {"model.layers.0.mlp.experts.router_table": "v.skip.not_compared",
                       "model.layers.1.mlp.shared.experts.gate_up_proj": "v.skip.expert_axes"}


def test_reference_stored_as_fused_experts_is_comparable(zoo, tmp_path):
    """Both sides split experts the same way: a registered MoE reference (fused, Llama 4 layout
    [E, H, 2I] / [E, I, H]) whose experts include the dense model's FFN is matched by that dense model."""
    experts = _borrowed(zoo)
    state = _moe_state(zoo.ref_lm, experts)
    for k in [k for k in state if ".experts." in k]:
        state[k.replace(".mlp.", ".feed_forward.")] = state.pop(k).transpose(1, 2).contiguous()
    ref = synth.save_checkpoint(tmp_path / "moe-ref", state, zoo.vocab)
    registry = tmp_path / "registry"
    add_reference(str(ref), registry, ref_id="foreign-vlm", license="apache-2.0")
    fp = load_fingerprint(next(p for p in registry.rglob("fingerprint.json")).parent)
    names = {tp.role.name: tp for tp in fp.tensors}
    down = names["model.layers.2.feed_forward.experts.down_proj[e=1]"]
    assert (down.role.role, down.role.shape, down.units, down.hidden) == ("down", (64, 128), 128, 64)
    assert names["model.layers.2.feed_forward.experts.gate_up_proj[e=3].up"].role.shape == (128, 64)
    mods, crit, _ = _audit(zoo, "dense-vs-moe-ref", synth.state(zoo.ft_lm), registry)
    _assert_derived(mods, crit)


def _roles(*shapes: tuple[str, tuple]) -> tuple:
    return split_modules([TensorInfo(n, s, "F32", "m.safetensors") for n, s in shapes])


def test_layouts_are_decided_by_the_hidden_width_and_slices_are_dense_matrices():
    h, i = 8, 8  # I == H: the down tensor alone cannot tell its layout; its gate_up sibling can
    p = "model.layers.0.mlp"
    mods = _roles((f"{p}.q_proj.weight".replace("mlp", "self_attn"), (h, h)),
                  (f"{p}.experts.gate_up_proj", (3, h, 2 * i)), (f"{p}.experts.gate_up_proj_bias", (3, 2 * i)),
                  (f"{p}.experts.down_proj", (3, i, h)))
    plans = expert_plans(mods)
    gu, dn = plans[f"{p}.experts.gate_up_proj"], plans[f"{p}.experts.down_proj"]
    assert isinstance(gu, ExpertPlan) and gu.in_out and gu.interleaved  # gpt-oss: [E, H, 2I], gate|up interleaved
    assert isinstance(dn, ExpertPlan) and dn.in_out and not dn.interleaved
    w = torch.arange(3 * h * 2 * i, dtype=torch.float32).reshape(3, h, 2 * i)
    parts = list(expert_slices(gu, w))
    assert [r.name for r, _ in parts[:2]] == [f"{p}.experts.gate_up_proj[e=0].gate", f"{p}.experts.gate_up_proj[e=0].up"]
    assert torch.equal(parts[2][1], w[1].T[0::2]) and torch.equal(parts[3][1], w[1].T[1::2])
    assert all(r.shape == tuple(t.shape) == (i, h) and r.units_axis == 0 for r, t in parts)
    d = torch.randn(3, i, h)
    assert all(torch.equal(t, d[e].T) and r.role == "down" and r.units_axis == 1
               for e, (r, t) in enumerate(expert_slices(dn, d)))
    # transformers v5 [E, 2I, H] with a hidden width of 8 and I = 4: gate then up, stored out x in
    v5 = expert_plans(_roles((f"{p}.q_proj.weight".replace("mlp", "self_attn"), (h, h)),
                             (f"{p}.experts.gate_up_proj", (2, 8, h))))[f"{p}.experts.gate_up_proj"]
    w = torch.randn(2, 8, h)
    assert not v5.in_out and [tuple(t.shape) for _, t in expert_slices(v5, w)] == [(4, h)] * 4
    assert torch.equal(list(expert_slices(v5, w))[3][1], w[1, 4:])
