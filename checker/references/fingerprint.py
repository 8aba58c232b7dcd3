"""Reference fingerprints: what the provenance tests need, without the weights.

For every 2-D weight a fingerprint keeps a sample of unit rows (in the
"units x hidden" orientation, chosen by the tensor's shape), the mean and standard
deviation of every hidden column over all rows, the hidden Gram sketch the layer
screen compares (:mod:`checker.metrics.screen`), and content digests in float32,
bfloat16 and float16.
For token embeddings it keeps the rows of a sample of tokens together with
their strings, and what the unrelated-anchor test reads of them when a submission shares every
sampled token (:class:`~checker.metrics.alignment.UnrelatedProbe`: the geometry sketch of 512
rows and 256 held-out rows normed, with their Gram matrix), so an unrelated reference's table is
not read whole; for patch embeddings (whose other axis is fixed by the pixels)
the whole matrix. Norm weights and biases are kept whole: they are small and
only ever weak evidence. Fused 3-D expert tensors are printed expert by expert, each
slice as the dense FFN matrix it stands for (:mod:`checker.metrics.experts`), exactly as
the engine compares a submission's experts.

Size: a 2-D weight of U units costs min(U, K_ROWS) rows of float16, so about
2 * K_ROWS / U bytes per parameter, plus the index test's reference side (the same rows
normed at up to 1,024 columns, and their K_ROWS x K_ROWS Gram matrix, float16), stored
so that an unrelated reference is never recomputed at audit time; for 7B-class models
(U = 4096..11008) this is about 2-3% of the bf16 checkpoint, plus ANCHOR_TOKENS
embedding rows and their unrelated-anchor probe (9 MiB a token table at hidden 4096)
(estimated by benchmarks/provenance_suite.py, which prints it per billion parameters:
47-57 MiB).

Every array's digest is recorded in the JSON; an audit checks each array as it first reads it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from checker import __version__
from checker.errors import RegistryError
from checker.modules import Module, TensorRole, split_modules
from checker.references.prints import ARRAYS, Fingerprint, TensorPrint
from checker.references.store import ARRAY_DIGESTS, HALF, ArrayStore, SpillFile, write_arrays
from checker.scanners.tokenizer import Vocabulary, packed
from checker.metrics.alignment import UNRELATED_HELD, geometry_pick, held_anchors, unrelated_probe
from checker.hardware import give_back_after, one_pool
from checker.metrics.screen import GramSketch, screen_columns
from checker.metrics.digests import Digester, reference_digests
from checker.metrics.fixed_tables import recognise
from checker.metrics.indexed import INDEX_COLS, reference_side
from checker.metrics.experts import ExpertPlan, expert_plans, expert_slices, is_fused_expert
from checker.metrics.summary import summarize, units_by_hidden_shape
from checker.weights.interface import WeightsReader
from checker.weights.stream import CheckpointStream, StreamedTensor
from checker.weights.values import all_finite, require_finite, require_in_range, value_range

FINGERPRINT_VERSION = 5  # 5: Gram sketches and index rows of units scaled to unit RMS; 4: fused 3-D experts
K_ROWS = 128
ANCHOR_TOKENS = 4096
_SEED = 20251126
TOKEN_ROLES = frozenset({"embed", "lm_head"})
ANCHOR_ROLES = frozenset({"embed", "lm_head", "patch_embed", "pos_embed"})
VECTOR_ROLES = frozenset({"norm", "bias"})
_BLOCK_ROWS = 8192


def tensor_digests(t: torch.Tensor) -> tuple[str, ...]:
    """Canonical digests of the values and of their bf16 and fp16 roundings
    (:mod:`checker.metrics.digests`): two tensors are identical "after dtype normalisation"
    when any of their digests agree."""
    return reference_digests(t)


def estimated_nbytes(roles, k_rows: int = K_ROWS, anchor_tokens: int = ANCHOR_TOKENS) -> int:
    """What :meth:`Fingerprint.nbytes` will be for tensors of these shapes, without reading them:
    states the fingerprint's size for models too large to fingerprint in a benchmark."""
    total = 0
    for r in roles:
        if is_fused_expert(r):  # printed expert by expert (the v5 layout's shapes)
            total += estimated_nbytes(ExpertPlan(r, r.shape[0], False, False).parts(), k_rows, anchor_tokens)
        elif len(r.shape) < 2:
            total += 4 * r.numel
        elif r.role in ("patch_embed", "pos_embed"):
            total += 2 * r.numel
        else:
            units = r.shape[r.units_axis] if len(r.shape) == 2 else r.shape[0]
            hidden = r.numel // units
            k = min(units, anchor_tokens if r.role in TOKEN_ROLES else k_rows)
            total += k * hidden * 2 + k * 8
            if r.role in TOKEN_ROLES:  # the unrelated-anchor probe: geometry sketch (float32), held rows normed
                g, h = len(geometry_pick(k)), len(held_anchors(k, UNRELATED_HELD))  # and their Gram matrix (float64)
                total += 4 * (g * (g - 1) // 2) + 4 * 8 + 8 * h * (hidden + h)
            if r.role not in TOKEN_ROLES:  # column moments; the index test's normed rows and Gram matrix
                total += 2 * 4 * hidden + 2 * k * (min(hidden, INDEX_COLS) + k)
            if r.role not in TOKEN_ROLES:
                g = len(screen_columns(hidden))
                total += g * (g - 1)  # float16 upper triangle
    return total


def input_rows(a, role: str):
    """An input-anchor tensor as inputs x hidden (numpy or torch): a patch embedding's kernel
    [hidden, channels, ...] transposed to pixel inputs x hidden; a position table [.., positions,
    hidden] (a leading batch axis of 1 included) as positions x hidden."""
    return a.reshape(a.shape[0], -1).T if role == "patch_embed" else a.reshape(-1, a.shape[-1])


def _as_stored(a: np.ndarray | None) -> np.ndarray | None:
    """Rows and anchors are stored as float16: a fingerprint used in memory (``compare``) holds
    exactly the values a registered one is read back with, so both give the same figures."""
    return None if a is None else a.astype(np.float16).astype(np.float32)


def _sample(n: int, k: int, *shape: int) -> np.ndarray:
    """A sample of k of n rows, fixed by the tensor's shape (never by its name)."""
    if n <= k:
        return np.arange(n)
    seed = int.from_bytes(hashlib.sha256(f"{_SEED}:{n}:{k}:{shape}".encode()).digest()[:4], "little")
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def print_streamed(st: StreamedTensor, role: TensorRole, vocab: Vocabulary | None, k_rows: int = K_ROWS,
                   anchor_tokens: int = ANCHOR_TOKENS, device: str = "cpu") -> TensorPrint:
    """Fingerprint one tensor of a pass, reading it once."""
    dtype = st.info.dtype
    if role.role in TOKEN_ROLES and len(role.shape) == 2:
        return _print_token_matrix(st, role, dtype, vocab, anchor_tokens)
    native = st.load()
    table = recognise(native)
    if table is not None:
        return TensorPrint(role, dtype, (), fixed=table.kind)
    return _print_loaded(native, role, dtype, st.info, k_rows, device)


def _print_loaded(native: torch.Tensor, role: TensorRole, dtype: str, info, k_rows: int, device: str) -> TensorPrint:
    if native.dtype == torch.float64:  # the only stored dtype whose values can leave float32's range
        require_in_range(*value_range(native), info)
    if native.dim() < 2 or role.role in ("patch_embed", "pos_embed"):
        require_finite(all_finite(native), info)
    digests = tensor_digests(native)
    if native.dim() < 2:
        return TensorPrint(role, dtype, digests, arrays={"vector": native.to(torch.float32).numpy().ravel()})
    if role.role in ("patch_embed", "pos_embed"):
        # Rows are hidden units for a patch embedding, positions for a position table:
        # stored whole as "inputs x hidden" anchors, for aligning the hidden dimension.
        anchor = np.ascontiguousarray(input_rows(native.to(torch.float32).numpy(), role.role))
        return TensorPrint(role, dtype, digests, units=anchor.shape[0], hidden=anchor.shape[1], arrays={"anchor": _as_stored(anchor)})
    units, hidden = units_by_hidden_shape(tuple(native.shape), role.units_axis)
    idx = _sample(units, k_rows, units, hidden)
    cols = screen_columns(hidden)
    summ = summarize(native, role.units_axis, {"screen": cols} if len(cols) >= 4 else {}, idx, device)
    require_finite(summ.finite, info)
    rows = _as_stored(summ.rows)
    index_rows, index_gram = reference_side(rows)
    # held in float16, as stored, and widened when read (TensorPrint._array): a deep model's prints are
    # held until they are written, so this halves what registration holds (same values exactly)
    rows, index_rows, index_gram = (a.astype(np.float16) for a in (rows, index_rows, index_gram))
    return TensorPrint(role, dtype, digests, units=units, hidden=hidden, gram=summ.grams.get("screen"),
                       arrays={"rows": rows, "row_index": idx, "col_mean": summ.col_mean, "col_std": summ.col_std,
                               "index_rows": index_rows, "index_gram": index_gram})


def _print_token_matrix(st: StreamedTensor, role: TensorRole, dtype: str, vocab: Vocabulary | None,
                        anchor_tokens: int) -> TensorPrint:
    """Token matrices can be the largest tensors: read them in row blocks."""
    n, d = role.shape
    idx = _sample(n, anchor_tokens, n, d)
    stored = st.stored_dtype
    ds = [Digester((n, d), stored)] + ([Digester((n, d), torch.bfloat16), Digester((n, d), torch.float16)]
                                       if stored not in (torch.bfloat16, torch.float16) else [])
    # float16, as stored (widened when read: TensorPrint._array); made before the pass and filled
    # block by block: kept pieces between the blocks' freed copies would fragment the heap (at 405B
    # width it grew by 0.5 GB over one token table)
    anchor = np.empty((len(idx), d), dtype=np.float16)
    start = at = 0
    for block in st.blocks():
        ds[0].update(block)
        for dg, dt in zip(ds[1:], (torch.bfloat16, torch.float16)):
            dg.update(block.to(dt))
        sel = idx[(idx >= start) & (idx < start + block.shape[0])] - start
        anchor[at:at + len(sel)] = block[torch.as_tensor(sel, dtype=torch.long)].numpy()
        at += len(sel)
        start += block.shape[0]
    tokens = tuple(vocab.tokens[i] if vocab is not None and i < len(vocab.tokens) else f"<id:{i}>" for i in idx)
    probe = unrelated_probe(anchor)
    g = probe.sketch
    return TensorPrint(role, dtype, tuple(dict.fromkeys(dg.hexdigest() for dg in ds)), units=n, hidden=d,
                       anchor_tokens=tokens, arrays={"anchor": anchor, "row_index": idx, "geometry": g.upper,
                                                     "geometry_moments": np.array([g.n, g.s1, g.s2, g.s3]),
                                                     "held_normed": probe.held[0], "held_gram": probe.held[1]})


def fingerprint_pass(reader: WeightsReader, vocab: Vocabulary | None, source: str, k_rows: int = K_ROWS,
                     anchor_tokens: int = ANCHOR_TOKENS, device: str = "cpu",
                     progress=None, spill: SpillFile | None = None) -> tuple["Fingerprint", tuple]:
    """Fingerprint a whole checkpoint in one read of its files, which also hashes them.
    Returns the fingerprint and the weight files with their sha256. With ``spill``, each print's
    arrays go to that scratch file as soon as the print is made, and the prints read them back
    from there (registration: memory does not grow with depth)."""
    infos = reader.tensors()
    modules = split_modules(infos)
    roles = {tr.name: tr for m in modules for tr in m.tensors}
    plans = {k: p for k, p in expert_plans(modules).items() if isinstance(p, ExpertPlan)}
    stream = CheckpointStream(reader)
    prints = _Prints(spill)
    with one_pool():
        for st in stream:
            name = st.info.name
            if name in plans:  # fused experts: one print per expert matrix, as the engine compares them
                native = st.load()
                for vr, sl in expert_slices(plans[name], native):
                    prints[vr.name] = _print_loaded(sl, vr, st.info.dtype, st.info, k_rows, device)
                del native
            elif is_fused_expert(roles[name]):  # a layout not understood: kept for exact copies only
                prints[name] = TensorPrint(roles[name], st.info.dtype, tensor_digests(st.load()))
            else:
                prints[name] = print_streamed(st, roles[name], vocab, k_rows, anchor_tokens, device)
            give_back_after(st.nbytes)
            if progress is not None:
                progress(st.info.numel)
    # Modules list the expert matrices in place of their fused tensors, as a stored fingerprint reads back.
    modules = tuple(Module(m.name, m.kind, m.family, tuple(p for tr in m.tensors for p in
                                                           (plans[tr.name].parts() if tr.name in plans else (tr,))))
                    for m in modules)
    ordered = tuple(prints[tr.name] for m in modules for tr in m.tensors)
    fp = Fingerprint(source, sum(i.numel for i in infos), ordered, modules, vocab,
                     {"k_rows": k_rows, "anchor_tokens": anchor_tokens})
    return fp, stream.files


class _Prints(dict):
    """The prints of a pass, by tensor name; with a spill file, each print's arrays are written
    there as it is added, and the print kept reads them back from there on access."""

    def __init__(self, spill: SpillFile | None):
        super().__init__()
        self._spill = spill

    def __setitem__(self, name: str, tp: TensorPrint) -> None:
        if self._spill is not None and tp.arrays:
            for a, arr in tp.arrays.items():
                self._spill.put(f"{tp.role.name}|{a}", arr)
            tp = replace(tp, arrays={}, store=self._spill)
        super().__setitem__(name, tp)


def build_fingerprint(reader: WeightsReader, vocab: Vocabulary | None, source: str,
                      k_rows: int = K_ROWS, anchor_tokens: int = ANCHOR_TOKENS, device: str = "cpu") -> Fingerprint:
    """Fingerprint a whole checkpoint, one tensor at a time."""
    return fingerprint_pass(reader, vocab, source, k_rows, anchor_tokens, device)[0]


# -- storage: JSON metadata + safetensors arrays (no pickle anywhere) ---------------------

_GRAM = "gram"


def save_fingerprint(fp: Fingerprint, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, tuple] = {}  # key -> (dtype, shape, make): written one by one (store.write_arrays)
    entries = []
    for tp in fp.tensors:
        r = tp.role
        entries.append({
            "name": r.name, "shape": list(r.shape), "module": r.module, "kind": r.kind, "layer": r.layer,
            "role": r.role, "units_axis": r.units_axis, "decisive": r.decisive, "dtype": tp.dtype,
            "digests": list(tp.digests), "units": tp.units, "hidden": tp.hidden,
            "anchor_tokens": list(tp.anchor_tokens), **({"fixed": tp.fixed} if tp.fixed else {}),
            "gram": None if tp.gram is None else {"n": tp.gram.n, "s1": tp.gram.s1, "s2": tp.gram.s2, "s3": tp.gram.s3},
        })
        for a in ARRAYS:
            info = tp.array_info(a)  # dtype and shape only: the array is read once, when it is written
            if info is not None:
                dtype = np.dtype(np.float16) if a in HALF else info[0]
                arrays[f"{r.name}|{a}"] = (dtype, info[1],
                                           lambda tp=tp, a=a, dtype=dtype: tp._array(a).astype(dtype, copy=False))
        if tp.gram is not None:
            upper = tp.gram.upper
            arrays[f"{r.name}|{_GRAM}"] = (np.dtype(np.float16), upper.shape, lambda u=upper: u.astype(np.float16))
    meta = {
        "fingerprint_version": FINGERPRINT_VERSION, "tool": {"name": "fromscratch", "version": __version__},
        "source": fp.source, "parameters": fp.parameters, "settings": fp.meta,
        "modules": [{"name": m.name, "kind": m.kind, "family": m.family} for m in fp.modules],
        "tensors": entries,
        "vocab": None if fp.vocab is None else {"file": fp.vocab.file, "tokens": list(fp.vocab.tokens), "merges": list(fp.vocab.merges)},
    }
    # the screen's sketches side by side: every audit reads all of them when the fingerprint loads
    # (against 50 references of 64 layers, 22,400 seeks where the registry is not in the page cache)
    meta[ARRAY_DIGESTS] = dict(sorted(write_arrays(folder / "fingerprint.safetensors", arrays, f"|{_GRAM}").items()))
    (folder / "fingerprint.json").write_text(json.dumps(meta), encoding="utf-8")


def load_fingerprint(folder: Path, meta: dict | None = None) -> Fingerprint:
    """A registered fingerprint; ``meta`` is its JSON when the caller already parsed it (the
    registry, from the bytes it verified)."""
    meta_path, arr_path = folder / "fingerprint.json", folder / "fingerprint.safetensors"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta is None else meta
        store = ArrayStore(arr_path, meta.get(ARRAY_DIGESTS))
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
        g = e.get("gram")
        gram = None
        if g is not None:
            upper = store.view(f"{e['name']}|{_GRAM}")
            if upper is None:
                raise RegistryError(str(arr_path), f"sketch of {e['name']!r} is missing; re-add the reference")
            gram = GramSketch(upper, int(g["n"]), float(g["s1"]), float(g["s2"]), float(g["s3"]))
        prints.append(TensorPrint(role, e["dtype"], tuple(e["digests"]), e["units"], e["hidden"], gram,
                                  packed(e["anchor_tokens"]), store=store, fixed=e.get("fixed", "")))
    by_module: dict[str, list[TensorRole]] = {}
    for r in roles:
        by_module.setdefault(r.module, []).append(r)
    modules = tuple(Module(m["name"], m["kind"], m["family"], tuple(by_module.get(m["name"], ()))) for m in meta["modules"])
    v = meta.get("vocab")
    vocab = None if v is None else Vocabulary(v["file"], packed(v["tokens"]), packed(v["merges"]))
    return Fingerprint(meta["source"], meta["parameters"], tuple(prints), modules, vocab, meta.get("settings", {}))
