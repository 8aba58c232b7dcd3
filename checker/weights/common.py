"""Helpers shared by the readers: dtype conversion, hashing, file records."""

from __future__ import annotations

import hashlib
import os
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


def file_stamp(path: Path, rel: str) -> tuple[int, int, int, int, int]:
    """A weight file as it is now: device, inode, size, modification and change times. Any write
    (even one that sets the modification time back), a replacement or a change of its metadata
    gives another stamp (the change time cannot be set by a user)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise WeightsError(rel, f"cannot read ({exc.strerror or exc})") from None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def require_unchanged(path: Path, rel: str, stamp: tuple) -> None:
    """A one-line error when the file no longer carries ``stamp``: its bytes may have changed
    since the audit opened it (a checkpoint still being copied or written), so a hash and evidence
    of it would describe no one version, or a version no longer at its path."""
    if file_stamp(path, rel) != stamp:
        raise WeightsError(rel, "changed while it was audited (written to, replaced or its metadata changed after "
                           "the audit opened it); audit it again once it is complete")


def file_record(root: Path, path: Path) -> WeightFile:
    try:
        rel = str(path.relative_to(root))
    except ValueError:
        rel = path.name
    return WeightFile(path=rel, sha256=sha256_file(path), bytes=path.stat().st_size)
