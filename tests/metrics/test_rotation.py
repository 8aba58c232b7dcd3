"""A residual stream turned by a random orthogonal map (norm gains folded first: the function is
unchanged) hides a copy from every permutation-based test; the fitted rotation finds it again,
as review-only evidence, and an independent model is never sent to review."""

from __future__ import annotations

import numpy as np
import torch

from checker import synth
from checker.audit import audit
from checker.metrics.rotation import ROTATION_STATISTIC, align_rotation, procrustes
from checker.rules import load_pack


def rotate_lm(state: dict, seed: int = 11, dims: np.ndarray | None = None, cfg=None) -> dict:
    """Fold every RMSNorm gain into the matrices reading it, then x -> xQ on the residual stream
    (Q turns only ``dims`` when given): ``synth.rotate_residual`` with that Q."""
    d = state["model.embed_tokens.weight"].shape[1]
    sel = np.arange(d) if dims is None else np.asarray(dims)
    turn, _ = torch.linalg.qr(torch.randn(len(sel), len(sel), generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    q = torch.eye(d, dtype=torch.float64)
    q[np.ix_(sel, sel)] = turn
    layers = len({k.split(".")[2] for k in state if k.startswith("model.layers.")})
    cfg = cfg or synth.LMConfig(vocab=state["model.embed_tokens.weight"].shape[0], hidden=d, layers=layers)
    return synth.rotate_residual(synth.Subject(state, [], cfg, synth.ViTConfig()), ("lm",), lm_q=q).state


def test_the_rotation_preserves_the_function(zoo):
    model = synth.new_lm(zoo.ref_lm.config, 0)
    model.load_state_dict(synth.state(zoo.ref_lm))
    turned = synth.new_lm(zoo.ref_lm.config, 0)
    turned.load_state_dict(rotate_lm(synth.state(zoo.ref_lm)))
    ids = torch.randint(0, len(zoo.vocab), (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.max(torch.abs(model(ids) - turned(ids))) < 1e-3


def test_procrustes_recovers_an_orthogonal_map():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 32))
    q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    r = procrustes(a, a @ q)
    assert np.allclose(r, q, atol=1e-8)
    al = align_rotation(a, a @ q + 0.1 * rng.standard_normal((400, 32)))
    assert al.evidence.z > 20 and np.allclose(al.rotation, q.T, atol=0.05)


def _audit(zoo, name: str, state: dict):
    folder = synth.save_checkpoint(zoo.root / name, state, zoo.vocab)
    return {mv.name: mv for mv in audit(str(folder), zoo.registry, load_pack()).modules}


def test_a_rotated_copy_of_the_decoder_is_sent_to_review_with_its_layer_map(zoo):
    from checker.report.json_report import build_report
    from checker.report.render import render_html, render_markdown

    folder = synth.save_checkpoint(zoo.root / "rotated-lm", rotate_lm(synth.state(zoo.ft_lm)), zoo.vocab)
    result = audit(str(folder), zoo.registry, load_pack())
    status = {c.id: c.status for c in result.criteria}
    assert status["W1"] == status["L2"] == "inconclusive"  # review: never a pass, and a human decides
    assert result.verdict != "pass"
    report = build_report(result)
    assert report["modules"][[m["name"] for m in report["modules"]].index("model")]["status"] == "review"
    text = render_markdown(report, "en") + render_html(report, "en")
    assert "residual stream turned by an orthogonal map" in text and "independent initialisation and training" in text
    mods = {mv.name: mv for mv in result.modules}
    for name in ("model", "model.embed_tokens", "lm_head"):
        mv = mods[name]
        assert mv.status in ("review", "derived"), (name, mv.status, mv.reason)
        assert mv.status != "independent"
    best = mods["model"].best
    assert best.statistic == ROTATION_STATISTIC and best.alignment.rotated
    assert dict(best.layer_map) == {0: 0, 1: 1, 2: 2, 3: 3}


def test_an_independent_model_is_not_rotated_onto_the_reference(zoo):
    mods = _audit(zoo, "rotated-independent", rotate_lm(synth.state(zoo.ind_lm)))
    for name in ("model", "model.embed_tokens", "lm_head"):
        assert mods[name].status == "independent", (name, mods[name].status, mods[name].reason)
        assert all(m.statistic != ROTATION_STATISTIC for m in mods[name].matches)


def test_a_rotated_copy_with_permuted_units_is_still_found(zoo):
    s = synth.Subject(rotate_lm(synth.state(zoo.ft_lm)), list(zoo.vocab), zoo.ref_lm.config, zoo.ref_vit.config)
    mods = _audit(zoo, "rotated-permuted", synth.permute_units(s).state)
    best = mods["model"].best
    assert mods["model"].status != "independent" and best.statistic == ROTATION_STATISTIC
    assert dict(best.layer_map) == {0: 0, 1: 1, 2: 2, 3: 3}
    moved = [r.units_moved for c in best.cells if c.roles for r in c.roles if r.role in ("gate", "up")]
    assert moved and max(moved) > 0.5


def _vlm(zoo, vit, lm) -> synth.Subject:
    return synth.Subject({**synth.state(vit), **synth.state(lm)}, list(zoo.vocab), zoo.ref_lm.config, zoo.ref_vit.config)


def test_a_rotated_vision_tower_with_permuted_units_is_sent_to_review_in_pixel_space(zoo):
    s = synth.permute_units(synth.rotate_residual(_vlm(zoo, zoo.ft_vit, zoo.ind_lm), ("vit",)))
    mods = _audit(zoo, "rotated-vit", s.state)
    mv = mods["visual"]
    assert mv.status != "independent", mv.reason
    assert mv.best.statistic == ROTATION_STATISTIC and mv.best.alignment.rotated
    assert dict(mv.best.layer_map) == {0: 0, 1: 1, 2: 2}
    assert mods["model"].status == "independent", mods["model"].reason


def test_an_independent_vision_tower_is_not_projected(zoo):
    mods = _audit(zoo, "rotated-vit-independent", synth.rotate_residual(_vlm(zoo, zoo.ind_vit, zoo.ind_lm), ("vit",)).state)
    assert mods["visual"].status == "independent", mods["visual"].reason
    assert all(m.statistic != ROTATION_STATISTIC for m in mods["visual"].matches)


def test_turning_only_the_public_sketch_columns_does_not_keep_the_full_test_away(tmp_path):
    """The screen's columns are fixed by the width: a copy that turns exactly those residual
    dimensions scrambles its sketches (and permuting its units hides it from the index test).
    Its anchors still show the copy, and then the full test runs anyway."""
    from checker.metrics.screen import screen_columns
    from checker.references.registry import add_reference

    text = synth.stdlib_text(("textwrap.py",))
    vocab = synth.char_vocab(text)
    cfg = synth.LMConfig(vocab=len(vocab), hidden=512, layers=2, ffn=1024, heads=8)
    ref = synth.state(synth.new_lm(cfg, 3))  # untrained: a copy keeps its exact realisation
    reg = tmp_path / "registry"
    add_reference(str(synth.save_checkpoint(tmp_path / "ref", ref, vocab)), reg, ref_id="wide-ref", license="apache-2.0")
    turned = rotate_lm(ref, seed=5, dims=screen_columns(512))
    s = synth.permute_units(synth.Subject(turned, vocab, cfg, synth.ViTConfig()))
    folder = synth.save_checkpoint(tmp_path / "sub", s.state, vocab)
    mods = {mv.name: mv for mv in audit(str(folder), reg, load_pack()).modules}
    mv = mods["model"]
    assert mv.status == "derived", mv.reason
    assert mv.best.cells_tested >= 2 and dict(mv.best.layer_map) == {0: 0, 1: 1}
    assert len(mv.best.screen) and max(mv.best.screen.z) < 4  # the screen alone would have sent nothing


def test_the_anchor_space_has_a_bounded_width():
    from checker.metrics.rotation import PROJECTION_ANCHORS, project_onto_anchors

    rng = np.random.default_rng(1)
    a = rng.standard_normal((3000, 64))
    q, _ = np.linalg.qr(rng.standard_normal((64, 64)))
    al = project_onto_anchors(a, a @ q)
    assert al.rotation.shape == (64, PROJECTION_ANCHORS) == al.ref_map.shape
    assert al.evidence.score > 0.99 and al.evidence.z > 8
    # the same anchors on both sides, so a matrix read through either map is the same
    w = rng.standard_normal((10, 64))
    assert np.allclose(w @ al.ref_map, (w @ q) @ al.rotation, atol=1e-8)
