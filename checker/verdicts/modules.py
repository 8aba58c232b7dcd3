"""Module statuses from the engine's evidence, and the derived share of the parameters.

Statuses are decided here, not in the metric engine, because the significance
level and the multiple-testing correction belong to the rule pack and to the
whole audit: every (submission module x reference module) comparison that
could decide a verdict counts as one test in the Bonferroni correction.
Unknown or unevaluable never counts as pass.

Statistics in ``REVIEW_ONLY`` (no exact null: an alignment fitted on data that independent
models share too) are a family of their own. They are not tests of the exact-null family:
counting them there would raise its Bonferroni factor and so weaken the statistics that can
decide, for evidence that cannot. They are corrected among themselves (Bonferroni over the
REVIEW_ONLY comparisons in scope) and a match below the level after that correction sets
the module to ``review`` (a human decides), never to ``derived``; an exact-null match
decides first, so a review statistic can neither make nor unmake a derivation.

Coverage: a module whose uncompared share (shares.py) exceeds the pack's ``max_uncompared``
is ``inconclusive`` for that share, never ``independent``; it can still be ``derived``.
"""

from __future__ import annotations

import math

from checker.metrics.interface import REVIEW_ONLY, Match, ModuleEvidence
from checker.rules import MAX_UNCOMPARED
from checker.verdicts.interface import IDENTICAL_SHARE, Facts, ModuleVerdict
from checker.verdicts.messages import Msg, format_p, msg
from checker.verdicts.shares import compared_tensors, derived_tensors, evidence_tensors, fixed_tables, numel

#: (statistic a pack asks for, statistic that stands for it): the screen that decides where the
#: held-out unit test runs reports the module when it sends no layer pair to that test.
SCREEN_OF = ("heldout_row_pearson", "hidden_gram_mantel")


def module_verdicts(facts: Facts, significance: float, references: tuple[str, ...] | None = None,
                    statistic: str = "any", max_uncompared: float = MAX_UNCOMPARED) -> tuple[ModuleVerdict, ...]:
    """Decide each module's status at ``significance`` after correcting for all tests.

    ``references`` and ``statistic`` restrict which comparisons may decide (a pack's
    weights criterion can name them); the others are not tests and are not counted. The layer
    screen is the first stage of the held-out unit test: a pack asking for the unit test also
    takes a module the screen cleared.
    """
    def in_scope(m: Match) -> bool:
        return references is None or m.reference in references

    def decides(m: Match) -> bool:
        return (m.decisive and in_scope(m) and m.statistic not in REVIEW_ONLY
                and (statistic == "any" or m.statistic == statistic or (statistic, m.statistic) == SCREEN_OF))

    def reviews(m: Match) -> bool:
        return in_scope(m) and m.statistic in REVIEW_ONLY and statistic in ("any", m.statistic)

    tests = sum(1 for ev in facts.modules for m in ev.matches if decides(m))
    review_tests = sum(1 for ev in facts.modules for m in ev.matches if reviews(m))
    correction, review_correction = math.log10(max(tests, 1)), math.log10(max(review_tests, 1))
    threshold = math.log10(significance)
    out = []
    for ev in facts.modules:
        mod = ev.module
        matches = tuple(m for m in ev.matches if in_scope(m))
        decisive = [m for m in matches if decides(m)]
        significant = tuple(m for m in decisive if m.log10_p + correction < threshold)
        flagged = tuple(m for m in matches if reviews(m) and m.log10_p + review_correction < threshold)
        fixed = fixed_tables(ev.skipped)
        evidence, compared = evidence_tensors(mod, fixed), compared_tensors(mod, matches, fixed)
        uncompared = 1.0 - numel(mod, compared) / numel(mod, evidence) if evidence else 0.0
        # A byte-identical copy is identical whatever statistic a pack asks for.
        identical = [m for m in matches if m.identical_fraction >= IDENTICAL_SHARE]
        best, p_best = None, None
        if not facts.reference_ids:
            status, reason = "inconclusive", "no reference models are registered: nothing to compare with"
            said = msg("v.mod.no_references")
        elif identical:
            best = max(identical, key=lambda m: m.identical_fraction)
            status, reason = "identical", f"{best.identical_fraction:.1%} of its parameters are byte-identical to {best.reference}:{best.reference_module}"
            said = msg("v.mod.identical", share=best.identical_fraction, reference=best.reference, reference_module=best.reference_module)
        elif significant:
            best = min(significant, key=lambda m: m.log10_p)
            status = "derived"
            reason = (f"matches {best.reference}:{best.reference_module} ({best.statistic} {best.score:.3f}, z {best.z:.1f}, "
                      f"p {format_p(best.log10_p + correction)} after correction for {tests} tests)")
            said = msg("v.mod.derived", reference=best.reference, reference_module=best.reference_module, statistic=best.statistic,
                       score=best.score, z=best.z, p=best.log10_p + correction, tests=tests)
        elif flagged:
            best, significant = min(flagged, key=lambda m: m.log10_p), flagged
            p_best = best.log10_p + review_correction
            status, said = "review", msg("v.mod.review", reference=best.reference, reference_module=best.reference_module,
                                         statistic=best.statistic, score=best.score, z=best.z, p=p_best, tests=review_tests)
            reason = (f"evidence of derivation from {best.reference}:{best.reference_module} ({best.statistic} {best.score:.3f}, "
                      f"z {best.z:.1f}, p {format_p(p_best)} after correction for {review_tests} tests of its kind) that no "
                      "calibrated null can make significant: a human decides")
        elif decisive and uncompared > max_uncompared:
            best = min(decisive, key=lambda m: m.log10_p)
            status, said = "inconclusive", msg("v.mod.uncompared", uncompared=uncompared, max=max_uncompared,
                                               p=min(0.0, best.log10_p + correction))
            reason = (f"{uncompared:.1%} of its parameters were compared with no reference (at most {max_uncompared:.1%} may be), "
                      f"and what was compared matches none (best p {format_p(min(0.0, best.log10_p + correction))})")
        elif decisive:
            best = min(decisive, key=lambda m: m.log10_p)
            status = "independent"
            reason = f"no reference module matches at p < {significance:g} after correction for {tests} tests (best p {format_p(min(0.0, best.log10_p + correction))})"
            said = msg("v.mod.independent", significance=significance, tests=tests, p=min(0.0, best.log10_p + correction))
        elif any(m.decisive for m in matches):
            status, reason = "inconclusive", f"no comparison by the statistic the rule pack requires ({statistic})"
            said = msg("v.mod.wrong_statistic", statistic=statistic)
        elif matches:
            status, reason = "inconclusive", "only weak evidence (norm weights, biases) could be compared with the references"
            said = msg("v.mod.weak_only")
        elif mod.parameters and not evidence:
            status, reason = "independent", "it holds only fixed tables (formulas, masks, constants), which are never evidence"
            said = msg("v.mod.fixed_only")
        elif ev.skipped:
            # the engine's reasons (checker/metrics), each a catalogue sentence where the engine gives its key
            first = {s.reason: s for s in reversed(ev.skipped[:20])}
            reasons = tuple(dict.fromkeys(s.reason for s in ev.skipped[:20]))
            status, reason = "inconclusive", "no comparison was possible: " + "; ".join(reasons)
            said = msg("v.mod.not_comparable", reasons=tuple(Msg(first[r].key, first[r].args) if first[r].key else r for r in reasons))
        else:  # nothing was compared: never independent by default
            status, reason = "inconclusive", "no registered reference has a module of a compatible kind"
            said = msg("v.mod.no_compatible")
        out.append(_verdict(facts, ev, status, reason, said, best, matches, significant, evidence, compared, max_uncompared,
                            None if best is None else min(0.0, p_best if p_best is not None else best.log10_p + correction)))
    return tuple(out)


def _verdict(facts: Facts, ev: ModuleEvidence, status: str, reason: str, said: Msg, best: Match | None, matches: tuple[Match, ...],
             significant: tuple[Match, ...], evidence: frozenset[str], compared: frozenset[str], max_uncompared: float,
             log10_p: float | None) -> ModuleVerdict:
    """The verdict with its coverage, its layer-level derived parameters and the share it leaves open."""
    mod = ev.module
    share = mod.parameters / max(facts.total_parameters, 1)
    derived = derived_tensors(mod, status, significant, matches, fixed_tables(ev.skipped))
    n_evidence = numel(mod, evidence)
    if status in ("inconclusive", "review") and not (status == "inconclusive" and said.key == "v.mod.uncompared"):
        open_share = share
    else:  # the uncompared part, beyond the pack's tolerance, that the derived part does not already hold
        left = numel(mod, evidence - compared - derived)
        open_share = share * left / mod.parameters if n_evidence and 1 - numel(mod, compared) / n_evidence > max_uncompared else 0.0
    return ModuleVerdict(
        mod.name, mod.kind, mod.family, mod.parameters, share, status, reason, best, matches, significant, ev.skipped, mod.layers,
        log10_p, said.key, said.args, compared_parameters=numel(mod, compared), evidence_parameters=n_evidence,
        derived_parameters=numel(mod, derived), open_fraction=open_share,
    )


def derived_fraction(mvs: tuple[ModuleVerdict, ...], count_inconclusive: bool = False) -> float:
    """The share of all parameters tied to a reference layer by layer (shares.py), plus the share the
    modules leave open (inconclusive, under review, uncompared) when it counts as derived."""
    return min(1.0, sum(mv.derived_fraction + (mv.open_fraction if count_inconclusive else 0.0) for mv in mvs))


def derived_module_fraction(mvs: tuple[ModuleVerdict, ...]) -> float:
    """The share of the parameters in derived or identical modules, each counted in full (the module-level figure)."""
    return sum(mv.param_fraction for mv in mvs if mv.status in ("derived", "identical"))
