"""A fingerprint's arrays on disk: one safetensors file, read on demand and verified array by array.

The registry verifies the fingerprint's JSON whole at load; the JSON holds a digest of every
array (its dtype, shape and bytes as stored), and each array is checked against it the first time
an audit reads it. What an audit never reads is never hashed: an unrelated reference costs the
arrays its tests need, not a hash of its whole file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from safetensors import safe_open

from checker.errors import RegistryError

#: Key of the fingerprint JSON's per-array digests.
ARRAY_DIGESTS = "array_sha256"
#: Arrays stored as float16 and read back as float32.
HALF = frozenset({"rows", "anchor", "index_rows", "index_gram"})


class ArrayStore:
    """The fingerprint's arrays, read on demand from its safetensors file (memory-mapped):
    a registry of large references costs memory only for the arrays a comparison touches.

    Each array is checked, the first time it is read, against the digest recorded at registration
    (``digests``, kept in the fingerprint's JSON, which the registry verifies whole): an audit
    verifies exactly what it reads, and an unrelated reference is not hashed whole at every audit."""

    def __init__(self, path: Path, digests: dict[str, str] | None = None):
        self._path = path
        self._handle = safe_open(str(path), framework="np")
        self._keys = set(self._handle.keys())
        self._digests = digests
        self._verified: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self._keys

    def get(self, key: str) -> np.ndarray | None:
        if key not in self._keys:
            return None
        arr = self._handle.get_tensor(key)
        if self._digests is not None and key not in self._verified:
            if self._digests.get(key) != array_digest(arr):
                raise RegistryError(str(self._path), f"array {key!r} does not match the digest recorded at registration "
                                    "(the fingerprint was modified); re-add the reference")
            self._verified.add(key)
        return arr


def array_digest(arr: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes, as stored."""
    h = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()
