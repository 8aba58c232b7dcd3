"""Results of the metric engine: typed, frozen, explicit about what was not compared."""

from __future__ import annotations

from dataclasses import dataclass, field

from checker.metrics.pairlog import ScreenTable
from checker.metrics.stats import equivalent_z, log10_sf
from checker.modules import Module

#: Statistics whose null is not exact (an alignment fitted on data that independent models
#: trained on the same tokenizer and text also share, e.g. an orthogonal Procrustes rotation of
#: the residual stream). A match by one of them can set a module to ``review`` (evidence for a
#: human, never ``independent``), never to ``derived`` on its own.
REVIEW_ONLY = frozenset({"rotation_aligned_row_pearson"})
#: Reasons a tensor is not evidence at all (listed, with its share of the parameters, never compared).
FIXED_TABLE_KEY = "v.skip.fixed_table"


@dataclass(frozen=True)
class Skipped:
    """A comparison that could not be made, and why (never counted as a pass)."""

    what: str
    reason: str  # the English sentence (the JSON report's contract)
    #: ``reason`` as a message-catalogue key and its arguments, ``((name, value), ...)``
    #: (checker/report/messages/); an empty key leaves ``reason`` as free text
    key: str = ""
    args: tuple = ()


@dataclass(frozen=True, slots=True)  # one per role pair the full or index test scored
class RoleScore:
    """One role-matched tensor pair inside a layer pair."""

    role: str
    reference_role: str
    score: float  # mean held-out Pearson of matched rows
    z: float
    log10_p: float
    #: median over aligned hidden dimensions of (submission column sd / reference column sd):
    #: q*c shows as c; 1.0 when the role was not rescaled (shown, never decisive)
    scale: float = 1.0
    #: sd of the log of those ratios: a norm gain folded into the matrix shows as a spread
    scale_spread: float = 0.0
    #: share of sampled reference units matched to a submission unit at another index
    #: (FFN neurons or heads permuted, pruned or inserted)
    units_moved: float = 0.0


@dataclass(frozen=True, slots=True)  # kept for the pairs a report shows (pairlog.PairLog.rows_near)
class WeakScore:
    """A norm-weight or bias comparison: shown, never decisive."""

    role: str
    pearson: float
    raw_cosine: float
    tensor: str = ""  # the submission tensor
    reference_tensor: str = ""


@dataclass(frozen=True, slots=True)
class LayerCell:
    """A submission layer against a reference layer (None for layer-less tensors): a pair the
    full test or the index test scored, or a same-index pair with weak evidence. Pairs only the
    screen compared are rows of :attr:`Match.screen`, not cells."""

    sub_layer: int | None
    ref_layer: int | None
    score: float
    z: float  # Stouffer over the role scores
    log10_p: float
    roles: tuple[RoleScore, ...]  # full tests (the screen chose this pair); empty when not chosen
    weak: tuple[WeakScore, ...]
    #: the index-aligned test of every role pair (each reference unit against the submission unit
    #: at the same index, exact column-shuffle null; :mod:`checker.metrics.indexed`)
    index: tuple[RoleScore, ...] = ()

    @property
    def index_z(self) -> float:
        """Stouffer z of the index-aligned role tests."""
        return sum(equivalent_z(r.log10_p) for r in self.index) / len(self.index) ** 0.5 if self.index else 0.0

    @property
    def index_log10_p(self) -> float:
        return log10_sf(self.index_z) if self.index else 0.0

    @property
    def index_score(self) -> float:
        return sum(r.score for r in self.index) / len(self.index) if self.index else 0.0


@dataclass(frozen=True)
class AlignmentSummary:
    """How the hidden dimension was aligned before comparing."""

    source: str  # e.g. "model.embed_tokens.weight ~ model.embed_tokens.weight (4021 shared tokens)", or "identity"
    permuted: bool
    sign_flips: int
    matched_dims: int
    anchor_z: float | None
    permutation: tuple[int, ...]  # submission dim for each reference dim (empty for identity)
    #: the residual stream was turned by a fitted orthogonal map (checker/metrics/rotation.py):
    #: every comparison through it is review-only evidence
    rotated: bool = False


@dataclass(frozen=True)
class Match:
    """A submission module compared with one module of one reference."""

    reference: str
    reference_module: str
    reference_kind: str
    statistic: str
    score: float  # mean held-out correlation over the mapped layers (or best cell)
    z: float  # z of the best cell
    log10_p: float  # best cell, Bonferroni-corrected over all cells: valid under any dependence
    fisher_log10_p: float  # Fisher over the mapped layers (assumes independence): shown, not decisive
    cells_tested: int
    layer_map: tuple[tuple[int, int], ...]  # (submission layer, reference layer)
    identical_fraction: float  # share of the module's parameters byte-identical to this reference
    alignment: AlignmentSummary
    cells: tuple[LayerCell, ...]
    decisive: bool  # False when only weak (norm/bias) evidence was available
    cells_screened: int = 0  # layer pairs the screen compared (the full test ran on cells_tested of them)
    cells_indexed: int = 0  # layer pairs the index-aligned test compared
    #: the submission tensors byte-identical to a tensor of this reference module (what identical_fraction counts)
    identical_tensors: tuple[str, ...] = ()
    #: the layer screen of every role pair of every layer pair (hidden Gram sketches, Mantel z),
    #: as columns: where the full test looked and why it did not look elsewhere
    screen: ScreenTable = field(default_factory=ScreenTable.empty)

    def layers(self) -> tuple[list[int], list[int]]:
        """The submission and the reference layers compared (in a cell or by the screen), ascending."""
        subs, refs = self.screen.layers()
        subs |= {c.sub_layer for c in self.cells if c.sub_layer is not None}
        refs |= {c.ref_layer for c in self.cells if c.ref_layer is not None}
        return sorted(subs), sorted(refs)

    def compared(self) -> set[tuple[int | None, str]]:
        """The (submission layer, role) pairs a statistic with an exact null compared: the full
        test, the index test or the screen."""
        return self.screen.compared() | {(c.sub_layer, r.role) for c in self.cells for r in (*c.roles, *c.index)}


@dataclass(frozen=True)
class ModuleEvidence:
    """Everything the engine found for one submission module."""

    module: Module
    matches: tuple[Match, ...]
    skipped: tuple[Skipped, ...]
