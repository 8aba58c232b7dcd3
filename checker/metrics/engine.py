"""The metric engine: every submission module against every compatible reference module.

Order of work:
1. anchors (token embeddings by shared token string, patch and position
   embeddings) recover the hidden permutation and signs for each reference, and
   are themselves evidence for the modules that hold them (:mod:`.anchors`);
2. one pass over the submission's files (:class:`CheckpointStream`): each tensor
   is read once, hashed with its file, and summarised (column moments and hidden
   Gram sketches, :mod:`.summary`);
3. the layer screen (:mod:`.screen`) compares each matrix's sketch with every
   reference tensor of a compatible role, at the cost of one dot product per layer
   pair; only pairs the screen flags go to the full test, cross-fitted row matching
   (:mod:`.rowmatch`), scored on hidden columns the screen never saw;
4. cells are combined into a module-level p-value, Bonferroni-corrected over the
   layer pairs tested (:mod:`.aggregate`). Exact copies are caught by content digests.

The cost is linear in depth per reference (one sketch per tensor, one dot product
per pair), and the full test runs only where a reference is related.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from checker.hardware import one_pool
from checker.metrics import stats
from checker.metrics.aggregate import aggregate
from checker.metrics.digests import Digester, reference_digests
from checker.metrics.fixed_tables import not_evidence, shared_digests
from checker.metrics.anchors import (
    ANCHOR_MIN_Z, Anchor, RowSource, alignment_summary, anchor_evidence, choose_alignment, find_anchors,
)
from checker.metrics.indexed import index_score
from checker.metrics.experts import ExpertPlan, expert_plans, expert_slices, not_compared
from checker.metrics.interface import ModuleEvidence, RoleScore, Skipped, WeakScore
from checker.metrics.rotation import ROTATION_STATISTIC, projected_print, rotated
from checker.metrics.rowmatch import Candidate, match_candidates
from checker.metrics.screen import MAX_CANDIDATES, MIN_SCREEN_DIMS, SCREEN_Z, GramSketch, ScreenScore, mantel_many, screen_columns
from checker.metrics.summary import column_moments, gram_sketch, unit_rows, units_by_hidden_shape
from checker.modules import Module, compatible
from checker.references.fingerprint import ANCHOR_ROLES, TOKEN_ROLES, Fingerprint, TensorPrint
from checker.scanners.tokenizer import Vocabulary
from checker.weights.interface import WeightsReader
from checker.weights.stream import CheckpointStream, all_finite, require_finite, value_range

__all__ = ["ANCHOR_MIN_Z", "compare", "roles_compatible", "LAYER_MAP_ALPHA"]

from checker.metrics.aggregate import LAYER_MAP_ALPHA  # noqa: E402  (re-exported)

_ATTN_IN = frozenset({"q", "k", "v", "qkv"})
#: Anchor evidence from which a token matrix is also checked for a byte-identical copy.
DIGEST_Z = 3.0


def roles_compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    if a in _ATTN_IN and b in _ATTN_IN and "qkv" in (a, b):
        return True  # a fused qkv holds the rows of separate q, k and v
    return "linear" in (a, b)  # unnamed matrices (renamed or transplanted modules) match any matrix


@dataclass(frozen=True, eq=False)
class _Target:
    """One reference tensor a submission matrix is compared with, under one alignment."""

    rid: str
    rmod: Module
    rp: TensorPrint
    al: stats.HiddenAlignment
    sub_cols: np.ndarray  # submission columns of the sketch, in the reference sketch's order
    ref_idx: np.ndarray  # positions within the reference sketch
    signs: np.ndarray


class _Accumulator:
    """Evidence gathered per (submission module, reference, reference module) and layer pair,
    and what the pass reuses from tensor to tensor."""

    def __init__(self, references, anchors_by_ref, device: str):
        self.roles = defaultdict(lambda: defaultdict(list))
        self.weak = defaultdict(lambda: defaultdict(list))
        self.screen = defaultdict(lambda: defaultdict(list))
        self.index = defaultdict(lambda: defaultdict(list))
        self.identical = defaultdict(set)
        self.skipped = defaultdict(list)
        self.references = references
        self.ref_modules = {rid: {m.name: m for m in fp.modules} for rid, fp in references}
        self.anchors_by_ref = anchors_by_ref
        self.device = device
        self.aligns: dict = {}  # (sub module, ref, ref module, widths) -> (alignment, anchor)
        self.colsets: dict = {}  # (alignment, ref width) -> sketch columns
        self.stacks: dict = {}  # reference sketches stacked for one product
        self._by_role: dict = {}
        self.related: frozenset = frozenset()  # references whose anchors show a copy

    def matrices(self, rid: str, fp: Fingerprint, role: str) -> list[TensorPrint]:
        """The reference's sampled matrices of a role compatible with ``role`` (indexed once, so
        each submission tensor looks at its own role's tensors, not at every tensor)."""
        key = (rid, "matrix", role)
        if key not in self._by_role:
            self._by_role[key] = [rp for rp in fp.tensors if roles_compatible(role, rp.role.role) and rp.has("rows")]
        return self._by_role[key]

    def vectors(self, rid: str, fp: Fingerprint, role: str, shape: tuple) -> list[TensorPrint]:
        """The reference's 1-D tensors of this role and shape."""
        key = (rid, "vector", role, shape)
        if key not in self._by_role:
            self._by_role[key] = [rp for rp in fp.tensors if rp.role.role == role and tuple(rp.role.shape) == shape
                                  and rp.has("vector")]
        return self._by_role[key]


def compare(reader: WeightsReader, sub_modules: Sequence[Module], sub_vocab: Vocabulary | None,
            references: Sequence[tuple[str, Fingerprint]], device: str = "cpu",
            stream: CheckpointStream | None = None, progress: Callable[[int], None] | None = None) -> tuple[ModuleEvidence, ...]:
    """Compare a submission (read once, lazily) with reference fingerprints; see the module docstring.

    ``stream`` is the pass to use (its ``files`` hold the file hashes afterwards);
    ``progress`` is called with the number of elements of each tensor done.
    """
    with one_pool():
        return _compare(reader, sub_modules, sub_vocab, references, device, stream or CheckpointStream(reader), progress)


def _compare(reader, sub_modules, sub_vocab, references, device, stream, progress) -> tuple[ModuleEvidence, ...]:
    anchors_by_ref: dict[str, list[Anchor]] = {}
    acc = _Accumulator(references, anchors_by_ref, device)
    rows = RowSource(stream)
    anchor_for: dict = {}  # (sub module, ref id, ref module) -> the anchor that decided a token module
    for rid, fp in references:
        ref_skips: list[Skipped] = []
        anchors_by_ref[rid] = find_anchors(rows, sub_modules, sub_vocab, fp, ref_skips)
        acc.skipped["*"].extend(ref_skips)
        for a in anchors_by_ref[rid]:
            key = (a.sub.module, rid, a.ref.role.module)
            ev = anchor_evidence(a.alignment)
            if key not in anchor_for or a.alignment.evidence.z > anchor_for[key].alignment.evidence.z:
                anchor_for[key] = a
            acc.roles[key][(None, None)].append(RoleScore(a.sub.role, a.ref.role.role, ev.score, ev.z, ev.log10_p))
    rows.clear()
    acc.related = frozenset(rid for rid, anchors in anchors_by_ref.items()
                            if any(anchor_evidence(a.alignment).z >= ANCHOR_MIN_Z for a in anchors))

    ref_digests = {rid: defaultdict(set) for rid, _ in references}
    for rid, fp in references:
        for tp in fp.tensors:
            ref_digests[rid][tp.role.module].update(tp.digests)
    shared = shared_digests(references)  # tables unrelated references hold byte for byte: never evidence
    by_name = {tr.name: (m, tr) for m in sub_modules for tr in m.tensors}
    plans = expert_plans(sub_modules)  # fused 3-D experts: compared expert by expert
    # Token matrices whose anchors already look related get a content digest (an exact copy of
    # an embedding); the others are only hashed with their file.
    suspect_tokens = {a.sub.name for anchors in anchors_by_ref.values() for a in anchors
                      if anchor_evidence(a.alignment).z >= DIGEST_Z}
    for st in stream:
        m, tr = by_name[st.info.name]
        if tr.role in TOKEN_ROLES and len(tr.shape) == 2:
            if tr.name in suspect_tokens:
                dg = Digester(tr.shape, st.stored_dtype)
                for b in st.blocks():
                    dg.update(b)
                _identical(acc, m, tr, {dg.hexdigest()}, references, ref_digests)
        else:
            native = st.load()
            fixed = not_evidence(tr.name, native, shared)  # a fixed table: never compared, digested or screened
            if fixed is not None:
                acc.skipped[m.name].append(fixed)
                if progress is not None:
                    progress(st.info.numel)
                continue
            flagged = True
            plan = plans.get(tr.name)
            if isinstance(plan, ExpertPlan):
                _compare_experts(native, m, plan, acc, st.info, ref_digests)
                flagged = False  # digested slice by slice
            elif tr.role not in ANCHOR_ROLES and native.dim() >= 2 and tr.decisive and plan is None:
                flagged = _compare_matrix(native, m, tr, acc, st.info)
            else:
                require_finite(all_finite(native), st.info)
                if native.dim() < 2 and tr.role not in ANCHOR_ROLES:
                    _weak(native.float().numpy().ravel(), tr, m, acc)
                elif native.dim() >= 3 and tr.role not in ANCHOR_ROLES:
                    acc.skipped[m.name].append(plan or not_compared(tr))  # never silently dropped
            # A copy shares its Gram sketch, so a matrix the screen did not flag cannot be identical to
            # any reference tensor: only flagged (or unscreenable) tensors are digested. A constant
            # tensor (a norm left at ones, a zero bias) is identical in every model of its shape: its
            # digest says nothing about provenance.
            if flagged and not _constant(native):
                _identical(acc, m, tr, set(reference_digests(native, roundings=False)), references, ref_digests)
            del native
        if progress is not None:
            progress(st.info.numel)

    out = []
    for m in sub_modules:
        matches = []
        for rid, fp in references:
            for rmod in fp.modules:
                key = (m.name, rid, rmod.name)
                if not any(key in d for d in (acc.roles, acc.identical, acc.weak, acc.screen, acc.index)):
                    continue
                al_key = next((k for k in acc.aligns if k[:3] == key and acc.aligns[k][1] is not None), None)
                al, anchor = acc.aligns[al_key] if al_key else (None, None)
                a = anchor_for.get(key)
                if al_key is None and a is not None and anchor_evidence(a.alignment) is not a.alignment.identity_rows:
                    al, anchor = a.alignment, a
                match = aggregate(m, rid, rmod, acc.roles.get(key, {}), acc.weak.get(key, {}), acc.screen.get(key, {}),
                                  acc.identical.get(key, set()), alignment_summary(al, anchor), acc.index.get(key, {}))
                if al is not None and al.rotation is not None:  # no exact null through a fitted rotation
                    match = replace(match, statistic=ROTATION_STATISTIC)
                matches.append(match)
        matches.sort(key=lambda x: (x.log10_p, -x.identical_fraction))
        out.append(ModuleEvidence(m, tuple(matches), tuple(acc.skipped.get(m.name, ()))))
    return tuple(out)


def _constant(t) -> bool:
    lo, hi = value_range(t)
    return t.numel() <= 1 or lo == hi


def _identical(acc, m, tr, digests: set, references, ref_digests) -> None:
    if not digests:
        return
    for rid, _ in references:
        for rmod, dset in ref_digests[rid].items():
            if digests & dset:
                acc.identical[(m.name, rid, rmod)].add(tr.name)


def _compare_experts(native, m, plan: ExpertPlan, acc: _Accumulator, info, ref_digests) -> None:
    """Each expert of a fused tensor as a dense FFN matrix (:mod:`.experts`). The fused tensor is
    identical to a reference module when every one of its slices is."""
    common = None
    for vr, sl in expert_slices(plan, native):
        flagged = _compare_matrix(sl, m, vr, acc, info)
        if common is None or common:
            hits = set()
            if flagged and not _constant(sl):
                dg = set(reference_digests(sl, roundings=False))
                hits = {(rid, rmod) for rid, by_mod in ref_digests.items() for rmod, dset in by_mod.items() if dg & dset}
            common = hits if common is None else common & hits
    for rid, rmod in common or ():
        acc.identical[(m.name, rid, rmod)].add(plan.role.name)


def _targets(m, tr, hidden, acc: _Accumulator) -> list[_Target]:
    out = []
    aligns, colsets = acc.aligns, acc.colsets
    for rid, fp in acc.references:
        for rp in acc.matrices(rid, fp, tr.role):
            rmod = acc.ref_modules[rid][rp.role.module]
            if not compatible(m.kind, rmod.kind):
                continue
            akey = (m.name, rid, rmod.name, hidden, rp.hidden)
            if akey not in aligns:
                aligns[akey] = choose_alignment(acc.anchors_by_ref[rid], m.name, rmod.name, hidden, rp.hidden)
            al, _ = aligns[akey]
            if al is None:
                acc.skipped[m.name].append(Skipped(f"{tr.name} ~ {rid}:{rp.role.name}",
                                                   f"hidden sizes differ ({hidden} vs {rp.hidden}) and no anchor aligns them",
                                                   "v.skip.hidden_sizes", (("hidden", int(hidden)), ("reference_hidden", int(rp.hidden)))))
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
                colsets[ckey] = (al.sub_index[pos], np.searchsorted(s_ref, al.ref_index[pos]), al.signs[pos])
            out.append(_Target(rid, rmod, rp, al, *colsets[ckey]))
    return out


def _compare_matrix(native, m, tr, acc: _Accumulator, info) -> bool:
    """Screen one matrix against every compatible reference tensor and run the full test where the
    screen points. Returns whether anything was sent to the full test (or could not be screened)."""
    units, hidden = units_by_hidden_shape(tuple(native.shape), tr.units_axis)
    require_finite(all_finite(native), info)
    targets = _targets(m, tr, hidden, acc)
    if not targets:
        return True
    flagged = False
    by_basis: dict = defaultdict(list)
    for t in targets:
        by_basis[id(t.al) if t.al.rotation is not None else None].append(t)
    for basis, ts in by_basis.items():
        if basis is None:
            flagged |= _test_targets(native, tr.units_axis, m, tr, units, ts, acc)
        else:  # a rotated residual stream: the matrix turned into the reference's basis first
            flagged |= _test_targets(rotated(native, tr.units_axis, ts[0].al.rotation, acc.device), 0, m, tr, units, ts, acc)
    return flagged


def _test_targets(native, axis: int, m, tr, units: int, targets: list[_Target], acc: _Accumulator) -> bool:
    """Index test, screen and full test of one matrix (units on ``axis``) against its targets."""
    _index_tests(native, axis, m, tr, units, targets, acc)
    grams = {}
    for t in targets:  # one sketch per distinct column set (one for every reference aligned by identity)
        key = t.sub_cols.tobytes()
        if key not in grams and len(t.sub_cols) >= 4:
            grams[key] = gram_sketch(native, axis, t.sub_cols, acc.device)
    # Screen every target; group those sharing sketch columns so one product scores them.
    groups: dict = defaultdict(list)
    for t in targets:
        groups[(t.sub_cols.tobytes(), t.signs.tobytes(), t.rid, t.rp.hidden, t.ref_idx.tobytes())].append(t)
    scored: list[tuple[_Target, ScreenScore | None]] = []
    for (ckey, _, _, _, _), ts in groups.items():
        t0 = ts[0]
        if t0.rp.gram is None or len(t0.sub_cols) < MIN_SCREEN_DIMS:
            scored += [(t, None) for t in ts]  # too narrow to screen: every pair gets the full test
            continue
        sub = grams[ckey]
        if np.any(t0.signs < 0):
            sub = GramSketch.of(sub.matrix() * np.outer(t0.signs, t0.signs))
        refs = [t.rp.gram.restrict(t.ref_idx) for t in ts]
        full = len(t0.ref_idx) == t0.rp.gram.n and bool(np.all(t0.ref_idx == np.arange(t0.rp.gram.n)))
        skey = (t0.rid, tr.role, tuple(id(t.rp) for t in ts)) if full else None
        stacked = acc.stacks.get(skey) if skey else None
        if skey and stacked is None:
            stacked = acc.stacks[skey] = np.stack([g.upper for g in refs]).astype(np.float32)
        for t, (r, z, lp) in zip(ts, mantel_many(sub, refs, stacked)):
            s = ScreenScore(tr.role, t.rp.role.role, round(r, 6), z, lp, sub.n)
            acc.screen[(m.name, t.rid, t.rmod.name)][(tr.layer, t.rp.role.layer)].append(s)
            scored.append((t, s))
    chosen = _candidates(scored, tr.layer, acc.related)
    if not chosen:
        return False
    col_mean, col_std, _ = column_moments(native, axis, acc.device)  # the full test standardises
    by_al: dict = defaultdict(list)
    for t in chosen:
        by_al[id(t.al)].append(t)
    for ts in by_al.values():
        al = ts[0].al
        search_ref, _ = stats.split_columns(ts[0].rp.hidden)
        in_search = np.isin(al.ref_index, search_ref)
        search, held = np.flatnonzero(in_search), np.flatnonzero(~in_search)
        cands = []
        for t in ts:
            rp = t.rp
            ref_std = stats.standardize_columns(rp.rows, rp.col_mean, rp.col_std)[:, al.ref_index] * al.signs
            cands.append(Candidate(t, ref_std))
        for res in match_candidates(native, axis, col_mean, col_std, al.sub_index, search, held, cands,
                                    acc.device):
            t, ho = res.key, res.held_out
            scale, spread = stats.scale_ratio(col_std[al.sub_index], t.rp.col_std[al.ref_index])
            row_index = t.rp.row_index
            moved = float(np.mean(res.best != row_index)) if row_index is not None else 0.0
            acc.roles[(m.name, t.rid, t.rmod.name)][(tr.layer, t.rp.role.layer)].append(
                RoleScore(tr.role, t.rp.role.role, ho.score, ho.z, ho.log10_p, scale, spread, moved))
    return True


def _index_tests(native, axis: int, m, tr, units: int, targets: list[_Target], acc: _Accumulator) -> None:
    """The index-aligned test (:mod:`.indexed`) of every target of the same role and unit count:
    no search, so it runs on every layer pair, screened or not, and catches what sits at the
    reference's own unit indices however weakly (a merge)."""
    rows: dict = {}
    for t in targets:
        rp = t.rp
        if rp.role.role != tr.role or rp.units != units or not rp.has("row_index"):
            continue
        key = rp.row_index.tobytes()
        if key not in rows:
            rows[key] = unit_rows(native, axis, rp.row_index)
        ho = index_score(rp.rows, rows[key], t.al.ref_index, t.al.sub_index, t.al.signs)
        if ho is not None:
            acc.index[(m.name, t.rid, t.rmod.name)][(tr.layer, rp.role.layer)].append(
                RoleScore(tr.role, rp.role.role, ho.score, ho.z, ho.log10_p))


def _candidates(scored: list, layer: int | None, related: frozenset) -> list[_Target]:
    """Targets for the full test: per reference, those the screen flags (z >= SCREEN_Z), best
    first and at most MAX_CANDIDATES; every target that could not be screened.

    For a reference whose anchors already show a copy (``related``), the best-screened pairs and
    the same-index layer go to the full test whatever their screen z: the sketch columns are fixed
    by the width, so a copy can scramble just them (an orthogonal turn of those dimensions) to keep
    the full test away. Its p-values stay valid (it never sees the screen's columns)."""
    out = [t for t, s in scored if s is None]
    per_ref: dict = defaultdict(list)
    for t, s in scored:
        if s is not None and (s.z >= SCREEN_Z or t.rid in related):
            per_ref[t.rid].append((s.z, t))
    for rid, lst in per_ref.items():
        lst.sort(key=lambda x: -x[0])
        out += [t for _, t in lst[:MAX_CANDIDATES]]
        if rid in related:
            out += [t for _, t in lst[MAX_CANDIDATES:] if t.rp.role.layer == layer]
    return out


def _weak(vec, tr, m, acc: _Accumulator) -> None:
    for rid, fp in acc.references:
        for rp in acc.vectors(rid, fp, tr.role, tuple(tr.shape)):
            rmod = acc.ref_modules[rid][rp.role.module]
            if not compatible(m.kind, rmod.kind) or (tr.layer is None) != (rp.role.layer is None):
                continue
            ref_vec = rp.vector
            if ref_vec is None or ref_vec.shape != vec.shape:
                continue
            pear, cos = stats.vector_stats(vec, ref_vec)
            acc.weak[(m.name, rid, rmod.name)][(tr.layer, rp.role.layer)].append(WeakScore(tr.role, pear, cos, tr.name, rp.role.name))
