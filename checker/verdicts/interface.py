"""The verdict stage's inputs (``Facts``) and results (``ModuleVerdict``, ``CriterionResult``, ``Evidence``).

Each result keeps its English sentence (``reason``, ``message``, ``text``: the JSON
report's contract) and the same sentence as a catalogue key with typed arguments
(``*_key``, ``*_args``; see messages.py), from which a report is written in any
language. An empty key marks free text that is not the tool's own (a summary built
elsewhere); it is shown as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from checker.metrics.interface import Match, ModuleEvidence, Skipped
from checker.rules import Waiver
from checker.verdicts.messages import Arg, Msg

#: A module is "identical" when this share of its parameters is byte-identical
#: (after dtype normalisation) to one reference module.
IDENTICAL_SHARE = 0.99
#: Inconclusive modules smaller than this share of the parameters do not make
#: the weights criterion inconclusive (they are listed in its evidence).
NEGLIGIBLE_SHARE = 0.01
DECIDING = ("critical", "major", "minor")
P_FLOOR = 1e-300


def p_from_log10(log10_p: float) -> float:
    """A p-value as a float, floored at 1e-300 (an upper bound there; log10 is kept beside it)."""
    return max(10.0 ** log10_p, P_FLOOR) if log10_p > -300 else P_FLOOR


@dataclass(frozen=True)
class ModuleVerdict:
    name: str
    kind: str
    family: str
    parameters: int
    param_fraction: float
    status: str  # independent | derived | identical | review | inconclusive
    reason: str
    best: Match | None
    matches: tuple[Match, ...]
    significant: tuple[Match, ...]  # the matches behind the status: exact-null ones (derived), REVIEW_ONLY ones (review)
    skipped: tuple[Skipped, ...]
    layers: tuple[int, ...]
    #: the best match's p-value after the audit-wide Bonferroni correction (log10; None without a match)
    log10_p_corrected: float | None = None
    #: ``reason`` as a catalogue key and its arguments
    reason_key: str = ""
    reason_args: tuple[tuple[str, Arg], ...] = ()
    #: parameters compared with a reference by a statistic with an exact null, and the coverage
    #: denominator (the module's parameters less its fixed tables); see shares.py
    compared_parameters: int = 0
    evidence_parameters: int = 0
    #: parameters tied to a reference layer by layer (shares.py); 0 unless derived or identical
    derived_parameters: int = 0
    #: share of all the submission's parameters this module leaves undecided: all of it when
    #: inconclusive or under review, its uncompared part when that exceeds the pack's ``max_uncompared``
    open_fraction: float = 0.0

    @property
    def reason_msg(self) -> Msg:
        return Msg(self.reason_key, self.reason_args)

    @property
    def coverage(self) -> float | None:
        """Share of the module's evidence (all but fixed tables) compared; None when it holds no evidence."""
        return self.compared_parameters / self.evidence_parameters if self.evidence_parameters else None

    @property
    def derived_fraction(self) -> float:
        """The parameters tied to a reference, as a share of all the submission's parameters."""
        return self.param_fraction * self.derived_parameters / self.parameters if self.parameters else 0.0


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
    #: ``text`` as a catalogue key and its arguments
    text_key: str = ""
    text_args: tuple[tuple[str, Arg], ...] = ()


def evidence(text: str, said: Msg, **fields) -> Evidence:
    """Evidence whose English ``text`` is the sentence ``said``."""
    return Evidence(text, **fields, text_key=said.key, text_args=said.args)


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
    #: ``message`` as a catalogue key and its arguments ("" for free text)
    message_key: str = ""
    message_args: tuple[tuple[str, Arg], ...] = ()

    @property
    def message_msg(self) -> Msg | None:
        return Msg(self.message_key, self.message_args) if self.message_key else None


@dataclass(frozen=True)
class ArchitectureModule:
    """One module of the submission's module map, as the architecture summary lists it."""

    name: str
    kind: str
    layers: int
    parameters: int


@dataclass(frozen=True)
class Architecture:
    """What the submission's config and tensor layout say about its architecture (information only).

    ``summary`` is the English sentence; the parts below write it in any language
    (criteria.architecture_sentence). ``modules`` is None for a summary given as free text."""

    summary: str
    model_type: str | None = None
    architectures: tuple[str, ...] = ()
    same_as: tuple[str, ...] = ()  # references with the same tensor names and shapes
    #: config.json's ``model_type`` and ``architectures`` as the summary writes them (None: absent)
    config_model_type: str | None = None
    config_architectures: str | None = None
    module_maps: tuple[str, ...] = ()  # the module-map families that matched the tensors
    modules: tuple[ArchitectureModule, ...] | None = None


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
