"""Safetensors checkpoints, single file or sharded, read lazily through ``safe_open``.

``safe_open`` memory-maps each file; a tensor is materialised only when asked for
and converted to float32 on its own, so peak memory is one tensor (or one row
block of it), whatever the size of the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from checker.errors import WeightsError
from checker.weights.common import file_record, file_stamp, to_float32
from checker.weights.interface import TensorInfo, WeightFile

INDEX_NAME = "model.safetensors.index.json"


class SafetensorsReader:
    """Reader for ``*.safetensors`` files, optionally joined by an index file."""

    def __init__(self, root: Path, files: list[Path]) -> None:
        self.root = root
        self._files = sorted(files)
        self._infos: dict[str, TensorInfo] = {}
        self._handles: dict[Path, object] = {}
        #: each file as it was before its header was read (:func:`file_stamp`): the pass over the
        #: weights refuses a file that no longer carries it (checker.weights.stream)
        self.stamps: dict[Path, tuple] = {}
        for path in self._files:
            self.stamps[path] = file_stamp(path, self._rel(path))
            handle = self._open(path)
            for name in handle.keys():
                if name in self._infos:
                    raise WeightsError(self._rel(path), f"tensor {name!r} is also stored in {self._infos[name].file}")
                sl = handle.get_slice(name)
                self._infos[name] = TensorInfo(
                    name=name, shape=tuple(int(d) for d in sl.get_shape()), dtype=str(sl.get_dtype()), file=self._rel(path)
                )
        if not self._infos:
            raise WeightsError(str(root), "the safetensors files hold no tensors")

    @classmethod
    def from_index(cls, index_path: Path) -> "SafetensorsReader":
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            weight_map = index["weight_map"]
            shard_names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WeightsError(str(index_path), f"not a valid safetensors index ({exc.__class__.__name__}: {exc})") from None
        shards = []
        for name in shard_names:
            shard = (index_path.parent / name).resolve()
            if index_path.parent.resolve() not in shard.parents:
                raise WeightsError(str(index_path), f"shard {name!r} lies outside the checkpoint folder")
            if not shard.is_file():
                raise WeightsError(str(index_path), f"shard {name!r} is missing")
            shards.append(index_path.parent / name)
        reader = cls(index_path.parent, shards)
        missing = sorted(set(weight_map) - set(reader._infos))
        if missing:
            raise WeightsError(str(index_path), f"{len(missing)} indexed tensors are not in the shards, e.g. {missing[0]!r}")
        return reader

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return path.name

    def _open(self, path: Path):
        handle = self._handles.get(path)
        if handle is None:
            try:
                with path.open("rb"):  # an unreadable file is named as such, not as "not safetensors"
                    pass
            except OSError as exc:
                raise WeightsError(self._rel(path), f"cannot read ({exc.strerror or exc})") from None
            try:
                handle = safe_open(str(path), framework="pt", device="cpu")
            except Exception as exc:  # safetensors raises its own error types
                raise WeightsError(self._rel(path), f"not a readable safetensors file ({exc})") from None
            self._handles[path] = handle
        return handle

    def tensors(self) -> tuple[TensorInfo, ...]:
        return tuple(self._infos[n] for n in sorted(self._infos))

    def info(self, name: str) -> TensorInfo:
        return self._infos[name]

    def get(self, name: str) -> torch.Tensor:
        info = self._infos[name]
        handle = self._open(self.root / info.file)
        try:
            tensor = handle.get_tensor(name)
        except Exception as exc:
            raise WeightsError(info.file, f"cannot read tensor {name!r} ({exc})") from None
        return to_float32(tensor, info.file, name)

    def get_rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` of a tensor (first axis) as float32, without reading the rest."""
        info = self._infos[name]
        handle = self._open(self.root / info.file)
        try:
            tensor = handle.get_slice(name)[start:stop]
        except Exception as exc:
            raise WeightsError(info.file, f"cannot read rows of tensor {name!r} ({exc})") from None
        return to_float32(tensor, info.file, name)

    def files(self) -> tuple[WeightFile, ...]:
        return tuple(file_record(self.root, p) for p in self._files)
