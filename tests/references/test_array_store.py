"""The fingerprint's arrays file, mapped once: copies and read-only views that cannot change what the
next read sees, float16 widened exactly, and a damaged header refused in one line."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from checker.errors import RegistryError
from checker.references.store import ArrayStore, array_digest, widen


def _store(tmp_path, arrays: dict) -> ArrayStore:
    path = tmp_path / "fingerprint.safetensors"
    save_file(arrays, str(path))
    return ArrayStore(path, {k: array_digest(a) for k, a in arrays.items()})


def test_reads_are_copies_or_read_only_views(tmp_path):
    st = _store(tmp_path, {"a|row_index": np.arange(10), "a|gram": np.ones(6, np.float16)})
    got = st.get("a|row_index")
    got[:] = -1
    assert np.array_equal(st.get("a|row_index"), np.arange(10))
    view = st.view("a|gram")
    with pytest.raises(ValueError):
        view[0] = 2
    assert st.get("missing") is None and not st.has("missing") and not st.has("__metadata__")


def test_float16_is_widened_exactly():
    x = np.random.default_rng(0).standard_normal(3 * 32768 + 5).astype(np.float16).reshape(-1, 1)
    x[:4, 0] = [np.inf, -np.inf, 0.0, -0.0]
    assert np.array_equal(widen(x), x.astype(np.float32)) and widen(x).dtype == np.float32


@pytest.mark.parametrize("broken", [
    lambda e: {**e, "shape": [4, 5]},  # more bytes than its offsets hold
    lambda e: [e["dtype"], e["shape"]],  # not an entry at all
    lambda e: {k: v for k, v in e.items() if k != "dtype"},
    lambda e: {**e, "data_offsets": 7},
    lambda e: {**e, "shape": [-4, -4]},  # as many bytes as [4, 4], but no shape
    lambda e: {**e, "shape": [1e400, 0]},
    lambda e: {**e, "shape": [4.0, 4.0]},
])
def test_a_header_entry_that_does_not_fit_is_refused_in_one_line(tmp_path, broken):
    _store(tmp_path, {"a|index_rows": np.zeros((4, 4), np.float16)})
    path = tmp_path / "fingerprint.safetensors"
    data = bytearray(path.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header["a|index_rows"] = broken(header["a|index_rows"])
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw = raw.ljust(-(-len(raw) // 8) * 8)  # the data follow the header (offsets count from its end)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    st = ArrayStore(path, {"a|index_rows": "x"})
    with pytest.raises(RegistryError) as err:
        st.get_float32("a|index_rows")
    assert str(err.value) == (f"{path}: array 'a|index_rows' has an unreadable entry in the file's header; "
                              "re-add the reference")


def test_arrays_written_one_by_one_read_back_as_safetensors(tmp_path):
    """The fingerprint's arrays file is written array by array (no second copy of a deep model's
    fingerprint in memory): the safetensors library reads it back exactly, every array aligned."""
    from safetensors.numpy import load_file

    from checker.references.store import ArrayStore, array_digest, write_arrays

    rng = np.random.default_rng(0)
    arrays = {"a|rows": rng.standard_normal((5, 7)).astype(np.float16), "b|row_index": np.arange(5, dtype=np.int64),
              "c|col_mean": rng.standard_normal(3).astype(np.float32), "d|gram": np.zeros((0,), np.float16)}
    path = tmp_path / "fingerprint.safetensors"
    digests = write_arrays(path, {k: (v.dtype, v.shape, lambda v=v: v) for k, v in arrays.items()})
    back = load_file(str(path))
    assert back.keys() == arrays.keys()
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v) and digests[k] == array_digest(v)
    store = ArrayStore(path, digests)
    assert np.array_equal(store.get("b|row_index"), arrays["b|row_index"])


def test_a_registered_fingerprints_sketches_lie_side_by_side(zoo):
    """Every audit reads every sketch of every reference when it loads the registry: they are one
    run of bytes in the file (one read where the registry is not in the page cache), not one seek a
    tensor; and they read back as what was registered."""
    import json
    import struct

    from checker.references.registry import load_references

    path = next(zoo.registry.rglob("fingerprint.safetensors"))
    raw = path.read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    runs = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k.endswith("|gram"))
    others = [tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__" and not k.endswith("|gram")]
    assert len(runs) > 10 and all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
    tensors = [e["name"] for e in json.loads((path.parent / "fingerprint.json").read_text())["tensors"] if e.get("gram")]
    by_offset = sorted((v["data_offsets"][0], k[: -len("|gram")]) for k, v in header.items() if k.endswith("|gram"))
    assert [name for _, name in by_offset] == tensors  # in the order the registry loads them: one forward read
    assert not any(runs[0][0] < o[1] and o[0] < runs[-1][1] for o in others if o[1] > o[0])  # nothing in between
    (rid, fp), = [r for r in load_references(zoo.registry)]
    tp = next(t for t in fp.tensors if t.gram is not None)
    assert np.array_equal(tp.gram.upper, np.frombuffer(raw, np.float16, len(tp.gram.upper),
                                                       8 + struct.unpack("<Q", raw[:8])[0]
                                                       + header[f"{tp.role.name}|gram"]["data_offsets"][0]))


def test_arrays_read_together_are_written_in_the_order_given(tmp_path):
    """Where the readers' order is not the keys' (layer 10 sorts before layer 2), the arrays read
    together follow the order given, so loading them is one forward read."""
    import json
    import struct

    from checker.references.store import write_arrays

    names = [f"layers.{i}.q" for i in (2, 10, 1)]
    arrays = {**{f"{n}|gram": np.zeros(3, np.float16) for n in names}, "layers.1.q|rows": np.zeros((2, 2), np.float16)}
    path = tmp_path / "order.safetensors"
    out = write_arrays(path, {k: (v.dtype, v.shape, lambda v=v: v) for k, v in arrays.items()}, "|gram")
    raw = path.read_bytes()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    assert sorted(header, key=lambda k: header[k]["data_offsets"][0]) == list(arrays) and set(out) == set(arrays)
