"""The data a reference fingerprint is made of: one print per tensor, and the fingerprint itself.

A print's arrays are given when it is built (in memory) or read from the registry's arrays file
on first access (:class:`~checker.references.store.ArrayStore`); :mod:`.fingerprint` builds, saves
and loads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from checker.metrics.alignment import UnrelatedProbe
from checker.metrics.screen import GramSketch
from checker.modules import Module, TensorRole
from checker.references.store import HALF, ArrayStore, widen
from checker.scanners.tokenizer import Vocabulary

#: A token print's stored :class:`~checker.metrics.alignment.UnrelatedProbe`: the geometry sketch's
#: upper triangle (float32) and its (n, s1, s2, s3), the held-out rows normed and their Gram matrix
#: (float64).
PROBE_ARRAYS = ("geometry", "geometry_moments", "held_normed", "held_gram")
#: Every array a print may store, and its bytes per element where not its dtype's.
ARRAYS = ("rows", "row_index", "col_mean", "col_std", "vector", "anchor", "index_rows", "index_gram") + PROBE_ARRAYS
STORED_BYTES = {"row_index": 8, "col_mean": 4, "col_std": 4, "vector": 4, **{a: 2 for a in HALF}}


class _Lazy:
    """A TensorPrint array: given at build time, or read from the registry on access."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        return self if obj is None else obj._array(self.name)


@dataclass(frozen=True, eq=False)
class TensorPrint:
    """The stored evidence for one tensor of a reference.

    Arrays are given when the print is built and loaded lazily (as float32) when it
    comes from a registry; the Gram sketch (the screen) is always in memory.
    """

    role: TensorRole
    dtype: str
    digests: tuple[str, ...]
    units: int = 0
    hidden: int = 0
    gram: GramSketch | None = None
    anchor_tokens: Sequence[str] = ()  # token strings of anchor rows (token roles; packed when loaded)
    arrays: dict = field(default_factory=dict)  # name -> ndarray, when built in memory
    store: ArrayStore | None = None
    #: the kind of fixed table (checker/metrics/fixed_tables.py) this tensor is; it then keeps no
    #: arrays and no digests, so nothing is ever compared with it
    fixed: str = ""

    def _array(self, name: str) -> np.ndarray | None:
        if name in self.arrays:
            arr = self.arrays[name]
            return widen(arr) if name in HALF and arr.dtype == np.float16 else arr
        if self.store is None:
            return None
        key = f"{self.role.name}|{name}"
        return self.store.get_float32(key) if name in HALF else self.store.get(key)

    #: sampled unit rows (k x hidden), their indices, the column moments, the whole 1-D tensor
    #: (norm, bias) and anchor rows (tokens or inputs x hidden): float32, loaded on access
    rows = _Lazy()
    row_index = _Lazy()
    col_mean = _Lazy()
    col_std = _Lazy()
    vector = _Lazy()
    anchor = _Lazy()
    #: the index-aligned test's reference side under the identity alignment
    #: (:func:`checker.metrics.indexed.reference_side`): normed rows at its scoring columns and their
    #: Gram matrix; absent from prints registered before them (then computed from ``rows``)
    index_rows = _Lazy()
    index_gram = _Lazy()
    #: token tables only: the reference side of the unrelated-anchor test, for a submission sharing
    #: every anchor token (:meth:`probe`); absent from prints registered before them
    geometry = _Lazy()
    geometry_moments = _Lazy()
    held_normed = _Lazy()
    held_gram = _Lazy()

    def probe(self) -> UnrelatedProbe | None:
        """The stored :class:`~checker.metrics.alignment.UnrelatedProbe` of a token table, read
        instead of the whole table where the submission shares all its anchor tokens; None for a
        print registered before it was stored (the whole table is then read)."""
        if not all(self.has(a) for a in PROBE_ARRAYS):
            return None
        n, s1, s2, s3 = (float(x) for x in self.geometry_moments)
        return UnrelatedProbe(GramSketch(self.stored("geometry"), int(n), s1, s2, s3),
                              (self.stored("held_normed"), self.stored("held_gram")))

    def stored(self, name: str) -> np.ndarray | None:
        """The array as the registry stores it (rows and anchors in float16), not widened and not
        copied (read-only): for reading a few rows of a large one (the anchor tests) without a
        float32 copy of all, or for one only read."""
        if name in self.arrays or self.store is None:
            return self.arrays.get(name)
        return self.store.view(f"{self.role.name}|{name}")

    def array_info(self, name: str) -> tuple[np.dtype, tuple[int, ...]] | None:
        """The array's dtype (as held or stored) and shape, without reading it."""
        if name in self.arrays:
            return self.arrays[name].dtype, tuple(self.arrays[name].shape)
        return None if self.store is None else self.store.info(f"{self.role.name}|{name}")

    def has(self, name: str) -> bool:
        """Whether the array is there, without loading it."""
        return name in self.arrays or (self.store is not None and self.store.has(f"{self.role.name}|{name}"))


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """A reference model reduced to what the metric engine needs."""

    source: str
    parameters: int
    tensors: tuple[TensorPrint, ...]
    modules: tuple[Module, ...]
    vocab: Vocabulary | None
    meta: dict = field(default_factory=dict)

    def nbytes(self) -> int:
        """Bytes of the stored arrays (rows, anchors and sketches are stored as float16)."""
        total = 0
        for tp in self.tensors:
            for name in ARRAYS:
                info = tp.array_info(name)
                if info is not None:
                    total += int(np.prod(info[1], dtype=np.int64)) * STORED_BYTES.get(name, info[0].itemsize)
            if tp.gram is not None:
                total += tp.gram.upper.size * 2
        return total
