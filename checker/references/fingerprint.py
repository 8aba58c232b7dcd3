"""Reference fingerprints: what the provenance tests need, without the weights.

For every 2-D weight a fingerprint keeps a seeded sample of unit rows (in the
"units x hidden" orientation), the mean and standard deviation of every hidden
column over all rows, and content digests in float32, bfloat16 and float16.
For token embeddings it keeps the rows of a sample of tokens together with
their strings; for patch embeddings (whose other axis is fixed by the pixels)
the whole matrix. Norm weights and biases are kept whole: they are small and
only ever weak evidence.

Size: a 2-D weight of U units costs min(U, K_ROWS) rows of float16, so about
2 * K_ROWS / U bytes per parameter; for 7B-class models (U = 4096..11008) this is
about 1-3% of the fp16 checkpoint, plus ANCHOR_TOKENS embedding rows (measured
by benchmarks/provenance_suite.py, which prints it per billion parameters).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from checker import __version__
from checker.errors import RegistryError
from checker.modules import Module, TensorRole, split_modules
from checker.scanners.tokenizer import Vocabulary
from checker.weights.common import digest_tensor
from checker.weights.interface import WeightsReader

FINGERPRINT_VERSION = 1
K_ROWS = 128
ANCHOR_TOKENS = 4096
_SEED = 20251126
TOKEN_ROLES = frozenset({"embed", "lm_head"})
ANCHOR_ROLES = frozenset({"embed", "lm_head", "patch_embed", "pos_embed"})
VECTOR_ROLES = frozenset({"norm", "bias"})
_BLOCK_ROWS = 8192


def tensor_digests(t: torch.Tensor) -> tuple[str, str, str]:
    """Digests of the float32 values and of their bfloat16 and float16 roundings.

    Two tensors are identical "after dtype normalisation" when any of their
    digests agree: a copy saved in bf16 from a float32 original matches the
    original's bf16 digest.
    """
    return digest_tensor(t), digest_tensor(t.to(torch.bfloat16)), digest_tensor(t.to(torch.float16))


def as_units_by_hidden(t: torch.Tensor, units_axis: int) -> np.ndarray:
    """A 2-D (or flattened conv) weight with units on rows and hidden on columns."""
    m = t.reshape(t.shape[0], -1) if t.dim() > 2 else t
    if units_axis == 1 and m.dim() == 2:
        m = m.T
    return np.ascontiguousarray(m.numpy(), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class TensorPrint:
    """The stored evidence for one tensor of a reference."""

    role: TensorRole
    dtype: str
    digests: tuple[str, str, str]
    units: int = 0
    hidden: int = 0
    rows: np.ndarray | None = None  # sampled unit rows (k x hidden), float32
    row_index: np.ndarray | None = None
    col_mean: np.ndarray | None = None
    col_std: np.ndarray | None = None
    vector: np.ndarray | None = None  # whole 1-D tensor (norm, bias)
    anchor: np.ndarray | None = None  # anchor rows: tokens (or inputs) x hidden
    anchor_tokens: tuple[str, ...] = ()  # token strings of anchor rows (token roles)


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
        """Bytes of the stored arrays (rows and anchors are stored as float16)."""
        total = 0
        for tp in self.tensors:
            for name in _ARRAYS:
                arr = getattr(tp, name)
                if arr is not None:
                    total += arr.size * _STORED_BYTES.get(name, arr.dtype.itemsize)
        return total


def estimated_nbytes(roles, k_rows: int = K_ROWS, anchor_tokens: int = ANCHOR_TOKENS) -> int:
    """What :meth:`Fingerprint.nbytes` will be for tensors of these shapes, without reading them:
    states the fingerprint's size for models too large to fingerprint in a benchmark."""
    total = 0
    for r in roles:
        if len(r.shape) < 2:
            total += 4 * r.numel
        elif r.role in ("patch_embed", "pos_embed"):
            total += 2 * r.numel
        else:
            units = r.shape[r.units_axis] if len(r.shape) == 2 else r.shape[0]
            hidden = r.numel // units
            k = min(units, anchor_tokens if r.role in TOKEN_ROLES else k_rows)
            total += k * hidden * 2 + k * 8 + (0 if r.role in TOKEN_ROLES else 2 * 4 * hidden)
    return total


def _sample(n: int, k: int, key: str) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    seed = int.from_bytes(hashlib.sha256(f"{_SEED}:{key}".encode()).digest()[:4], "little")
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def print_tensor(reader: WeightsReader, role: TensorRole, dtype: str, vocab: Vocabulary | None,
                 k_rows: int = K_ROWS, anchor_tokens: int = ANCHOR_TOKENS) -> TensorPrint:
    """Fingerprint one tensor, reading it once (or in row blocks for token matrices)."""
    if role.role in TOKEN_ROLES and len(role.shape) == 2 and hasattr(reader, "get_rows"):
        return _print_token_matrix(reader, role, dtype, vocab, anchor_tokens)
    t = reader.get(role.name)
    digests = tensor_digests(t)
    if t.dim() < 2:
        return TensorPrint(role, dtype, digests, vector=t.numpy().astype(np.float32).ravel())
    if role.role == "patch_embed" or role.role == "pos_embed":
        # Rows are hidden units for a patch embedding, positions for a position table:
        # stored whole as "inputs x hidden" anchors, for aligning the hidden dimension.
        m = t.reshape(t.shape[0], -1).numpy().astype(np.float32)
        anchor = m.T.copy() if role.role == "patch_embed" else m
        return TensorPrint(role, dtype, digests, units=anchor.shape[0], hidden=anchor.shape[1], anchor=anchor)
    m = as_units_by_hidden(t, role.units_axis)
    idx = _sample(m.shape[0], k_rows, role.name)
    return TensorPrint(
        role, dtype, digests, units=m.shape[0], hidden=m.shape[1], rows=m[idx].copy(), row_index=idx,
        col_mean=m.mean(axis=0), col_std=m.std(axis=0),
    )


def _print_token_matrix(reader, role: TensorRole, dtype: str, vocab: Vocabulary | None, anchor_tokens: int) -> TensorPrint:
    """Token matrices can be the largest tensors: read them in row blocks."""
    n, d = role.shape
    idx = _sample(n, anchor_tokens, role.name)
    h32, hb, hh = hashlib.sha256(repr((n, d)).encode()), hashlib.sha256(repr((n, d)).encode()), hashlib.sha256(repr((n, d)).encode())
    rows = []
    for start in range(0, n, _BLOCK_ROWS):
        block = reader.get_rows(role.name, start, min(n, start + _BLOCK_ROWS))
        h32.update(block.contiguous().numpy().tobytes())
        hb.update(block.to(torch.bfloat16).to(torch.float32).contiguous().numpy().tobytes())
        hh.update(block.to(torch.float16).to(torch.float32).contiguous().numpy().tobytes())
        sel = idx[(idx >= start) & (idx < start + block.shape[0])] - start
        rows.append(block[torch.as_tensor(sel, dtype=torch.long)].numpy().astype(np.float32))
    anchor = np.concatenate(rows, axis=0)
    tokens = tuple(vocab.tokens[i] if vocab is not None and i < len(vocab.tokens) else f"<id:{i}>" for i in idx)
    return TensorPrint(role, dtype, (h32.hexdigest(), hb.hexdigest(), hh.hexdigest()), units=n, hidden=d,
                       anchor=anchor, anchor_tokens=tokens, row_index=idx)


def build_fingerprint(reader: WeightsReader, vocab: Vocabulary | None, source: str,
                      k_rows: int = K_ROWS, anchor_tokens: int = ANCHOR_TOKENS) -> Fingerprint:
    """Fingerprint a whole checkpoint, one tensor at a time."""
    infos = reader.tensors()
    modules = split_modules(infos)
    dtypes = {i.name: i.dtype for i in infos}
    prints = tuple(print_tensor(reader, tr, dtypes[tr.name], vocab, k_rows, anchor_tokens)
                   for m in modules for tr in m.tensors)
    return Fingerprint(source, sum(i.numel for i in infos), prints, modules, vocab,
                       {"k_rows": k_rows, "anchor_tokens": anchor_tokens})


# -- storage: JSON metadata + safetensors arrays (no pickle anywhere) ---------------------

_ARRAYS = ("rows", "row_index", "col_mean", "col_std", "vector", "anchor")
_STORED_BYTES = {"rows": 2, "anchor": 2, "row_index": 8, "col_mean": 4, "col_std": 4, "vector": 4}


def save_fingerprint(fp: Fingerprint, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for tp in fp.tensors:
        r = tp.role
        entries.append({
            "name": r.name, "shape": list(r.shape), "module": r.module, "kind": r.kind, "layer": r.layer,
            "role": r.role, "units_axis": r.units_axis, "decisive": r.decisive, "dtype": tp.dtype,
            "digests": list(tp.digests), "units": tp.units, "hidden": tp.hidden,
            "anchor_tokens": list(tp.anchor_tokens),
        })
        for a in _ARRAYS:
            arr = getattr(tp, a)
            if arr is not None:
                store = arr.astype(np.float16) if a in ("rows", "anchor") else arr
                arrays[f"{r.name}|{a}"] = np.ascontiguousarray(store)
    meta = {
        "fingerprint_version": FINGERPRINT_VERSION, "tool": {"name": "fromscratch", "version": __version__},
        "source": fp.source, "parameters": fp.parameters, "settings": fp.meta,
        "modules": [{"name": m.name, "kind": m.kind, "family": m.family} for m in fp.modules],
        "tensors": entries,
        "vocab": None if fp.vocab is None else {"file": fp.vocab.file, "tokens": list(fp.vocab.tokens), "merges": list(fp.vocab.merges)},
    }
    save_file(arrays, str(folder / "fingerprint.safetensors"))
    (folder / "fingerprint.json").write_text(json.dumps(meta), encoding="utf-8")


def load_fingerprint(folder: Path) -> Fingerprint:
    meta_path, arr_path = folder / "fingerprint.json", folder / "fingerprint.safetensors"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        arrays = load_file(str(arr_path))
    except FileNotFoundError as exc:
        raise RegistryError(str(folder), f"fingerprint file missing: {Path(exc.filename).name}") from None
    except Exception as exc:
        raise RegistryError(str(folder), f"unreadable fingerprint ({exc.__class__.__name__}: {exc})") from None
    version = meta.get("fingerprint_version")
    if version != FINGERPRINT_VERSION:
        raise RegistryError(str(meta_path), f"fingerprint version {version!r} is not supported (expected {FINGERPRINT_VERSION}); re-add the reference")
    prints = []
    roles = []
    for e in meta["tensors"]:
        role = TensorRole(e["name"], tuple(e["shape"]), e["module"], e["kind"], e["layer"], e["role"], e["units_axis"], e["decisive"])
        roles.append(role)
        got = {a: arrays.get(f"{e['name']}|{a}") for a in _ARRAYS}
        for a in ("rows", "anchor"):
            if got[a] is not None:
                got[a] = got[a].astype(np.float32)
        prints.append(TensorPrint(role, e["dtype"], tuple(e["digests"]), e["units"], e["hidden"],
                                  anchor_tokens=tuple(e["anchor_tokens"]), **got))
    by_module: dict[str, list[TensorRole]] = {}
    for r in roles:
        by_module.setdefault(r.module, []).append(r)
    modules = tuple(Module(m["name"], m["kind"], m["family"], tuple(by_module.get(m["name"], ()))) for m in meta["modules"])
    v = meta.get("vocab")
    vocab = None if v is None else Vocabulary(v["file"], tuple(v["tokens"]), tuple(v["merges"]))
    return Fingerprint(meta["source"], meta["parameters"], tuple(prints), modules, vocab, meta.get("settings", {}))
