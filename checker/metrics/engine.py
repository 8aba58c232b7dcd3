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

from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np


from checker.hardware import give_back_after, give_back_freed, one_pool
from checker.metrics import stats
from checker.metrics.aggregate import aggregate
from checker.metrics.digests import Digester, copy_probe, reference_digests
from checker.metrics.fixed_tables import not_evidence, shared_digests
from checker.metrics.anchors import (
    ANCHOR_MIN_Z, Anchor, RowSource, alignment_summary, anchor_evidence, associated, find_anchors,
)
from checker.metrics.experts import ExpertPlan, expert_plans, expert_slices, not_compared
from checker.metrics.interface import ModuleEvidence, RoleScore, Skipped
from checker.metrics.pairlog import PairLog
from checker.metrics.matrices import compare_matrix
from checker.metrics.rotation import ROTATION_STATISTIC
from checker.metrics.stacks import SketchStack, sketch_stack
from checker.modules import Module, compatible
from checker.references.fingerprint import ANCHOR_ROLES, TOKEN_ROLES, Fingerprint, TensorPrint
from checker.scanners.tokenizer import Vocabulary
from checker.weights.interface import WeightsReader
from checker.weights.mapped import to_device
from checker.weights.stream import CheckpointStream
from checker.weights.values import all_finite, require_finite, require_in_range, scan, value_range

__all__ = ["ANCHOR_MIN_Z", "compare", "roles_compatible", "LAYER_MAP_ALPHA"]

from checker.metrics.aggregate import LAYER_MAP_ALPHA  # noqa: E402  (re-exported)

_ATTN_IN = frozenset({"q", "k", "v", "qkv"})
#: Anchor evidence from which a token matrix is also checked for a byte-identical copy.
DIGEST_Z = 3.0
#: Bytes of tensors that may wait for their content digest (:class:`_Digests`).
DIGEST_BACKLOG = 256 * 1024 * 1024


def roles_compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    if a in _ATTN_IN and b in _ATTN_IN and "qkv" in (a, b):
        return True  # a fused qkv holds the rows of separate q, k and v
    return "linear" in (a, b)  # unnamed matrices (renamed or transplanted modules) match any matrix


class _Accumulator:
    """Evidence gathered per (submission module, reference, reference module) and layer pair,
    and what the pass reuses from tensor to tensor."""

    def __init__(self, references, anchors_by_ref, device: str):
        self.roles = defaultdict(lambda: defaultdict(list))
        self.weak = defaultdict(PairLog)  # (role, tensor, reference tensor): Pearson, raw cosine
        self.screen = defaultdict(PairLog)  # (role, reference role): Mantel r, z, log10 p, sketch columns
        self.index = defaultdict(lambda: defaultdict(list))
        self.identical = defaultdict(set)
        self.skipped = defaultdict(list)
        self.references = references
        self.ref_modules = {rid: {m.name: m for m in fp.modules} for rid, fp in references}
        self.anchors_by_ref = anchors_by_ref
        self.device = device
        self.aligns: dict = {}  # (sub module, ref, ref module, widths) -> (alignment, anchor)
        self.colsets: dict = {}  # (alignment, ref width) -> sketch columns; ("targets", module, role, width) -> targets
        self.stacks: dict = {}  # reference sketches stacked for one product
        self._by_role: dict = {}
        self.related: frozenset = frozenset()  # (module, reference) pairs whose anchors show a copy
        #: (module, reference, reference module) keys with a full-test or index cell scored through a
        #: fitted rotation or projection: their match has no exact null, whatever else it holds
        self.turned: set = set()

    def matrices(self, rid: str, fp: Fingerprint, role: str) -> list[TensorPrint]:
        """The reference's sampled matrices of a role compatible with ``role`` (indexed once, so
        each submission tensor looks at its own role's tensors, not at every tensor)."""
        key = (rid, "matrix", role)
        if key not in self._by_role:
            self._by_role[key] = [rp for rp in fp.tensors if roles_compatible(role, rp.role.role) and rp.has("rows")]
        return self._by_role[key]

    def same_shape_grams(self, shape: tuple, units_axis: int, n: int) -> tuple[list, SketchStack | None, dict]:
        """The sketches of every reference tensor of this stored shape and units axis, whatever its
        role, their upper triangles stacked (built once) and each sketch's row in the stack (by
        ``id``): what an exact copy stored under another role's name would match
        (:func:`checker.metrics.matrices._maybe_identical`), and what the screen of a matrix aligned
        by identity reads its products from (one product per matrix serves both)."""
        key = ("same shape", shape, units_axis, n)
        if key not in self._by_role:
            grams = [rp.gram for _, fp in self.references for rp in fp.tensors
                     if tuple(rp.role.shape) == shape and rp.role.units_axis == units_axis and rp.has("gram")]
            grams = [g for g in grams if g is not None and g.n == n]
            self._by_role[key] = (grams, sketch_stack([g.upper for g in grams]) if grams else None,
                                  {id(g): i for i, g in enumerate(grams)})
        return self._by_role[key]

    def vector_stack(self, role: str, shape: tuple, kind: str, top_level: bool) -> tuple[list, np.ndarray]:
        """Every reference's 1-D tensors of this role and shape that a submission module of ``kind``
        may be compared with (layer tensors with layer tensors, top-level with top-level), as
        (reference id, print, reference module) and their values stacked (:class:`stats.VectorRefs`):
        read once, and scored against all references in one product."""
        key = ("vector", role, shape, kind, top_level)
        if key not in self._by_role:
            entries, vecs = [], []
            for rid, fp in self.references:
                for rp in fp.tensors:
                    if rp.role.role != role or tuple(rp.role.shape) != shape or not rp.has("vector"):
                        continue
                    rmod = self.ref_modules[rid][rp.role.module]
                    if not compatible(kind, rmod.kind) or top_level != (rp.role.layer is None):
                        continue
                    v = rp.vector
                    if v is not None and v.shape == (int(np.prod(shape)),):
                        entries.append((rid, rp, rmod))
                        vecs.append(v)
            self._by_role[key] = (entries, stats.vector_refs(np.stack(vecs) if vecs else np.zeros((0, 0))))
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
        anchors_by_ref[rid] = find_anchors(rows, sub_modules, sub_vocab, fp, acc.skipped)
        rows.next_reference()
        for a in anchors_by_ref[rid]:
            key = (a.sub.module, rid, a.ref.role.module)
            ev = anchor_evidence(a.alignment)
            if key not in anchor_for or a.alignment.evidence.z > anchor_for[key].alignment.evidence.z:
                anchor_for[key] = a
            acc.roles[key][(None, None)].append(RoleScore(a.sub.role, a.ref.role.role, ev.score, ev.z, ev.log10_p))
    rows.clear()
    give_back_freed()  # the anchors' token rows and Gram matrices: ~0.5 GB at 70B width
    # (module, reference) pairs whose own anchors (the module's embeddings, patch or position
    # tables) already show a copy: the full test then runs whatever the screen says
    acc.related = frozenset((m.name, rid) for m in sub_modules for rid, anchors in anchors_by_ref.items()
                            if any(associated(m.name, a.sub.module) and anchor_evidence(a.alignment).z >= ANCHOR_MIN_Z
                                   for a in anchors))

    ref_digests = {rid: defaultdict(set) for rid, _ in references}
    for rid, fp in references:
        for tp in fp.tensors:
            ref_digests[rid][tp.role.module].update(tp.digests)
    shared = shared_digests(references)  # tables unrelated references hold byte for byte: never evidence
    by_name = {tr.name: (m, tr) for m in sub_modules for tr in m.tensors}
    plans = expert_plans(sub_modules)  # fused 3-D experts: compared expert by expert
    # Token matrices whose anchors already look related get a content digest (an exact copy of
    # an embedding), unless the rows each reference recorded of its tables already show that no
    # reference tensor has its values (digests.CopyProbe); the others are only hashed with their file.
    suspect_tokens = {a.sub.name for anchors in anchors_by_ref.values() for a in anchors
                      if anchor_evidence(a.alignment).z >= DIGEST_Z}
    likely = False  # whether the last dense matrix may have been a byte-identical copy
    with _Digests() as digests:  # every tensor's digest is in before the evidence is assembled
        for st in stream:
            m, tr = by_name[st.info.name]
            if tr.role in TOKEN_ROLES and len(tr.shape) == 2:
                if tr.name in suspect_tokens:
                    dg, start = Digester(tr.shape, st.stored_dtype), 0
                    probe = copy_probe(tr.shape, (tp for _, fp in references for tp in fp.tensors))
                    for b in st.blocks(stored=True):  # a bf16 table is hashed from its bytes, not converted back
                        require_finite(all_finite(b), st.info)  # every block, digested or not
                        if dg is not None and probe is not None and probe.rules_out(b, start):
                            dg = None  # no reference tensor's digest can match
                        if dg is not None:
                            dg.update(b)
                        start += b.shape[0]
                    if dg is not None:
                        _identical(acc, m, tr, {dg.hexdigest()}, references, ref_digests)
            else:
                digests.make_room(st.nbytes)
                native = st.load()
                plan = plans.get(tr.name)
                dense = tr.role not in ANCHOR_ROLES and native.dim() >= 2 and tr.decisive and plan is None
                # a dense matrix goes to the GPU once, in its stored dtype: every pass over it runs from there
                work = to_device(native, acc.device) if dense and acc.device != "cpu" else native
                # one pass: the range (every value finite? the tensor constant?) and the columns the
                # fixed-table check reads, so a mapped matrix is walked once for both
                sc = scan(work)
                fixed = not_evidence(tr.name, native, shared, sc.head)  # a fixed table: never compared, digested or screened
                if fixed is not None:  # recognised before the range is required: an additive mask holds -inf
                    acc.skipped[m.name].append(fixed)
                    del native, work, sc  # not held while the next tensor loads
                    give_back_after(st.nbytes)
                    if progress is not None:
                        progress(st.info.numel)
                    continue
                lo, hi = sc.lo, sc.hi
                del sc
                require_in_range(lo, hi, st.info)
                maybe, early = True, None  # whether the tensor may be byte-identical to a reference tensor
                if isinstance(plan, ExpertPlan):
                    _compare_experts(native, m, plan, acc, st.info, ref_digests)
                    maybe = False  # digested slice by slice
                elif dense:
                    # a matrix after a possible copy is likely one too (a copied module): its digest
                    # starts now, beside the comparison and from the same bytes, and is kept if needed
                    early = digests.start(native) if likely and lo != hi else None
                    maybe = likely = compare_matrix(work, m, tr, acc)
                else:
                    if native.dim() < 2 and tr.role not in ANCHOR_ROLES:
                        _weak(native.float().numpy().ravel(), tr, m, acc)
                    elif native.dim() >= 3 and tr.role not in ANCHOR_ROLES:
                        acc.skipped[m.name].append(plan or not_compared(tr))  # never silently dropped
                    elif native.dim() == 2 and tr.role not in ANCHOR_ROLES:  # a matrix no statistic decides
                        acc.skipped[m.name].append(Skipped(
                            tr.name, f"not compared: a 2-D tensor of role '{tr.role}' that no decisive statistic covers",
                            "v.skip.no_statistic", (("role", tr.role),)))
                # A copy shares its Gram sketch, so only a matrix whose sketch matches a reference tensor's
                # of its shape (matrices.compare_matrix), or that could not be screened, is digested. A
                # constant tensor (a norm left at ones, a zero bias) is identical in every model of its
                # shape: its digest says nothing about provenance.
                if maybe and native.numel() > 1 and lo != hi:
                    digests.keep(early or digests.start(native),
                                 lambda d, m=m, tr=tr: _identical(acc, m, tr, set(d), references, ref_digests))
                del native, work, early
                give_back_after(st.nbytes)
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
                match = aggregate(m, rid, rmod, acc.roles.get(key, {}), acc.weak.pop(key, None), acc.screen.pop(key, None),
                                  acc.identical.get(key, set()), alignment_summary(al, anchor), acc.index.get(key, {}))
                if key in acc.turned or (al is not None and al.rotation is not None):  # no exact null through a rotation
                    match = replace(match, statistic=ROTATION_STATISTIC)
                matches.append(match)
        matches.sort(key=lambda x: (x.log10_p, -x.identical_fraction))
        out.append(ModuleEvidence(m, tuple(matches), tuple(acc.skipped.get(m.name, ()))))
    return tuple(out)


class _Digests:
    """Content digests of the tensors that need one, hashed on a worker thread while the pass goes
    on (hashlib releases the GIL; a derived model has every matrix digested, as many bytes as the
    file hash). A digest starts after its matrix was compared, or beside the comparison when the
    matrix before it was flagged (:meth:`start`, then :meth:`keep` if it is flagged too). At most
    DIGEST_BACKLOG bytes of tensors wait, counting the one about to be loaded (or one alone,
    whatever its size), so a 70B-width FFN matrix is never held beside the one before it. Each
    result is handed to its callback in the engine's thread."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest")
        self._pending: deque = deque()
        self._bytes = 0

    def start(self, native) -> list:
        """Start hashing ``native``; its result is used only if :meth:`keep` is called with the handle."""
        size = native.numel() * native.element_size()
        job = [self._pool.submit(reference_digests, native, False), None, size]
        self._pending.append(job)
        self._bytes += size
        return job

    @staticmethod
    def keep(job: list, done: Callable) -> None:
        """Hand ``job``'s digests to ``done``: when collected, or now if it already was."""
        if job[0] is None:  # collected before it was kept: its digests wait in job[1]
            done(job[1])
        else:
            job[1] = done

    def make_room(self, nbytes: int) -> None:
        """Wait for digests until a tensor of ``nbytes`` can be loaded within DIGEST_BACKLOG (or none
        waits): a large tensor is never held beside the one before it, still being hashed."""
        while self._pending and self._bytes + nbytes > DIGEST_BACKLOG:
            self._collect()

    def _collect(self) -> None:
        job = self._pending.popleft()
        future, done, size = job
        self._bytes -= size
        result = future.result()
        if done is not None:
            done(result)
        else:  # not kept (yet): a later keep() gets the result
            job[0], job[1] = None, result

    def __enter__(self) -> "_Digests":
        return self

    def __exit__(self, exc_type, *_) -> None:
        try:
            while self._pending and exc_type is None:  # on an error the digests are moot
                self._collect()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


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
        maybe = compare_matrix(sl, m, vr, acc)
        if common is None or common:
            hits = set()
            if maybe and not _constant(sl):
                dg = set(reference_digests(sl, roundings=False))
                hits = {(rid, rmod) for rid, by_mod in ref_digests.items() for rmod, dset in by_mod.items() if dg & dset}
            common = hits if common is None else common & hits
    for rid, rmod in common or ():
        acc.identical[(m.name, rid, rmod)].add(plan.role.name)


def _weak(vec, tr, m, acc: _Accumulator) -> None:
    """Norm weights and biases: Pearson and raw cosine with every reference vector of the role and
    shape (weak evidence, never decisive), one product for all references."""
    entries, refs = acc.vector_stack(tr.role, tuple(tr.shape), m.kind, tr.layer is None)
    if not entries:
        return
    for (rid, rp, rmod), (pear, cos) in zip(entries, stats.vector_stats_many(vec, refs)):
        acc.weak[(m.name, rid, rmod.name)].add(tr.layer, rp.role.layer, (tr.role, tr.name, rp.role.name), pear, cos)
