"""PyTorch ``.bin`` checkpoints, loaded only with ``weights_only=True``.

A pickle can run arbitrary code when loaded; ``weights_only=True`` restricts the
unpickler to tensors and plain containers, and anything else is refused.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from checker.errors import WeightsError
from checker.weights.common import file_record, to_float32
from checker.weights.interface import TensorInfo, WeightFile


class TorchBinReader:
    """Reader for ``pytorch_model*.bin`` (memory-mapped where the zip format allows)."""

    def __init__(self, root: Path, files: list[Path]) -> None:
        self.root = root
        self._files = sorted(files)
        self._tensors: dict[str, tuple[Path, torch.Tensor]] = {}
        for path in self._files:
            rel = path.name
            try:
                with warnings.catch_warnings():  # torch warns about pickle protocols on stderr
                    warnings.simplefilter("ignore")
                    state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        state = torch.load(str(path), map_location="cpu", weights_only=True)
                except Exception as exc:
                    raise WeightsError(rel, f"refused: does not load with weights_only=True ({_first_line(exc)})") from None
            except Exception as exc:
                raise WeightsError(rel, f"refused: does not load with weights_only=True ({_first_line(exc)})") from None
            if not isinstance(state, dict):
                raise WeightsError(rel, "not a state dict (expected a mapping of names to tensors)")
            for name, value in state.items():
                if isinstance(value, torch.Tensor):
                    self._tensors[str(name)] = (path, value)
        if not self._tensors:
            raise WeightsError(str(root), "the .bin files hold no tensors")

    @classmethod
    def from_index(cls, index_path: Path) -> "TorchBinReader":
        try:
            names = sorted(set(json.loads(index_path.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WeightsError(str(index_path), f"not a valid checkpoint index ({exc})") from None
        return cls(index_path.parent, [index_path.parent / n for n in names])

    def tensors(self) -> tuple[TensorInfo, ...]:
        out = []
        for name in sorted(self._tensors):
            path, t = self._tensors[name]
            out.append(TensorInfo(name, tuple(t.shape), str(t.dtype).replace("torch.", ""), path.name))
        return tuple(out)

    def get(self, name: str) -> torch.Tensor:
        path, t = self._tensors[name]
        return to_float32(t, path.name, name)

    def get_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        path, t = self._tensors[name]
        return to_float32(t[start:stop], path.name, name)

    def files(self) -> tuple[WeightFile, ...]:
        return tuple(file_record(self.root, p) for p in self._files)


def _first_line(exc: Exception) -> str:
    """torch's first line, without its advice to retry with weights_only=False (never taken here)."""
    for line in str(exc).strip().splitlines():
        line = line.strip()
        if line and "weights_only" not in line and "Weights only load failed" not in line and not line.startswith("("):
            return line.rstrip(".")
    return exc.__class__.__name__
