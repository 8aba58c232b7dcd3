"""Coverage: what a module's comparisons reached decides whether "no match" may read "independent"."""

from __future__ import annotations

import pytest
import yaml

from checker.errors import RulePackError
from checker.metrics.interface import FIXED_TABLE_KEY, AlignmentSummary, LayerCell, Match, ModuleEvidence, RoleScore, Skipped
from checker.metrics.pairlog import PairLog
from checker.modules import Module, TensorRole
from checker.rules import MAX_UNCOMPARED, load_pack
from checker.verdicts import Facts, evaluate_weights, module_verdicts

W1 = next(c for c in load_pack().criteria if c.kind == "weights")


def _t(name, layer, role, numel, decisive=True) -> TensorRole:
    return TensorRole(name, (numel, 1) if decisive else (numel,), "dec", "decoder", layer, role, 0, decisive)


DEC = Module("dec", "decoder", "x", (
    *(_t(f"dec.{i}.up", i, "up", 100) for i in range(4)), *(_t(f"dec.{i}.norm", i, "norm", 4, False) for i in range(4)),
    _t("dec.pos", None, "pos_embed", 40),
))


def _full(layer, log10_p=-0.2) -> LayerCell:
    return LayerCell(layer, layer, 0.0, 0.0, log10_p, (RoleScore("up", "up", 0.0, 0.0, log10_p),), ())


def _match(*cells, screened=(), log10_p=-0.2) -> Match:
    log = PairLog()  # layers the layer screen alone compared (an honest model's usual layer pair)
    for layer in screened:
        log.add(layer, layer, ("up", "up"), 0.01, 0.2, -0.3, 32)
    return Match("ref", "dec", "decoder", "heldout_row_pearson", 0.0, 0.2, log10_p, log10_p, len(cells),
                 tuple((c.sub_layer, c.ref_layer) for c in cells if log10_p < -10), 0.0,
                 AlignmentSummary("identity", False, 0, 8, None, ()), cells, True, screen=log.screen_table())


FIXED = Skipped("dec.pos", "a fixed table", FIXED_TABLE_KEY)


def _verdict(match: Match, skipped=(), max_uncompared: float = MAX_UNCOMPARED):
    facts = Facts((ModuleEvidence(DEC, (match,), skipped),), DEC.parameters, ("ref",))
    return module_verdicts(facts, 1e-6, max_uncompared=max_uncompared)[0]


def test_screened_and_fully_tested_tensors_count_norms_with_them_and_fixed_tables_leave_the_denominator():
    mv = _verdict(_match(_full(0), _full(3), screened=(1, 2)), (FIXED,))
    assert mv.status == "independent" and mv.coverage == 1.0
    assert (mv.compared_parameters, mv.evidence_parameters) == (416, 416)


def test_an_uncompared_share_above_the_threshold_is_inconclusive_never_independent():
    mv = _verdict(_match(_full(0), _full(1), _full(2)), (FIXED,))  # layer 3's matrix never compared
    assert mv.status == "inconclusive" and mv.reason_key == "v.mod.uncompared"
    assert mv.coverage == pytest.approx(316 / 416)  # three matrices and, with them, the four norms
    assert mv.open_fraction == pytest.approx(100 / DEC.parameters)  # inconclusive for that share only
    assert mv.reason.startswith("24.0% of its parameters were compared with no reference (at most 5.0% may be)")
    # a fixed table is not evidence, but a tensor of unknown kind left uncompared is
    assert _verdict(_match(_full(0), _full(1), _full(2), _full(3))).status == "inconclusive"
    res, _ = evaluate_weights(W1, Facts((ModuleEvidence(DEC, (_match(_full(0), _full(1), _full(2)),), (FIXED,)),),
                                        DEC.parameters, ("ref",)))
    assert res.status == "inconclusive"


def test_the_pack_sets_the_threshold():
    assert _verdict(_match(_full(0), _full(1), _full(2)), (FIXED,), max_uncompared=0.3).status == "independent"


def test_a_module_can_still_be_derived_on_what_was_compared():
    mv = _verdict(_match(_full(0, -60), _full(1, -60), log10_p=-60), (FIXED,))
    assert mv.status == "derived" and mv.coverage < 0.6
    assert mv.derived_parameters == 208  # layers 0 and 1, norms included
    assert mv.open_fraction == pytest.approx(200 / DEC.parameters)  # layers 2 and 3's matrices: undecided, not independent


def test_a_module_of_fixed_tables_only_is_not_evidence():
    only = Module("pos", "embeddings", "x", (TensorRole("pos.w", (10, 4), "pos", "embeddings", None, "pos_embed", 0, True),))
    facts = Facts((ModuleEvidence(only, (), (Skipped("pos.w", "a fixed table", FIXED_TABLE_KEY),)),), 40, ("ref",))
    mv = module_verdicts(facts, 1e-6)[0]
    assert mv.status == "independent" and mv.reason_key == "v.mod.fixed_only" and mv.coverage is None


def test_nothing_compared_is_never_independent_by_default():
    facts = Facts((ModuleEvidence(DEC, (), ()),), DEC.parameters, ("ref",))
    assert module_verdicts(facts, 1e-6)[0].status == "inconclusive"


@pytest.mark.parametrize("value, ok", [(0.2, True), (1.5, False)])
def test_max_uncompared_is_a_checked_pack_parameter(tmp_path, value, ok):
    pack = {"id": "p", "version": "1.0", "title": "t", "programme": {"name": "P", "clause": "C"}, "defaults": {},
            "criteria": [{"id": "W1", "title": "w", "kind": "weights", "severity": "critical", "params": {"max_uncompared": value}}]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(pack))
    if ok:
        assert load_pack(path).criteria[0].params.max_uncompared == value
    else:
        with pytest.raises(RulePackError, match="max_uncompared"):
            load_pack(path)


def test_a_matrix_no_statistic_covers_is_listed_and_not_counted_as_compared(zoo):
    """A 2-D tensor of no known role (a `mask_token`) is neither compared nor weak evidence: it is
    listed as not compared, and the module's coverage says so."""
    import torch

    from checker import synth
    from checker.audit import audit

    state = {**synth.state(zoo.ind_lm), "model.mask_token": torch.randn(1, 64)}
    folder = synth.save_checkpoint(zoo.root / "mask-token", state, zoo.vocab)
    mv = {m.name: m for m in audit(str(folder), zoo.registry, load_pack()).modules}["model"]
    listed = {s.what: s.key for s in mv.skipped if s.key == "v.skip.no_statistic"}
    assert listed == {"model.mask_token": "v.skip.no_statistic"}
    assert mv.status == "independent" and mv.coverage < 1.0
    assert mv.coverage == pytest.approx(1 - 64 / mv.parameters, abs=1e-9)
