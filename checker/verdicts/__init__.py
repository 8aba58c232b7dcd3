"""From evidence to verdicts: module statuses, criterion results, the audit verdict.

- interface.py: the inputs (``Facts``) and the frozen results;
- modules.py: each module's status (independent, derived, identical, review, inconclusive) and the derived share;
- shares.py: what of a module was compared (coverage) and what is tied to a reference, layer by layer;
- criteria.py: the weights, derived-share, tokenizer and architecture criteria, waivers, the verdict;
- licensing.py: the license, lineage and disclosure criteria;
- messages.py: every sentence as a catalogue key with typed arguments, and the one p-value format.

The names below are the stage's public interface (``from checker.verdicts import ...``).
"""

from checker.verdicts.criteria import (
    apply_waivers, architecture_sentence, evaluate_architecture, evaluate_derived_share, evaluate_tokenizer, evaluate_weights, overall,
)
from checker.verdicts.interface import (
    DECIDING, IDENTICAL_SHARE, NEGLIGIBLE_SHARE, P_FLOOR, Architecture, ArchitectureModule, CriterionResult, Evidence, Facts,
    ModuleVerdict, p_from_log10,
)
from checker.verdicts.licensing import evaluate_disclosure, evaluate_license, evaluate_lineage
from checker.verdicts.messages import Msg, format_p, msg
from checker.verdicts.modules import derived_fraction, derived_module_fraction, module_verdicts

__all__ = [
    "DECIDING", "IDENTICAL_SHARE", "NEGLIGIBLE_SHARE", "P_FLOOR", "Architecture", "ArchitectureModule", "CriterionResult", "Evidence", "Facts",
    "ModuleVerdict", "Msg", "apply_waivers", "architecture_sentence", "derived_fraction", "derived_module_fraction",
    "evaluate_architecture", "evaluate_derived_share",
    "evaluate_disclosure", "evaluate_license", "evaluate_lineage", "evaluate_tokenizer", "evaluate_weights", "format_p",
    "module_verdicts", "msg", "overall", "p_from_log10",
]
