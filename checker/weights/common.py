"""Helpers shared by the readers: dtype conversion, hashing, file records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from checker.errors import WeightsError
from checker.weights.interface import WeightFile

_CHUNK = 8 * 1024 * 1024


def to_float32(tensor: torch.Tensor, file: str, name: str) -> torch.Tensor:
    """Convert one tensor to float32; floating types of any width (F8 included) are accepted."""
    if tensor.dtype.is_floating_point:
        out = tensor.to(torch.float32)
        if not bool(torch.isfinite(out).all()):
            # A statistic over NaN is NaN: refuse rather than report a meaningless score.
            raise WeightsError(file, f"tensor {name!r} holds NaN or infinite values")
        return out
    if tensor.dtype in (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool):
        # Integer tensors (quantised codes, position ids, masks) are kept as values.
        return tensor.to(torch.float32)
    raise WeightsError(file, f"tensor {name!r} has unsupported dtype {tensor.dtype}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_record(root: Path, path: Path) -> WeightFile:
    try:
        rel = str(path.relative_to(root))
    except ValueError:
        rel = path.name
    return WeightFile(path=rel, sha256=sha256_file(path), bytes=path.stat().st_size)
