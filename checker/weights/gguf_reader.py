"""GGUF checkpoints (llama.cpp), memory-mapped by the ``gguf`` package and dequantised per tensor.

GGUF stores shapes innermost-first; they are reversed here so a tensor has the
same shape as its PyTorch original. Quantised tensors (Q8_0, Q4_K, ...) are
dequantised to float32 one at a time: a quantised copy of a model is still a
copy, and the statistics only need approximate values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from checker.errors import WeightsError
from checker.scanners.tokenizer import Vocabulary
from checker.weights.common import file_record, to_float32
from checker.weights.interface import TensorInfo, WeightFile


class GGUFCheckpoint:
    """Reader for one ``.gguf`` file."""

    def __init__(self, path: Path) -> None:
        try:
            import gguf
        except ImportError:
            raise WeightsError(path.name, "reading GGUF needs the 'gguf' extra (pip install 'fromscratch[gguf]')") from None
        self._gguf = gguf
        self.root = path.parent
        self._path = path
        try:
            self._reader = gguf.GGUFReader(str(path), "r")
        except Exception as exc:
            raise WeightsError(path.name, f"not a readable GGUF file ({exc.__class__.__name__}: {exc})") from None
        self._tensors = {t.name: t for t in self._reader.tensors}
        if not self._tensors:
            raise WeightsError(path.name, "the GGUF file holds no tensors")

    def tensors(self) -> tuple[TensorInfo, ...]:
        return tuple(TensorInfo(n, tuple(int(x) for x in reversed(t.shape.tolist())), t.tensor_type.name, self._path.name)
                     for n, t in sorted(self._tensors.items()))

    def get(self, name: str) -> torch.Tensor:
        t = self._tensors[name]
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        try:
            values = self._gguf.quants.dequantize(t.data, t.tensor_type)
        except Exception as exc:
            raise WeightsError(self._path.name, f"cannot dequantise tensor {name!r} of type {t.tensor_type.name} ({exc})") from None
        arr = np.ascontiguousarray(values, dtype=np.float32).reshape(shape)
        return to_float32(torch.from_numpy(arr), self._path.name, name)

    def get_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        return self.get(name)[start:stop]

    def files(self) -> tuple[WeightFile, ...]:
        return (file_record(self.root, self._path),)

    def vocabulary(self) -> Vocabulary | None:
        """The tokenizer the file embeds (``tokenizer.ggml.tokens`` / ``.merges``), if any."""
        def strings(key: str) -> tuple[str, ...]:
            field = self._reader.get_field(key)
            if field is None:
                return ()
            return tuple(bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data)
        tokens = strings("tokenizer.ggml.tokens")
        return Vocabulary(self._path.name, tokens, strings("tokenizer.ggml.merges")) if tokens else None
