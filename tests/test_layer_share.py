"""The derived share counts what the evidence ties to a reference, layer by layer, not whole modules."""

from __future__ import annotations

import torch

from checker import synth
from checker.audit import audit
from checker.metrics.interface import AlignmentSummary, LayerCell, Match, ModuleEvidence, RoleScore
from checker.modules import Module, TensorRole
from checker.report.json_report import build_report
from checker.rules import load_pack
from checker.verdicts import Facts, derived_fraction, derived_module_fraction, module_verdicts

FRESH = (1, 2)  # the middle layers: the layer map must skip them, not stop at them


def test_half_the_layers_reinitialised_counts_only_the_copied_half(zoo):
    state = synth.state(zoo.ft_lm)  # a fine-tuned copy: nothing byte-identical to fall back on
    g = torch.Generator().manual_seed(11)
    for name in list(state):
        if synth.layer_of(name) in FRESH:
            state[name] = synth.fresh_tensor(name, state[name], g)  # fresh random weights, same shapes
    total = sum(t.numel() for t in state.values())
    copied = sum(t.numel() for name, t in state.items() if synth.layer_of(name) not in FRESH)
    folder = synth.save_checkpoint(zoo.root / "half-reinit", state, zoo.vocab)
    result = audit(str(folder), zoo.registry, load_pack())
    w2 = next(c for c in result.criteria if c.kind == "derived_share")
    decoder = next(mv for mv in result.modules if mv.name == "model")
    assert decoder.status == "derived" and {s for s, _ in decoder.best.layer_map} == {0, 3}
    assert abs(result.derived_param_fraction - copied / total) < 0.05, (result.derived_param_fraction, copied / total)
    assert result.derived_module_fraction == 1.0  # every module holds a copy: the module-level figure says 100%
    assert w2.status == "fail" and f"{result.derived_param_fraction:.2%} layer by layer" in w2.message
    report = build_report(result)
    assert report["derived_param_fraction"] < 0.7 and report["derived_module_fraction"] == 1.0
    mod = next(m for m in report["modules"] if m["name"] == "model")
    assert 0.4 < mod["derived_parameters"] / mod["parameters"] < 0.6


# -- hand-built evidence: which tensors count ----------------------------------------------------

def _tensor(name, layer, role, numel, decisive=True) -> TensorRole:
    return TensorRole(name, (numel,) if not decisive else (numel, 1), "enc", "vision_encoder", layer, role, 0, decisive)


ENC = Module("enc", "vision_encoder", "x", (
    _tensor("enc.patch", None, "patch_embed", 100), _tensor("enc.pos", None, "pos_embed", 50),
    _tensor("enc.norm", None, "norm", 10, decisive=False),
    *(_tensor(f"enc.{i}.fc1", i, "up", 200) for i in range(4)), *(_tensor(f"enc.{i}.n", i, "norm", 10, decisive=False) for i in range(4)),
))


def _cell(sub, ref, log10_p, *roles) -> LayerCell:
    return LayerCell(sub, ref, 0.9, 10.0, log10_p, tuple(RoleScore(r, r, 0.9, 10.0, log10_p) for r in roles), ())


def _match(layer_map, cells, identical=()) -> Match:
    return Match("ref", "enc", "vision_encoder", "heldout_row_pearson", 0.9, 30.0, -50.0, -50.0, len(cells), layer_map,
                 sum(t.numel for t in ENC.tensors if t.name in identical) / ENC.parameters,
                 AlignmentSummary("identity", False, 0, 8, None, ()), cells, True, identical_tensors=identical)


def _verdict(match: Match):
    facts = Facts((ModuleEvidence(ENC, (match,), ()),), ENC.parameters, ("ref",))
    return module_verdicts(facts, 1e-6)[0]


def test_tied_layers_and_layerless_tensors_with_their_own_evidence_count():
    cells = (_cell(0, 0, -50, "up"), _cell(2, 2, -40, "up"), _cell(1, 1, -0.5, "up"), _cell(3, 3, -0.2, "up"),
             _cell(None, None, -30, "patch_embed"), _cell(None, None, -0.3, "pos_embed"))
    mv = _verdict(_match(((0, 0), (2, 2)), cells, identical=("enc.norm",)))
    assert mv.status == "derived"
    # layers 0 and 2 whole (matrix and norm), the patch embedding (its own cell), the identical final norm;
    # not the position table, whose own test is not significant
    assert mv.derived_parameters == 2 * 210 + 100 + 10
    assert derived_fraction((mv,)) == mv.derived_parameters / ENC.parameters
    assert derived_module_fraction((mv,)) == 1.0


def test_a_derivation_that_cannot_be_localised_counts_the_whole_module():
    mv = _verdict(_match((), (_cell(0, 1, -50, "up"),)))  # significant, but the layer map holds nothing
    assert mv.status == "derived" and mv.layers and mv.derived_parameters == ENC.parameters


def test_independent_modules_tie_nothing():
    cells = tuple(_cell(i, i, -0.1, "up") for i in range(4)) + (_cell(None, None, -0.1, "patch_embed", "pos_embed"),)
    m = Match("ref", "enc", "vision_encoder", "heldout_row_pearson", 0.01, 0.1, -0.1, -0.1, 5, (), 0.0,
              AlignmentSummary("identity", False, 0, 8, None, ()), cells, True)
    mv = _verdict(m)
    assert mv.status == "independent" and mv.derived_parameters == 0 and mv.coverage == 1.0
