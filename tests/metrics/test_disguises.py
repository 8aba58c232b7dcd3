"""Derivations hidden by the edits of benchmarks/provenance_suite.py, on the session zoo (fast subset)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from checker import synth
from checker.audit import audit
from checker.metrics.engine import compare
from checker.modules import split_modules
from checker.references.fingerprint import build_fingerprint
from checker.rules import load_pack
from checker.scanners.tokenizer import read_vocabulary
from checker.weights import open_checkpoint


def subject(zoo, lm, vit=None) -> synth.Subject:
    state = {**(synth.state(vit) if vit is not None else {}), **synth.state(lm)}
    return synth.Subject(state, list(zoo.vocab), lm.config, zoo.ref_vit.config)


def audited(zoo, name: str, s: synth.Subject):
    folder = synth.save_checkpoint(zoo.root / name, s.state, s.vocab)
    result = audit(str(folder), zoo.registry, load_pack())
    return {mv.name: mv for mv in result.modules}


def assert_derived(mv, module: str, layer_map: dict | None = None) -> None:
    assert mv.status == "derived", mv.reason
    assert (mv.best.reference, mv.best.reference_module) == ("foreign-vlm", module)
    if layer_map is not None:
        assert dict(mv.best.layer_map) == layer_map


def test_half_the_ffn_width_pruned_is_derived(zoo):
    mods = audited(zoo, "pruned", synth.prune_ffn(subject(zoo, zoo.ft_lm)))
    assert_derived(mods["model"], "model", {0: 0, 1: 1, 2: 2, 3: 3})
    moved = [r.units_moved for c in mods["model"].best.cells if c.sub_layer == c.ref_layer and c.roles
             for r in c.roles if r.role in ("gate", "up")]
    assert min(moved) > 0.3  # the kept neurons sit at new indices, and were found there


def test_function_preserving_rescaling_is_derived_and_its_scale_is_reported(zoo):
    mods = audited(zoo, "rescaled", synth.rescale(subject(zoo, zoo.ft_lm), c=3.7))
    assert_derived(mods["model"], "model", {0: 0, 1: 1, 2: 2, 3: 3})
    cell = next(c for c in mods["model"].best.cells if c.sub_layer == c.ref_layer == 0)
    by_role = {r.role: r for r in cell.roles}
    # q*3.7 and k/3.7 on top of a folded gain (exp(U(-1, 1)) per dimension, median ~1)
    assert by_role["q"].scale / by_role["k"].scale == pytest.approx(3.7 ** 2, rel=0.35)
    assert by_role["q"].scale_spread > 0.3 and by_role["o"].scale_spread < 0.3


def test_units_rescaled_one_by_one_score_as_the_unscaled_copy(zoo):
    """Each FFN unit's up row, each value row and each query row times a factor of its own,
    +-exp(U(-43.7, 43.7)) (up to 1e19, beyond float32's range of squares), divided out of the down
    column, o column and key row (function-preserving). Before units were scaled to unit RMS ahead
    of every statistic that pools them, the scaled roles fell from z ~25 to 3-6 and only the gate
    kept the verdict; now every copied layer's score is the unscaled copy's (within 2%: the random
    signs move the column means a little)."""
    plain = audited(zoo, "fine-tuned", subject(zoo, zoo.ft_lm, zoo.ft_vit))
    mods = audited(zoo, "units-rescaled", synth.rescale_units(subject(zoo, zoo.ft_lm, zoo.ft_vit), spread=math.log(1e19)))
    assert_derived(mods["model"], "model", {0: 0, 1: 1, 2: 2, 3: 3})
    assert_derived(mods["visual"], "visual")

    def zs(mv):
        return {(c.sub_layer, c.ref_layer, r.role): r.z for c in mv.best.cells for r in c.roles if c.sub_layer == c.ref_layer}

    for name in ("model", "visual"):
        want, got = zs(plain[name]), zs(mods[name])
        assert set(got) == set(want) and len(want) > 10
        bad = {k: (want[k], got[k]) for k in want if got[k] != pytest.approx(want[k], rel=0.02)}
        assert not bad, (name, bad)
        assert min(z for (_, _, role), z in got.items() if role in ("up", "v", "q", "qkv")) > 15


def test_heads_mixed_inside_are_derived(zoo):
    """Every attention head turned by random orthogonal matrices (v rows by Q, o columns by Q^T; q and
    k rows by one R: function-preserving). No unit keeps its weights; the unit search pairs each
    mixed row with the original row it holds most of (head width 16 here: attention z 24 -> ~15),
    and the FFN is untouched. A head-subspace test is not built (README, limits)."""
    mods = audited(zoo, "heads-mixed", synth.mix_heads(subject(zoo, zoo.ft_lm, zoo.ft_vit)))
    assert_derived(mods["model"], "model", {0: 0, 1: 1, 2: 2, 3: 3})
    assert_derived(mods["visual"], "visual")
    cell = next(c for c in mods["model"].best.cells if c.sub_layer == c.ref_layer == 0)
    z = {r.role: r.z for r in cell.roles}
    assert min(z[r] for r in ("q", "k", "v", "o")) > 8 and min(z[r] for r in ("gate", "up", "down")) > 20


def test_vocabulary_pruned_and_extended_is_derived_by_token_string(zoo):
    s = synth.change_vocab(subject(zoo, zoo.ft_lm))
    assert len(s.vocab) != len(zoo.vocab) and s.vocab[2] != zoo.vocab[2]
    mods = audited(zoo, "revocab", s)
    assert_derived(mods["model.embed_tokens"], "model.embed_tokens")
    assert_derived(mods["lm_head"], "lm_head")
    assert_derived(mods["model"], "model", {0: 0, 1: 1, 2: 2, 3: 3})


def test_bf16_round_trips_are_identical_or_derived(zoo):
    mods = audited(zoo, "bf16-copy", synth.round_trip(subject(zoo, zoo.ref_lm, zoo.ref_vit), "bf16"))
    assert {mv.status for mv in mods.values()} == {"identical"}
    mods = audited(zoo, "bf16-ft", synth.round_trip(subject(zoo, zoo.ft_lm, zoo.ft_vit), "bf16"))
    assert_derived(mods["model"], "model", {0: 0, 1: 1, 2: 2, 3: 3})
    assert_derived(mods["visual"], "visual", {0: 0, 1: 1, 2: 2})


def test_vision_tower_transplanted_under_other_names_is_found(zoo):
    s = synth.transplant_llava(synth.permute_units(subject(zoo, zoo.ind_lm, zoo.ft_vit)))
    assert any(k.startswith("vision_tower.vision_model.encoder.layers.0.self_attn.q_proj") for k in s.state)
    mods = audited(zoo, "transplant", s)
    assert_derived(mods["vision_tower"], "visual", {0: 0, 1: 1, 2: 2})
    assert mods["model"].status == "independent", mods["model"].reason


@pytest.fixture(scope="module")
def null_models(zoo):
    """Two more independent language models: same config, tokenizer and data, other seeds."""
    text = synth.stdlib_text()
    out = [zoo.ref_lm, zoo.ind_lm]
    for seed in (7, 8):
        lm = synth.new_lm(zoo.ref_lm.config, seed)
        synth.train_lm(lm, text, zoo.vocab, 100, seed=seed)
        out.append(lm)
    return out


def test_null_is_calibrated_on_really_trained_independent_models(zoo, null_models):
    """Every pair of independently trained models: the screen's p-values (every role pair of every
    layer pair) are near uniform, the few pairs it sends to the full test are not significant, and
    no module is flagged."""
    folders = [synth.save_checkpoint(zoo.root / f"null{i}", synth.state(m), zoo.vocab) for i, m in enumerate(null_models)]
    prints = [build_fingerprint(open_checkpoint(f), read_vocabulary(f), f"n{i}") for i, f in enumerate(folders)]
    cells, screens, modules = [], [], []
    for i, f in enumerate(folders):
        reader = open_checkpoint(f)
        refs = [(f"n{j}", fp) for j, fp in enumerate(prints) if j != i]
        for ev in compare(reader, split_modules(reader.tensors()), read_vocabulary(f), refs):
            for m in ev.matches:
                if m.decisive:
                    modules.append(m.log10_p)
                    cells.extend(c.log10_p for c in m.cells if c.roles and c.sub_layer is not None)
                    screens.extend(m.screen.log10_p)
    p = 10.0 ** np.array(screens)
    assert len(p) > 200
    assert np.mean(p < 0.01) <= 0.03
    assert 0.4 < np.mean(p) < 0.6
    assert len(cells) <= 0.05 * len(p)  # the screen sends few unrelated pairs to the full test ...
    assert all(lp > -4 for lp in cells)  # ... and those are not significant
    assert min(modules) > -4  # far from the 1e-6 level (before any correction across modules)


def test_compare_reports_the_recovered_alignment(zoo):
    from checker.audit import compare_pair
    from checker.report.compare_report import build_compare_report

    s = synth.drop_layers(synth.permute_hidden(synth.rescale(subject(zoo, zoo.ft_lm), c=3.7)))
    folder = synth.save_checkpoint(zoo.root / "disguised", s.state, s.vocab)
    out = build_compare_report(compare_pair(str(folder), str(zoo.root / "foreign-vlm")))
    model = next(m for m in out["modules"] if m["name"] == "model")
    rec = next(x for x in model["matches"] if x["reference_module"] == "model")["recovered_alignment"]
    assert rec["hidden"]["permuted"] and rec["hidden"]["dims_moved"] > 50 and rec["hidden"]["sign_flips"] > 10
    assert rec["layer_map"] == {"0": 0, "1": 2} and rec["reference_layers_unmatched"] == [1, 3]
    q = next(r for r in rec["layers"][0]["roles"] if r["role"] == "q")
    assert q["scale_spread"] > 0.3  # the folded norm gain


def test_hidden_width_pruned_is_aligned_rectangularly(zoo):
    s = synth.prune_hidden(subject(zoo, zoo.ft_lm), keep=0.75)
    assert s.state["model.embed_tokens.weight"].shape[1] == 48 and s.state["model.layers.0.mlp.down_proj.weight"].shape[0] == 48
    mods = audited(zoo, "hidden-pruned", s)
    assert_derived(mods["model.embed_tokens"], "model.embed_tokens")
    assert_derived(mods["lm_head"], "lm_head")
    assert_derived(mods["model"], "model", {0: 0, 1: 1, 2: 2, 3: 3})
    al = mods["model"].best.alignment
    # the 48 kept dimensions keep their order, so each matched reference dimension (ascending)
    # must land on submission dimensions 0, 1, ..., 47: one misplaced dimension breaks this
    assert al.matched_dims == 48 and al.anchor_z >= 8 and al.permutation == tuple(range(48))


def test_hidden_width_pruned_independent_model_is_not_flagged(zoo):
    """Control: the same pruning of an independently trained model. A rectangular alignment fitted
    between independent models inherits their shared privileged basis; it must not count as evidence."""
    mods = audited(zoo, "hidden-pruned-ind", synth.prune_hidden(subject(zoo, zoo.ind_lm), keep=0.75))
    for name in ("model", "model.embed_tokens", "lm_head"):
        assert mods[name].status == "independent", (name, mods[name].reason)


def test_duplicated_and_inserted_layers_are_mapped(zoo):
    s = synth.repeat_layers(subject(zoo, zoo.ft_lm), duplicate=1, insert_after=2)
    assert synth.layer_plan(4, 1, 2) == [0, 1, 1, 2, None, 3] and s.lm.layers == 6
    mods = audited(zoo, "repeated", s)
    # both copies of reference layer 1 point to it; the fresh layer 4 is in no pair
    assert_derived(mods["model"], "model", {0: 0, 1: 1, 2: 1, 3: 2, 5: 3})
    fresh = [c for c in mods["model"].best.cells if c.sub_layer == 4]
    # the anchors show a copy, so the full test also ran on the fresh layer's best-screened pairs,
    # and found nothing there
    assert fresh and all(c.z < 4 and c.index_z < 4 for c in fresh)
    pairs, screen_z, _ = mods["model"].best.screen.by_pair()
    fresh_z = [z for (sub, _), z in zip(pairs, screen_z) if sub == 4]
    assert len(fresh_z) == 4 and max(fresh_z) < 3  # every reference layer screened, not even close
    from checker.report.json_report import weak_evidence  # the norms of the mapped pairs, off the diagonal too
    shown = {(w["sub_layer"], w["ref_layer"]) for w in weak_evidence(mods["model"].best, None)}
    assert shown == {(None, None), (0, 0), (1, 1), (2, 1), (3, 2), (5, 3)}  # and the final norm
