"""How much of a module the evidence covers, and how much of it the evidence ties to a reference.

- ``compared_tensors``: the module's tensors that a statistic with an exact null compared with a
  reference (coverage). A matrix counts when the full test (held-out rows) or the layer screen (Mantel
  under exact relabelling) compared its (layer, role) with a reference tensor; a byte-identical tensor
  counts. Norm weights and biases (1-D, never decisive by design: raw similarity of near-constant vectors
  says nothing) count as compared as soon as the module's matrices were: they are shown as weak
  evidence and no statistic could do more with them. Fixed tables (sinusoids, masks, constants: the
  engine's ``FIXED_KEYS`` skips) are not evidence at all and leave the denominator.
- ``derived_tensors``: the tensors the significant matches tie to a reference, layer by layer:
  every tensor of a submission layer in a layer map, the layer-less tensors whose own test in a
  layer-less cell is significant at the layer map's level, and the byte-identical tensors. An identical
  module counts in full (fixed tables aside). A derived module whose evidence cannot be localised
  (no layer map, no layer-less cell) counts in full rather than not at all.
"""

from __future__ import annotations

import math

from checker.metrics.aggregate import LAYER_MAP_ALPHA
from checker.metrics.experts import part_roles
from checker.metrics.fixed_tables import FIXED_KEYS
from checker.metrics.interface import REVIEW_ONLY, Match, Skipped
from checker.modules import Module
from checker.verdicts.interface import IDENTICAL_SHARE


def fixed_tables(skipped: tuple[Skipped, ...]) -> frozenset[str]:
    """The tensors the engine set aside as fixed tables (``what`` names the tensor, optionally ``name ~ reference``)."""
    return frozenset(s.what.split(" ~ ")[0] for s in skipped if s.key in FIXED_KEYS)


def numel(module: Module, names: frozenset[str]) -> int:
    return sum(t.numel for t in module.tensors if t.name in names)


def evidence_tensors(module: Module, fixed: frozenset[str]) -> frozenset[str]:
    """The coverage denominator: the module's tensors less its fixed tables."""
    return frozenset(t.name for t in module.tensors if t.name not in fixed)


def compared_tensors(module: Module, matches: tuple[Match, ...], fixed: frozenset[str]) -> frozenset[str]:
    """The module's tensors compared with a reference by a statistic with an exact null (see the module doc)."""
    if any(m.identical_fraction >= IDENTICAL_SHARE for m in matches):
        return evidence_tensors(module, fixed)
    exact = [m for m in matches if m.decisive and m.statistic not in REVIEW_ONLY]
    keys = set().union(*(m.compared() for m in exact))
    same = {name for m in matches for name in m.identical_tensors}
    # a fused expert tensor is compared under its parts' roles (gate_up: gate and up)
    return frozenset(t.name for t in module.tensors if t.name not in fixed and (
        t.name in same or (any((t.layer, r) in keys for r in part_roles(t.role)) if t.decisive
                           else bool(keys) and len(t.shape) < 2)))  # a 2-D matrix no statistic covers is not


def derived_tensors(module: Module, status: str, significant: tuple[Match, ...], matches: tuple[Match, ...],
                    fixed: frozenset[str]) -> frozenset[str]:
    """The module's tensors tied to a reference, layer by layer (see the module doc)."""
    if status == "identical":
        return evidence_tensors(module, fixed)
    if status != "derived":
        return frozenset()
    layers = {s for m in significant for s, _ in m.layer_map}
    level = math.log10(LAYER_MAP_ALPHA)
    # the same standard as the layer map: significant after Bonferroni over the match's tested cells
    own = {r.role for m in significant for c in m.cells if c.sub_layer is None
           for r in c.roles if r.log10_p + math.log10(max(m.cells_tested, 1)) < level}
    same = {name for m in matches for name in m.identical_tensors}
    tied = frozenset(t.name for t in module.tensors if t.name not in fixed and (
        (t.layer is not None and t.layer in layers) or (t.layer is None and t.role in own) or t.name in same))
    return tied or evidence_tensors(module, fixed)


def coverage(module: Module, matches: tuple[Match, ...], skipped: tuple[Skipped, ...] = ()) -> float | None:
    """Share of the module's evidence (all but fixed tables) compared with a reference; None when it holds none.
    (The audit keeps the figure on each ModuleVerdict; ``fromscratch compare`` has no verdicts and asks here.)"""
    fixed = fixed_tables(skipped)
    evidence = numel(module, evidence_tensors(module, fixed))
    return numel(module, compared_tensors(module, matches, fixed)) / evidence if evidence else None
