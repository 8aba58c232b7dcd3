"""Layer-pair scores kept as columns, not as objects.

The layer screen scores every role pair of every layer pair against every reference, and the
weak evidence every norm or bias against every reference vector of its role: against 50
references of 64 layers, 1.4 million screen scores and 0.4 million weak ones. As one object
each (with a list per layer pair) they took some 380 MB during the pass and more once they
were grouped into cells, growing with layers squared times references.

:class:`PairLog` gathers one (submission module, reference, reference module)'s scores during
the pass as typed arrays (44 bytes a screen score, 48 a weak one: a label is a code per string,
each string stored once). The screen's stay with the match as a
:class:`ScreenTable`; the weak scores become objects only for the layer pairs a report can show
(:meth:`PairLog.rows_near`, :func:`checker.metrics.aggregate.aggregate`).
"""

from __future__ import annotations

import base64
from array import array
from dataclasses import dataclass, fields

import numpy as np

#: Stands for a layer-less tensor (``None``) in the layer columns.
NO_LAYER = -1
#: The table's columns and their types.
_COLUMNS = {"sub_layer": np.int32, "ref_layer": np.int32, "label": np.int16, "mantel_r": np.float64, "z": np.float64,
            "log10_p": np.float64, "dims": np.int32}


def pair_codes(sub: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """One integer per (submission layer, reference layer), ascending in the order cells sort
    (a layer-less tensor first, then by layer)."""
    return (np.asarray(sub, np.int64) + 1) * 2**32 + (np.asarray(ref, np.int64) + 1)


def column_json(col: np.ndarray) -> dict:
    """A column as JSON: its little-endian bytes in base64. A deep model's tables against 50
    references hold millions of rows: written as lists of floats, the cache entry cost 0.24 GB of
    memory at 64 layers, as base64 0.14 GB."""
    col = np.ascontiguousarray(col, dtype=col.dtype.newbyteorder("<"))
    return {"dtype": col.dtype.str, "b64": base64.b64encode(col.tobytes()).decode("ascii")}


def _column(d: dict, dtype) -> np.ndarray:
    stored = np.dtype(d["dtype"])
    if stored != np.dtype(dtype).newbyteorder("<"):
        raise ValueError(f"a {stored} column where {np.dtype(dtype)} was expected")
    return np.frombuffer(base64.b64decode(d["b64"], validate=True), stored).astype(dtype)


def _layer(x: int) -> int | None:
    return None if x == NO_LAYER else int(x)


def _code(layer: int | None) -> int:
    return NO_LAYER if layer is None else layer


class PairLog:
    """Scores of one (module, reference, reference module), appended during the pass: a layer
    pair, a label (a tuple of strings of fixed length, each string stored once) and three numbers."""

    __slots__ = ("sub", "ref", "codes", "x", "y", "w", "n", "names")

    def __init__(self):
        self.sub, self.ref, self.codes = array("i"), array("i"), array("i")
        self.x, self.y, self.w, self.n = array("d"), array("d"), array("d"), array("i")
        self.names: dict[str, int] = {}

    def add(self, sub_layer: int | None, ref_layer: int | None, label: tuple[str, ...], x: float, y: float,
            w: float = 0.0, n: int = 0) -> None:
        self.sub.append(_code(sub_layer))
        self.ref.append(_code(ref_layer))
        self.codes.extend(self.names.setdefault(part, len(self.names)) for part in label)
        self.x.append(x)
        self.y.append(y)
        self.w.append(w)
        self.n.append(n)

    def _labels(self) -> tuple[np.ndarray, list[str]]:
        """Each row's label codes (one row of codes per score) and the strings they stand for."""
        rows = len(self.sub)
        return np.frombuffer(self.codes, np.int32).reshape(rows, -1 if rows else 0), list(self.names)

    def screen_table(self) -> ScreenTable:
        """The log as the screen's table: labels (role, reference role), x the Mantel r, y its z,
        w its log10 p, n the sketch columns."""
        codes, names = self._labels()
        pairs, label = np.zeros((0, 2), np.int32), np.zeros(0, np.int16)
        if len(codes):
            pairs, label = np.unique(codes, axis=0, return_inverse=True)
        return ScreenTable(np.frombuffer(self.sub, np.int32).copy(), np.frombuffer(self.ref, np.int32).copy(),
                           np.asarray(label, np.int16).reshape(-1), tuple((names[a], names[b]) for a, b in pairs.tolist()),
                           np.frombuffer(self.x, np.float64).copy(), np.frombuffer(self.y, np.float64).copy(),
                           np.frombuffer(self.w, np.float64).copy(), np.frombuffer(self.n, np.int32).copy())

    def rows_near(self, keep: set):
        """(layer pair, label, x, y) of the rows in the pairs of ``keep``, the same-index pairs and
        a layer-less submission tensor's, in the order logged."""
        sub, ref = np.frombuffer(self.sub, np.int32), np.frombuffer(self.ref, np.int32)
        mask = (sub == ref) | (sub == NO_LAYER)
        if keep:
            mask |= np.isin(pair_codes(sub, ref), pair_codes(*zip(*((_code(s), _code(r)) for s, r in keep))))
        codes, names = self._labels()
        for i in np.flatnonzero(mask).tolist():
            yield (_layer(sub[i]), _layer(ref[i])), tuple(names[c] for c in codes[i]), self.x[i], self.y[i]


@dataclass(frozen=True, eq=False)
class ScreenTable:
    """The layer screen of one match, one row per (submission tensor, reference tensor) pair:
    what the screen saw everywhere, and why the full test did not look elsewhere."""

    sub_layer: np.ndarray  # int32, NO_LAYER for a layer-less tensor
    ref_layer: np.ndarray
    label: np.ndarray  # int16 index into labels
    labels: tuple[tuple[str, str], ...]  # (role, reference role)
    mantel_r: np.ndarray  # float64: correlation of the two sketches' off-diagonal entries
    z: np.ndarray  # against the exact relabelling null
    log10_p: np.ndarray
    dims: np.ndarray  # int32: sketch columns compared

    def __post_init__(self):
        for name in _COLUMNS:  # frozen all through: a report must not see a figure changed after the fact
            getattr(self, name).flags.writeable = False

    def __reduce__(self):  # pickled (Ray) or copied through __init__, so the copy's columns are read-only too
        return type(self), tuple(getattr(self, f.name) for f in fields(self))

    @classmethod
    def empty(cls) -> ScreenTable:
        return PairLog().screen_table()

    @classmethod
    def from_json(cls, d: dict) -> ScreenTable:
        """The table from its cached form (:func:`dataclasses.asdict`, each column as
        :func:`column_json`); ValueError when the columns do not make a table."""
        cols = {name: _column(d[name], dtype) for name, dtype in _COLUMNS.items()}
        labels = tuple((str(a), str(b)) for a, b in d["labels"])
        n = len(cols["z"])
        if any(len(c) != n for c in cols.values()) or (n and not 0 <= cols["label"].min() <= cols["label"].max() < len(labels)):
            raise ValueError("the screen table's columns do not agree")
        return cls(labels=labels, **cols)

    def __len__(self) -> int:
        return len(self.z)

    def __eq__(self, other) -> bool:
        return isinstance(other, ScreenTable) and self.labels == other.labels and all(
            np.array_equal(getattr(self, f), getattr(other, f))
            for f in ("sub_layer", "ref_layer", "label", "mantel_r", "z", "log10_p", "dims"))

    def __hash__(self) -> int:  # what __eq__ compares exactly (0.0 and -0.0 are equal, their bytes are not)
        return hash((len(self), self.labels))

    def compared(self) -> set[tuple[int | None, str]]:
        """The (submission layer, role) pairs the screen compared."""
        names = [role for role, _ in self.labels]
        return {(_layer(s), names[c]) for s, c in set(zip(self.sub_layer.tolist(), self.label.tolist()))}

    def layers(self) -> tuple[set, set]:
        """The submission and reference layers screened (layer-less tensors left out)."""
        return ({int(s) for s in np.unique(self.sub_layer) if s != NO_LAYER},
                {int(r) for r in np.unique(self.ref_layer) if r != NO_LAYER})

    def by_pair(self) -> tuple[list[tuple], np.ndarray, np.ndarray]:
        """The layer pairs screened, in cell order; for each, the Stouffer z of its role pairs
        (their z summed in the order scored, over the root of their count); and each row's pair."""
        if not len(self):
            return [], np.zeros(0), np.zeros(0, np.int64)
        codes, first, inv = np.unique(pair_codes(self.sub_layer, self.ref_layer), return_index=True,
                                      return_inverse=True)
        counts = np.bincount(inv)
        z = np.bincount(inv, weights=self.z) / np.sqrt(counts)
        pairs = [(_layer(self.sub_layer[i]), _layer(self.ref_layer[i])) for i in first]
        return pairs, z, inv
