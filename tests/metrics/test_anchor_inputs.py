"""Input anchors in every layout, and anchor pairs that cannot be compared are listed on their module."""

from __future__ import annotations

import torch

from checker import synth
from checker.audit import audit
from checker.references.registry import add_reference
from checker.rules import load_pack


def test_a_learned_position_table_with_a_batch_axis_is_an_anchor(zoo, tmp_path):
    """A [1, positions, hidden] table (ViT `pos_embed`) was read as one row and silently dropped;
    copied into an independent vision tower, it is now compared as positions x hidden anchors."""
    table = torch.randn(1, 17, 48, generator=torch.Generator().manual_seed(4)) * 0.02
    reg = tmp_path / "reg"
    ref = synth.save_checkpoint(tmp_path / "ref", {**synth.state(zoo.ref_vit), "visual.pos_embed": table})
    add_reference(str(ref), reg, ref_id="ref-pos", license="apache-2.0")
    sub = synth.save_checkpoint(tmp_path / "sub", {**synth.state(zoo.ind_vit), "visual.pos_embed": table.clone()})
    mv = {m.name: m for m in audit(str(sub), reg, load_pack()).modules}["visual"]
    pos = [r for m in mv.matches for c in m.cells if c.sub_layer is None for r in c.roles if r.role == "pos_embed"]
    assert pos and max(r.z for r in pos) > 8
    assert mv.status != "independent"


def test_anchor_pairs_that_cannot_be_compared_are_listed_on_their_module(zoo, tmp_path):
    """An output head over a vocabulary sharing fewer than 16 tokens with the reference's."""
    vocab = [f"<z{i}>" for i in range(len(zoo.vocab))]  # no token in common
    sub = synth.save_checkpoint(tmp_path / "sub", synth.state(zoo.ind_lm), vocab)
    mods = {m.name: m for m in audit(str(sub), zoo.registry, load_pack()).modules}
    keys = {s.key for s in mods["lm_head"].skipped}
    assert "v.skip.few_tokens" in keys
