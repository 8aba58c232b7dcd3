"""From evidence to verdicts: module statuses, criterion results, the audit verdict.

Statuses are decided here, not in the metric engine, because the significance
level and the multiple-testing correction belong to the rule pack and to the
whole audit: every (submission module x reference module) comparison that
could decide a verdict counts as one test in the Bonferroni correction.
Unknown or unevaluable never counts as pass.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

from checker.metrics.interface import Match, ModuleEvidence, Skipped
from checker.rules import Criterion, RulePack, Waiver

#: A module is "identical" when this share of its parameters is byte-identical
#: (after dtype normalisation) to one reference module.
IDENTICAL_SHARE = 0.99
#: Inconclusive modules smaller than this share of the parameters do not make
#: the weights criterion inconclusive (they are listed in its evidence).
NEGLIGIBLE_SHARE = 0.01
DECIDING = ("critical", "major", "minor")


@dataclass(frozen=True)
class ModuleVerdict:
    name: str
    kind: str
    family: str
    parameters: int
    param_fraction: float
    status: str  # independent | derived | identical | inconclusive
    reason: str
    best: Match | None
    matches: tuple[Match, ...]
    significant: tuple[Match, ...]
    skipped: tuple[Skipped, ...]
    layers: tuple[int, ...]


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence behind a criterion: typed, never a free-form dict."""

    text: str
    module: str | None = None
    reference: str | None = None
    file: str | None = None
    statistic: str | None = None
    score: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class CriterionResult:
    id: str
    title: str
    kind: str
    severity: str
    status: str  # pass | fail | warn | inconclusive | not_applicable (a waived finding: warn + waiver)
    message: str
    evidence: tuple[Evidence, ...]
    remediation: str = ""
    waiver: Waiver | None = None
    waived_status: str | None = None  # what the status was before the waiver


@dataclass(frozen=True)
class Facts:
    """Everything the rules may look at, gathered by the earlier stages."""

    modules: tuple[ModuleEvidence, ...]
    total_parameters: int
    reference_ids: tuple[str, ...]
    tokenizers: tuple = ()
    architecture: dict = field(default_factory=dict)
    licenses: tuple = ()
    lineage: tuple = ()
    declared_ancestors: tuple[str, ...] = ()
    disclosure: object | None = None
    reference_licenses: dict = field(default_factory=dict)


def p_from_log10(log10_p: float) -> float:
    return 10.0 ** log10_p if log10_p > -300 else 0.0


def module_verdicts(facts: Facts, significance: float, references: tuple[str, ...] | None = None) -> tuple[ModuleVerdict, ...]:
    """Decide each module's status at ``significance`` after correcting for all tests."""
    def keep(m: Match) -> bool:
        return references is None or m.reference in references

    tests = sum(1 for ev in facts.modules for m in ev.matches if m.decisive and keep(m))
    correction = math.log10(max(tests, 1))
    threshold = math.log10(significance)
    out = []
    for ev in facts.modules:
        mod = ev.module
        matches = tuple(m for m in ev.matches if keep(m))
        decisive = [m for m in matches if m.decisive]
        significant = tuple(m for m in decisive if m.log10_p + correction < threshold)
        identical = [m for m in matches if m.identical_fraction >= IDENTICAL_SHARE]
        if identical:
            best = max(identical, key=lambda m: m.identical_fraction)
            status, reason = "identical", f"{best.identical_fraction:.1%} of its parameters are byte-identical to {best.reference}:{best.reference_module}"
        elif significant:
            best = min(significant, key=lambda m: m.log10_p)
            status = "derived"
            reason = (f"matches {best.reference}:{best.reference_module} ({best.statistic} {best.score:.3f}, z {best.z:.1f}, "
                      f"p {_fmt_p(best.log10_p + correction)} after correction for {tests} tests)")
        elif decisive:
            best = min(decisive, key=lambda m: m.log10_p)
            status = "independent"
            reason = f"no reference module matches at p < {significance:g} after correction for {tests} tests (best p {_fmt_p(min(0.0, best.log10_p + correction))})"
        elif matches:
            best = None
            status, reason = "inconclusive", "only weak evidence (norm weights, biases) could be compared with the references"
        elif any(s for s in ev.skipped):
            best = None
            status, reason = "inconclusive", "no comparison was possible: " + "; ".join(s.reason for s in ev.skipped[:3])
        else:
            best = None
            status, reason = "independent", "no registered reference has a module of a compatible kind"
        out.append(ModuleVerdict(
            mod.name, mod.kind, mod.family, mod.parameters, mod.parameters / max(facts.total_parameters, 1), status, reason,
            best, matches, significant, ev.skipped, mod.layers,
        ))
    return tuple(out)


def _fmt_p(log10_p: float) -> str:
    if log10_p >= -3:
        return f"{10 ** log10_p:.3g}"
    return f"1e{log10_p:.0f}" if log10_p > -1e6 else "< 1e-999999"


def _applies(c: Criterion, mv: ModuleVerdict) -> bool:
    return not c.modules or mv.kind in c.modules


def evaluate_weights(c: Criterion, facts: Facts) -> tuple[CriterionResult, tuple[ModuleVerdict, ...]]:
    p = c.params
    mvs = [mv for mv in module_verdicts(facts, p.significance, p.references) if _applies(c, mv)]
    bad = [mv for mv in mvs if mv.status in ("derived", "identical") and not (p.allow_identical and mv.status == "identical")]
    unknown = [mv for mv in mvs if mv.status == "inconclusive"]
    ev = tuple(Evidence(f"{mv.name} ({mv.kind}, {mv.param_fraction:.1%} of parameters): {mv.status}: {mv.reason}",
                        module=mv.name, reference=mv.best.reference if mv.best else None,
                        statistic=mv.best.statistic if mv.best else None, score=mv.best.score if mv.best else None,
                        p_value=p_from_log10(mv.best.log10_p) if mv.best else None) for mv in mvs)
    if not facts.reference_ids:
        return _result(c, "inconclusive", "the registry holds no reference models to compare with "
                       "(add them with 'fromscratch registry add')", ev), tuple(mvs)
    if bad:
        names = ", ".join(f"{mv.name} ({mv.status}, from {mv.best.reference})" for mv in bad)
        return _result(c, "fail", f"{len(bad)} module(s) derive from a registered reference: {names}", ev), tuple(mvs)
    weighty = [mv for mv in unknown if mv.param_fraction >= NEGLIGIBLE_SHARE]
    if weighty:
        return _result(c, "inconclusive", f"{len(weighty)} module(s) could not be tested: " + ", ".join(mv.name for mv in weighty), ev), tuple(mvs)
    return _result(c, "pass", f"all {len(mvs)} modules are independent of the {len(facts.reference_ids)} registered reference(s) at p < {p.significance:g}", ev), tuple(mvs)


def derived_fraction(mvs: tuple[ModuleVerdict, ...], count_inconclusive: bool = False) -> float:
    counted = ("derived", "identical") + (("inconclusive",) if count_inconclusive else ())
    return sum(mv.param_fraction for mv in mvs if mv.status in counted)


def evaluate_derived_share(c: Criterion, mvs: tuple[ModuleVerdict, ...]) -> CriterionResult:
    p = c.params
    frac = derived_fraction(mvs, p.count_inconclusive)
    ev = tuple(Evidence(f"{mv.name}: {mv.parameters:,} parameters ({mv.param_fraction:.2%}) {mv.status}", module=mv.name,
                        reference=mv.best.reference if mv.best else None) for mv in mvs if mv.status in ("derived", "identical"))
    msg = f"derived parameter share {frac:.2%} (allowed at most {p.max_fraction:.2%})"
    return _result(c, "fail" if frac > p.max_fraction + 1e-12 else "pass", msg, ev)


def evaluate_tokenizer(c: Criterion, facts: Facts) -> CriterionResult:
    p = c.params
    if not facts.tokenizers:
        return _result(c, "not_applicable", "no tokenizer to compare (the submission or the references ship none)", ())
    reused = [t for t in facts.tokenizers if t.vocab_jaccard > p.max_vocab_jaccard or t.same_id_fraction > p.max_same_id_fraction and t.vocab_jaccard > 0.5]
    ev = tuple(Evidence(f"{t.reference}: vocabulary Jaccard {t.vocab_jaccard:.3f}, same-id fraction {t.same_id_fraction:.3f} "
                        f"(chance {t.same_id_chance:.2g}), merges agreement {t.merges_agreement if t.merges_agreement is not None else 'n/a'}",
                        reference=t.reference, statistic="vocab_jaccard", score=t.vocab_jaccard) for t in facts.tokenizers)
    if reused:
        msg = "tokenizer reused from " + ", ".join(t.reference for t in reused) + " (this alone is not evidence of copied weights)"
        return _result(c, p.on_reuse if c.severity != "info" or p.on_reuse == "warn" else "warn", msg, ev)
    return _result(c, "pass", "the tokenizer is not a copy of a registered reference's", ev)


def evaluate_architecture(c: Criterion, facts: Facts) -> CriterionResult:
    arch = facts.architecture
    text = arch.get("summary", "unknown architecture")
    same = arch.get("same_as", ())
    ev = tuple(Evidence(f"same module layout and shapes as {r} (not evidence of copied weights)", reference=r) for r in same)
    return _result(c, "pass", text, ev)


def _result(c: Criterion, status: str, message: str, evidence: tuple) -> CriterionResult:
    if c.severity == "info" and status == "fail":
        status = "warn"  # information-only criteria never decide
    return CriterionResult(c.id, c.title, c.kind, c.severity, status, message, tuple(evidence), c.remediation)


def apply_waivers(results: list[CriterionResult], waivers: tuple[Waiver, ...], today: dt.date) -> list[CriterionResult]:
    """A waived finding stays visible with its waiver; an expired waiver is shown but no longer applies."""
    out = []
    for r in results:
        w = next((w for w in waivers if w.criterion == r.id), None)
        if w is None or r.status in ("pass", "not_applicable"):
            out.append(r)
        elif w.active(today):
            # Shown as a warning that carries its waiver; the finding itself is kept.
            out.append(replace(r, status="warn", waiver=w, waived_status=r.status,
                               message=f"{r.message} [waived by {w.owner} until {w.expires}: {w.reason}]"))
        else:
            out.append(replace(r, waiver=w, message=f"{r.message} [waiver by {w.owner} expired on {w.expires}]"))
    return out


def overall(results: list[CriterionResult]) -> str:
    deciding = [r for r in results if r.severity in DECIDING]
    if any(r.status == "fail" for r in deciding):
        return "fail"
    if any(r.status == "inconclusive" for r in deciding):
        return "inconclusive"
    return "pass"
