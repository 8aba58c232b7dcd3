"""Fixed tables: tensors whose values follow from a formula and their shape, never from training.

A sinusoidal position table, a rotary ``inv_freq``, ALiBi slopes, a causal mask, ``position_ids``,
an identity or a constant tensor is the same in every model of that shape that uses it: two
independently trained Whisper-shaped models share their ``embed_positions`` exactly, and comparing
it reads as a copy (issue 8: p = 1.3e-20 on two independent models). Such tensors are recognised
here by their content (never by their name), so the engine neither compares nor digests them and
the report lists them as "not evidence".

Every test is exact up to a tolerance that 16-bit storage (bf16 keeps 8 significant bits) stays
inside and trained or noisy values do not, and costs O(numel): a few rows decide for a trained
matrix, and only a tensor that passes them is checked whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from checker.metrics.digests import reference_digests
from checker.metrics.interface import FIXED_TABLE_KEY, Skipped
from checker.weights import mapped
from checker.weights.values import scan

#: Each kind in words, as the English catalogue writes ``kind.<kind>`` (checker/report/messages/en.py).
KINDS = {
    "sinusoid_1d": "1-D sinusoidal position table", "sincos_2d": "2-D sin-cos position table",
    "rotary_inv_freq": "rotary inv_freq", "alibi_slopes": "ALiBi slopes", "causal_mask": "causal mask",
    "position_ids": "position ids", "identity": "identity matrix", "constant": "constant tensor",
}
#: A tensor byte-identical in two or more unrelated registered references (a table whose formula
#: is not recognised here): the same sentence, with the number of references.
SHARED_TABLE_KEY = FIXED_TABLE_KEY + "_shared"
FIXED_KEYS = (FIXED_TABLE_KEY, SHARED_TABLE_KEY)
#: Relative tolerance of a value (bf16 rounds to 2^-9 relative; noise of 1% of the amplitude fails).
REL_TOL = 1.0 / 128
#: Tolerance of a sinusoid's phase, in radians, and of its amplitude, relative.
ANGLE_TOL = 0.012
_MIN_POSITIONS = 4


@dataclass(frozen=True)
class FixedTable:
    """What a fixed table is: its ``kind`` (one of :data:`KINDS`) and a short detail (a base, a layout)."""

    kind: str
    detail: str = ""


def recognise(t: torch.Tensor, head: torch.Tensor | None = None) -> FixedTable | None:
    """The kind of fixed table ``t`` is, or None for a tensor that may carry provenance. ``head``:
    the first columns of a 2-D ``t``, if a pass over it already read them (:func:`checker.weights.values.scan`)."""
    if t.numel() == 0:
        return None
    core = t.detach().reshape([s for s in t.shape if s != 1] or [1])
    if not t.dtype.is_floating_point and t.dtype != torch.bool:
        core = core.to(torch.float64)
    if _constant(core):
        return FixedTable("constant")
    if core.dim() == 1:
        return _vector(core)
    if core.dim() == 2:
        return _matrix(core, head if core.shape == t.shape else None)
    return None


def _constant(t: torch.Tensor) -> bool:
    flat = t.reshape(-1)
    if not bool(torch.all(flat[:64] == flat[0])):  # a trained tensor fails on its first elements
        return False
    lo, hi = torch.aminmax(flat.to(torch.uint8) if t.dtype == torch.bool else flat)
    return bool(lo == hi)


def _vector(v: torch.Tensor) -> FixedTable | None:
    x = v.to(torch.float64).numpy()
    n = len(x)
    if n >= 2 and np.allclose(x, x[0] + np.arange(n), rtol=0, atol=1e-6 * max(1.0, abs(x[-1]))):
        return FixedTable("position_ids", f"arange from {x[0]:g}")
    if n < _MIN_POSITIONS or not np.all(x > 0):
        return None
    if abs(x[0] - 1) <= REL_TOL and _geometric(x):  # inv_freq_i = base^(-2i/d), d = 2n: x[1] = base^(-1/n)
        return FixedTable("rotary_inv_freq", f"base {x[1] ** -n:.4g}")
    if np.allclose(x, alibi_slopes(n), rtol=REL_TOL, atol=0) or (abs(x[1] / x[0] - x[0]) <= REL_TOL * x[0] and _geometric(x)):
        return FixedTable("alibi_slopes")
    return None


def _geometric(x: np.ndarray) -> bool:
    """Whether log x is linear in the index (a constant ratio), within 16-bit rounding."""
    lx = np.log(x)
    i = np.arange(len(x))
    slope = np.polyfit(i, lx, 1)
    return slope[0] < 0 and bool(np.max(np.abs(np.polyval(slope, i) - lx)) <= 2 * REL_TOL)


def alibi_slopes(n: int) -> np.ndarray:
    """The ALiBi head slopes of Press et al. (2022), as BLOOM and MPT build them (max bias 8)."""
    def power_of_2(k: int) -> list[float]:
        start = 2.0 ** (-8.0 / k)
        return [start ** (i + 1) for i in range(k)]

    p = 2 ** int(math.floor(math.log2(n)))
    slopes = power_of_2(p)
    if p < n:
        slopes += power_of_2(2 * p)[0::2][: n - p]
    return np.array(slopes)


def _matrix(m: torch.Tensor, head: torch.Tensor | None = None) -> FixedTable | None:
    n, d = m.shape
    if n == d and _identity(m):
        return FixedTable("identity")
    if _causal(m):
        return FixedTable("causal_mask")
    if not m.dtype.is_floating_point:
        return None
    for rows, transposed in ((m, False), (m.T, True)):
        if rows.shape[0] < _MIN_POSITIONS or rows.shape[1] < 4:
            continue
        if transposed and not _may_start_a_table(m, head):
            continue
        got = _sinusoid_1d(rows) or _sincos_2d(rows)
        if got is not None:
            return FixedTable(got.kind, got.detail + (", transposed" if transposed else ""))
    return None


def _may_start_a_table(m: torch.Tensor, head: torch.Tensor | None = None) -> bool:
    """Whether the transposed sin-cos checks can pass: both begin with the first column (position 0,
    or a class token's zeros then the second column), which must be an origin row. Answered from
    the first two columns, read in row blocks for a large (mapped) matrix: the checks' own first
    reads of a column would map every page of it at once (the kernel maps the 64 KiB around each
    fault), where a trained matrix fails on that column anyway. ``head``: those columns, if the
    caller's pass over ``m`` already read them."""
    if not mapped.large(m) or m.device.type != "cpu":
        return True
    if head is None or head.shape[0] != m.shape[0] or head.shape[1] < min(2, m.shape[1]):
        head = scan(m, head_columns=2).head  # the same walk the engine makes
    cols = head[:, :2].T.to(torch.float64).numpy()
    # _even may drop the last position (a zero padding row) before the 1-D check looks at column 0
    return not cols[0].any() or _origin_row(cols[0]) or _origin_row(cols[0][:-1])


def _identity(m: torch.Tensor) -> bool:
    """c times the identity, c != 0."""
    c = m[0, 0]
    if not bool(c) or bool(m[0, 1:].any()) or bool(m[1:, 0].any()):
        return False
    eye = torch.eye(m.shape[0], dtype=torch.bool)
    return bool(torch.equal(m, torch.where(eye, c, torch.zeros((), dtype=m.dtype))))


def _causal(m: torch.Tensor) -> bool:
    """A two-valued square mask whose one value fills a triangle (GPT-2's ``attn.bias``, an additive -inf mask)."""
    n, d = m.shape
    if n != d or n < 2:
        return False
    a, b = m[0, 0], m[0, 1]
    if a == b or bool(m[0, 1:].ne(b).any()) or bool(m[1:, 0].ne(a).any()):
        return False  # row 0 and column 0 decide for anything but a mask
    tri = torch.ones(n, n, dtype=torch.bool).tril()
    for lower in (tri, tri & ~torch.eye(n, dtype=torch.bool)):
        if lower[0, 0] != True:  # noqa: E712 (tensor comparison)
            continue
        want = torch.where(lower, a, b)
        if bool(torch.equal(m, want.to(m.dtype))):
            return True
    return False


# -- sinusoids ------------------------------------------------------------------------------------

def _layouts(d: int):
    """(sin columns, cos columns, name) of every standard layout of d (even) columns."""
    h = d // 2
    half, inter = np.arange(h), np.arange(0, d, 2)
    return ((half, half + h, "sin|cos"), (half + h, half, "cos|sin"), (inter, inter + 1, "interleaved"),
            (inter + 1, inter, "interleaved cos/sin"))


def _even(rows: np.ndarray) -> np.ndarray | None:
    """Drop a trailing all-zero column (fairseq pads an odd width with one)."""
    if rows.shape[1] % 2 and not rows[:, -1].any():
        rows = rows[:, :-1]
    return rows if rows.shape[1] % 2 == 0 and rows.shape[1] >= 4 else None


def _sinusoid_1d(m: torch.Tensor) -> FixedTable | None:
    """Rows p = positions, sin(p w_i) and cos(p w_i) in one of the standard layouts, any base;
    up to two all-zero rows (a padding index, as fairseq and its ports write it)."""
    head = _even(m[:8].to(torch.float64).numpy())
    if head is None or (head[0].any() and not _origin_row(head[0])):
        return None
    x = np.arange(m.shape[0])
    for sin_c, cos_c, name in _layouts(head.shape[1]):
        if not _fits(head, x[:len(head)], sin_c, cos_c, quick=True):
            continue
        full = _even(m.to(torch.float64).numpy())
        if full is not None and _fits(full, x, sin_c, cos_c):
            return FixedTable("sinusoid_1d", name)
    return None


def _sincos_2d(m: torch.Tensor) -> FixedTable | None:
    """MAE/ViT 2-D sin-cos tables: the first half of the columns a 1-D sinusoid of one grid
    coordinate, the second of the other, a grid of h x w positions in row-major order, with or
    without a leading all-zero row (the class token)."""
    first = 1 if not bool(m[0].any()) else 0
    if m.shape[1] % 4 or m.shape[0] - first < _MIN_POSITIONS or not _origin_row(m[first].to(torch.float64).numpy()):
        return None
    a = m[first:].to(torch.float64).numpy()
    n, d = a.shape
    half = d // 2
    for gh in _divisors(n):
        gw = n // gh
        i = np.arange(n)
        coords = (i // gw, i % gw)
        for c1, c2 in (coords, coords[::-1]):
            ok = True
            for block, x in ((a[:, :half], c1), (a[:, half:], c2)):
                if not any(_fits(block, x, s, c) for s, c, _ in _layouts(half)):
                    ok = False
                    break
            if ok:
                return FixedTable("sincos_2d", f"{gh}x{gw} grid" + (", class row" if first else ""))
    return None


def _origin_row(row: np.ndarray) -> bool:
    """Position (0, 0) of a sin-cos table: every value 0 (a sine) or the amplitude (a cosine).
    Decides at the cost of one row for anything trained."""
    r0 = float(np.max(np.abs(row)))
    return r0 > 0 and bool(np.all((np.abs(row) <= ANGLE_TOL * r0) | (np.abs(row / r0 - 1) <= ANGLE_TOL)))


def _divisors(n: int) -> list[int]:
    """Grid heights to try, the square first; both sides at least 2."""
    r = math.isqrt(n)
    out = [r] if r * r == n and r >= 2 else []
    return out + [k for k in range(2, n // 2 + 1) if n % k == 0 and k != r][:16]


def _fits(a: np.ndarray, x: np.ndarray, sin_c: np.ndarray, cos_c: np.ndarray, quick: bool = False) -> bool:
    """Whether columns (sin_c, cos_c) are (r sin(x w_j), r cos(x w_j)) for one amplitude r and some
    frequencies w_j, within 16-bit rounding. All-zero rows (at most two) are left out."""
    s, c = a[:, sin_c], a[:, cos_c]
    radius = np.hypot(s, c)
    live = radius.max(axis=1) > 0
    if (~live).sum() > 2 or live.sum() < min(3, len(a)):
        return False
    s, c, radius, x = s[live], c[live], radius[live], x[live]
    r0 = float(np.median(radius))
    if r0 <= 0 or np.max(np.abs(radius / r0 - 1)) > ANGLE_TOL:
        return False
    if len(np.unique(x)) < 2:
        return False
    angle = np.arctan2(s, c)
    w = _frequencies(angle, x)
    if w is None:
        return False
    resid = np.angle(np.exp(1j * (angle - np.outer(x, w))))
    return bool(np.max(np.abs(resid)) <= (2 if quick else 1) * ANGLE_TOL)


def _frequencies(angle: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """Per column, the w with angle = x w (mod 2 pi), refined from the smallest x > 0 to the largest
    so that rounding in one row never leaves the right turn. The first step takes |x w| < pi: the
    standard tables have w <= 1 (w_0 = base^0) and a padding row leaves x = 2 the smallest."""
    xs = np.unique(x)
    if xs[0] != 0 or len(xs) < 2 or xs[1] > 3:
        return None
    row0 = angle[np.flatnonzero(x == 0)[0]]
    if np.max(np.abs(row0)) > 2 * ANGLE_TOL:
        return None  # sin(0) = 0, cos(0) = r
    w = angle[np.flatnonzero(x == xs[1])[0]] / xs[1]
    step = 1
    while step < xs[-1]:
        step = min(step * 8, int(xs[-1]))
        k = int(xs[xs <= step][-1])
        row = angle[np.flatnonzero(x == k)[0]]
        turns = np.round((k * w - row) / (2 * np.pi))
        w = (row + 2 * np.pi * turns) / k
    return w


# -- the engine's view ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SharedDigests:
    """Content digests held by two or more registered references that are not related to each other,
    with how many references hold each, and the shapes they have (only a submission tensor of one of
    these shapes is digested before it is compared)."""

    counts: dict
    shapes: frozenset


def shared_digests(references) -> SharedDigests:
    """Digests present in at least two registered references of which two are unrelated.

    Two references are related when they share a byte-identical weight matrix inside their layers (a
    fine-tune and its base, a VLM and the vision tower it froze): what they share is then inherited
    and stays evidence against a submission. Unrelated models share only tables no training produced.
    """
    holders: dict = {}
    shapes: dict = {}
    layered = {}
    for rid, fp in references:
        layered[rid] = {d for tp in fp.tensors if tp.role.layer is not None and len(tp.role.shape) >= 2 and tp.role.decisive
                        for d in tp.digests}
        for tp in fp.tensors:
            for d in tp.digests:
                holders.setdefault(d, set()).add(rid)
                shapes[d] = tuple(tp.role.shape)
    unrelated_among: dict = {}  # holder set -> whether two of them share no layer matrix (decided once per set)
    counts = {}
    for d, rids in holders.items():
        if len(rids) < 2:
            continue
        key = frozenset(rids)
        if key not in unrelated_among:
            unrelated_among[key] = any(not (layered[a] & layered[b]) for a in rids for b in rids if a < b)
        if unrelated_among[key]:
            counts[d] = len(rids)
    return SharedDigests(counts, frozenset(shapes[d] for d in counts))


def not_evidence(name: str, native: torch.Tensor, shared: SharedDigests | None = None,
                 head: torch.Tensor | None = None) -> Skipped | None:
    """The skip that records ``native`` as not evidence (a fixed table, or a tensor that unrelated
    references share byte for byte), or None for a tensor to compare. ``head``: as for :func:`recognise`."""
    table = recognise(native, head)
    if table is not None:
        return Skipped(name, f"not evidence: fixed table ({KINDS[table.kind]})", FIXED_TABLE_KEY, (("kind", table.kind),))
    if shared is not None and tuple(native.shape) in shared.shapes:
        n = max((shared.counts.get(d, 0) for d in reference_digests(native, roundings=False)), default=0)
        if n >= 2:
            return Skipped(name, f"not evidence: fixed table (shared by {n} registered references)", SHARED_TABLE_KEY,
                           (("references", n),))
    return None
