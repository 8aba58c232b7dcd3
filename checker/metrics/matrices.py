"""One submission matrix against every compatible reference tensor: index test, screen, full test.

The engine (:mod:`.engine`) streams the submission and hands each weight matrix here with its
accumulator of evidence. Per reference tensor of a compatible role, under the hidden alignment
the anchors gave (identity, permutation, or a fitted rotation or anchor-space projection), the
matrix gets the layer screen (:mod:`.screen`, every layer pair), the index-aligned test
(:mod:`.indexed`, the same-index pair) and, where the screen points or
the anchors already show a copy, the cross-fitted full test (:mod:`.rowmatch`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from checker.metrics import alignment, stats
from checker.metrics.anchors import choose_alignment
from checker.metrics.indexed import identity_scores, index_columns, index_score, reference_side
from checker.metrics.interface import RoleScore, Skipped
from checker.metrics.rotation import projected_print, rotated
from checker.metrics.rowmatch import Candidate, Group, match_candidates
from checker.metrics.screen import (MAX_CANDIDATES, MIN_SCREEN_DIMS, SCREEN_Z, GramSketch, ScreenScore, mantel_many,
                                   screen_columns, upper_products)
from checker.metrics.stacks import sketch_stack
from checker.metrics.summary import gram_sketch, unit_rows, units_by_hidden_shape
from checker.modules import Module, compatible
from checker.references.fingerprint import TensorPrint


@dataclass(frozen=True, eq=False)
class _Target:
    """One reference tensor a submission matrix is compared with, under one alignment."""

    rid: str
    rmod: Module
    rp: TensorPrint
    al: alignment.HiddenAlignment
    sub_cols: np.ndarray  # submission columns of the sketch, in the reference sketch's order
    ref_idx: np.ndarray  # positions within the reference sketch
    signs: np.ndarray
    #: computed once per column set (not per target: a deep model against many references has
    #: layers x references targets per matrix): the sketch columns' key, the screen group's key,
    #: whether the reference sketch is used whole, whether any sign is flipped
    cols_key: bytes = b""
    group_key: bytes = b""
    whole: bool = False
    flipped: bool = False
    plain: bool = False  # the alignment is the identity of two equal widths (:func:`_plain`)


def _targets(m, tr, hidden, acc: object) -> list[_Target]:
    """The reference tensors a matrix is compared with, each under its alignment. They depend on the
    module, role and width only, so every layer's matrix of a role reuses one list (a deep model
    against many references has layers x references of them); the pairs no alignment covers are
    listed as skipped under each matrix's own name."""
    key = ("targets", m.name, tr.role, hidden)
    if key not in acc.colsets:
        unaligned: list = []
        acc.colsets[key] = (_find_targets(m, tr.role, hidden, acc, unaligned), unaligned)
    out, unaligned = acc.colsets[key]
    for rid, rp in unaligned:
        acc.skipped[m.name].append(Skipped(f"{tr.name} ~ {rid}:{rp.role.name}",
                                           f"hidden sizes differ ({hidden} vs {rp.hidden}) and no anchor aligns them",
                                           "v.skip.hidden_sizes", (("hidden", int(hidden)), ("reference_hidden", int(rp.hidden)))))
    return out


def _find_targets(m, role: str, hidden: int, acc: object, unaligned: list) -> list[_Target]:
    out = []
    aligns, colsets = acc.aligns, acc.colsets
    for rid, fp in acc.references:
        for rp in acc.matrices(rid, fp, role):
            rmod = acc.ref_modules[rid][rp.role.module]
            if not compatible(m.kind, rmod.kind):
                continue
            akey = (m.name, rid, rmod.name, hidden, rp.hidden)
            if akey not in aligns:
                aligns[akey] = choose_alignment(acc.anchors_by_ref[rid], m.name, rmod.name, hidden, rp.hidden,
                                                m.kind, rmod.kind)
            al, _ = aligns[akey]
            if al is None:
                unaligned.append((rid, rp))
                continue
            if len(al.ref_index) < 8:
                continue
            if al.ref_map is not None:  # compared in anchor space (checker/metrics/rotation.py)
                pkey = (id(al), id(rp))
                if pkey not in colsets:
                    colsets[pkey] = projected_print(rp, al.ref_map)
                rp = colsets[pkey]
            ckey = (id(al), rp.hidden)
            if ckey not in colsets:
                s_ref = screen_columns(rp.hidden)
                pos = np.flatnonzero(np.isin(al.ref_index, s_ref))
                pos = pos[np.argsort(al.ref_index[pos])]
                sub_cols, ref_idx, signs = al.sub_index[pos], np.searchsorted(s_ref, al.ref_index[pos]), al.signs[pos]
                colsets[ckey] = (sub_cols, ref_idx, signs, sub_cols.tobytes(), signs.tobytes() + ref_idx.tobytes(),
                                 len(ref_idx) == len(s_ref) and bool(np.all(ref_idx == np.arange(len(s_ref)))),
                                 bool(np.any(signs < 0)), _plain(al, rp.hidden, hidden))
            out.append(_Target(rid, rmod, rp, al, *colsets[ckey]))
    return out


#: The sketch Mantel r above which a matrix may be a byte-identical copy of a reference tensor of
#: its shape aligned by identity. A copy's sketch is the reference's up to the float16 the
#: fingerprint stores it in, and to a bf16 or fp16 rounding (r above 0.99999 at usual weight
#: scales, down to 0.9967 for an fp16 rounding of weights near 1e-6, in fp16's subnormal range);
#: a noised copy is below (at most 0.964 in benchmarks/scale.py), and its bytes differ anyway.
IDENTICAL_SKETCH_R = 0.99


def compare_matrix(native, m, tr, acc: object) -> bool:
    """Screen one matrix against every compatible reference tensor and run the full test where the
    screen points. Returns whether the matrix may be byte-identical to a reference tensor, and so
    needs its content digest (:func:`_maybe_identical`)."""
    units, hidden = units_by_hidden_shape(tuple(native.shape), tr.units_axis)  # finite: checked by the engine
    targets = _targets(m, tr, hidden, acc)
    if not targets:
        return True
    maybe = False
    by_basis: dict = defaultdict(list)
    for t in targets:
        by_basis[id(t.al) if t.al.rotation is not None else None].append(t)
    shape = tuple(native.shape)
    for basis, ts in by_basis.items():
        if basis is None:
            maybe |= _test_targets(native, tr.units_axis, m, tr, units, ts, acc, shape)
        else:  # a rotated residual stream: the matrix turned into the reference's basis first
            maybe |= _test_targets(rotated(native, tr.units_axis, ts[0].al.rotation, acc.device), 0, m, tr, units, ts,
                                   acc, shape)
    return maybe


def _same_shape(targets: list, grams: dict, shape: tuple, units_axis: int, acc: object):
    """(sketch columns' key, reference sketches, their rows, products) of the identity-aligned
    sketch with every reference sketch of the matrix's stored shape and units axis (one product
    per matrix: the screen of those targets and :func:`_maybe_identical` both read it); None when
    no target is aligned by identity or no reference tensor has the shape."""
    key = next((t.cols_key for t in targets if t.plain), None)
    if key is None or key not in grams:
        return None
    refs, stacked, rows = acc.same_shape_grams(shape, units_axis, grams[key].n)
    return None if stacked is None else (key, refs, rows, upper_products(stacked, grams[key]))


def _maybe_identical(scored: list, chosen: list, shape: tuple, grams: dict, same) -> bool:
    """Whether the matrix could be byte-identical to a reference tensor (a digest is shape-bound, so
    only those of its stored shape count): a target that could not be screened; a sketch without
    spread (one unit, constant columns: it tells nothing); under any alignment but the identity, a
    target the screen sent to the full test (a copy shares its sketch); and, aligned by identity,
    a same-shape reference tensor of *any* role (a copy stored under another role's name, k for v)
    whose sketch agrees beyond IDENTICAL_SKETCH_R."""
    plain_key = None
    for t, s in scored:
        if s is None:
            return True
        if t.plain:
            plain_key = t.cols_key
        elif tuple(t.rp.role.shape) == shape and t in chosen:
            return True
    if plain_key is None or plain_key not in grams:
        return False
    sub = grams[plain_key]
    if sub.s2 <= 1e-12:
        return True
    if same is None:
        return False
    _, refs, _, products = same
    return any(r >= IDENTICAL_SKETCH_R for r, _, _ in mantel_many(sub, refs, products=products))


def _test_targets(native, axis: int, m, tr, units: int, targets: list[_Target], acc: object, shape: tuple) -> bool:
    """Screen, index test and full test of one matrix (units on ``axis``) against its targets;
    returns :func:`_maybe_identical` for the matrix of stored ``shape``."""
    grams = {}
    for t in targets:  # one sketch per distinct column set (one for every reference aligned by identity)
        if t.cols_key not in grams and len(t.sub_cols) >= 4:
            grams[t.cols_key] = gram_sketch(native, axis, t.sub_cols, acc.device)
    # Screen every target; group those sharing sketch columns (every reference aligned by identity)
    # so one product scores them.
    groups: dict = defaultdict(list)
    for t in targets:
        groups[(t.cols_key, t.group_key, t.rp.hidden)].append(t)
    same = _same_shape(targets, grams, shape, tr.units_axis, acc)
    scored: list[tuple[_Target, ScreenScore | None]] = []
    for (ckey, _, _), ts in groups.items():
        t0 = ts[0]
        if t0.rp.gram is None or len(t0.sub_cols) < MIN_SCREEN_DIMS:
            scored += [(t, None) for t in ts]  # too narrow to screen: every pair gets the full test
            continue
        sub = grams[ckey]
        if t0.flipped:
            sub = GramSketch.of(sub.matrix() * np.outer(t0.signs, t0.signs))
        refs = [t.rp.gram for t in ts] if t0.whole else [t.rp.gram.restrict(t.ref_idx) for t in ts]
        at = [same[2].get(id(g)) for g in refs] if same is not None and ckey == same[0] and t0.plain else [None]
        if None not in at:  # aligned by identity, each reference tensor of the matrix's shape: products made
            scores = mantel_many(sub, refs, products=same[3][at])
        else:
            skey = (tr.role, tuple(id(t.rp) for t in ts)) if t0.whole else None
            stacked = acc.stacks.get(skey) if skey else None
            if skey and stacked is None:
                stacked = acc.stacks[skey] = sketch_stack([g.upper for g in refs])
            scores = mantel_many(sub, refs, stacked)
        for t, (r, z, lp) in zip(ts, scores):
            s = ScreenScore(tr.role, t.rp.role.role, round(r, 6), z, lp, sub.n)
            acc.screen[(m.name, t.rid, t.rmod.name)].add(tr.layer, t.rp.role.layer, (s.role, s.reference_role),
                                                         s.mantel_r, z, lp, sub.n)
            scored.append((t, s))
    chosen = _candidates(scored, tr.layer, frozenset(rid for mod, rid in acc.related if mod == m.name))
    # the index test: the same-index layer pair only (linear in depth). Pairs the screen picked are
    # not added: the screen saw their search-half columns, which the index test scores too, so their
    # column-shuffle null would no longer hold.
    _index_tests(native, axis, m, tr, units, [t for t in targets if t.rp.role.layer == tr.layer], acc)
    maybe = _maybe_identical(scored, chosen, shape, grams, same)
    if not chosen:
        return maybe
    by_al: dict = defaultdict(list)
    for t in chosen:
        by_al[id(t.al)].append(t)
    groups = []
    for ts in by_al.values():
        al = ts[0].al
        search_ref, _ = stats.split_columns(ts[0].rp.hidden)
        in_search = np.isin(al.ref_index, search_ref)
        cands = tuple(Candidate(t, stats.standardize_columns(t.rp.rows, t.rp.col_mean, t.rp.col_std)[:, al.ref_index]
                                * al.signs) for t in ts)
        groups.append(Group(al.sub_index, np.flatnonzero(in_search), np.flatnonzero(~in_search), cands))
    found = match_candidates(native, axis, groups, acc.device)  # one pass: the moments and every search
    for g, matched in zip(groups, found.groups):
        for res in matched:
            t, ho = res.key, res.held_out
            scale, spread = stats.scale_ratio(found.col_std[g.sub_index], t.rp.col_std[t.al.ref_index])
            row_index = t.rp.row_index
            moved = float(np.mean(res.best != row_index)) if row_index is not None else 0.0
            acc.roles[(m.name, t.rid, t.rmod.name)][(tr.layer, t.rp.role.layer)].append(
                RoleScore(tr.role, t.rp.role.role, ho.score, ho.z, ho.log10_p, scale, spread, moved))
            _mark_turned(acc, m, t)
    return maybe


def _mark_turned(acc, m, t: _Target) -> None:
    """A cell scored through a fitted rotation or anchor-space projection: the module's match is
    labelled review-only even when another of its widths was aligned without one (the engine
    labels a match by one alignment; a module of two widths could otherwise mix turned cells into
    an exact-null match)."""
    if t.al.rotation is not None:
        acc.turned.add((m.name, t.rid, t.rmod.name))


def _index_tests(native, axis: int, m, tr, units: int, targets: list[_Target], acc: object) -> None:
    """The index-aligned test (:mod:`.indexed`) of the targets of the same role and unit count: no
    search, screened or not, so it catches what sits at the reference's own unit indices however
    weakly (a merge). The submission's rows and their Gram matrix are shared by every reference
    that samples the same units through the same columns; the references aligned by identity
    (every unrelated one) are scored together, with the Gram matrices stored at registration."""
    rows: dict = {}
    normed_rows: dict = {}
    plain: dict = defaultdict(list)  # (units sampled, width) -> targets aligned by identity
    for t in targets:
        rp = t.rp
        if rp.role.role != tr.role or rp.units != units or not rp.has("row_index"):
            continue
        ri = rp.row_index  # a registered print loads it from disk on every access
        key = ri.tobytes()
        if key not in rows:
            rows[key] = unit_rows(native, axis, ri)
        cols = t.al.sub_index[index_columns(len(t.al.ref_index))]
        nkey = (key, cols.tobytes())
        if nkey not in normed_rows and len(cols) >= 8:
            normed_rows[nkey] = stats.normed_rows(rows[key][:, cols], units=True)
        if t.plain:
            plain[nkey].append(t)
            continue
        _record_index(acc, m, tr, t, index_score(rp.rows, rows[key], t.al.ref_index, t.al.sub_index, t.al.signs,
                                                 normed_rows.get(nkey)))
    for nkey, ts in plain.items():
        if nkey not in normed_rows:
            continue
        sides = [(t.rp.index_rows, t.rp.index_gram) if t.rp.has("index_gram") else reference_side(t.rp.rows) for t in ts]
        for t, ho in zip(ts, identity_scores(sides, normed_rows[nkey])):
            _record_index(acc, m, tr, t, ho)


def _plain(al: alignment.HiddenAlignment, ref_hidden: int, sub_hidden: int) -> bool:
    """Whether the alignment is the identity of two equal widths (dimension i to dimension i, no sign)."""
    if al.rotation is not None or ref_hidden != sub_hidden or len(al.ref_index) != ref_hidden:
        return False
    ident = np.arange(ref_hidden)
    return bool(np.array_equal(al.ref_index, ident) and np.array_equal(al.sub_index, ident) and np.all(al.signs > 0))


def _record_index(acc, m, tr, t: _Target, ho) -> None:
    if ho is not None:
        _mark_turned(acc, m, t)
        acc.index[(m.name, t.rid, t.rmod.name)][(tr.layer, t.rp.role.layer)].append(
            RoleScore(tr.role, t.rp.role.role, ho.score, ho.z, ho.log10_p))


def _candidates(scored: list, layer: int | None, related: frozenset) -> list[_Target]:
    """Targets for the full test: per reference, those the screen flags (z >= SCREEN_Z), best
    first and at most MAX_CANDIDATES; every target that could not be screened.

    For a reference whose anchors already show a copy of this module (``related``), the best-screened pair and
    the same-index layer go to the full test whatever their screen z: the sketch columns are fixed
    by the width, so a copy can scramble just them (an orthogonal turn of those dimensions) to keep
    the full test away. Its p-values stay valid (it never sees the screen's columns)."""
    out = [t for t, s in scored if s is None]
    per_ref: dict = defaultdict(list)
    for t, s in scored:
        if s is not None:
            per_ref[t.rid].append((s.z, t))
    for rid, lst in per_ref.items():
        lst.sort(key=lambda x: -x[0])
        picked = [t for z, t in lst if z >= SCREEN_Z][:MAX_CANDIDATES]
        if rid in related:  # the best-screened pair and the same-index pair, flagged or not
            picked += [t for i, (_, t) in enumerate(lst) if t not in picked and (i == 0 or t.rp.role.layer == layer)]
        out += picked
    return out


