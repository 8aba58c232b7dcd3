"""Status ``review``: evidence of derivation from a statistic no calibrated null can make significant.

No engine statistic of this kind exists yet, so the evidence is built by hand: a match by a
``REVIEW_ONLY`` statistic, beside the exact-null statistics' matches.
"""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from checker.audit import AuditResult, SubmissionInfo
from checker.cli.display import batch_table, verdict_table
from checker.metrics.interface import REVIEW_ONLY, AlignmentSummary, LayerCell, Match, ModuleEvidence, RoleScore
from checker.modules import Module, TensorRole
from checker.report.batch import BatchRow, entries, index_csv, row_from_report
from checker.report.json_report import build_report
from checker.report.render import render_html, render_index, render_markdown
from checker.rules import load_pack
from checker.verdicts import (
    Facts, derived_fraction, derived_module_fraction, evaluate_derived_share, evaluate_weights, module_verdicts, overall,
)

ROT = "rotation_aligned_row_pearson"
EXACT = "heldout_row_pearson"
PACK = load_pack()
W1 = next(c for c in PACK.criteria if c.kind == "weights")
W2 = next(c for c in PACK.criteria if c.kind == "derived_share")


def _module(name: str, numel: int = 1000) -> Module:
    return Module(name, "decoder", "llama", (TensorRole(f"{name}.layers.0.up", (numel, 1), name, "decoder", 0, "up", 0, True),))


def _match(log10_p: float, statistic: str = EXACT, ref: str = "ref-a") -> Match:
    cell = LayerCell(0, 0, 0.5, 12.0, log10_p, (RoleScore("up", "up", 0.5, 12.0, log10_p),), ())
    return Match(ref, "model", "decoder", statistic, 0.5, 12.0, log10_p, log10_p, 1, ((0, 0),), 0.0,
                 AlignmentSummary("identity", False, 0, 8, None, ()), (cell,), True)


def _facts(*modules: tuple[str, tuple[Match, ...]]) -> Facts:
    evidence = tuple(ModuleEvidence(_module(name), matches, ()) for name, matches in modules)
    return Facts(evidence, sum(ev.module.parameters for ev in evidence), ("ref-a", "ref-b"))


ROTATED = _facts(("lm", (_match(-40.0, ROT), _match(-0.3))), ("vit", (_match(-0.2),)))


def test_the_rotation_statistic_is_review_only():
    assert ROT in REVIEW_ONLY and EXACT not in REVIEW_ONLY


def test_review_only_evidence_sets_review_never_derived_nor_independent():
    lm, vit = module_verdicts(ROTATED, 1e-6)
    assert lm.status == "review" and vit.status == "independent"
    assert lm.best.statistic == ROT and lm.significant == (lm.best,)
    assert "no calibrated null can make significant: a human decides" in lm.reason
    assert lm.derived_parameters == 0 and lm.open_fraction == lm.param_fraction == 0.5


def test_the_weights_criterion_is_inconclusive_and_lists_the_review_modules():
    res, _ = evaluate_weights(W1, ROTATED)
    assert res.status == "inconclusive" and res.message_key == "v.weights.review"
    assert res.flagged == (("lm", "ref-a"),)  # a human's scoped waiver can cover exactly this
    assert res.evidence[0].module == "lm" and res.evidence[0].statistic == ROT


def test_the_share_criterion_counts_review_modules_like_inconclusive_ones():
    mvs = module_verdicts(ROTATED, 1e-6)
    assert derived_fraction(mvs) == 0.0 and derived_fraction(mvs, count_inconclusive=True) == 0.5
    assert evaluate_derived_share(W2, mvs).status == "inconclusive"  # half the parameters undecided
    counted = replace(W2, params=replace(W2.params, max_fraction=0.0, count_inconclusive=True))
    assert evaluate_derived_share(counted, mvs).status == "fail"


def test_an_exact_null_match_decides_before_a_review_statistic():
    mv = module_verdicts(_facts(("lm", (_match(-40.0, ROT), _match(-30.0)))), 1e-6)[0]
    assert mv.status == "derived" and mv.best.statistic == EXACT


def test_review_statistics_are_not_tests_of_the_exact_family():
    """Twenty review-only comparisons must not raise the exact statistics' Bonferroni factor (a -2.5 p
    survives 0.01 alone, not among 21 tests), and the exact tests do not weaken the review family."""
    many = tuple((f"m{i}", (_match(-0.1, ROT),)) for i in range(20))
    mv = module_verdicts(_facts(("lm", (_match(-2.5),)), *many), 0.01)[0]
    assert mv.status == "derived" and "after correction for 1 tests" in mv.reason
    exact = tuple((f"m{i}", (_match(-0.1),)) for i in range(20))
    mv = module_verdicts(_facts(("lm", (_match(-2.5, ROT),)), *exact), 0.01)[0]
    assert mv.status == "review" and "after correction for 1 tests of its kind" in mv.reason
    # ... and corrected among themselves: the same p among twenty review comparisons is not enough
    mv = module_verdicts(_facts(("lm", (_match(-2.5, ROT), _match(-0.1))), *many), 0.01)[0]
    assert mv.status == "independent"


def _report() -> dict:
    mvs = module_verdicts(ROTATED, W1.params.significance)
    results = [evaluate_weights(W1, ROTATED)[0], evaluate_derived_share(W2, mvs)]
    result = AuditResult(SubmissionInfo("rotated-sub", "/nowhere", "local", None, (), ROTATED.total_parameters), PACK, (),
                         overall(results), derived_fraction(mvs), mvs, tuple(results), ROTATED, "2025-06-01T00:00:00+00:00",
                         derived_module_fraction=derived_module_fraction(mvs))
    return build_report(result)  # validated against rules/schema/report.schema.json


def test_review_in_the_json_html_and_markdown_reports():
    report = _report()
    lm = next(m for m in report["modules"] if m["name"] == "lm")
    assert lm["status"] == "review" and report["verdict"] == "inconclusive"
    rot = next(x for x in lm["matches"] if x["statistic"] == ROT)
    assert rot["significant"] and rot["log10_p_value_corrected"] == -40.0  # its own family: one test
    assert report["tests"] == 2  # the exact-null comparisons only
    html = render_html(report)
    assert 'class="badge review">needs review' in html and "Needs a human review: lm." in html
    md = render_markdown(report)
    assert "**needs review**" in md and "Needs a human review: lm." in md


def test_review_in_the_batch_ranking_and_the_terminal():
    report = _report()
    row = row_from_report(report, "rotated/report.html")
    assert row.review == ("lm",)
    clean = BatchRow("clean", "inconclusive", 0.0, (), "clean/report.html")
    ranked = entries([row, clean])
    assert [e["id"] for e in ranked] == ["clean", "rotated-sub"]  # the same verdict, but evidence to look at
    assert index_csv(ranked).splitlines()[2].endswith(",lm")
    assert "needs review: lm" in render_index(ranked)
    out = Console(file=io.StringIO(), width=200)
    verdict_table(report, out=out)
    batch_table(ranked, PACK.id, out=out)
    shown = out.file.getvalue()
    assert "needs review" in shown and "needs review: lm" in shown
