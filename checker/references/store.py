"""A fingerprint's arrays on disk: one safetensors file, mapped once and verified array by array.

The registry verifies the fingerprint's JSON whole at load; the JSON holds a digest of every
array (its dtype, shape and bytes as stored), and each array is checked against it the first time
an audit reads it. What an audit never reads is never hashed: an unrelated reference costs the
arrays its tests need, not a hash of its whole file.

The file is mapped copy-on-write and its arrays are views of the mapping: a read costs no copy
and no call into a reader (an audit against 50 references reads some 10,000 small arrays, which
through ``safetensors.safe_open`` cost ~90 microseconds each). Views are handed out read-only, and
copies otherwise, so nothing can change what the next read of the same array sees.

Pages of the mapping that an audit has read stay in the process (its RSS) until they are
released: a 70B-width reference's prints are about 19 MiB a layer, 1.5 GB over 80 layers. So
once RELEASE_BYTES have been read through any store, every store's read pages are dropped
(``madvise(MADV_DONTNEED)``): they stay in the page cache, and a later read of the same array
maps them again from there, unchanged (nothing ever writes to the mapping).
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import sys
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

from checker.errors import RegistryError

#: Key of the fingerprint JSON's per-array digests.
ARRAY_DIGESTS = "array_sha256"
#: Arrays stored as float16 and read back as float32.
HALF = frozenset({"rows", "anchor", "index_rows", "index_gram"})
#: safetensors dtype names of the arrays a fingerprint stores.
_DTYPES = {k: np.dtype(v) for k, v in {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4",
                                        "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}.items()}

#: Bytes read through mapped stores after which their pages are released (see the module docstring).
RELEASE_BYTES = 64 * 2**20
#: What one read of a small array maps at least: a page fault maps the pages around it that are in
#: the page cache (Linux's fault_around_bytes, 64 KiB by default). Counting a 16 KB sketch as 16 KB
#: let 50 references' loads map some 350 MB before a release.
FAULT_AROUND = 64 * 2**10
_LIVE: "weakref.WeakSet[ArrayStore]" = weakref.WeakSet()
_read_since_release = 0


def _note_read(nbytes: int) -> None:
    global _read_since_release
    _read_since_release += nbytes
    if _read_since_release >= RELEASE_BYTES:
        release_all()


def release_all() -> None:
    """Drop every live store's read pages now: after reading through views handed out earlier
    (the sketches, mapped when the fingerprint was loaded), which :func:`_note_read` does not see."""
    global _read_since_release
    _read_since_release = 0
    for store in list(_LIVE):
        store.release()


def _count(x) -> int:
    """A header's dimension or offset: a whole number, at least 0 (ValueError otherwise)."""
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError(f"not a count: {x!r}")
    return x


def _compact(e) -> tuple | None:
    """A header entry as (dtype, shape, offsets) tuples; None when it is not one (reported when read)."""
    try:
        return sys.intern(e["dtype"]), tuple(e["shape"]), tuple(e["data_offsets"])
    except (KeyError, TypeError):
        return None


class ArrayStore:
    """The fingerprint's arrays, read on demand from its safetensors file (memory-mapped):
    a registry of large references costs memory only for the arrays a comparison touches.

    Each array is checked, the first time it is read, against the digest recorded at registration
    (``digests``, kept in the fingerprint's JSON, which the registry verifies whole): an audit
    verifies exactly what it reads, and an unrelated reference is not hashed whole at every audit."""

    def __init__(self, path: Path, digests: dict[str, str] | None = None):
        self._path = path
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("shorter than a safetensors header")
            n = int.from_bytes(head, "little")
            header = json.loads(fh.read(n))
            if not isinstance(header, dict):
                raise ValueError("the safetensors header is not a JSON object")
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY) if fh.seek(0, 2) > 0 else b""
        # kept compact: against 50 references the parsed headers' dicts and lists were ~100 MB
        self._start = 8 + n
        self._header = {sys.intern(k): _compact(e) for k, e in header.items() if k != "__metadata__"}
        self._entries: dict[str, tuple[np.dtype, tuple[int, ...], int]] = {}  # read from the header on first use
        self._digests = None if digests is None else {sys.intern(k): v for k, v in digests.items()}
        self._verified: set[str] = set()
        _LIVE.add(self)

    def release(self) -> None:
        """Drop the mapping's read pages from this process (they stay in the page cache; a later
        read maps them again from the file, as a first read would). Views already handed out stay
        valid; anything written into one (nothing is) would be undone."""
        if isinstance(self._map, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") and len(self._map):
            self._map.madvise(mmap.MADV_DONTNEED)

    def has(self, key: str) -> bool:
        return key in self._header

    def info(self, key: str) -> tuple[np.dtype, tuple[int, ...]] | None:
        """The array's stored dtype and shape, from the header (not read, not verified)."""
        return self._entry(key)[:2] if self.has(key) else None

    def _entry(self, key: str) -> tuple[np.dtype, tuple[int, ...], int]:
        """An array's dtype, shape and offset, checked against the file (a reference's header lists
        some 700 arrays, of which an audit reads a fraction)."""
        if key not in self._entries:
            try:
                name, dims, offsets = self._header[key]
                dtype, shape = _DTYPES[name], tuple(_count(x) for x in dims)
                begin, end = (self._start + _count(o) for o in offsets)
                fits = end - begin == dtype.itemsize * math.prod(shape) and self._start <= begin <= end <= len(self._map)
            except (KeyError, TypeError, ValueError, OverflowError):
                fits = False
            if not fits:
                raise RegistryError(str(self._path), f"array {key!r} has an unreadable entry in the file's header; "
                                    "re-add the reference")
            self._entries[key] = (dtype, shape, begin)
        return self._entries[key]

    def _view(self, key: str) -> np.ndarray | None:
        """The array as stored (writable only in this process's private copy of the page), verified
        on its first read."""
        if not self.has(key):
            return None
        dtype, shape, begin = self._entry(key)
        arr = np.frombuffer(self._map, dtype=dtype, count=math.prod(shape), offset=begin).reshape(shape)
        _note_read(max(arr.nbytes, FAULT_AROUND))
        if self._digests is not None and key not in self._verified:
            if self._digests.get(key) != array_digest(arr):
                raise RegistryError(str(self._path), f"array {key!r} does not match the digest recorded at registration "
                                    "(the fingerprint was modified); re-add the reference")
            self._verified.add(key)
        return arr

    def get(self, key: str) -> np.ndarray | None:
        """The array as stored (a copy of its own)."""
        arr = self._view(key)
        return None if arr is None else arr.copy()

    def view(self, key: str) -> np.ndarray | None:
        """The array as stored, read-only and not copied: for a large one of which a few rows are
        read, or one kept for the whole audit."""
        arr = self._view(key)
        if arr is not None:
            arr = arr.view()
            arr.flags.writeable = False
        return arr

    def get_float32(self, key: str) -> np.ndarray | None:
        """The array widened to float32 (a new array)."""
        return as_float32(self._view(key))


class SpillFile:
    """A print's arrays written to an unnamed scratch file as soon as the print is made, and read
    back one at a time: registering a deep model holds one tensor's print, not the fingerprint
    (about 19 MiB a layer at 70B width, 1.5 GB over 80 layers). It reads like an
    :class:`ArrayStore`; arrays in HALF are kept as float16, as the registry stores them."""

    def __init__(self, folder: Path | None = None):
        self._where = str(folder or tempfile.gettempdir())
        try:
            self._fh = tempfile.TemporaryFile(dir=folder)
        except OSError as exc:
            raise RegistryError(self._where, f"cannot create the registration's scratch file ({exc.strerror or exc})") from None
        self._at: dict[str, tuple[np.dtype, tuple[int, ...], int]] = {}

    def put(self, key: str, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr.astype(np.float16) if key.rsplit("|", 1)[-1] in HALF else arr)
        try:
            self._at[key] = (arr.dtype, arr.shape, self._fh.seek(0, 2))
            self._fh.write(arr.data)
        except OSError as exc:  # a full disk: one line naming the folder, not an internal error
            raise RegistryError(self._where, f"cannot write the registration's scratch file ({exc.strerror or exc})") from None

    def has(self, key: str) -> bool:
        return key in self._at

    def info(self, key: str) -> tuple[np.dtype, tuple[int, ...]] | None:
        return self._at[key][:2] if key in self._at else None

    def get(self, key: str) -> np.ndarray | None:
        if key not in self._at:
            return None
        dtype, shape, at = self._at[key]
        out = np.empty(shape, dtype=dtype)
        self._fh.seek(at)
        if out.nbytes and self._fh.readinto(memoryview(out.reshape(-1)).cast("B")) != out.nbytes:
            raise RegistryError(self._where, f"scratch array {key!r} is truncated")
        return out

    def view(self, key: str) -> np.ndarray | None:
        arr = self.get(key)
        if arr is not None:
            arr.flags.writeable = False
        return arr

    def get_float32(self, key: str) -> np.ndarray | None:
        return as_float32(self.get(key))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "SpillFile":
        return self

    def __exit__(self, *_) -> None:
        self.close()


#: Elements per torch copy in :func:`widen`: below torch's parallel grain (32,768), so each copy
#: runs on the calling thread.
_WIDEN_STEP = 32768 - 1


def as_float32(arr: np.ndarray | None) -> np.ndarray | None:
    """A stored array as a new float32 array (float16 widened exactly)."""
    if arr is None:
        return None
    return widen(arr) if arr.dtype == np.float16 else arr.astype(np.float32)


def widen(arr: np.ndarray) -> np.ndarray:
    """float16 to float32, exactly as ``astype``: torch's vectorised conversion is 4-5 times numpy's,
    but on a loaded 2-core machine its thread pool turns a 256 KiB conversion from 0.03 ms into
    8 ms (the index sides are widened for every reference and matrix), so it is fed in pieces too
    small to be split across threads."""
    src = torch.from_numpy(np.ascontiguousarray(arr).reshape(-1))
    out = torch.empty(src.shape[0], dtype=torch.float32)
    for i in range(0, src.shape[0], _WIDEN_STEP):
        out[i:i + _WIDEN_STEP].copy_(src[i:i + _WIDEN_STEP])
    return out.numpy().reshape(arr.shape)


def array_digest(arr: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes, as stored."""
    h = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


_NAMES = {v: k for k, v in _DTYPES.items()}


def write_arrays(path: Path, arrays: dict, together: str = "") -> dict[str, str]:
    """Write ``arrays`` (key -> zero-argument function giving the array as stored) as one
    safetensors file, array by array: each is made, written and hashed in turn, so writing a deep
    model's fingerprint holds one array more than the fingerprint, not a second copy of it and its
    serialised bytes. Returns the per-array digests (:func:`array_digest`). The header needs each
    array's dtype and shape first, so ``arrays`` values are (dtype, shape, make). Arrays whose keys
    end in ``together`` are written side by side (of one dtype size): what every reader reads whole
    is then one read, not one seek per array, where the file is not in the page cache."""
    # each array aligned to its size; the arrays whose keys end in ``together`` side by side, first of
    # their size and in the order given (the order a reader walks them), the others by key
    given = {k: i for i, k in enumerate(arrays)}
    order = sorted(arrays, key=lambda k: (-np.dtype(arrays[k][0]).itemsize, not (together and k.endswith(together)),
                                          given[k] if together and k.endswith(together) else 0, k))
    header, at = {}, 0
    for k in order:
        dtype, shape, _ = arrays[k]
        n = math.prod(shape) * np.dtype(dtype).itemsize
        header[k] = {"dtype": _NAMES[np.dtype(dtype)], "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    digests = {}
    with open(path, "wb") as fh:
        fh.write(len(text).to_bytes(8, "little") + text)
        for k in order:
            dtype, shape, make = arrays[k]
            arr = np.ascontiguousarray(make())
            if arr.dtype != np.dtype(dtype) or arr.shape != tuple(shape):
                raise AssertionError(f"{k}: made {arr.dtype} {arr.shape}, announced {np.dtype(dtype)} {tuple(shape)}")
            fh.write(arr.data)
            digests[k] = array_digest(arr)
    return digests
