"""Which device runs the matrix work, and how many threads it may use."""

from __future__ import annotations

import ctypes
import functools
import ctypes.util
import os
from contextlib import contextmanager
from typing import Iterator

import torch
from threadpoolctl import threadpool_limits

from checker.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")
#: Where an operand of a bfloat16 product should start: AMX and AVX-512 products of one that is not
#: 64-byte aligned ran 1.4-1.6x slower (measured on 70B-width FFN blocks).
ALIGN_BYTES = 64


def resolve_device(choice: str) -> str:
    """``auto`` takes the GPU when torch sees one. CPU and GPU give the same verdicts: the
    products run in float32 and are accumulated in float64 (see checker.metrics.summary)."""
    if choice not in DEVICES:
        raise UsageError("--device", f"must be one of {', '.join(DEVICES)}, not {choice!r}")
    cuda = torch.cuda.is_available()
    if choice == "cuda" and not cuda:
        raise UsageError("--device cuda", "no CUDA device is visible to torch (use --device cpu or auto)")
    device = "cuda" if choice == "cuda" or (choice == "auto" and cuda) else "cpu"
    use_all_cores()
    reuse_freed_blocks()
    return device


@functools.lru_cache(maxsize=1)
def bf16_hardware() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16): then torch's bfloat16
    products are several times faster than float32 ones and the full test's search uses them
    (checker.metrics.rowmatch); elsewhere they are slower, and the search keeps float32. Read
    from the CPU's flags (the same answer on every run of a machine)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    try:
        return any(bool(p()) for p in probes if p is not None)
    except RuntimeError:
        return False


def use_all_cores(cores: int | None = None) -> None:
    """torch's thread pool gets every core this process may use (the big products run there)."""
    n = cores or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    torch.set_num_threads(max(1, n))


#: glibc's mallopt parameters, and the values set: blocks up to 256 MiB come from the heap and are
#: reused when freed, and up to 512 MiB of freed memory stays mapped at the top of the heap before
#: it is given back on its own; after a large tensor the engine gives it back at once
#: (:func:`give_back_after`). A 128 MiB threshold measured 0.3-1 s slower on the 2 GB audit, for no
#: lower peak at 70B width once large tensors are given back.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 256 * 2**20
_TRIM_THRESHOLD = 512 * 2**20


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def reuse_freed_blocks() -> bool:
    """Let the process reuse the memory of freed float32 blocks instead of mapping fresh pages.

    The engine allocates and frees many blocks of tens of MiB (a converted block, its centred copy,
    the gathered columns). glibc maps each such block anew and unmaps it when freed, so every one
    costs its page faults again: converting a 4,096 x 2,048 bf16 block took 13 ms with fresh pages
    and 3 ms with reused ones on the 2-core machine. The price: up to ``_TRIM_THRESHOLD`` of freed
    memory stays mapped at the top of the heap, and freed blocks below it stay mapped until
    :func:`give_back_freed` (the engine calls it after each phase that frees a lot).
    glibc only: elsewhere this does nothing and returns False."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


#: Stored bytes of a tensor after whose processing the heap's freed pages are returned.
GIVE_BACK_BYTES = 64 * 2**20


def give_back_after(nbytes: int) -> None:
    """:func:`give_back_freed` after a tensor of ``nbytes`` (stored) was processed, if it is large:
    its float32 blocks, sketches and copies are not kept in the process for the rest of the pass."""
    if nbytes >= GIVE_BACK_BYTES:
        give_back_freed()


def give_back_freed() -> bool:
    """Return the heap's freed pages to the system (glibc ``malloc_trim``), wherever they lie: the
    anchors of a 70B-width model free about 0.5 GB of Gram matrices and token rows that would
    otherwise stay in the process for the whole pass. A few milliseconds; glibc only."""
    trim = getattr(_libc(), "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


@contextmanager
def one_pool() -> Iterator[None]:
    """While the engine runs, numpy's BLAS stays single-threaded: its products are small, and
    its threads spinning against torch's OpenMP pool cost seconds per call on a loaded
    2-core machine (a 128 x 128 QR took 4.8 s right after a torch product, 0.02 s alone)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
