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
    #: the best match's p-value after the audit-wide Bonferroni correction (log10; None without a match)
    log10_p_corrected: float | None = None


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence behind a criterion: typed, never a free-form dict."""

    text: str
    module: str | None = None
    reference: str | None = None
    file: str | None = None
    statistic: str | None = None
    score: float | None = None
    p_value: float | None = None  # corrected; never printed as 0 (see log10_p_value)
    log10_p_value: float | None = None


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
    #: (module, reference) pairs behind a failure, so a waiver scoped to a module or a
    #: reference covers exactly those and nothing else
    flagged: tuple[tuple[str | None, str | None], ...] = ()


@dataclass(frozen=True)
class Architecture:
    """What the submission's config and tensor layout say about its architecture (information only)."""

    summary: str
    model_type: str | None = None
    architectures: tuple[str, ...] = ()
    same_as: tuple[str, ...] = ()  # references with the same tensor names and shapes


@dataclass(frozen=True)
class Facts:
    """Everything the rules may look at, gathered by the earlier stages."""

    modules: tuple[ModuleEvidence, ...]
    total_parameters: int
    reference_ids: tuple[str, ...]
    tokenizers: tuple = ()
    architecture: Architecture = Architecture("unknown architecture")
    licenses: tuple = ()
    lineage: tuple = ()
    declared_ancestors: tuple[str, ...] = ()
    disclosure: object | None = None  # scanners.disclosure.Inventory
    reference_licenses: dict = field(default_factory=dict)  # reference id -> license id
    reference_sources: dict = field(default_factory=dict)  # reference id -> source (repo id or folder)


P_FLOOR = 1e-300


def p_from_log10(log10_p: float) -> float:
    """A p-value as a float, floored at 1e-300 (an upper bound there; log10 is kept beside it)."""
    return max(10.0 ** log10_p, P_FLOOR) if log10_p > -300 else P_FLOOR


def module_verdicts(facts: Facts, significance: float, references: tuple[str, ...] | None = None,
                    statistic: str = "any") -> tuple[ModuleVerdict, ...]:
    """Decide each module's status at ``significance`` after correcting for all tests.

    ``references`` and ``statistic`` restrict which comparisons may decide (a pack's
    weights criterion can name them); the others are not tests and are not counted.
    """
    def in_scope(m: Match) -> bool:
        return references is None or m.reference in references

    def decides(m: Match) -> bool:
        return m.decisive and in_scope(m) and (statistic == "any" or m.statistic == statistic)

    tests = sum(1 for ev in facts.modules for m in ev.matches if decides(m))
    correction = math.log10(max(tests, 1))
    threshold = math.log10(significance)
    out = []
    for ev in facts.modules:
        mod = ev.module
        matches = tuple(m for m in ev.matches if in_scope(m))
        decisive = [m for m in matches if decides(m)]
        significant = tuple(m for m in decisive if m.log10_p + correction < threshold)
        # A byte-identical copy is identical whatever statistic a pack asks for.
        identical = [m for m in matches if m.identical_fraction >= IDENTICAL_SHARE]
        best = None
        if not facts.reference_ids:
            status, reason = "inconclusive", "no reference models are registered: nothing to compare with"
        elif identical:
            best = max(identical, key=lambda m: m.identical_fraction)
            status, reason = "identical", f"{best.identical_fraction:.1%} of its parameters are byte-identical to {best.reference}:{best.reference_module}"
        elif significant:
            best = min(significant, key=lambda m: m.log10_p)
            status = "derived"
            reason = (f"matches {best.reference}:{best.reference_module} ({best.statistic} {best.score:.3f}, z {best.z:.1f}, "
                      f"p {format_p(best.log10_p + correction)} after correction for {tests} tests)")
        elif decisive:
            best = min(decisive, key=lambda m: m.log10_p)
            status = "independent"
            reason = f"no reference module matches at p < {significance:g} after correction for {tests} tests (best p {format_p(min(0.0, best.log10_p + correction))})"
        elif any(m.decisive for m in matches):
            status, reason = "inconclusive", f"no comparison by the statistic the rule pack requires ({statistic})"
        elif matches:
            status, reason = "inconclusive", "only weak evidence (norm weights, biases) could be compared with the references"
        elif ev.skipped:
            status, reason = "inconclusive", "no comparison was possible: " + "; ".join(dict.fromkeys(s.reason for s in ev.skipped[:20]))
        else:
            status, reason = "independent", "no registered reference has a module of a compatible kind"
        out.append(ModuleVerdict(
            mod.name, mod.kind, mod.family, mod.parameters, mod.parameters / max(facts.total_parameters, 1), status, reason,
            best, matches, significant, ev.skipped, mod.layers,
            None if best is None else min(0.0, best.log10_p + correction),
        ))
    return tuple(out)


def format_p(log10_p: float) -> str:
    """The one way a p-value is written for people (messages, HTML, Markdown, terminal):
    3 significant digits, scientific notation when small, and below float range an
    upper bound (p = 10^-381.2 is "< 1e-381", never "< 1e-382" and never 0).

    log10 p is first rounded to the 3 decimals the JSON report keeps, so a figure
    formatted from the engine's exact value and from the report read the same."""
    log10_p = round(log10_p, 3)
    if log10_p >= -3:
        return f"{10 ** log10_p:.3g}"
    if log10_p >= -300:
        return f"{10 ** log10_p:.1e}"
    return f"< 1e{math.ceil(log10_p)}" if log10_p > -1e6 else "< 1e-999999"


def _applies(c: Criterion, mv: ModuleVerdict) -> bool:
    return not c.modules or mv.kind in c.modules


def evaluate_weights(c: Criterion, facts: Facts) -> tuple[CriterionResult, tuple[ModuleVerdict, ...]]:
    p = c.params
    mvs = [mv for mv in module_verdicts(facts, p.significance, p.references, p.statistic) if _applies(c, mv)]
    bad = [mv for mv in mvs if mv.status in ("derived", "identical") and not (p.allow_identical and mv.status == "identical")]
    unknown = [mv for mv in mvs if mv.status == "inconclusive"]
    ev = tuple(Evidence(f"{mv.name} ({mv.kind}, {mv.param_fraction:.1%} of parameters): {mv.status}: {mv.reason}",
                        module=mv.name, reference=mv.best.reference if mv.best else None,
                        statistic=mv.best.statistic if mv.best else None, score=mv.best.score if mv.best else None,
                        p_value=p_from_log10(mv.log10_p_corrected) if mv.best else None,
                        log10_p_value=round(mv.log10_p_corrected, 3) if mv.best else None) for mv in mvs)
    if not facts.reference_ids:
        return _result(c, "inconclusive", "the registry holds no reference models to compare with "
                       "(add them with 'fromscratch registry add')", ev), tuple(mvs)
    if bad:
        names = ", ".join(f"{mv.name} ({mv.status}, from {mv.best.reference})" for mv in bad)
        return _result(c, "fail", f"{len(bad)} module(s) derive from a registered reference: {names}", ev,
                       [(mv.name, mv.best.reference) for mv in bad]), tuple(mvs)
    untested = sum(mv.param_fraction for mv in unknown)
    if unknown and untested >= NEGLIGIBLE_SHARE:  # the untested modules together, not one by one
        return _result(c, "inconclusive", f"{len(unknown)} module(s) holding {untested:.1%} of the parameters could not be tested: "
                       + ", ".join(mv.name for mv in unknown), ev), tuple(mvs)
    tested = len(mvs) - len(unknown)
    note = f"; {len(unknown)} tiny module(s) ({untested:.2%} of the parameters) could not be tested" if unknown else ""
    return _result(c, "pass", f"all {tested} tested modules are independent of the {len(facts.reference_ids)} registered "
                   f"reference(s) at p < {p.significance:g}{note}", ev), tuple(mvs)


def derived_fraction(mvs: tuple[ModuleVerdict, ...], count_inconclusive: bool = False) -> float:
    counted = ("derived", "identical") + (("inconclusive",) if count_inconclusive else ())
    return sum(mv.param_fraction for mv in mvs if mv.status in counted)


def evaluate_derived_share(c: Criterion, mvs: tuple[ModuleVerdict, ...]) -> CriterionResult:
    p = c.params
    frac = derived_fraction(mvs, p.count_inconclusive)
    ev = tuple(Evidence(f"{mv.name}: {mv.parameters:,} parameters ({mv.param_fraction:.2%}) {mv.status}", module=mv.name,
                        reference=mv.best.reference if mv.best else None) for mv in mvs if mv.status in ("derived", "identical"))
    msg = f"derived parameter share {frac:.2%} (allowed at most {p.max_fraction:.2%})"
    if frac > p.max_fraction + 1e-12:
        return _result(c, "fail", msg, ev, [(mv.name, mv.best.reference if mv.best else None)
                                            for mv in mvs if mv.status in ("derived", "identical")])
    untested = sum(mv.param_fraction for mv in mvs if mv.status == "inconclusive")
    if not p.count_inconclusive and untested >= NEGLIGIBLE_SHARE:
        return _result(c, "inconclusive", f"{msg}, but {untested:.2%} of the parameters could not be tested", ev)
    return _result(c, "pass", msg, ev)


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
        return _result(c, p.on_reuse, msg, ev)
    return _result(c, "pass", "the tokenizer is not a copy of a registered reference's", ev)


def evaluate_architecture(c: Criterion, facts: Facts) -> CriterionResult:
    arch = facts.architecture
    ev = tuple(Evidence(f"same module layout and shapes as {r} (not evidence of copied weights)", reference=r) for r in arch.same_as)
    return _result(c, "pass", arch.summary, ev)


def _result(c: Criterion, status: str, message: str, evidence: tuple, flagged=()) -> CriterionResult:
    if c.severity == "info" and status == "fail":
        status = "warn"  # information-only criteria never decide
    return CriterionResult(c.id, c.title, c.kind, c.severity, status, message, tuple(evidence), c.remediation,
                           flagged=tuple(flagged))


def apply_waivers(results: list[CriterionResult], waivers: tuple[Waiver, ...], today: dt.date) -> list[CriterionResult]:
    """A waived finding stays visible with its waiver; an expired waiver is shown but no longer applies.

    A waiver scoped to a module and/or reference applies only when every flagged
    (module, reference) pair of the finding is covered by the active waivers.
    """
    out = []
    for r in results:
        mine = [w for w in waivers if w.criterion == r.id]
        if not mine or r.status in ("pass", "not_applicable"):
            out.append(r)
            continue
        active = [w for w in mine if w.active(today)]
        unscoped = [w for w in active if w.module is None and w.reference is None]
        scoped = [w for w in active if w not in unscoped]

        def covered(pair) -> bool:
            return any((w.module in (None, pair[0])) and (w.reference in (None, pair[1])) for w in scoped)

        chosen = unscoped[0] if unscoped else (scoped[0] if scoped and r.flagged and all(covered(f) for f in r.flagged) else None)
        if chosen is not None:
            scope = "" if chosen in unscoped else f" for {chosen.module or 'any module'} / {chosen.reference or 'any reference'}"
            # Shown as a warning that carries its waiver; the finding itself is kept.
            out.append(replace(r, status="warn", waiver=chosen, waived_status=r.status,
                               message=f"{r.message} [waived{scope} by {chosen.owner} until {chosen.expires}: {chosen.reason}]"))
        elif scoped:
            out.append(replace(r, message=f"{r.message} [a waiver by {scoped[0].owner} is scoped to "
                                          f"{scoped[0].module or 'any module'} / {scoped[0].reference or 'any reference'} and does not cover this finding]"))
        else:
            w = max(mine, key=lambda w: w.expires)
            out.append(replace(r, waiver=w, message=f"{r.message} [waiver by {w.owner} expired on {w.expires}]"))
    return out


def overall(results: list[CriterionResult]) -> str:
    deciding = [r for r in results if r.severity in DECIDING]
    if any(r.status == "fail" for r in deciding):
        return "fail"
    if any(r.status == "inconclusive" for r in deciding):
        return "inconclusive"
    return "pass"


# -- the licensing half of the clause -------------------------------------------------------

def _catalogue():
    from checker.scanners.licenses import catalogue
    return catalogue()


def _license_problems(lic_id: str, p) -> list[str]:
    """Why a license (by catalogue id, alias or hub id) is not acceptable under ``p``."""
    cat = _catalogue()
    lic = cat.lookup(lic_id)
    canon = lic.id if lic else lic_id
    allow = {(cat.lookup(a).id if cat.lookup(a) else a) for a in p.allow}
    deny = {(cat.lookup(d).id if cat.lookup(d) else d) for d in p.deny}
    name = lic.name if lic else canon
    out = []
    if canon in deny:
        out.append(f"{name} is on the deny list")
    elif allow and canon not in allow:
        out.append(f"{name} is not on the allow list ({', '.join(sorted(allow))})")
    if lic is not None:
        if p.deny_third_party_model_licenses and lic.third_party_model_license:
            out.append(f"{name} is a third-party model license")
        for o in lic.obligations:
            if o.kind in p.deny_obligations:
                out.append(f"{name} imposes a denied obligation ({o.kind}): \u201c{_short(o.clause)}\u201d")
    return out


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def evaluate_license(c: Criterion, facts: Facts, mvs: tuple[ModuleVerdict, ...]) -> CriterionResult:
    """The submission's own licenses, and the licenses its derived modules inherit."""
    p = c.params
    findings = facts.licenses
    confident = [f for f in findings if f.detected != "unknown" and f.confidence >= p.min_confidence]
    doubtful = [f for f in findings if f not in confident]
    ev: list[Evidence] = []
    problems: dict[str, list[str]] = {}  # problem -> where it arises (files, modules)
    for f in findings:
        ev.append(Evidence(f"{f.file}: {f.detected} (confidence {f.confidence:.2f}, {f.source})"
                           + (f"; obligations: {', '.join(sorted({o.kind for o in f.obligations}))}" if f.obligations else ""),
                           file=f.file, statistic="license_detection", score=f.confidence))
    for f in confident:
        for prob in _license_problems(f.detected, p):
            problems.setdefault(prob, []).append(f.file)
    unknown_inherited: list[str] = []
    flagged = []
    for mv in mvs:
        if mv.status in ("derived", "identical") and mv.best is not None:
            ref_lic = facts.reference_licenses.get(mv.best.reference)
            if ref_lic:
                if _catalogue().lookup(ref_lic) is None:
                    unknown_inherited.append(f"module {mv.name} inherits {ref_lic} from {mv.best.reference}, a license the catalogue does not know")
                for prob in _license_problems(ref_lic, p):
                    problems.setdefault(prob, []).append(f"module {mv.name} (from {mv.best.reference})")
                    flagged.append((mv.name, mv.best.reference))
                ev.append(Evidence(f"module {mv.name} derives from {mv.best.reference}, licensed {ref_lic}: its terms apply to that module",
                                   module=mv.name, reference=mv.best.reference))
            else:
                problems.setdefault(f"the license of {mv.best.reference} is not recorded in the registry", []).append(f"module {mv.name}")
                flagged.append((mv.name, mv.best.reference))
    if problems:
        msg = "; ".join(f"{prob} [{', '.join(dict.fromkeys(where))}]" for prob, where in problems.items())
        return _result(c, "fail", msg, tuple(ev), dict.fromkeys(flagged))
    if unknown_inherited:
        return _result(c, p.on_unknown, "; ".join(unknown_inherited) + " (unknown is never a pass)", tuple(ev))
    if not confident:
        why = "no license was found" if not findings else "no license was identified with confidence \u2265 " + f"{p.min_confidence:.2f}"
        return _result(c, p.on_unknown, why + " (unknown is never a pass)", tuple(ev))
    if doubtful:
        return _result(c, p.on_unknown,
                       f"{len(doubtful)} license source(s) could not be identified: " + ", ".join(f.file for f in doubtful), tuple(ev))
    ids = sorted({f.detected for f in confident})
    return _result(c, "pass", f"licensed under {', '.join(ids)}; no denied license or obligation", tuple(ev))


def _norm_repo(name: str) -> str:
    return name.strip().lower().rstrip("/")


def _same_model(declared: str, reference: str, ref_source: str | None) -> bool:
    d, r = _norm_repo(declared), _norm_repo(reference)
    s = _norm_repo(ref_source or "")
    return d == r or d == s or d.split("/")[-1] == r.split("/")[-1]


def evaluate_lineage(c: Criterion, facts: Facts, mvs: tuple[ModuleVerdict, ...]) -> CriterionResult:
    """What the submission declares as its ancestry, against what its weights reveal."""
    p = c.params
    declared = list(facts.declared_ancestors)
    if facts.disclosure is not None:
        declared += [comp.name for comp in facts.disclosure.components if comp.contributes_weights]
    declared = list(dict.fromkeys(declared))
    sources = facts.reference_sources
    first_party = {_norm_repo(x) for x in p.first_party}
    detected = [(mv, mv.best.reference) for mv in mvs if mv.status in ("derived", "identical") and mv.best is not None]
    ev: list[Evidence] = [Evidence(f"{h.file}: {h.key} = {h.value}", file=h.file) for h in facts.lineage]
    fails: list[str] = []
    warns: list[str] = []
    flagged: list[tuple[str | None, str | None]] = []
    for mv, ref in detected:
        matched = [d for d in declared if _same_model(d, ref, sources.get(ref))]
        if not matched:
            flagged.append((mv.name, ref))
            msg = f"undeclared derivation: module {mv.name} ({mv.param_fraction:.1%} of parameters) derives from {ref}, which the submission does not declare"
            (fails if p.on_undeclared_derivation == "fail" else warns).append(msg)
        else:
            ev.append(Evidence(f"declared and detected: module {mv.name} derives from {ref} (declared as {matched[0]}); "
                               f"{ref}'s license ({facts.reference_licenses.get(ref) or 'not recorded'}) applies to it",
                               module=mv.name, reference=ref))
    for d in declared:
        if _norm_repo(d) in first_party:
            continue
        hit = any(_same_model(d, ref, sources.get(ref)) for _, ref in detected)
        registered = any(_same_model(d, ref, sources.get(ref)) for ref in facts.reference_ids)
        if p.forbid_third_party_ancestors:
            fails.append(f"third-party pre-trained ancestor declared: {d}")
            flagged.append((None, d))
        if not hit:
            why = "its weights are not in the registry, so the claim cannot be checked" if not registered else "the weights show no derivation from it"
            msg = f"declared ancestor {d} not detected ({why}): review"
            (fails if p.on_declared_not_detected == "fail" else warns).append(msg)
    if fails:
        return _result(c, "fail", "; ".join(dict.fromkeys(fails)), tuple(ev), dict.fromkeys(flagged))
    if warns:
        return _result(c, "warn", "; ".join(dict.fromkeys(warns)), tuple(ev), dict.fromkeys(flagged))
    if not declared and not detected:
        return _result(c, "pass", "no ancestor declared and no derivation detected", tuple(ev))
    return _result(c, "pass", "declared lineage agrees with the weights", tuple(ev))


def evaluate_disclosure(c: Criterion, facts: Facts, mvs: tuple[ModuleVerdict, ...]) -> CriterionResult:
    """The inventory of third-party components must exist, be complete and name every detected ancestor."""
    p = c.params
    inv = facts.disclosure
    detected = sorted({mv.best.reference for mv in mvs if mv.status in ("derived", "identical") and mv.best is not None})
    declared = list(facts.declared_ancestors)
    if inv is None:
        needed = detected + declared
        if needed:
            return _result(c, p.on_missing, "no third-party inventory (THIRD_PARTY.yaml or `third_party:` in the model card), "
                           f"yet the submission uses or declares: {', '.join(dict.fromkeys(needed))}", ())
        return _result(c, p.on_missing if p.on_missing == "warn" else "fail",
                       "no third-party inventory (THIRD_PARTY.yaml with `components: []` declares that there are none)", ())
    ev = [Evidence(f"{comp.name} ({comp.role}), revision {comp.revision or 'missing'}, license {comp.license or 'missing'}", file=inv.file)
          for comp in inv.components]
    problems = []
    for comp in inv.components:
        missing = [f for f in p.required_fields if getattr(comp, f, None) in (None, "", ())]
        if missing:
            problems.append(f"{comp.name}: missing {', '.join(missing)}")
    names = [comp.name for comp in inv.components]
    for ref in detected:
        if not any(_same_model(n, ref, facts.reference_sources.get(ref)) for n in names):
            problems.append(f"detected ancestor {ref} is not in the inventory")
    for d in declared:
        if not any(_norm_repo(n) == _norm_repo(d) for n in names):
            problems.append(f"declared base model {d} is not in the inventory")
    if problems:
        return _result(c, "fail", f"{inv.file}: " + "; ".join(problems), tuple(ev))
    return _result(c, "pass", f"{inv.file} lists {len(inv.components)} third-party component(s), complete", tuple(ev))
