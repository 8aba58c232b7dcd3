"""Issue 8's attacks in ``checker.synth``: the function-preserving ones leave the output unchanged."""

from __future__ import annotations

import pytest
import torch

from checker import synth

LM = synth.LMConfig(vocab=40, hidden=32, layers=2, ffn=48, heads=4)
VIT = synth.ViTConfig(hidden=24, layers=2, ffn=40, heads=4, out=32)


def subject(seed: int = 0, lm: synth.LMConfig = LM, vit: synth.ViTConfig = VIT) -> synth.Subject:
    """Random weights, with norm gains and biases far from their initial 1 and 0, so that folding
    them is really tested."""
    a, b = synth.new_lm(lm, seed), synth.new_vit(vit, seed)
    g = torch.Generator().manual_seed(seed + 50)
    with torch.no_grad():
        for model in (a, b):
            for n, p in model.named_parameters():
                if "norm" in n:
                    p.copy_(torch.rand(p.shape, generator=g) * 1.5 + 0.25 if n.endswith("weight") else torch.randn(p.shape, generator=g) * 0.3)
                elif n.endswith("bias"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return synth.Subject({**synth.state(b), **synth.state(a)}, [f"t{i}" for i in range(lm.vocab)], lm, vit)


def outputs(s: synth.Subject) -> tuple[torch.Tensor, torch.Tensor]:
    """(decoder logits, vision features) of a subject loaded back into the tiny models."""
    lm, vit = synth.TinyLM(s.lm), synth.TinyViT(s.vit)
    lm.load_state_dict({k: v for k, v in s.state.items() if not k.startswith("visual.")})
    vit.load_state_dict({**{k: v for k, v in s.state.items() if k.startswith("visual.")},
                         **{k: v for k, v in vit.state_dict().items() if k.startswith("head.")}})
    ids = torch.randint(0, s.lm.vocab, (3, 20), generator=torch.Generator().manual_seed(1))
    imgs, _ = synth.synthetic_images(4, s.vit, torch.Generator().manual_seed(2))
    with torch.no_grad():
        return lm.eval()(ids), vit.eval().features(imgs)


def test_random_orthogonal():
    q = synth.random_orthogonal(16, 3)
    assert torch.allclose(q @ q.T, torch.eye(16, dtype=q.dtype), atol=1e-12)
    q1 = synth.random_orthogonal(16, 3, fix_ones=True)
    assert torch.allclose(q1 @ q1.T, torch.eye(16, dtype=q.dtype), atol=1e-12)
    assert torch.allclose(q1 @ torch.ones(16, dtype=q.dtype), torch.ones(16, dtype=q.dtype), atol=1e-12)
    assert (q1 - torch.eye(16, dtype=q.dtype)).abs().max() > 0.1  # a real rotation, not the identity


def test_fold_norms_preserves_function_and_flattens_gains():
    s = subject()
    folded = synth.fold_norms(s)
    for (a, b) in zip(outputs(s), outputs(folded)):
        assert (a - b).abs().max() < 1e-4
    assert all(torch.equal(t, torch.ones_like(t)) for k, t in folded.state.items() if k.endswith("norm.weight"))
    assert all(torch.equal(t, torch.zeros_like(t)) for k, t in folded.state.items() if k.endswith(("norm1.bias", "norm2.bias")))


@pytest.mark.parametrize("towers", [("lm",), ("vit",), ("lm", "vit")])
def test_rotate_residual_preserves_function(towers):
    s = subject(lm=LM, vit=VIT)
    rot = synth.rotate_residual(s, towers=towers, seed=5)
    (la, fa), (lb, fb) = outputs(s), outputs(rot)
    assert (la - lb).abs().max() < 1e-4
    if "lm" in towers:  # the merger's output feeds the decoder's rotated stream
        fa = (fa.double() @ synth.random_orthogonal(LM.hidden, 5)).float()
    assert (fa - fb).abs().max() < 1e-4
    # and the copy is really hidden from a tensor-by-tensor comparison: every residual-reading
    # matrix of a rotated tower changed
    for name in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "lm_head.weight",
                 "visual.patch_embed.proj.weight", "visual.blocks.0.attn.qkv.weight", "visual.merger.mlp.0.weight"):
        changed = (s.state[name] - rot.state[name]).abs().max() > 0.05
        assert changed == (synth.tower_of(name) in towers), name


def test_rotation_with_fixed_tables_and_unit_permutations_preserves_function():
    lm, vit = synth.LMConfig(**{**LM.__dict__, "positions": 24}), synth.ViTConfig(**{**VIT.__dict__, "pos_embed": True})
    s = subject(lm=lm, vit=vit)
    assert "model.embed_positions.weight" in s.state and "visual.pos_embed" in s.state
    attacked = synth.permute_merger(synth.permute_units(synth.rotate_residual(s, towers=("vit",), seed=8)))
    for a, b in zip(outputs(s), outputs(attacked)):
        assert (a - b).abs().max() < 1e-4
    assert not torch.equal(s.state["visual.merger.mlp.0.bias"], attacked.state["visual.merger.mlp.0.bias"])
    assert not torch.equal(s.state["visual.pos_embed"], attacked.state["visual.pos_embed"])


def test_merge_is_tensorwise_and_checks_shapes():
    a, b = subject(0), subject(1)
    m = synth.merge(a, b, 0.2)
    k = "model.layers.1.mlp.down_proj.weight"
    assert torch.allclose(m.state[k], 0.2 * a.state[k] + 0.8 * b.state[k], atol=1e-6)
    assert all(torch.equal(synth.merge(a, b, 1.0).state[n], a.state[n]) for n in a.state)
    with pytest.raises(ValueError):
        synth.merge(a, subject(2, lm=synth.LMConfig(**{**LM.__dict__, "ffn": 32})), 0.5)


def test_reinit_layers_reports_the_true_copied_share():
    s = subject()
    r = synth.reinit_layers(s, (1,), seed=3)
    fresh = [k for k in s.state if k.startswith("model.layers.1.")]
    assert fresh and all(not torch.equal(r.subject.state[k], s.state[k]) or k.endswith("norm.weight") for k in fresh)
    assert all(torch.equal(r.subject.state[k], s.state[k]) for k in s.state if k not in fresh)
    total = sum(t.numel() for t in s.state.values())
    assert r.copied_share == pytest.approx(1 - sum(s.state[k].numel() for k in fresh) / total)
    assert r.stack_share == pytest.approx(0.5)  # one of two identical layers
    with pytest.raises(ValueError):
        synth.reinit_layers(s, (0,), stack="model.nothing")


@pytest.mark.parametrize("fused", [True, False])
def test_upcycle_and_borrowed_experts_shapes(fused):
    s, other = subject(0), subject(1)
    up = synth.upcycle(s, experts=3, noise=0.01, fused=fused)
    assert not any(k.endswith("mlp.gate_proj.weight") for k in up.state)
    dense = s.state["model.layers.0.mlp.gate_proj.weight"]
    if fused:
        gu, down = up.state["model.layers.0.mlp.experts.gate_up_proj"], up.state["model.layers.0.mlp.experts.down_proj"]
        assert gu.shape == (3, 2 * LM.ffn, LM.hidden) and down.shape == (3, LM.hidden, LM.ffn)
        assert up.state["model.layers.0.mlp.router.weight"].shape == (3, LM.hidden)
        copy = gu[2, : LM.ffn]
    else:
        assert up.state["model.layers.0.mlp.experts.2.down_proj.weight"].shape == (LM.hidden, LM.ffn)
        assert up.state["model.layers.0.mlp.gate.weight"].shape == (3, LM.hidden)
        copy = up.state["model.layers.0.mlp.experts.2.gate_proj.weight"]
    assert 0 < (copy - dense).abs().max() < 0.1 * dense.abs().max()  # a noisy copy
    mixed = synth.borrow_experts(other, s, experts=4, borrowed=1, fused=fused)
    key = "model.layers.1.mlp.experts." + ("down_proj" if fused else "0.down_proj.weight")
    got = mixed.state[key][0] if fused else mixed.state[key]
    assert torch.equal(got, s.state["model.layers.1.mlp.down_proj.weight"])
    assert torch.equal(mixed.state["model.layers.1.self_attn.q_proj.weight"], other.state["model.layers.1.self_attn.q_proj.weight"])


def test_fuse_experts_is_a_renaming_of_the_per_expert_layout():
    s = subject()
    fused, per = synth.upcycle(s, experts=2, fused=True), synth.fuse_experts(synth.upcycle(s, experts=2, fused=False))
    assert set(fused.state) == set(per.state)
    assert all(torch.equal(fused.state[k], per.state[k]) for k in fused.state)


def test_fixed_tables_follow_their_formulas_and_stay_fixed():
    t = synth.sinusoidal_table(10, 8)
    assert torch.equal(t[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert t[3, 0] == pytest.approx(torch.sin(torch.tensor(3.0)).item())  # the fastest channel: timescale 1
    inter = synth.sinusoidal_table(10, 8, interleaved=True)
    assert inter[5, 1] == pytest.approx(torch.cos(torch.tensor(5.0)).item())
    t2 = synth.sincos_2d_table(4, 16)
    assert t2.shape == (16, 16) and torch.equal(t2[0], torch.tensor(([0.0] * 4 + [1.0] * 4) * 2))
    assert torch.equal(t2[1, 8:], t2[0, 8:]) and not torch.equal(t2[1, :8], t2[0, :8])  # column first, then row
    lm, vit = synth.LMConfig(**{**LM.__dict__, "positions": 50}), synth.ViTConfig(**{**VIT.__dict__, "pos_embed": True})
    text = "def f(x):\n    return x\n" * 40
    s = synth.train_subject(4, text, synth.char_vocab(text), lm, vit, steps=2)
    assert torch.equal(s.state["model.embed_positions.weight"], synth.sinusoidal_table(50, LM.hidden))
    assert torch.equal(s.state["visual.pos_embed"], synth.sincos_2d_table(VIT.image // VIT.patch, VIT.hidden))


def test_same_seed_starts_from_the_reference_initialisation():
    text, other = "import os\nprint(os.sep)\n" * 40, "class A:\n    pass\n" * 40
    vocab = synth.char_vocab(text + other)
    lm = synth.LMConfig(**{**LM.__dict__, "vocab": len(vocab)})
    init = synth.state(synth.new_lm(lm, 3))
    start = synth.same_seed(3, other, vocab, lm, VIT, steps=0)
    assert all(torch.equal(start.state[k], v) for k, v in init.items())
    ref = synth.train_subject(3, text, vocab, lm, VIT, steps=2)
    moved = synth.same_seed(3, other, vocab, lm, VIT, steps=2)
    k = "model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(moved.state[k], ref.state[k]) and not torch.equal(moved.state[k], init[k])


@pytest.mark.parametrize("spread", [3.0, 43.0])  # factors to e^3 and to e^43 (about 5e18)
def test_rescaling_single_units_preserves_function(spread):
    s = subject()
    scaled = synth.rescale_units(s, spread=spread)
    for a, b in zip(outputs(s), outputs(scaled)):
        assert (a - b).abs().max() < 1e-4
    up = "model.layers.0.mlp.up_proj.weight"
    ratio = (scaled.state[up].double().norm(dim=1) / s.state[up].double().norm(dim=1)).log().abs()
    assert ratio.max() > spread / 2  # the units really carry factors of their own


def test_mixing_inside_heads_preserves_function():
    s = subject()
    mixed = synth.mix_heads(s)
    for a, b in zip(outputs(s), outputs(mixed)):
        assert (a - b).abs().max() < 1e-4
    for name in ("model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.q_proj.weight",
                 "visual.blocks.0.attn.qkv.weight"):
        assert (s.state[name] - mixed.state[name]).abs().max() > 0.05, name  # every head really turned
