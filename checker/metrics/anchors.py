"""Anchors: rows whose meaning is fixed outside the model, and the hidden alignments they give.

Token embeddings of strings both vocabularies contain, patch embeddings (pixel
inputs) and position tables recover the submission's hidden permutation and signs
relative to each reference (:func:`checker.metrics.alignment.align_hidden`), and are
themselves evidence for the modules that hold them. They are read before the pass
over the rest of the checkpoint, by positioned reads of just the rows needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from checker.hardware import give_back_freed
from checker.metrics import alignment, stats
from checker.metrics.fixed_tables import recognise
from checker.metrics.interface import AlignmentSummary, Skipped
from checker.metrics.rotation import ROTATION_MIN_R, ROTATION_MIN_SCORE, align_rotation, project_onto_anchors, through
from checker.modules import TensorRole
from checker.references.fingerprint import ANCHOR_ROLES, TOKEN_ROLES, Fingerprint, TensorPrint, input_rows
from checker.scanners.tokenizer import Vocabulary

#: An anchor alignment replaces the identity only when the anchors themselves
#: agree far beyond chance.
ANCHOR_MIN_Z = 8.0
MIN_ANCHORS = 16
#: Below this anchor-geometry similarity (alignment.geometry_r) no hidden permutation is searched
#: between equal widths: a copy, permuted, rotated or fine-tuned, keeps r near 1; independently
#: trained models sit far lower. The identity comparison, with its exact null, still runs.
GEOMETRY_MIN_R = 0.6
#: Held-out anchors scoring the identity when the geometries are unrelated.
UNRELATED_HELD = alignment.UNRELATED_HELD
#: Products of the submission's anchor rows kept across references (RowSource.derived).
DERIVED_KEEP = 16
#: Requests of more token rows than this are read for the caller and not cached: the geometry and
#: unrelated tests ask for at most this many and share them; the identity test's held-out rows
#: (1,024) and a whole anchor set (4,096) are read once a reference (at 405B width 64 and 256 MiB
#: in float32; cached and stacked, they were held twice).
KEEP_ROWS = 512


class RowSource:
    """The submission's anchor tensors, row by row: positioned reads, rows cached by id."""

    def __init__(self, stream):
        self._stream = stream
        self._rows: dict[str, dict[int, np.ndarray]] = {}
        self._fixed: dict[str, bool] = {}
        self._derived: dict = {}  # (what, tensor, ids) -> an array derived from those rows
        self._ids: dict = {}  # (vocabulary, anchor tokens) -> their submission ids

    def derived(self, what: str, name: str, ids: np.ndarray, make) -> np.ndarray:
        """``make(rows)`` of the rows ``ids`` of ``name``, kept for the next reference that meets
        the same rows (references sharing a vocabulary share the anchors' submission side); the
        DERIVED_KEEP latest are kept, so references with other vocabularies do not pile up."""
        key = (what, name, ids.tobytes())
        if key not in self._derived:
            self._derived[key] = make(self.token_rows(name, ids))
            while len(self._derived) > DERIVED_KEEP:
                self._derived.pop(next(iter(self._derived)))
        return self._derived[key]

    def vocab_ids(self, vocab: Vocabulary, tokens: tuple[str, ...]) -> np.ndarray:
        """The submission's ids of ``tokens`` (-1 where it lacks one), kept for the next reference
        with the same anchor tokens: those are sampled by the table's shape, so references sharing a
        tokenizer and a shape share them, and each costs a hash of its tokens, not a look-up of each."""
        key = (id(vocab), tokens)
        if key not in self._ids:
            ids = vocab.ids()
            self._ids[key] = np.fromiter((ids.get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))
            while len(self._ids) > DERIVED_KEEP:
                self._ids.pop(next(iter(self._ids)))
        return self._ids[key]

    def next_reference(self) -> None:
        """Drop the rows read for the last reference (at most its anchor tokens); the products
        derived from them stay (:meth:`derived`). Memory stays one reference's rows, whatever the
        number of references and however many tokens their vocabularies cover together."""
        self._rows.clear()

    def token_rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        cache = self._rows.setdefault(name, {})
        if len(ids) > KEEP_ROWS:  # a whole anchor set (a permutation search): read, not kept twice
            uniq = np.unique(ids)
            return self._stream.take_rows(name, uniq.tolist()).numpy()[np.searchsorted(uniq, ids)]
        missing = sorted({int(i) for i in ids} - set(cache))
        if missing:  # every missing row in one call (one positioned read per run of consecutive ids)
            block = self._stream.take_rows(name, missing).numpy()
            for k, rid in enumerate(missing):
                cache[rid] = block[k]
        return np.stack([cache[int(x)] for x in ids]) if len(ids) else np.zeros((0, 0), np.float32)

    def whole(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        return self._stream.rows(name, 0, shape[0]).reshape(shape).numpy().astype(np.float32)

    def fixed(self, name: str, mat: np.ndarray, shape: tuple[int, ...]) -> bool:
        """Whether the tensor is a fixed table (a sinusoid, ...: :mod:`.fixed_tables`), never an anchor:
        every model of its shape holds it."""
        if name not in self._fixed:
            self._fixed[name] = recognise(torch.from_numpy(mat)) is not None
        return self._fixed[name]

    def clear(self) -> None:
        self._rows.clear()
        self._derived.clear()
        self._ids.clear()


@dataclass(frozen=True)
class Anchor:
    sub: TensorRole
    ref: TensorPrint
    alignment: alignment.HiddenAlignment
    count: int


class _TokenPair:
    """The anchor tokens a submission token matrix and a reference token print share: their
    reference and submission rows, read only where a test needs them (an unrelated reference
    needs the few hundred its geometry and identity tests look at, not all of them).

    ``table`` reads the reference's whole anchor table as stored (float16), on first need;
    ``probe`` is the reference's stored :class:`~checker.metrics.alignment.UnrelatedProbe` when the
    submission shares every anchor row (its positions are then those of the whole table), else
    None: the unrelated test then takes its rows from the table, as for any other overlap."""

    def __init__(self, rows: RowSource, sub: TensorRole, table, ri: np.ndarray, si: np.ndarray,
                 probe: alignment.UnrelatedProbe | None = None):
        self.rows, self.sub, self._table, self.ri, self.si, self.probe = rows, sub, table, ri, si, probe
        self._stored: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ri)

    @property
    def stored(self) -> np.ndarray:
        if self._stored is None:
            self._stored = self._table()
        return self._stored

    def ref_rows(self, pos: np.ndarray | None = None) -> np.ndarray:
        return (self.stored[self.ri] if pos is None else self.stored[self.ri[pos]]).astype(np.float32)

    def sub_rows(self, pos: np.ndarray | None = None) -> np.ndarray:
        return self.rows.token_rows(self.sub.name, self.si if pos is None else self.si[pos])


def _token_pair(rows: RowSource, sub: TensorRole, sub_vocab: Vocabulary | None, ref: TensorPrint,
                ref_vocab: Vocabulary | None, table, memo: dict | None = None) -> _TokenPair | None:
    """The submission's token rows for the reference's anchor tokens that both share. ``memo``
    keeps the shared tokens for the submission's next token matrix of as many rows (an embedding
    and its output head look the reference's anchor tokens up once)."""
    n, memo = sub.shape[0], {} if memo is None else memo
    key = (id(ref), n)
    if key not in memo:
        if sub_vocab is not None and ref_vocab is not None:
            at = rows.vocab_ids(sub_vocab, ref.anchor_tokens)
        else:  # no tokenizer on one side: assume the ids agree
            at = np.asarray(ref.row_index, dtype=np.int64)
        ri = np.flatnonzero((at >= 0) & (at < n))
        # every anchor row shared (ri is then 0..t-1): the stored probe holds the unrelated test's rows
        memo[key] = (ri, at[ri], ref.probe() if len(ri) == len(at) else None) if len(ri) >= MIN_ANCHORS else None
    return None if memo[key] is None else _TokenPair(rows, sub, table, *memo[key])


def _unrelated_tokens(pair: _TokenPair, rp: TensorPrint, ref_cache: dict, d: int) -> tuple[float, Anchor | None]:
    """The geometry of a token pair and, when it is unrelated (every unrelated reference), its
    identity comparison on UNRELATED_HELD held-out anchors: only those rows and the geometry's
    are read (from the stored probe when the submission shares every anchor row), and each side's
    products are kept for the next pair that shares them."""
    rows, name = pair.rows, pair.sub.name
    pick = alignment.geometry_pick(len(pair))
    rkey = (id(pair._table), pair.ri[pick].tobytes())
    if rkey not in ref_cache:
        ref_cache[rkey] = pair.probe.sketch if pair.probe is not None else alignment.geometry_sketch(pair.ref_rows(pick))
    geometry = alignment.geometry_of(ref_cache[rkey], rows.derived("geometry", name, pair.si[pick], alignment.geometry_sketch))
    if geometry >= GEOMETRY_MIN_R:
        return geometry, None
    held = alignment.held_anchors(len(pair), UNRELATED_HELD)
    hkey = (id(pair._table), pair.ri[held].tobytes())
    if hkey not in ref_cache:
        ref_cache[hkey] = pair.probe.held if pair.probe is not None else stats.normed_rows(pair.ref_rows(held))
    ident = stats.held_out_normed(ref_cache[hkey], rows.derived("held", name, pair.si[held], stats.normed_rows))
    return geometry, Anchor(pair.sub, rp, alignment.identity_only(ident, d), len(pair))


def _identity_tokens(pair: _TokenPair) -> stats.HeldOut:
    """:func:`alignment.identity_rows` of a token pair of equal widths, from its held-out rows only:
    at 405B width the whole 4,096-row anchor set is 256 MiB a side in float32, and an unpermuted
    copy, which these rows confirm, needs none of the rest."""
    held = alignment.held_anchors(len(pair))
    return stats.held_out_normed(stats.normed_rows(pair.ref_rows(held)), stats.normed_rows(pair.sub_rows(held)))


def find_anchors(rows: RowSource, sub_modules, sub_vocab, ref: Fingerprint, skipped) -> list[Anchor]:
    """Every (submission anchor, reference anchor) pair of the same family, aligned. Pairs that
    cannot be compared go to ``skipped[module name]`` with their reason."""
    out = []
    heads: list = []  # output-head anchors no identity or permutation aligned
    tables: dict = {}  # reference token print -> a reader of its whole anchor table (as stored, float16)
    ref_anchors = [tp for tp in ref.tensors if tp.has("anchor")]
    ref_cache: dict = {}  # reference-side products, shared by the submission's token matrices
    shared: dict = {}  # the anchor tokens each reference token print shares (_token_pair)
    ref_rows = sub_rows = None
    for m in sub_modules:
        for tr in m.tensors:
            if tr.role not in ANCHOR_ROLES or len(tr.shape) < 2:
                continue
            for rp in ref_anchors:
                if ref_rows is not None and ref_rows.shape[1] > alignment.LARGE_WIDTH:
                    ref_rows = sub_rows = None  # a wide pair's rows (256 MiB a side at 16,384 wide) are
                    give_back_freed()           # not held, nor kept by the heap, while the next pair's are read
                ref_rows = sub_rows = None
                same_family = (tr.role in TOKEN_ROLES) == (rp.role.role in TOKEN_ROLES) and (
                    tr.role in TOKEN_ROLES or tr.role == rp.role.role)
                if not same_family:
                    continue
                geometry = ident = None
                if tr.role in TOKEN_ROLES:
                    if id(rp) not in tables:  # read from the registry only where a test needs it whole
                        tables[id(rp)] = lambda rp=rp: rp.stored("anchor")
                    pair = _token_pair(rows, tr, sub_vocab, rp, ref.vocab, tables[id(rp)], shared)
                    if pair is None:
                        skipped[m.name].append(Skipped(f"{tr.name} ~ {ref.source}:{rp.role.name}", "fewer than 16 shared tokens",
                                                       "v.skip.few_tokens"))
                        continue
                    if rp.hidden == tr.shape[1]:
                        geometry, unrelated = _unrelated_tokens(pair, rp, ref_cache, tr.shape[1])
                        if unrelated is not None:
                            out.append(unrelated)
                            continue
                        ident = _identity_tokens(pair)
                        if ident.z >= ANCHOR_MIN_Z:  # an unpermuted copy: only its held-out rows were read
                            out.append(Anchor(tr, rp, alignment.identity_only(ident, tr.shape[1], ident), len(pair)))
                            continue
                    # a wide reference table is searched in its stored 16 bits (alignment widens it
                    # block by block): 128 MiB fewer at 16,384 wide
                    wide = max(rp.hidden, tr.shape[1]) > alignment.LARGE_WIDTH
                    ref_rows, sub_rows = pair.stored[pair.ri] if wide else pair.ref_rows(), pair.sub_rows()
                else:
                    mat = rows.whole(tr.name, tr.shape)
                    if rows.fixed(tr.name, mat, tr.shape):
                        continue  # recorded as not evidence by the pass
                    sub_rows = input_rows(mat, tr.role)
                    ref_anchor = rp.anchor
                    n = min(sub_rows.shape[0], ref_anchor.shape[0])
                    if sub_rows.shape[0] != ref_anchor.shape[0] and tr.role == "patch_embed":
                        skipped[m.name].append(Skipped(f"{tr.name} ~ {ref.source}:{rp.role.name}", "patch sizes differ",
                                                       "v.skip.patch_sizes"))
                        continue
                    ref_rows, sub_rows = ref_anchor[:n], sub_rows[:n]
                if ref_rows.shape[0] < MIN_ANCHORS:
                    skipped[m.name].append(Skipped(f"{tr.name} ~ {ref.source}:{rp.role.name}", f"fewer than {MIN_ANCHORS} anchor rows",
                                                   "v.skip.few_anchors", (("minimum", MIN_ANCHORS),)))
                    continue
                if ref_rows.shape[1] == sub_rows.shape[1]:
                    # Equal widths: no permutation is searched when the held-out anchors already
                    # confirm the identity (an unpermuted copy), or when the anchor geometries are
                    # unrelated (the identity comparison, with its exact null, decides).
                    d = ref_rows.shape[1]
                    if geometry is None:
                        geometry = alignment.geometry_r(ref_rows, sub_rows)
                    if geometry < GEOMETRY_MIN_R:
                        # Unrelated geometry (every unrelated reference): a smaller held-out set
                        # keeps each extra reference cheap; its null is exact whatever its size.
                        ident = alignment.identity_rows(ref_rows, sub_rows, UNRELATED_HELD)
                        out.append(Anchor(tr, rp, alignment.identity_only(ident, d), ref_rows.shape[0]))
                        continue
                    ident = alignment.identity_rows(ref_rows, sub_rows) if ident is None else ident
                    if ident.z >= ANCHOR_MIN_Z:
                        out.append(Anchor(tr, rp, alignment.identity_only(ident, d, ident), ref_rows.shape[0]))
                        continue
                if ref_rows.shape[1] > alignment.LARGE_WIDTH:
                    give_back_freed()  # what reading the rows freed, before the search's own copies
                al = alignment.align_hidden(ref_rows, sub_rows)
                if al.evidence.z < ANCHOR_MIN_Z:  # the rows are read again below, in float32
                    ref_rows = ref_rows.astype(np.float32, copy=False)
                if ref_rows.shape[1] == sub_rows.shape[1] and al.evidence.z < ANCHOR_MIN_Z and "lm_head" in (tr.role, rp.role.role):
                    heads.append((len(out), tr, rp, ref_rows, sub_rows))  # scored through the embedding's rotation, below
                elif ref_rows.shape[1] == sub_rows.shape[1] and al.evidence.z < ANCHOR_MIN_Z and geometry >= ROTATION_MIN_R:
                    # A copy's geometry, yet neither the identity nor a permutation aligns the
                    # anchors: a rotated residual stream (checker/metrics/rotation.py).
                    if ref_rows.shape[0] >= 2 * ref_rows.shape[1]:
                        rot = align_rotation(ref_rows, sub_rows)
                        if rot.evidence.z >= ANCHOR_MIN_Z and rot.evidence.score >= ROTATION_MIN_SCORE:
                            al = rot
                    else:  # too few anchors to fit a rotation: compare in anchor space
                        al = project_onto_anchors(ref_rows, sub_rows)
                out.append(Anchor(tr, rp, al, ref_rows.shape[0]))
    turned = [a for a in out if a.alignment.rotation is not None and a.sub.role == "embed"]
    if turned:
        rot = max(turned, key=lambda a: a.alignment.evidence.z).alignment
        for i, tr, rp, ref_rows, sub_rows in heads:
            if rot.ref_map is None or rot.ref_map.shape[0] == ref_rows.shape[1]:
                al = through(rot, ref_rows, sub_rows)
                if al.evidence.z >= ANCHOR_MIN_Z:
                    out[i] = Anchor(tr, rp, al, ref_rows.shape[0])
    return out


def anchor_evidence(al: alignment.HiddenAlignment) -> stats.HeldOut:
    """The anchors' decisive score (see alignment._anchor_rows): their held-out rows under the
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


def associated(module: str, anchor_module: str) -> bool:
    return anchor_module == module or anchor_module.startswith(module + ".") or module.startswith(anchor_module + ".")


#: The stream the hidden axis of a module kind's matrices lies in. Kinds not named (generic,
#: other: renamed or unmapped modules) may lie in any.
_STREAMS = {"decoder": "token", "encoder": "token", "embeddings": "token", "lm_head": "token",
            "vision_encoder": "vision", "audio_encoder": "audio"}


def lends_rotation(anchor_kind: str, kind: str) -> bool:
    """Whether a rotation found on the anchors of a module of ``anchor_kind`` may turn the matrices
    of a module of ``kind`` that has no anchors of its own. Equal widths are not enough: a
    rotation (or anchor-space projection, checker/metrics/rotation.py) is a fact about the stream
    whose anchors gave it. A projector reads a vision or audio tower's stream; it writes the
    decoder's on its units axis (a merger's output rows), which the row matching aligns and no
    hidden map turns, while its hidden axis there is its own inner width, often the decoder's.
    Turned by the decoder's projection, an independent merger beside a rotated decoder copy
    matched the reference's merger (0.21, z 9.7): both sides read through the same anchors."""
    stream, reads = _STREAMS.get(anchor_kind), _STREAMS.get(kind)
    if kind == "projector":
        return stream != "token"
    return stream is None or reads is None or stream == reads


def choose_alignment(anchors: list[Anchor], sub_mod: str, ref_mod: str, d_s: int, d_r: int,
                     sub_kind: str = "", ref_kind: str = ""):
    """The hidden alignment of a (submission module, reference module) pair's matrices of hidden
    widths ``d_s``, ``d_r``: the best-confirmed anchor of the modules themselves, else any anchor of
    those widths (a decoder its map does not name after its embeddings), a rotation only within
    its stream (:func:`lends_rotation`); else the identity of equal widths. Returns (alignment,
    anchor), the anchor None for the identity, and (None, None) when nothing aligns the widths."""
    fits = [a for a in anchors if (len(a.alignment.sub_index) == min(d_s, d_r) or a.alignment.ref_map is not None)
            and a.sub.shape[-1 if a.sub.role in TOKEN_ROLES else 0] == d_s and a.ref.hidden == d_r]
    near = [a for a in fits if associated(sub_mod, a.sub.module) and associated(ref_mod, a.ref.role.module)]
    pool = near or [a for a in fits if a.alignment.rotation is None or (
        lends_rotation(a.sub.kind, sub_kind) and lends_rotation(a.ref.role.kind, ref_kind))]
    best = max(pool, key=lambda a: a.alignment.evidence.z, default=None)
    if best is not None and (best.alignment.evidence.z >= ANCHOR_MIN_Z or d_s != d_r):
        return best.alignment, best
    if d_s == d_r:
        return alignment.identity_alignment(d_s), None
    return None, None


def alignment_summary(al: alignment.HiddenAlignment | None, anchor: Anchor | None) -> AlignmentSummary:
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
        tuple(int(x) for x in perm) if permuted else (), rotated=al.rotation is not None,
    )


