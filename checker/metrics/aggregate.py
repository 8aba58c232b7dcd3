"""From layer-pair cells to one module-level match per reference module.

Two families of evidence, each Bonferroni-corrected over its own cells:

- the full test (held-out row matching) on the layer pairs the screen chose. Its
  columns were never seen by the screen, so each cell's p-value holds whatever the
  screen selected, and the correction runs over the cells actually tested;
- when no pair was chosen, the screen itself (Mantel z of the hidden Gram sketches,
  exact relabelling moments) over every layer pair. It never reaches a verdict
  threshold on its own: a cell that would pass it has been sent to the full test;
- the index-aligned test (:mod:`.indexed`) on the same-index layer pairs (equal roles and
  unit counts), corrected over those pairs.

The module's p-value is the better of the two families (the search family: the full
test, or the screen when nothing was sent to it; the index family), Bonferroni-corrected
for the two.

A cell is kept for each layer pair the full or the index test scored, and for the same-index
and layer-less pairs with weak evidence; the screen's rows stay columns (:class:`ScreenTable`),
so the evidence kept grows with layers x references, not layers squared x references.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from checker.metrics import stats
from checker.metrics.interface import LayerCell, Match, WeakScore
from checker.metrics.pairlog import PairLog, ScreenTable
from checker.modules import Module

#: A layer pair enters the layer map when significant at this level after
#: Bonferroni over all layer pairs of the module pair.
LAYER_MAP_ALPHA = 1e-3


def _key(k):
    return (k[0] is not None, k[0] or 0, k[1] is not None, k[1] or 0)


def aggregate(m: Module, rid: str, rmod: Module, role_cells, weak: PairLog | None, screen: PairLog | None, same: set,
              summary, index_cells=None) -> Match:
    index_cells = index_cells or {}
    table = screen.screen_table() if screen is not None else ScreenTable.empty()
    weak_cells: dict = defaultdict(list)
    for pair, (role, tensor, ref_tensor), pearson, cosine in (weak.rows_near(set(role_cells) | set(index_cells))
                                                              if weak is not None else ()):
        weak_cells[pair].append(WeakScore(role, pearson, cosine, tensor, ref_tensor))
    cells = []
    for key in sorted(set(role_cells) | set(weak_cells) | set(index_cells), key=_key):
        rs = tuple(role_cells.get(key, ()))
        # roles combine by Stouffer over the z equivalent to each role's calibrated p (its t tail)
        z = stats.stouffer([stats.equivalent_z(r.log10_p) for r in rs]) if rs else 0.0
        cells.append(LayerCell(key[0], key[1], float(np.mean([r.score for r in rs])) if rs else 0.0, z,
                               stats.log10_sf(z) if rs else 0.0, rs, tuple(weak_cells.get(key, ())),
                               tuple(index_cells.get(key, ()))))
    decisive_cells = [c for c in cells if c.roles]
    screened, screen_z, row_pair = table.by_pair()
    indexed = [c for c in cells if c.index]
    correction = math.log10(max(len(decisive_cells), 1))
    index_correction = math.log10(max(len(indexed), 1))
    both = math.log10(2) if indexed and (decisive_cells or screened) else 0.0
    best = min(decisive_cells, key=lambda c: c.log10_p, default=None)
    best_index = min(indexed, key=lambda c: c.index_log10_p, default=None)
    stat = "shared_token_pearson" if m.kind in ("embeddings", "lm_head") else "heldout_row_pearson"
    if best is not None:
        log10_p = best.log10_p + correction
        best_z, best_score = best.z, best.score
    elif screened:
        top = int(np.argmax(screen_z))  # the first pair of the highest z, in cell order
        best_z = float(screen_z[top])
        log10_p = stats.log10_sf(best_z) + math.log10(len(screened))
        best_score = float(np.mean(table.mantel_r[row_pair == top]))
        stat = "hidden_gram_mantel"
    else:
        log10_p, best_z, best_score = 0.0, 0.0, 0.0
    if best_index is not None and best_index.index_log10_p + index_correction < log10_p:
        log10_p = best_index.index_log10_p + index_correction
        best_z, best_score = best_index.index_z, best_index.index_score
        stat = "heldout_row_pearson" if stat == "hidden_gram_mantel" else stat
    log10_p = min(0.0, log10_p + both)

    def cell_p(c) -> float:  # a cell's p within the module pair: the better family, corrected
        full = c.log10_p + correction if c.roles else 0.0
        index = c.index_log10_p + index_correction if c.index else 0.0
        return min(full, index) + both

    # Layer map: for each submission layer its best reference layer, if significant after correction.
    by_sub: dict = defaultdict(list)
    for c in cells:
        if (c.roles or c.index) and c.sub_layer is not None and c.ref_layer is not None:
            by_sub[c.sub_layer].append(c)
    mapped = []
    for sl, cs in sorted(by_sub.items()):
        top_cell = min(cs, key=cell_p)
        if cell_p(top_cell) < math.log10(LAYER_MAP_ALPHA):
            mapped.append(top_cell)
    layer_map = tuple((c.sub_layer, c.ref_layer) for c in mapped)
    if mapped:
        score = float(np.mean([c.score if c.roles else c.index_score for c in mapped]))
        fisher = stats.fisher_log10_p([min(c.log10_p if c.roles else 0.0, c.index_log10_p) for c in mapped])
    else:
        score = best_score
        fisher = best.log10_p if best else log10_p
    same_params = sum(t.numel for t in m.tensors if t.name in same)
    return Match(
        reference=rid, reference_module=rmod.name, reference_kind=rmod.kind, statistic=stat,
        score=round(score, 6), z=round(best_z, 4), log10_p=log10_p,
        fisher_log10_p=fisher, cells_tested=len(decisive_cells), layer_map=layer_map,
        identical_fraction=same_params / max(m.parameters, 1), alignment=summary, cells=tuple(cells),
        decisive=bool(decisive_cells or screened or indexed), cells_screened=len(screened),
        cells_indexed=len(indexed), identical_tensors=tuple(sorted(same)), screen=table,
    )
