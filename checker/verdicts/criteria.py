"""Criterion evaluators for the weights half of the clause, waivers, and the audit verdict.

Each evaluator returns a ``CriterionResult`` whose English message and catalogue
sentence (key and arguments) say the same thing; see messages.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from checker.rules import Criterion, Waiver
from checker.verdicts.interface import (
    DECIDING, NEGLIGIBLE_SHARE, Architecture, CriterionResult, Facts, ModuleVerdict, evidence, p_from_log10,
)
from checker.verdicts.messages import Msg, msg
from checker.verdicts.modules import derived_fraction, derived_module_fraction, module_verdicts


def _applies(c: Criterion, mv: ModuleVerdict) -> bool:
    return not c.modules or mv.kind in c.modules


def _result(c: Criterion, status: str, message: str, said: Msg | None, evidence: tuple, flagged=()) -> CriterionResult:
    """``said`` is ``message`` as a catalogue sentence (None only for free text that is not the tool's)."""
    if c.severity == "info" and status == "fail":
        status = "warn"  # information-only criteria never decide
    return CriterionResult(c.id, c.title, c.kind, c.severity, status, message, tuple(evidence), c.remediation,
                           flagged=tuple(flagged), message_key=said.key if said else "", message_args=said.args if said else ())


def evaluate_weights(c: Criterion, facts: Facts) -> tuple[CriterionResult, tuple[ModuleVerdict, ...]]:
    p = c.params
    mvs = [mv for mv in module_verdicts(facts, p.significance, p.references, p.statistic, p.max_uncompared) if _applies(c, mv)]
    bad = [mv for mv in mvs if mv.status in ("derived", "identical") and not (p.allow_identical and mv.status == "identical")]
    review = [mv for mv in mvs if mv.status == "review"]
    unknown = [mv for mv in mvs if mv.status == "inconclusive"]
    ev = tuple(evidence(f"{mv.name} ({mv.kind}, {mv.param_fraction:.1%} of parameters): {mv.status}: {mv.reason}",
                        msg("v.weights.module", module=mv.name, kind=mv.kind, share=mv.param_fraction, status=mv.status,
                            reason=mv.reason_msg),
                        module=mv.name, reference=mv.best.reference if mv.best else None,
                        statistic=mv.best.statistic if mv.best else None, score=mv.best.score if mv.best else None,
                        p_value=p_from_log10(mv.log10_p_corrected) if mv.best else None,
                        log10_p_value=round(mv.log10_p_corrected, 3) if mv.best else None)
               for mv in sorted(mvs, key=lambda mv: mv.status != "review"))  # the modules a human must look at first
    if not mvs:  # nothing of the kinds this criterion covers: nothing to pass
        kinds = ", ".join(c.modules)
        return _result(c, "not_applicable", f"the submission has no module of the kinds this criterion covers ({kinds})",
                       msg("v.weights.no_modules", kinds=kinds), ev), tuple(mvs)
    if not facts.reference_ids:
        return _result(c, "inconclusive", "the registry holds no reference models to compare with "
                       "(add them with 'fromscratch registry add')", msg("v.weights.no_registry"), ev), tuple(mvs)
    if bad:
        names = ", ".join(f"{mv.name} ({mv.status}, from {mv.best.reference})" for mv in bad)
        items = tuple(msg("v.weights.derived_item", module=mv.name, status=mv.status, reference=mv.best.reference) for mv in bad)
        return _result(c, "fail", f"{len(bad)} module(s) derive from a registered reference: {names}",
                       msg("v.weights.fail", n=len(bad), modules=items), ev,
                       [(mv.name, mv.best.reference) for mv in bad]), tuple(mvs)
    if review:  # never a pass: the evidence is there, but no calibrated null can make it significant
        names = ", ".join(f"{mv.name} (from {mv.best.reference})" for mv in review)
        items = tuple(msg("v.weights.review_item", module=mv.name, reference=mv.best.reference) for mv in review)
        return _result(c, "inconclusive", f"{len(review)} module(s) need a human review: evidence of derivation that no "
                       f"calibrated null can make significant: {names}", msg("v.weights.review", n=len(review), modules=items), ev,
                       [(mv.name, mv.best.reference) for mv in review]), tuple(mvs)
    untested = sum(mv.open_fraction for mv in unknown)
    if unknown and (untested >= NEGLIGIBLE_SHARE or len(unknown) == len(mvs)):  # never "all 0 tested modules pass"  # the untested modules together, not one by one
        names = ", ".join(mv.name for mv in unknown)
        return _result(c, "inconclusive", f"{len(unknown)} module(s) holding {untested:.1%} of the parameters could not be tested: "
                       + names, msg("v.weights.untested", n=len(unknown), share=untested, modules=names), ev), tuple(mvs)
    tested = len(mvs) - len(unknown)
    note = f"; {len(unknown)} tiny module(s) ({untested:.2%} of the parameters) could not be tested" if unknown else ""
    said = (msg("v.weights.pass_tiny_untested", tested=tested, refs=len(facts.reference_ids), significance=p.significance,
                n=len(unknown), share=untested) if unknown else
            msg("v.weights.pass", tested=tested, refs=len(facts.reference_ids), significance=p.significance))
    return _result(c, "pass", f"all {tested} tested modules are independent of the {len(facts.reference_ids)} registered "
                   f"reference(s) at p < {p.significance:g}{note}", said, ev), tuple(mvs)


def evaluate_derived_share(c: Criterion, mvs: tuple[ModuleVerdict, ...]) -> CriterionResult:
    """The share of the parameters tied to a reference layer by layer (shares.py); the module-level
    figure (whole derived modules) is in the message beside it. Modules under review count like
    inconclusive ones."""
    p = c.params
    frac, whole = derived_fraction(mvs, p.count_inconclusive), derived_module_fraction(mvs)
    flagged = [mv for mv in mvs if mv.status in ("derived", "identical")]
    ev = tuple(evidence(f"{mv.name}: {mv.derived_parameters:,} of {mv.parameters:,} parameters ({mv.derived_fraction:.2%}) "
                        f"{mv.status}",
                        msg("v.share.module", module=mv.name, derived=mv.derived_parameters, parameters=mv.parameters,
                            share=mv.derived_fraction, status=mv.status),
                        module=mv.name, reference=mv.best.reference if mv.best else None) for mv in flagged)
    text = (f"derived parameter share {frac:.2%} layer by layer, {whole:.2%} by whole modules "
            f"(allowed at most {p.max_fraction:.2%})")
    said = msg("v.share.result", share=frac, modules=whole, max=p.max_fraction)
    if frac > p.max_fraction + 1e-12:
        return _result(c, "fail", text, said, ev, [(mv.name, mv.best.reference if mv.best else None) for mv in flagged])
    untested = sum(mv.open_fraction for mv in mvs)
    if not p.count_inconclusive and untested >= NEGLIGIBLE_SHARE:
        return _result(c, "inconclusive", f"{text}, but {untested:.2%} of the parameters could not be tested",
                       msg("v.share.untested", share=frac, modules=whole, max=p.max_fraction, untested=untested), ev)
    return _result(c, "pass", text, said, ev)


def evaluate_tokenizer(c: Criterion, facts: Facts) -> CriterionResult:
    p = c.params
    if not facts.tokenizers:
        return _result(c, "not_applicable", "no tokenizer to compare (the submission or the references ship none)", msg("v.tok.none"), ())
    reused = [t for t in facts.tokenizers if t.vocab_jaccard > p.max_vocab_jaccard or t.same_id_fraction > p.max_same_id_fraction and t.vocab_jaccard > 0.5]
    ev = tuple(evidence(f"{t.reference}: vocabulary Jaccard {t.vocab_jaccard:.3f}, same-id fraction {t.same_id_fraction:.3f} "
                        f"(chance {t.same_id_chance:.2g}), merges agreement {t.merges_agreement if t.merges_agreement is not None else 'n/a'}",
                        msg("v.tok.evidence", reference=t.reference, jaccard=t.vocab_jaccard, same_id=t.same_id_fraction,
                            chance=t.same_id_chance, merges=t.merges_agreement if t.merges_agreement is not None else msg("v.na")),
                        reference=t.reference, statistic="vocab_jaccard", score=t.vocab_jaccard) for t in facts.tokenizers)
    if reused:
        refs = ", ".join(t.reference for t in reused)
        return _result(c, p.on_reuse, "tokenizer reused from " + refs + " (this alone is not evidence of copied weights)",
                       msg("v.tok.reused", references=refs), ev)
    return _result(c, "pass", "the tokenizer is not a copy of a registered reference's", msg("v.tok.pass"), ev)


def evaluate_architecture(c: Criterion, facts: Facts) -> CriterionResult:
    arch = facts.architecture
    ev = tuple(evidence(f"same module layout and shapes as {r} (not evidence of copied weights)", msg("v.arch.same", reference=r),
                        reference=r) for r in arch.same_as)
    return _result(c, "pass", arch.summary, architecture_sentence(arch), ev)


def architecture_sentence(arch: Architecture) -> Msg | None:
    """The architecture summary as a catalogue sentence (None for a summary given only as free text)."""
    if arch.modules is None:
        return None
    unknown = msg("v.arch.unknown")
    return msg("v.arch.summary", model_type=unknown if arch.config_model_type is None else arch.config_model_type,
               architectures=unknown if arch.config_architectures is None else arch.config_architectures,
               maps=arch.module_maps,
               modules=tuple(msg("v.arch.module", module=m.name, kind=m.kind, layers=m.layers, parameters=m.parameters)
                             for m in arch.modules))


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

        finding = r.message_msg or r.message  # the finding itself, nested in the waiver's sentence
        chosen = unscoped[0] if unscoped else (scoped[0] if scoped and r.flagged and all(covered(f) for f in r.flagged) else None)
        if chosen is not None:
            scope = "" if chosen in unscoped else f" for {chosen.module or 'any module'} / {chosen.reference or 'any reference'}"
            said = (msg("v.waiver.applied", finding=finding, owner=chosen.owner, expires=str(chosen.expires), reason=chosen.reason)
                    if chosen in unscoped else
                    msg("v.waiver.applied_scoped", finding=finding, module=_any_module(chosen), reference=_any_reference(chosen),
                        owner=chosen.owner, expires=str(chosen.expires), reason=chosen.reason))
            # Shown as a warning that carries its waiver; the finding itself is kept.
            out.append(replace(r, status="warn", waiver=chosen, waived_status=r.status, message_key=said.key, message_args=said.args,
                               message=f"{r.message} [waived{scope} by {chosen.owner} until {chosen.expires}: {chosen.reason}]"))
        elif scoped:
            w = scoped[0]
            said = msg("v.waiver.not_covering", finding=finding, owner=w.owner, module=_any_module(w), reference=_any_reference(w))
            out.append(replace(r, message_key=said.key, message_args=said.args,
                               message=f"{r.message} [a waiver by {w.owner} is scoped to "
                                       f"{w.module or 'any module'} / {w.reference or 'any reference'} and does not cover this finding]"))
        else:
            w = max(mine, key=lambda w: w.expires)
            said = msg("v.waiver.expired", finding=finding, owner=w.owner, expires=str(w.expires))
            out.append(replace(r, waiver=w, message_key=said.key, message_args=said.args,
                               message=f"{r.message} [waiver by {w.owner} expired on {w.expires}]"))
    return out


def _any_module(w: Waiver) -> str | Msg:
    return w.module or msg("v.waiver.any_module")


def _any_reference(w: Waiver) -> str | Msg:
    return w.reference or msg("v.waiver.any_reference")


def overall(results: list[CriterionResult]) -> str:
    deciding = [r for r in results if r.severity in DECIDING]
    if any(r.status == "fail" for r in deciding):
        return "fail"
    if any(r.status == "inconclusive" for r in deciding):
        return "inconclusive"
    return "pass"
