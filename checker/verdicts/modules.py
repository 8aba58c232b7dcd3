"""Module statuses from the engine's evidence, and the derived share of the parameters.

Statuses are decided here, not in the metric engine, because the significance
level and the multiple-testing correction belong to the rule pack and to the
whole audit: every (submission module x reference module) comparison that
could decide a verdict counts as one test in the Bonferroni correction.
Unknown or unevaluable never counts as pass.
"""

from __future__ import annotations

import math

from checker.metrics.interface import Match
from checker.verdicts.interface import IDENTICAL_SHARE, Facts, ModuleVerdict
from checker.verdicts.messages import Msg, format_p, msg


#: (statistic a pack asks for, statistic that stands for it): the screen that decides where the
#: held-out unit test runs reports the module when it sends no layer pair to that test.
SCREEN_OF = ("heldout_row_pearson", "hidden_gram_mantel")

def module_verdicts(facts: Facts, significance: float, references: tuple[str, ...] | None = None,
                    statistic: str = "any") -> tuple[ModuleVerdict, ...]:
    """Decide each module's status at ``significance`` after correcting for all tests.

    ``references`` and ``statistic`` restrict which comparisons may decide (a pack's
    weights criterion can name them); the others are not tests and are not counted. The layer
    screen is the first stage of the held-out unit test: a pack asking for the unit test also
    takes a module the screen cleared.
    """
    def in_scope(m: Match) -> bool:
        return references is None or m.reference in references

    def decides(m: Match) -> bool:
        return m.decisive and in_scope(m) and (statistic == "any" or m.statistic == statistic
                                               or (statistic, m.statistic) == SCREEN_OF)

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
        elif ev.skipped:
            # the engine's reasons (checker/metrics), each a catalogue sentence where the engine gives its key
            first = {s.reason: s for s in reversed(ev.skipped[:20])}
            reasons = tuple(dict.fromkeys(s.reason for s in ev.skipped[:20]))
            status, reason = "inconclusive", "no comparison was possible: " + "; ".join(reasons)
            said = msg("v.mod.not_comparable", reasons=tuple(Msg(first[r].key, first[r].args) if first[r].key else r for r in reasons))
        else:
            status, reason = "independent", "no registered reference has a module of a compatible kind"
            said = msg("v.mod.no_compatible")
        out.append(ModuleVerdict(
            mod.name, mod.kind, mod.family, mod.parameters, mod.parameters / max(facts.total_parameters, 1), status, reason,
            best, matches, significant, ev.skipped, mod.layers,
            None if best is None else min(0.0, best.log10_p + correction), said.key, said.args,
        ))
    return tuple(out)


def derived_fraction(mvs: tuple[ModuleVerdict, ...], count_inconclusive: bool = False) -> float:
    """The share of the parameters in derived or identical modules (and inconclusive ones, when they count)."""
    counted = ("derived", "identical") + (("inconclusive",) if count_inconclusive else ())
    return sum(mv.param_fraction for mv in mvs if mv.status in counted)
