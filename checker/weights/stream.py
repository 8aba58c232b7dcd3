"""One sequential pass over a checkpoint: every byte read once, hashed as it is read.

The audit needs three things from each weight file: its sha256 (the report pins it),
each tensor's values (fingerprints and comparisons), and nothing in memory beyond
the tensor at hand. Safetensors files are read front to back with plain reads into
buffers of their own (aligned for the bfloat16 products), the file hash is updated
with every chunk, and each tensor is handed over in file order either whole, in its
stored dtype, or in float32 row blocks; a tensor of ``mapped.MAP_BYTES`` or more is
handed over as a view of a governed memory map instead, and hashed from the map
(:mod:`checker.weights.mapped`). The files are read ahead into the page cache beside
the work (:class:`checker.weights.mapped.ReadAhead`). Random row access
before the pass (token matrices whose anchor rows align the hidden dimension) uses
positioned reads (:meth:`CheckpointStream.rows`; thousands of scattered rows at once
through one open file into one buffer, :meth:`CheckpointStream.take_rows`).

Other formats (GGUF, PyTorch .bin) fall back to their reader tensor by tensor and
hash their files separately.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from checker.errors import WeightsError
from checker.hardware import ALIGN_BYTES
from checker.weights import mapped
from checker.weights.common import require_unchanged, to_float32
from checker.weights.interface import TensorInfo, WeightFile, WeightsReader
from checker.weights.safetensors_reader import SafetensorsReader

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
#: Bytes per read call and the default float32 block size handed to consumers.
CHUNK_BYTES = 16 * 1024 * 1024
HASH_BACKLOG = 256 * 1024 * 1024
BLOCK_ELEMENTS = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Entry:
    info: TensorInfo
    path: Path
    begin: int  # absolute byte offsets in the file
    end: int
    dtype: torch.dtype


class StreamedTensor:
    """One tensor of the pass: read it whole (:meth:`load`) or in row blocks (:meth:`blocks`),
    once; whatever is not consumed is read (and hashed) when the pass moves on."""

    def __init__(self, entry: _Entry, read: Callable[[int], memoryview] | None, loader: Callable[[], torch.Tensor] | None = None,
                 mapper: Callable[[_Entry], torch.Tensor] | None = None):
        self.info = entry.info
        self._entry = entry
        self._read = read
        self._loader = loader
        self._mapper = mapper
        self._left = entry.end - entry.begin if read is not None else 0
        self._used = False

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor as stored (as float32 for readers that only give float32)."""
        return self.info.numel * torch.empty((), dtype=self._entry.dtype).element_size()

    @property
    def stored_dtype(self) -> torch.dtype:
        """The dtype on disk (float32 for readers that only give float32)."""
        return self._entry.dtype

    def _take(self) -> None:
        if self._used:
            raise RuntimeError(f"{self.info.name}: a streamed tensor is read once")
        self._used = True

    def load(self) -> torch.Tensor:
        """The whole tensor in its stored dtype (float for GGUF/.bin readers). Not checked for NaN
        here: the consumer checks what it summarises (:func:`checker.weights.values.require_finite`), once. A tensor of
        ``mapped.MAP_BYTES`` or more is a view of a memory map whose pages are governed
        (:mod:`checker.weights.mapped`): the same values, never held whole."""
        self._take()
        if self._loader is not None:
            return self._loader()
        if self._mapper is not None and self._left >= mapped.MAP_BYTES:
            self._left = 0
            return self._mapper(self._entry)
        buf = self._read(self._left)
        self._left = 0
        return _view(buf, self._entry)

    def blocks(self, max_elements: int = BLOCK_ELEMENTS, stored: bool = False) -> Iterator[torch.Tensor]:
        """float32 blocks of whole rows (first axis), in order, each checked finite; with ``stored``,
        the blocks as stored (no conversion, no check: the caller checks what it uses)."""
        self._take()
        shape = self.info.shape
        if self._loader is not None:
            t = self._loader()
            rows = max(1, max_elements // max(1, math.prod(shape[1:]))) if t.dim() else 1
            for s in range(0, max(1, shape[0] if shape else 1), rows):
                yield t[s:s + rows] if t.dim() else t
            return
        row_elems = max(1, math.prod(shape[1:])) if shape else 1
        itemsize = torch.empty((), dtype=self._entry.dtype).element_size()
        rows = max(1, max_elements // row_elems)
        total = shape[0] if shape else 1
        for s in range(0, total, rows):
            n = min(rows, total - s)
            buf = self._read(n * row_elems * itemsize)
            self._left -= n * row_elems * itemsize
            block = _view(buf, self._entry, (n,) + tuple(shape[1:]) if shape else ())
            yield block if stored else to_float32(block, self.info.file, self.info.name)


def _aligned_empty(n: int) -> np.ndarray:
    """n uninitialised bytes starting at an ALIGN_BYTES boundary: a tensor read into them is a
    bfloat16 product's operand as it is (checker.hardware.ALIGN_BYTES; numpy aligns to 16)."""
    room = np.empty(n + ALIGN_BYTES, dtype=np.uint8)
    at = -room.ctypes.data % ALIGN_BYTES
    return room[at:at + n]


def _view(buf, entry: _Entry, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    shape = entry.info.shape if shape is None else shape
    if len(buf) == 0:
        return torch.empty(shape, dtype=entry.dtype)
    return torch.frombuffer(buf, dtype=entry.dtype).reshape(shape)


def _parse_header(path: Path, rel: str) -> tuple[int, list[_Entry]]:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise WeightsError(rel, "not a readable safetensors file (truncated header)")
            (n,) = struct.unpack("<Q", head)
            if n > 100_000_000:
                raise WeightsError(rel, "not a readable safetensors file (header too large)")
            header = json.loads(fh.read(n))
    except OSError as exc:
        raise WeightsError(rel, f"cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise WeightsError(rel, f"not a readable safetensors file ({exc})") from None
    start = 8 + n
    entries = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(meta.get("dtype"))
        if dtype is None:
            raise WeightsError(rel, f"tensor {name!r} has unsupported dtype {meta.get('dtype')}")
        b, e = meta["data_offsets"]
        info = TensorInfo(name, tuple(int(d) for d in meta["shape"]), meta["dtype"], rel)
        entries.append(_Entry(info, path, start + int(b), start + int(e), dtype))
    entries.sort(key=lambda x: x.begin)
    return start, entries


class CheckpointStream:
    """The pass over one checkpoint. Iterate once; then :attr:`files` holds the hashes."""

    def __init__(self, reader: WeightsReader, only: set[str] | None = None):
        self.reader = reader
        self._files: tuple[WeightFile, ...] | None = None
        self._bytes_read = 0
        #: the most bytes read and not yet known hashed at any time, the buffer just read included
        #: (buffers are counted until their hash is waited on: an upper bound)
        self.peak_backlog = 0
        self._layout: dict[Path, tuple[int, list[_Entry]]] = {}
        self._sizes: dict[Path, int] = {}
        #: each file as the reader found it before reading its header (common.file_stamp): a file
        #: that no longer carries it here or when the pass ends is refused, so the modules, the
        #: hashes and the evidence all describe the files stamped
        self.stamps: dict[Path, tuple] = {}
        if isinstance(reader, SafetensorsReader):
            for p in reader._files:
                rel = reader._rel(p)
                self.stamps[p] = reader.stamps[p]
                self._layout[p] = _parse_header(p, rel)
                require_unchanged(p, rel, self.stamps[p])  # the layout read is the reader's file
                self._sizes[p] = self.stamps[p][2]
        self._entries = {e.info.name: e for _, es in self._layout.values() for e in es}

    @property
    def streaming(self) -> bool:
        return bool(self._layout)

    def total_bytes(self) -> int:
        if self._layout:
            return sum(self._sizes.values())
        return sum(i.numel * 4 for i in self.reader.tensors())

    @property
    def files(self) -> tuple[WeightFile, ...]:
        if self._files is None:
            raise RuntimeError("the pass has not run yet")
        return self._files

    def rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` of a tensor as float32, by positioned reads (no pass needed)."""
        if name not in self._entries:
            return self.reader.get_rows(name, start, stop) if hasattr(self.reader, "get_rows") else self.reader.get(name)[start:stop]
        return self.take_rows(name, list(range(start, stop)))

    def take_rows(self, name: str, ids: list[int]) -> torch.Tensor:
        """Rows ``ids`` (ascending, distinct) of a tensor as float32: one positioned read per run of
        consecutive ids into one buffer, through one open file, and one conversion (a few thousand
        scattered token rows cost a few thousand system calls, nothing else per row). No memory map:
        touching scattered rows of a map makes the kernel map their neighbours too."""
        e = self._entries.get(name)
        if e is None:  # a GGUF or .bin checkpoint: through its reader (a whole tensor read once, not per row)
            if not hasattr(self.reader, "get_rows"):
                return self.reader.get(name)[list(ids)]
            return torch.cat([self.reader.get_rows(name, i, i + 1) for i in ids]) if len(ids) else torch.zeros((0,))
        if not e.info.shape:
            raise ValueError(f"{name}: a 0-d tensor has no rows")
        n = e.info.shape[0]
        row_bytes = (e.end - e.begin) // max(1, n)
        idx = np.asarray(ids, dtype=np.int64)
        if len(idx) == 0 or row_bytes == 0:
            return torch.zeros((len(idx),) + tuple(e.info.shape[1:]), dtype=torch.float32)
        if np.any(np.diff(idx) <= 0) or idx[0] < 0 or idx[-1] >= n:
            raise ValueError(f"{name}: row ids must be ascending, distinct and in range")
        buf = np.empty((len(idx), row_bytes), dtype=np.uint8)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1  # starts of runs of consecutive ids
        try:
            fd = os.open(e.path, os.O_RDONLY)
            try:
                if os.fstat(fd).st_size < e.end:
                    raise WeightsError(e.info.file, f"tensor {name!r} is truncated")
                for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(idx)]):
                    want = (hi - lo) * row_bytes
                    if os.preadv(fd, [memoryview(buf[lo:hi]).cast("B")], e.begin + int(idx[lo]) * row_bytes) != want:
                        raise WeightsError(e.info.file, f"tensor {name!r} is truncated")
            finally:
                os.close(fd)
        except OSError as exc:
            raise WeightsError(e.info.file, f"cannot read ({exc.strerror or exc})") from None
        rows = torch.from_numpy(buf).view(e.dtype).reshape((len(idx),) + tuple(e.info.shape[1:]))
        return to_float32(rows, e.info.file, name)

    def __iter__(self) -> Iterator[StreamedTensor]:
        if not self._layout:
            yield from self._fallback()
            return
        records = []
        # The file hash runs on its own thread (hashlib releases the GIL) while the engine works
        # on the bytes already read; at most HASH_BACKLOG bytes wait to be hashed, the next read
        # included (or one larger buffer alone).
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        # The files are read ahead into the page cache while the tensors before are compared
        # (mapped.ReadAhead): on a cold cache the disk then works beside the engine.
        ahead = mapped.ReadAhead([(str(p), self._sizes[p]) for p in self._layout])
        try:
            for path, (_, entries) in self._layout.items():
                records.append((yield from self._file(path, entries, pool, lambda e, p=str(path): ahead.reached(p, e.end))))
        finally:
            ahead.stop()  # however the pass ends, the read-ahead stops (after a chunk in flight, if any)
            pool.shutdown(wait=True)
        for path in self._layout:  # written to or replaced during the pass (a shard, while later ones were read)
            require_unchanged(path, self.reader._rel(path), self.stamps[path])
        self._files = tuple(records)

    def _file(self, path: Path, entries: list[_Entry], pool: ThreadPoolExecutor, handed_out: Callable[[_Entry], None]):
        rel = self.reader._rel(path)
        h = hashlib.sha256()
        size = self._sizes[path]
        pending: deque = deque()
        backlog = 0
        try:
            fh = path.open("rb", buffering=0)
        except OSError as exc:
            raise WeightsError(rel, f"cannot read ({exc.strerror or exc})") from None
        with fh:
            pos = 0

            def read(n: int) -> np.ndarray:
                nonlocal pos, backlog
                while pending and backlog + n > HASH_BACKLOG:  # room first: a large tensor is not held
                    fut, k = pending.popleft()                 # beside the one before it, still hashing
                    fut.result()
                    backlog -= k
                buf = _aligned_empty(n)  # every byte is read into it: not zeroed first
                view = memoryview(buf)
                got = 0
                while got < n:
                    k = fh.readinto(view[got:got + CHUNK_BYTES])
                    if not k:
                        raise WeightsError(rel, "file is truncated")
                    got += k
                pending.append((pool.submit(h.update, buf), n))
                backlog += n
                self.peak_backlog = max(self.peak_backlog, backlog)
                pos += n
                self._bytes_read += n
                return buf

            def skip_to(offset: int) -> None:
                while pos < offset:
                    read(min(CHUNK_BYTES, offset - pos))

            def map_entry(e: _Entry) -> torch.Tensor:
                """The tensor at ``pos`` as a governed memory map; its bytes are hashed from the map,
                in order, on the hash thread (nothing is copied, nothing waits in memory). Where the
                file cannot be mapped, it is read as any smaller tensor is."""
                nonlocal pos
                if pos != e.begin:
                    raise RuntimeError(f"{e.info.name}: a streamed tensor is read in file order")
                if os.fstat(fh.fileno()).st_size < e.end:
                    raise WeightsError(rel, "file is truncated")
                try:
                    t, raw = mapped.map_tensor(fh.fileno(), e.begin, e.end, e.dtype, tuple(e.info.shape))
                except (OSError, ValueError):  # no mmap on this file system, or no map left
                    return _view(read(e.end - e.begin), e)
                pending.append((pool.submit(h.update, raw), 0))
                fh.seek(e.end)
                self._bytes_read += e.end - pos
                pos = e.end
                return t

            for e in entries:
                skip_to(e.begin)
                handed_out(e)
                yield StreamedTensor(e, read, mapper=map_entry)
                skip_to(e.end)
            skip_to(size)
        for fut, _ in pending:
            fut.result()
        return WeightFile(rel, h.hexdigest(), size)

    def _fallback(self) -> Iterator[StreamedTensor]:
        for info in self.reader.tensors():
            entry = _Entry(info, Path(info.file), 0, 0, torch.float32)
            yield StreamedTensor(entry, None, loader=lambda n=info.name: self.reader.get(n))
        self._files = self.reader.files()

    @property
    def bytes_read(self) -> int:
        return self._bytes_read
