"""Content digests that survive a change of storage dtype.

A tensor's *canonical* digest hashes its values in the narrowest float format that holds
them exactly (bfloat16, else float16, else float32), with its shape: a bf16 model saved
again in float32 keeps its digest, and a bf16 checkpoint is hashed straight from its
stored bytes, at the cost of the file hash and no conversion. A reference also records
the canonical digests of its bf16 and fp16 roundings, so a copy released at lower
precision than the original matches too.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import numpy as np
import torch

from checker.weights import mapped

_ORDER = (torch.bfloat16, torch.float16, torch.float32)
_BLOCK = 8 * 1024 * 1024  # elements per block
_TAG = {torch.bfloat16: b"bf16", torch.float16: b"f16", torch.float32: b"f32"}


class Digester:
    """Canonical digest of a tensor fed block by block (blocks in storage order)."""

    def __init__(self, shape: tuple[int, ...], stored: torch.dtype, first_only: bool = False):
        self._shape = repr(tuple(shape)).encode()
        if stored == torch.bfloat16:
            self._candidates = [torch.bfloat16]  # always bf16-exact: hash the stored bytes
        elif stored == torch.float16:
            self._candidates = [torch.bfloat16, torch.float16]
        else:
            self._candidates = list(_ORDER)
        if first_only:  # the narrowest format alone: :attr:`settled` says whether it held
            self._candidates = self._candidates[:1]
        self._h = {d: hashlib.sha256(self._shape + _TAG[d]) for d in self._candidates}
        self._exact = {d: True for d in self._candidates}

    def update(self, block: torch.Tensor) -> None:
        """A block in any float dtype (values are what count)."""
        b = block.contiguous()
        for d in self._candidates:
            if not self._exact[d]:
                continue
            if b.dtype == d:
                cast = b
            else:
                cast = b.to(d)
                if d != torch.float32 and not bool(torch.equal(cast.to(b.dtype), b)):
                    self._exact[d] = False
                    continue
            self._h[d].update(memoryview(cast.reshape(-1).view(torch.uint8).numpy()))

    @property
    def settled(self) -> bool:
        """Whether a candidate format still holds every value fed (its digest can be given)."""
        return any(self._exact[d] for d in self._candidates)

    def hexdigest(self) -> str:
        for d in self._candidates:
            if self._exact[d]:
                return self._h[d].hexdigest()
        raise AssertionError("float32 is always exact")


def canonical_digest(blocks: Iterable[torch.Tensor], shape: tuple[int, ...], stored: torch.dtype) -> str:
    d = Digester(shape, stored)
    for b in blocks:
        d.update(b)
    return d.hexdigest()


def reference_digests(native: torch.Tensor, roundings: bool = True) -> tuple[str, ...]:
    """The canonical digest and those of the bf16 and fp16 roundings (distinct, in that order),
    fed in row blocks so no whole-tensor copy is made (an integer tensor is widened to float32
    block by block: whole, an int8 matrix would take four times its size).

    A submission stored in 16 bits needs only its canonical digest (``roundings=False`` skips
    the roundings of 16-bit tensors): the reference side holds the roundings of its own values,
    which covers a copy released at lower precision than the original either way round."""
    dtype = native.dtype if native.dtype.is_floating_point else torch.float32
    shape = tuple(native.shape)
    digesters = [(Digester(shape, dtype), None)]
    if roundings or dtype not in (torch.bfloat16, torch.float16):
        digesters += [(Digester(shape, d), d) for d in (torch.bfloat16, torch.float16) if dtype != d]
    flat = native.reshape(native.shape[0], -1) if native.dim() > 1 else native.reshape(-1)
    step = max(1, _BLOCK // max(1, flat[0].numel() if flat.dim() > 1 and len(flat) else 1))
    if dtype == torch.bfloat16 and roundings:
        return _bf16_and_rounding(flat, shape, step)
    for block in _blocks(flat, step, dtype):
        for dg, d in digesters:
            dg.update(block if d is None else block.to(d))
    return tuple(dict.fromkeys(dg.hexdigest() for dg, _ in digesters))


def _blocks(flat: torch.Tensor, step: int, dtype: torch.dtype) -> Iterable[torch.Tensor]:
    pace = mapped.large(flat) and flat.device.type == "cpu"
    for s in range(0, max(1, flat.shape[0]), step):
        yield flat[s:s + step].to(dtype)
        if pace:  # a mapped tensor's pages are dropped as the digest goes on
            mapped.GOVERNOR.pace()


def _bf16_and_rounding(flat: torch.Tensor, shape: tuple[int, ...], step: int) -> tuple[str, ...]:
    """:func:`reference_digests` of a bfloat16 tensor: its canonical digest and its float16
    rounding's. The rounding of a finite bfloat16 value is always bfloat16-exact (a normal value
    keeps its 8 significant bits, a subnormal one has at most 7, an overflow is infinite), so the
    rounding's canonical form is bfloat16 and its float16 form, which the general computation
    hashes too, is never used: only the bfloat16 form is hashed, and the rounding is digested the
    general way, from the start, only if that form did not hold (a NaN). Registration hashed every
    bfloat16 matrix three times; now twice. The digests are the same either way (the premise is
    checked over every bfloat16 bit pattern in tests/metrics/test_digests.py)."""
    canonical = Digester(shape, torch.bfloat16)
    first = Digester(shape, torch.float16, first_only=True)
    for block in _blocks(flat, step, torch.bfloat16):
        canonical.update(block)
        if first.settled:
            first.update(block.to(torch.float16))
    rounding = first
    if not first.settled:
        rounding = Digester(shape, torch.float16)
        for block in _blocks(flat, step, torch.bfloat16):
            rounding.update(block.to(torch.float16))
    return tuple(dict.fromkeys((canonical.hexdigest(), rounding.hexdigest())))


#: A recorded row rules a copy out where one of its values differs from the submission's by more
#: than _PROBE_REL of its magnitude plus _PROBE_ABS. The rows are the reference's values rounded to
#: float16 (error at most 2^-11 of the value, or 2^-25 below float16's normal range), and a copy
#: may also be the reference's bfloat16 rounding (2^-8 of the value) or its float16 rounding (equal
#: to the recorded row): every such copy is within the bound, which is about twice the largest sum.
_PROBE_REL, _PROBE_ABS = 2.0 ** -7, 2.0 ** -24
#: Recorded rows compared at a time (the first few nearly always differ in a table that is no copy).
_PROBE_ROWS = 8


class CopyProbe:
    """Rules out, from a few rows, that a token table is a byte-identical copy of a reference
    tensor, so that its content digest need not be taken (a 70B model's two tables are 4.2 GB of
    hashing on the main thread).

    A digest holds the shape and every value, so a table can only share a digest with a reference
    tensor of its shape whose values it repeats, as stored or rounded to bfloat16 or float16 (the
    digests registration records of a token table, ``fingerprint._print_token_matrix``: its
    canonical one, and those of its roundings where it is stored wider than 16 bits). Each
    reference token print records some of its table's rows (``anchor``, float16) at known
    indices (``row_index``): one value of one such row that no copy
    could have (beyond the rounding bound above) rules that reference tensor out. Blocks of the
    table are fed in order; :meth:`rules_out` turns true once every reference tensor of the shape
    is ruled out, and the digest can be skipped: it could match nothing."""

    def __init__(self, sides: Sequence[tuple[np.ndarray, np.ndarray]]):
        self._open = [(np.asarray(idx, dtype=np.int64), rows) for idx, rows in sides]

    def rules_out(self, block: torch.Tensor, start: int) -> bool:
        """Check the recorded rows that fall in ``block`` (the table's rows ``start`` on, any float
        dtype), a few at a time until one differs; True once no reference tensor of the table's
        shape is left."""
        stop = start + block.shape[0]
        left = []
        for idx, rows in self._open:
            at = np.flatnonzero((idx >= start) & (idx < stop))
            few = np.array_split(at, max(1, -(-len(at) // _PROBE_ROWS)))
            if not any(_differs(block, idx[a] - start, rows, a) for a in few):
                left.append((idx, rows))
        self._open = left
        return not left


def _differs(block: torch.Tensor, local: np.ndarray, rows: np.ndarray, at: np.ndarray) -> bool:
    """Whether a submission row differs from its recorded reference row beyond the rounding bound.
    A recorded value beyond float16's range is infinite and rules nothing out (inf > inf is false),
    nor does a NaN (every comparison with it is false)."""
    sub = block[torch.as_tensor(local, dtype=torch.long)].to(torch.float32).numpy()
    ref = np.asarray(rows[at], dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.any(np.abs(sub - ref) > _PROBE_REL * np.abs(ref) + _PROBE_ABS))


def copy_probe(shape: tuple[int, ...], prints: Iterable) -> CopyProbe | None:
    """The probe of a token table of ``shape`` against every reference tensor print that could share
    its digest (same shape, digests recorded); None when one of them recorded no rows (a tensor that
    is not a token table, a print registered before its rows were): then only the digest can tell."""
    sides = []
    for tp in prints:
        if tuple(tp.role.shape) != tuple(shape) or not tp.digests:
            continue
        if not (tp.has("anchor") and tp.has("row_index")):
            return None
        rows, idx = tp.stored("anchor"), tp.stored("row_index")
        if rows is None or idx is None or rows.ndim != 2 or len(rows) != len(idx):
            return None
        sides.append((idx, rows))
    return CopyProbe(sides)
