"""A rotation of the residual stream belongs to the stream whose anchors gave it.

The decoder's token anchors give its rotation (or its anchor-space projection). A vision merger
has no anchors of its own on its output layer, whose input width (the merger's inner units) is
the decoder's width in these models: that width is no reason to turn it by the decoder's
rotation. Its output rows follow the decoder's turn, but they are its units, which the row
matching never aligns by a hidden map. Projected onto the decoder's anchors, an independent
merger matched the reference's one (0.21, z 9.7: both read through the same anchors) and went
to review beside a rotated decoder copy, or to derived beside a copied vision tower.
"""

from __future__ import annotations

import numpy as np
import pytest

from checker import synth
from checker.audit import audit
from checker.metrics import alignment
from checker.metrics.anchors import Anchor, choose_alignment
from checker.metrics.rotation import ROTATION_STATISTIC
from checker.modules import TensorRole
from checker.references.fingerprint import TensorPrint
from checker.rules import load_pack


def _subject(zoo, lm, vit, merger=None) -> synth.Subject:
    state = {**synth.state(vit), **synth.state(lm)}
    if merger is not None:
        state.update({k: v for k, v in synth.state(merger).items() if k.startswith("visual.merger.")})
    return synth.Subject(state, list(zoo.vocab), lm.config, vit.config)


def _audit(zoo, name: str, s: synth.Subject) -> dict:
    folder = synth.save_checkpoint(zoo.root / name, s.state, s.vocab)
    return {mv.name: mv for mv in audit(str(folder), zoo.registry, load_pack()).modules}


@pytest.mark.parametrize("tower", ["independent", "copied"])
def test_an_independent_merger_beside_a_rotated_decoder_copy_is_not_flagged(zoo, tower):
    """Beside a copied vision tower the merger's input side is aligned by the tower's anchors, and
    the projected output layer was pooled into that exact-null match: derived (0.111, z 7.0)."""
    vit = zoo.ind_vit if tower == "independent" else zoo.ft_vit
    s = synth.rotate_residual(_subject(zoo, zoo.ft_lm, vit, merger=zoo.ind_vit), ("lm",))
    mods = _audit(zoo, f"turned-lm-own-merger-{tower}-tower", s)
    assert mods["model"].status == "review" and mods["model"].best.statistic == ROTATION_STATISTIC
    assert mods["visual"].status == ("independent" if tower == "independent" else "derived"), mods["visual"].reason
    mv = mods["visual.merger"]
    assert mv.status == "independent", (mv.status, mv.reason)
    assert all(m.statistic != ROTATION_STATISTIC and not m.alignment.rotated for m in mv.matches)


def test_a_copied_merger_beside_a_rotated_decoder_copy_is_still_caught(zoo):
    """The copy's output rows are turned with the stream; its input side, in the vision tower's
    basis, is not, and decides with an exact null."""
    s = synth.rotate_residual(_subject(zoo, zoo.ft_lm, zoo.ind_vit, merger=zoo.ft_vit), ("lm",))
    mods = _audit(zoo, "turned-lm-copied-merger", s)
    assert mods["model"].status == "review"
    mv = mods["visual.merger"]
    assert mv.status == "derived", mv.reason
    assert mv.best.reference_module == "visual.merger" and mv.best.statistic != ROTATION_STATISTIC
    assert mods["visual"].status == "independent", mods["visual"].reason


def _anchor(module: str, kind: str, rotated: bool, d: int = 8) -> Anchor:
    role = TensorRole(f"{module}.weight", (100, d), module, kind, None, "embed", 0, True)
    idx = np.arange(d)
    ev = alignment.HeldOut(0.9, 20.0, -50.0, 50, 50, 0.0, 1.0)
    al = alignment.HiddenAlignment(idx, idx, np.ones(d), ev, ev, None, rotation=np.eye(d) if rotated else None)
    return Anchor(role, TensorPrint(role, "float32", (), units=100, hidden=d), al, 100)


def test_a_token_rotation_is_lent_within_the_token_stream_only():
    turned = [_anchor("token_embd", "embeddings", rotated=True)]
    # a decoder its module map does not name after its embeddings (GGUF blk.N, GPT-2 h.N) still takes it
    assert choose_alignment(turned, "blk", "blk", 8, 8, "decoder", "decoder")[1] is turned[0]
    for kind in ("projector", "vision_encoder", "audio_encoder"):
        al, anchor = choose_alignment(turned, "mm", "mm", 8, 8, kind, kind)
        assert anchor is None and al.rotation is None and al.is_identity, kind
        assert choose_alignment(turned, "mm", "mm", 8, 6, kind, kind) == (None, None)
    # a permutation or identity found on the token anchors is lent as before: its null stays exact
    plain = [_anchor("token_embd", "embeddings", rotated=False)]
    assert choose_alignment(plain, "mm", "mm", 8, 8, "projector", "projector")[1] is plain[0]
    # a rotation of the vision stream still turns a projector reading it (LLaVA's projector is not
    # named after its vision tower), and never the decoder
    vision = [_anchor("vision_tower", "vision_encoder", rotated=True)]
    assert choose_alignment(vision, "multi_modal_projector", "multi_modal_projector", 8, 8, "projector", "projector")[1] is vision[0]
    assert choose_alignment(vision, "blk", "blk", 8, 8, "decoder", "decoder")[1] is None
