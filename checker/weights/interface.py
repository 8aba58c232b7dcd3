"""What every weights reader offers: tensor names, shapes and one tensor at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import torch


@dataclass(frozen=True)
class TensorInfo:
    """Metadata of one stored tensor, known without reading its data."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # as stored, e.g. "F32", "BF16", "F8_E4M3"
    file: str  # file (relative to the checkpoint folder) that holds it

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class WeightFile:
    """One file of a checkpoint, as recorded in a report."""

    path: str
    sha256: str
    bytes: int


class WeightsReader(Protocol):
    """Lazy access to a checkpoint: metadata up front, data tensor by tensor."""

    root: Path

    def tensors(self) -> tuple[TensorInfo, ...]:
        """Every tensor, in a stable order (sorted by name)."""
        ...

    def get(self, name: str) -> torch.Tensor:
        """One tensor as float32 on the CPU; only this tensor is materialised."""
        ...

    def files(self) -> tuple[WeightFile, ...]:
        """Weight files of the checkpoint with their sha256 and size."""
        ...


def iter_tensors(reader: WeightsReader) -> Iterator[tuple[TensorInfo, torch.Tensor]]:
    """Yield (info, float32 tensor) one at a time, so peak memory is one tensor."""
    for info in reader.tensors():
        yield info, reader.get(info.name)
