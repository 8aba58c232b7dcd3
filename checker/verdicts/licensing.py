"""Criterion evaluators for the licensing half of the clause: licenses, lineage, disclosure.

Each evaluator returns a ``CriterionResult`` whose English message and catalogue
sentence (key and arguments) say the same thing; see messages.py.
"""

from __future__ import annotations

from checker.rules import Criterion
from checker.verdicts.criteria import _result
from checker.verdicts.interface import CriterionResult, Evidence, Facts, ModuleVerdict, evidence
from checker.verdicts.messages import Msg, msg


def _catalogue():
    from checker.scanners.licenses import catalogue
    return catalogue()


def _license_problems(lic_id: str, p) -> list[tuple[str, Msg]]:
    """Why a license (by catalogue id, alias or hub id) is not acceptable under ``p``: (English, sentence) pairs."""
    cat = _catalogue()
    lic = cat.lookup(lic_id)
    canon = lic.id if lic else lic_id
    allow = {(cat.lookup(a).id if cat.lookup(a) else a) for a in p.allow}
    deny = {(cat.lookup(d).id if cat.lookup(d) else d) for d in p.deny}
    name = lic.name if lic else canon
    out = []
    if canon in deny:
        out.append((f"{name} is on the deny list", msg("v.lic.denied", license=name)))
    elif allow and canon not in allow:
        allowed = ", ".join(sorted(allow))
        out.append((f"{name} is not on the allow list ({allowed})", msg("v.lic.not_allowed", license=name, allowed=allowed)))
    if lic is not None:
        if p.deny_third_party_model_licenses and lic.third_party_model_license:
            out.append((f"{name} is a third-party model license", msg("v.lic.third_party", license=name)))
        for o in lic.obligations:
            if o.kind in p.deny_obligations:
                clause = _short(o.clause)
                out.append((f"{name} imposes a denied obligation ({o.kind}): \u201c{clause}\u201d",
                            msg("v.lic.obligation", license=name, obligation=o.kind, clause=clause)))
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
    # problem (English) -> its sentence, and where it arises (files, modules): English -> item
    problems: dict[str, tuple[Msg, dict[str, str | Msg]]] = {}

    def problem(found: tuple[str, Msg], where: str, item: str | Msg) -> None:
        problems.setdefault(found[0], (found[1], {}))[1].setdefault(where, item)

    for f in findings:
        kinds = ", ".join(sorted({o.kind for o in f.obligations}))
        said = (msg("v.lic.finding_obligations", file=f.file, license=f.detected, confidence=f.confidence, source=f.source,
                    obligations=kinds) if f.obligations else
                msg("v.lic.finding", file=f.file, license=f.detected, confidence=f.confidence, source=f.source))
        ev.append(evidence(f"{f.file}: {f.detected} (confidence {f.confidence:.2f}, {f.source})"
                           + (f"; obligations: {kinds}" if f.obligations else ""), said,
                           file=f.file, statistic="license_detection", score=f.confidence))
    for f in confident:
        for found in _license_problems(f.detected, p):
            problem(found, f.file, f.file)
    unknown_inherited: list[tuple[str, Msg]] = []
    flagged = []
    for mv in mvs:
        if mv.status in ("derived", "identical") and mv.best is not None:
            ref = mv.best.reference
            ref_lic = facts.reference_licenses.get(ref)
            if ref_lic:
                if _catalogue().lookup(ref_lic) is None:
                    unknown_inherited.append((f"module {mv.name} inherits {ref_lic} from {ref}, a license the catalogue does not know",
                                              msg("v.lic.unknown_inherited", module=mv.name, license=ref_lic, reference=ref)))
                for found in _license_problems(ref_lic, p):
                    problem(found, f"module {mv.name} (from {ref})", msg("v.lic.where_derived", module=mv.name, reference=ref))
                    flagged.append((mv.name, ref))
                ev.append(evidence(f"module {mv.name} derives from {ref}, licensed {ref_lic}: its terms apply to that module",
                                   msg("v.lic.inherits", module=mv.name, reference=ref, license=ref_lic), module=mv.name, reference=ref))
            else:
                problem((f"the license of {ref} is not recorded in the registry", msg("v.lic.not_recorded", reference=ref)),
                        f"module {mv.name}", msg("v.lic.where_module", module=mv.name))
                flagged.append((mv.name, ref))
    if problems:
        text = "; ".join(f"{prob} [{', '.join(where)}]" for prob, (_, where) in problems.items())
        items = tuple(msg("v.lic.problem", problem=said, where=tuple(where.values())) for said, where in problems.values())
        return _result(c, "fail", text, msg("v.list", items=items), tuple(ev), dict.fromkeys(flagged))
    if unknown_inherited:
        return _result(c, p.on_unknown, "; ".join(t for t, _ in unknown_inherited) + " (unknown is never a pass)",
                       msg("v.lic.unknown_inherited_all", items=tuple(s for _, s in unknown_inherited)), tuple(ev))
    if not confident:
        if not findings:
            return _result(c, p.on_unknown, "no license was found (unknown is never a pass)", msg("v.lic.none_found"), tuple(ev))
        return _result(c, p.on_unknown, "no license was identified with confidence \u2265 " + f"{p.min_confidence:.2f}"
                       + " (unknown is never a pass)", msg("v.lic.none_confident", min=p.min_confidence), tuple(ev))
    if doubtful:
        files = ", ".join(f.file for f in doubtful)
        return _result(c, p.on_unknown, f"{len(doubtful)} license source(s) could not be identified: " + files,
                       msg("v.lic.doubtful", n=len(doubtful), files=files), tuple(ev))
    ids = ", ".join(sorted({f.detected for f in confident}))
    return _result(c, "pass", f"licensed under {ids}; no denied license or obligation", msg("v.lic.pass", licenses=ids), tuple(ev))


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
    ev: list[Evidence] = [evidence(f"{h.file}: {h.key} = {h.value}", msg("v.lin.hint", file=h.file, key=h.key, value=h.value),
                                   file=h.file) for h in facts.lineage]
    # English -> sentence, in order; the same finding twice is said once
    fails: dict[str, Msg] = {}
    warns: dict[str, Msg] = {}
    flagged: list[tuple[str | None, str | None]] = []
    for mv, ref in detected:
        matched = [d for d in declared if _same_model(d, ref, sources.get(ref))]
        if not matched:
            flagged.append((mv.name, ref))
            text = f"undeclared derivation: module {mv.name} ({mv.param_fraction:.1%} of parameters) derives from {ref}, which the submission does not declare"
            (fails if p.on_undeclared_derivation == "fail" else warns).setdefault(
                text, msg("v.lin.undeclared", module=mv.name, share=mv.param_fraction, reference=ref))
        else:
            lic = facts.reference_licenses.get(ref)
            ev.append(evidence(f"declared and detected: module {mv.name} derives from {ref} (declared as {matched[0]}); "
                               f"{ref}'s license ({lic or 'not recorded'}) applies to it",
                               msg("v.lin.declared_detected", module=mv.name, reference=ref, declared=matched[0],
                                   license=lic or msg("v.not_recorded")),
                               module=mv.name, reference=ref))
    for d in declared:
        if _norm_repo(d) in first_party:
            continue
        hit = any(_same_model(d, ref, sources.get(ref)) for _, ref in detected)
        registered = any(_same_model(d, ref, sources.get(ref)) for ref in facts.reference_ids)
        if p.forbid_third_party_ancestors:
            fails.setdefault(f"third-party pre-trained ancestor declared: {d}", msg("v.lin.third_party", ancestor=d))
            flagged.append((None, d))
        if not hit:
            why, why_key = (("its weights are not in the registry, so the claim cannot be checked", "v.lin.not_registered")
                            if not registered else ("the weights show no derivation from it", "v.lin.no_derivation"))
            (fails if p.on_declared_not_detected == "fail" else warns).setdefault(
                f"declared ancestor {d} not detected ({why}): review", msg("v.lin.not_detected", ancestor=d, why=msg(why_key)))
    if fails:
        return _result(c, "fail", "; ".join(fails), msg("v.list", items=tuple(fails.values())), tuple(ev), dict.fromkeys(flagged))
    if warns:
        return _result(c, "warn", "; ".join(warns), msg("v.list", items=tuple(warns.values())), tuple(ev), dict.fromkeys(flagged))
    if not detected and not any(mv.best is not None for mv in mvs):
        # Nothing was compared, so "no derivation detected" would be a pass by default (fail closed).
        why, why_said = (("no reference models are registered: nothing to compare with", msg("v.mod.no_references"))
                         if not facts.reference_ids else
                         ("no module's weights could be compared with a registered reference", msg("v.lin.no_module_compared")))
        return _result(c, "inconclusive", f"nothing was compared, so no derivation can be ruled out ({why})",
                       msg("v.lin.unverified", why=why_said), tuple(ev))
    review = [mv for mv in mvs if mv.status == "review" and mv.best is not None
              and not any(_same_model(d, mv.best.reference, sources.get(mv.best.reference)) for d in declared)]
    if review:  # evidence a human must weigh: the lineage cannot be confirmed either way
        names = ", ".join(f"{mv.name} (from {mv.best.reference})" for mv in review)
        items = tuple(msg("v.weights.review_item", module=mv.name, reference=mv.best.reference) for mv in review)
        return _result(c, "inconclusive", f"module(s) under review may derive from an undeclared reference: {names}",
                       msg("v.lin.review", modules=items), tuple(ev), [(mv.name, mv.best.reference) for mv in review])
    if not declared and not detected:
        return _result(c, "pass", "no ancestor declared and no derivation detected", msg("v.lin.none"), tuple(ev))
    return _result(c, "pass", "declared lineage agrees with the weights", msg("v.lin.agrees"), tuple(ev))


def evaluate_disclosure(c: Criterion, facts: Facts, mvs: tuple[ModuleVerdict, ...]) -> CriterionResult:
    """The inventory of third-party components must exist, be complete and name every detected ancestor."""
    p = c.params
    inv = facts.disclosure
    detected = sorted({mv.best.reference for mv in mvs if mv.status in ("derived", "identical") and mv.best is not None})
    declared = list(facts.declared_ancestors)
    if inv is None:
        needed = detected + declared
        if needed:
            names = ", ".join(dict.fromkeys(needed))
            return _result(c, p.on_missing, "no third-party inventory (THIRD_PARTY.yaml or `third_party:` in the model card), "
                           f"yet the submission uses or declares: {names}", msg("v.disc.missing_used", names=names), ())
        return _result(c, p.on_missing if p.on_missing == "warn" else "fail",
                       "no third-party inventory (THIRD_PARTY.yaml with `components: []` declares that there are none)",
                       msg("v.disc.missing"), ())
    missing_value = msg("v.disc.missing_value")
    ev = [evidence(f"{comp.name} ({comp.role}), revision {comp.revision or 'missing'}, license {comp.license or 'missing'}",
                   msg("v.disc.component", name=comp.name, role=comp.role, revision=comp.revision or missing_value,
                       license=comp.license or missing_value), file=inv.file)
          for comp in inv.components]
    problems: list[tuple[str, Msg]] = []
    for comp in inv.components:
        missing = [f for f in p.required_fields if getattr(comp, f, None) in (None, "", ())]
        if missing:
            fields = ", ".join(missing)
            problems.append((f"{comp.name}: missing {fields}", msg("v.disc.missing_fields", name=comp.name, fields=fields)))
    names = [comp.name for comp in inv.components]
    for ref in detected:
        if not any(_same_model(n, ref, facts.reference_sources.get(ref)) for n in names):
            problems.append((f"detected ancestor {ref} is not in the inventory", msg("v.disc.undisclosed", reference=ref)))
    for d in declared:
        if not any(_norm_repo(n) == _norm_repo(d) for n in names):
            problems.append((f"declared base model {d} is not in the inventory", msg("v.disc.undeclared_base", name=d)))
    if problems:
        return _result(c, "fail", f"{inv.file}: " + "; ".join(t for t, _ in problems),
                       msg("v.disc.fail", file=inv.file, problems=tuple(s for _, s in problems)), tuple(ev))
    return _result(c, "pass", f"{inv.file} lists {len(inv.components)} third-party component(s), complete",
                   msg("v.disc.pass", file=inv.file, n=len(inv.components)), tuple(ev))
