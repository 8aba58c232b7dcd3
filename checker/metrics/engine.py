"""The metric engine: every submission module against every compatible reference module.

Order of work, per reference:
1. anchors (token embeddings by shared token string, patch and position
   embeddings) recover the hidden permutation and signs, and are themselves
   evidence for the modules that hold them;
2. every 2-D weight of the submission is read once and compared, role by role,
   with every reference layer of every compatible module (layer x layer), with
   cross-fitted row matching so permuted or pruned units are found;
3. cells are combined into a module-level p-value that is Bonferroni-corrected
   over all layer pairs tried, so choosing the best layer pair costs what it
   should; Fisher's combination is reported beside it but never decides.
Exact copies are caught first by content digests.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from checker.metrics import stats
from checker.metrics.interface import (
    AlignmentSummary, LayerCell, Match, ModuleEvidence, RoleScore, Skipped, WeakScore,
)
from checker.modules import Module, TensorRole, compatible
from checker.references.fingerprint import (
    ANCHOR_ROLES, TOKEN_ROLES, Fingerprint, TensorPrint, as_units_by_hidden, tensor_digests,
)
from checker.scanners.tokenizer import Vocabulary
from checker.weights.interface import WeightsReader

#: An anchor alignment replaces the identity only when the anchors themselves
#: agree far beyond chance.
ANCHOR_MIN_Z = 8.0
#: A layer pair enters the layer map when significant at this level after
#: Bonferroni over all layer pairs of the module pair.
LAYER_MAP_ALPHA = 1e-3
MIN_ANCHORS = 16
_ATTN_IN = frozenset({"q", "k", "v", "qkv"})


def roles_compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    if a in _ATTN_IN and b in _ATTN_IN and "qkv" in (a, b):
        return True  # a fused qkv holds the rows of separate q, k and v
    return "linear" in (a, b)  # unnamed matrices (renamed or transplanted modules) match any matrix


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class _Anchor:
    sub: TensorRole
    ref: TensorPrint
    alignment: stats.HiddenAlignment
    count: int


def _sub_token_rows(reader: WeightsReader, sub: TensorRole, sub_vocab: Vocabulary | None,
                    ref: TensorPrint, ref_vocab: Vocabulary | None, cache: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows of the submission's token matrix for the reference's anchor tokens that both share."""
    if sub.name not in cache:
        cache[sub.name] = reader.get(sub.name).numpy().astype(np.float32)
    full = cache[sub.name]
    if sub_vocab is not None and ref_vocab is not None:
        ids = sub_vocab.ids()
        pairs = [(i, ids[tok]) for i, tok in enumerate(ref.anchor_tokens) if tok in ids and ids[tok] < full.shape[0]]
    else:  # no tokenizer on one side: assume the ids agree
        pairs = [(i, int(rid)) for i, rid in enumerate(ref.row_index) if rid < full.shape[0]]
    if len(pairs) < MIN_ANCHORS:
        return None
    ri, si = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    return ref.anchor[ri], full[si]


def _anchors(reader, sub_modules, sub_vocab, ref: Fingerprint, token_cache: dict, skipped) -> list[_Anchor]:
    out = []
    ref_anchors = [tp for tp in ref.tensors if tp.anchor is not None]
    for m in sub_modules:
        for tr in m.tensors:
            if tr.role not in ANCHOR_ROLES or len(tr.shape) < 2:
                continue
            for rp in ref_anchors:
                same_family = (tr.role in TOKEN_ROLES) == (rp.role.role in TOKEN_ROLES) and (
                    tr.role in TOKEN_ROLES or tr.role == rp.role.role)
                if not same_family:
                    continue
                if tr.role in TOKEN_ROLES:
                    got = _sub_token_rows(reader, tr, sub_vocab, rp, ref.vocab, token_cache)
                    if got is None:
                        skipped.append(Skipped(f"{tr.name} ~ {ref.source}:{rp.role.name}", "fewer than 16 shared tokens"))
                        continue
                    ref_rows, sub_rows = got
                else:
                    t = reader.get(tr.name)
                    mat = t.reshape(t.shape[0], -1).numpy().astype(np.float32)
                    sub_rows = mat.T if tr.role == "patch_embed" else mat
                    n = min(sub_rows.shape[0], rp.anchor.shape[0])
                    if sub_rows.shape[0] != rp.anchor.shape[0] and tr.role == "patch_embed":
                        skipped.append(Skipped(f"{tr.name} ~ {ref.source}:{rp.role.name}", "patch sizes differ"))
                        continue
                    ref_rows, sub_rows = rp.anchor[:n], sub_rows[:n]
                if ref_rows.shape[0] < MIN_ANCHORS:
                    continue
                al = stats.align_hidden(ref_rows, sub_rows, _seed(tr.name, rp.role.name))
                out.append(_Anchor(tr, rp, al, ref_rows.shape[0]))
    return out


def _anchor_evidence(al: stats.HiddenAlignment) -> stats.HeldOut:
    """The anchors' decisive score (see stats._anchor_rows): their held-out rows under the
    recovered alignment when the anchors confirm it (z >= ANCHOR_MIN_Z), else under the
    identity. When the widths differ and the alignment is unconfirmed there is no exact null:
    an alignment fitted between independent models inherits their shared privileged basis
    (the benchmark's smaller/larger independent models reach z ~8.5 on the aligned rows).
    Then both tests must agree and the weaker p-value counts (an intersection-union test)."""
    if al.evidence.z >= ANCHOR_MIN_Z:
        return al.aligned_rows
    if al.identity_rows is not None:
        return al.identity_rows
    return max((al.aligned_rows, al.evidence), key=lambda h: h.log10_p)


def _associated(module: str, anchor_module: str) -> bool:
    return anchor_module == module or anchor_module.startswith(module + ".") or module.startswith(anchor_module + ".")


def _choose_alignment(anchors: list[_Anchor], sub_mod: str, ref_mod: str, d_s: int, d_r: int):
    fits = [a for a in anchors if len(a.alignment.sub_index) == min(d_s, d_r)
            and a.sub.shape[-1 if a.sub.role in TOKEN_ROLES else 0] == d_s and a.ref.hidden == d_r]
    near = [a for a in fits if _associated(sub_mod, a.sub.module) and _associated(ref_mod, a.ref.role.module)]
    pool = near or fits
    best = max(pool, key=lambda a: a.alignment.evidence.z, default=None)
    if best is not None and (best.alignment.evidence.z >= ANCHOR_MIN_Z or d_s != d_r):
        return best.alignment, best
    if d_s == d_r:
        return stats.identity_alignment(d_s), None
    return None, None


def _summary(al: stats.HiddenAlignment | None, anchor: _Anchor | None) -> AlignmentSummary:
    if al is None or anchor is None:
        d = 0 if al is None else len(al.ref_index)
        return AlignmentSummary("identity", False, 0, d, None, ())
    perm = np.empty(len(al.ref_index), dtype=int)
    order = np.argsort(al.ref_index)
    perm = al.sub_index[order]
    permuted = not (len(perm) == anchor.ref.hidden and bool(np.all(perm == np.arange(len(perm)))))
    return AlignmentSummary(
        f"{anchor.sub.name} ~ {anchor.ref.role.name} ({anchor.count} anchors)", permuted,
        int(np.sum(al.signs < 0)), len(perm), round(anchor.alignment.evidence.z, 3),
        tuple(int(x) for x in perm) if permuted else (),
    )


def compare(reader: WeightsReader, sub_modules: Sequence[Module], sub_vocab: Vocabulary | None,
            references: Sequence[tuple[str, Fingerprint]]) -> tuple[ModuleEvidence, ...]:
    """Compare a submission (read lazily) with reference fingerprints; see the module docstring."""
    token_cache: dict[str, np.ndarray] = {}
    skipped: dict[str, list[Skipped]] = defaultdict(list)
    # cells[(sub module, ref id, ref module)][(sub layer, ref layer)] -> role scores / weak scores
    roles_acc: dict = defaultdict(lambda: defaultdict(list))
    weak_acc: dict = defaultdict(lambda: defaultdict(list))
    identical: dict = defaultdict(set)
    aligns: dict = {}
    ref_modules = {rid: {m.name: m for m in fp.modules} for rid, fp in references}
    anchors_by_ref = {}
    anchor_for: dict = {}  # (sub module, ref id, ref module) -> the anchor that decided a token module
    for rid, fp in references:
        ref_skips: list[Skipped] = []
        anchors_by_ref[rid] = _anchors(reader, sub_modules, sub_vocab, fp, token_cache, ref_skips)
        for s in ref_skips:
            skipped["*"].append(s)
        for a in anchors_by_ref[rid]:
            key = (a.sub.module, rid, a.ref.role.module)
            ev = _anchor_evidence(a.alignment)
            if key not in anchor_for or a.alignment.evidence.z > anchor_for[key].alignment.evidence.z:
                anchor_for[key] = a
            roles_acc[key][(None, None)].append(RoleScore(a.sub.role, a.ref.role.role, ev.score, ev.z, ev.log10_p))
    token_cache.clear()

    ref_digests = {rid: defaultdict(set) for rid, _ in references}
    for rid, fp in references:
        for tp in fp.tensors:
            ref_digests[rid][tp.role.module].update(tp.digests)

    for m in sub_modules:
        for tr in m.tensors:
            t = reader.get(tr.name)
            # A constant tensor (a norm left at its initial ones, a zero bias) is identical in every
            # model that has its shape: its digest says nothing about provenance.
            digests = set(tensor_digests(t)) if t.numel() > 1 and bool((t != t.reshape(-1)[0]).any()) else set()
            for rid, fp in references:
                for rmod, dset in ref_digests[rid].items():
                    if digests & dset:
                        identical[(m.name, rid, rmod)].add(tr.name)
            if tr.role in ANCHOR_ROLES:
                continue
            if t.dim() < 2:
                _weak(t.numpy().astype(np.float32), tr, m, references, ref_modules, weak_acc)
                continue
            if not tr.decisive:
                continue
            sub = as_units_by_hidden(t, tr.units_axis)
            sub_std = stats.standardize_columns(sub)
            sub_sd = sub.std(axis=0)
            for rid, fp in references:
                for rp in fp.tensors:
                    if rp.rows is None or not roles_compatible(tr.role, rp.role.role):
                        continue
                    rmod = ref_modules[rid][rp.role.module]
                    if not compatible(m.kind, rmod.kind):
                        continue
                    akey = (m.name, rid, rmod.name, sub.shape[1], rp.hidden)
                    if akey not in aligns:
                        aligns[akey] = _choose_alignment(anchors_by_ref[rid], m.name, rmod.name, sub.shape[1], rp.hidden)
                    al, _ = aligns[akey]
                    if al is None:
                        skipped[m.name].append(Skipped(f"{tr.name} ~ {rid}:{rp.role.name}",
                                                       f"hidden sizes differ ({sub.shape[1]} vs {rp.hidden}) and no anchor aligns them"))
                        continue
                    ref_std = stats.standardize_columns(rp.rows, rp.col_mean, rp.col_std)[:, al.ref_index] * al.signs
                    if ref_std.shape[1] < 8:
                        continue
                    ho, best = stats.match_rows(ref_std, sub_std[:, al.sub_index], _seed(tr.name, rid, rp.role.name))
                    scale, spread = stats.scale_ratio(sub_sd[al.sub_index], rp.col_std[al.ref_index])
                    moved = float(np.mean(best != rp.row_index)) if rp.row_index is not None else 0.0
                    roles_acc[(m.name, rid, rmod.name)][(tr.layer, rp.role.layer)].append(
                        RoleScore(tr.role, rp.role.role, ho.score, ho.z, ho.log10_p, scale, spread, moved))
            del sub, sub_std, t

    out = []
    for m in sub_modules:
        matches = []
        for rid, fp in references:
            for rmod in fp.modules:
                key = (m.name, rid, rmod.name)
                if key not in roles_acc and key not in identical and key not in weak_acc:
                    continue
                al_key = next((k for k in aligns if k[:3] == key and aligns[k][1] is not None), None)
                al, anchor = aligns[al_key] if al_key else (None, None)
                a = anchor_for.get(key)
                if al_key is None and a is not None and _anchor_evidence(a.alignment) is not a.alignment.identity_rows:
                    al, anchor = a.alignment, a
                matches.append(_aggregate(m, rid, rmod, roles_acc.get(key, {}), weak_acc.get(key, {}),
                                          identical.get(key, set()), _summary(al, anchor)))
        matches.sort(key=lambda x: (x.log10_p, -x.identical_fraction))
        out.append(ModuleEvidence(m, tuple(matches), tuple(skipped.get(m.name, ()))))
    return tuple(out)


def _weak(vec, tr, m, references, ref_modules, weak_acc) -> None:
    for rid, fp in references:
        for rp in fp.tensors:
            if rp.vector is None or rp.role.role != tr.role or rp.vector.shape != vec.shape:
                continue
            rmod = ref_modules[rid][rp.role.module]
            if not compatible(m.kind, rmod.kind) or (tr.layer is None) != (rp.role.layer is None):
                continue
            pear, cos = stats.vector_stats(vec, rp.vector)
            weak_acc[(m.name, rid, rmod.name)][(tr.layer, rp.role.layer)].append(WeakScore(tr.role, pear, cos))


def _aggregate(m: Module, rid: str, rmod: Module, role_cells, weak_cells, same: set, summary) -> Match:
    cells = []
    for key in sorted(set(role_cells) | set(weak_cells), key=lambda k: (k[0] is not None, k[0] or 0, k[1] is not None, k[1] or 0)):
        rs = tuple(role_cells.get(key, ()))
        z = stats.stouffer([r.z for r in rs]) if rs else 0.0
        cells.append(LayerCell(key[0], key[1], float(np.mean([r.score for r in rs])) if rs else 0.0, z,
                               stats.log10_sf(z) if rs else 0.0, rs, tuple(weak_cells.get(key, ()))))
    decisive_cells = [c for c in cells if c.roles]
    n = max(len(decisive_cells), 1)
    correction = math.log10(n)
    best = min(decisive_cells, key=lambda c: c.log10_p, default=None)
    log10_p = min(0.0, best.log10_p + correction) if best else 0.0
    # Layer map: for each submission layer its best reference layer, if significant after correction.
    by_sub: dict = defaultdict(list)
    for c in decisive_cells:
        if c.sub_layer is not None and c.ref_layer is not None:
            by_sub[c.sub_layer].append(c)
    mapped = []
    for sl, cs in sorted(by_sub.items()):
        top = min(cs, key=lambda c: c.log10_p)
        if top.log10_p + correction < math.log10(LAYER_MAP_ALPHA):
            mapped.append(top)
    layer_map = tuple((c.sub_layer, c.ref_layer) for c in mapped)
    if mapped:
        score = float(np.mean([c.score for c in mapped]))
        fisher = stats.fisher_log10_p([c.log10_p for c in mapped])
    else:
        score = best.score if best else 0.0
        fisher = best.log10_p if best else 0.0
    same_params = sum(t.numel for t in m.tensors if t.name in same)
    stat = "heldout_row_pearson"
    if m.kind in ("embeddings", "lm_head"):
        stat = "shared_token_pearson"
    return Match(
        reference=rid, reference_module=rmod.name, reference_kind=rmod.kind, statistic=stat,
        score=round(score, 6), z=round(best.z if best else 0.0, 4), log10_p=log10_p,
        fisher_log10_p=fisher, cells_tested=len(decisive_cells), layer_map=layer_map,
        identical_fraction=same_params / max(m.parameters, 1), alignment=summary, cells=tuple(cells),
        decisive=bool(decisive_cells),
    )
