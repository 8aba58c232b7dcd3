"""A reference's content digests: the canonical digest and those of its 16-bit roundings.

A bfloat16 tensor's float16 rounding is hashed in its bfloat16 form only (the form its canonical
digest takes for every finite tensor); the digests must be exactly what the general computation
gives (every registered fingerprint holds them, and a submission's digest is looked up among them)."""

from __future__ import annotations

import hashlib
import types

import pytest
import torch

from checker.metrics import digests
from checker.metrics.digests import Digester, reference_digests


def _general(native: torch.Tensor) -> tuple[str, ...]:
    """The general computation, every rounding fed block by block (the specification)."""
    dtype, shape = native.dtype, tuple(native.shape)
    ds = [(Digester(shape, dtype), None)] + [(Digester(shape, d), d) for d in (torch.bfloat16, torch.float16) if d != dtype]
    flat = native.reshape(native.shape[0], -1)
    step = max(1, digests._BLOCK // flat.shape[1])
    for s in range(0, flat.shape[0], step):
        block = flat[s:s + step]
        for dg, d in ds:
            dg.update(block if d is None else block.to(d))
    return tuple(dict.fromkeys(dg.hexdigest() for dg, _ in ds))


def _weights(rows: int = 64, cols: int = 48) -> torch.Tensor:
    return (torch.randn(rows, cols, generator=torch.Generator().manual_seed(0)) * 0.02).to(torch.bfloat16)


@pytest.mark.parametrize("case", ["weights", "tiny value in a late block", "beyond float16", "infinite", "zeros", "nan"])
def test_a_bfloat16_tensors_digests_are_the_general_ones(monkeypatch, case):
    monkeypatch.setattr(digests, "_BLOCK", 48 * 8)  # 8 rows a block: the odd value sits in a later block
    t = _weights()
    if case == "tiny value in a late block":
        t[40, 3] = 3e-9  # below float16's smallest subnormal: the rounding differs
    elif case == "beyond float16":
        t[50, 0] = 1e6
    elif case == "infinite":
        t[20, 1] = float("inf")
    elif case == "zeros":
        t.zero_()
    elif case == "nan":  # the rounding's bfloat16 form does not hold: digested the general way
        t[30, 2] = float("nan")
    hashed = []

    class Counting:  # sha256 that counts the bytes it is fed
        def __init__(self, data=b""):
            self._h = hashlib.sha256(data)

        def update(self, b):
            hashed.append(memoryview(b).nbytes)
            self._h.update(b)

        def hexdigest(self):
            return self._h.hexdigest()

    monkeypatch.setattr(digests, "hashlib", types.SimpleNamespace(sha256=Counting))
    got = reference_digests(t)
    monkeypatch.undo()
    assert got == _general(t)
    survives = case in ("weights", "infinite", "zeros")
    assert len(got) == (1 if survives else 2)  # a rounding equal to the tensor adds no digest
    if case != "nan":  # two bytes an element for the canonical digest, two for the rounding's
        assert sum(hashed) == 4 * t.numel()


def test_other_dtypes_and_a_submissions_canonical_digest_are_unchanged():
    t = _weights()
    for x in (t.to(torch.float16), t.to(torch.float32), t.to(torch.float32) + 1e-4):
        assert reference_digests(x) == _general(x)
    assert reference_digests(t, roundings=False) == _general(t)[:1]


def test_the_float16_rounding_of_every_finite_bfloat16_value_is_bfloat16_exact():
    """What the bfloat16 path rests on, over all 65,536 bit patterns."""
    b = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    finite = torch.isfinite(b)
    r = b.to(torch.float16)
    assert int(finite.sum()) == 65280
    assert torch.equal(r[finite].to(torch.bfloat16).to(torch.float16), r[finite])
