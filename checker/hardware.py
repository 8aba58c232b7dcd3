"""Which device runs the matrix work, and how many threads it may use."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
from threadpoolctl import threadpool_limits

from checker.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


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
    return device


def use_all_cores(cores: int | None = None) -> None:
    """torch's thread pool gets every core this process may use (the big products run there)."""
    n = cores or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    torch.set_num_threads(max(1, n))


@contextmanager
def one_pool() -> Iterator[None]:
    """While the engine runs, numpy's BLAS stays single-threaded: its products are small, and
    its threads spinning against torch's OpenMP pool cost seconds per call on a loaded
    2-core machine (a 128 x 128 QR took 4.8 s right after a torch product, 0.02 s alone)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
