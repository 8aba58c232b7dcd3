"""What a fingerprint stores so that an unrelated reference is cheap to compare (the anchors'
unrelated-test probe, the index test's reference side) gives the figures the whole arrays give,
and fingerprints registered before those arrays existed still load and agree."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from checker import synth
from checker.audit import gather_evidence
from checker.metrics import alignment
from checker.metrics.anchors import RowSource, _token_pair, _TokenPair, _unrelated_tokens
from checker.modules import TensorRole, split_modules
from checker.references import store as store_mod
from checker.references.prints import PROBE_ARRAYS
from checker.references.registry import load_references
from checker.references.store import ArrayStore, array_digest
from checker.scanners.tokenizer import Vocabulary, model_vocabulary
from checker.weights import open_checkpoint
from checker.weights.common import sha256_file


class _Stream:
    def __init__(self, mat: np.ndarray):
        self.mat = mat

    def rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        return torch.from_numpy(self.mat[start:stop])

    def take_rows(self, name: str, ids: list[int]) -> torch.Tensor:
        return torch.from_numpy(self.mat[ids])


def _role(shape) -> TensorRole:
    return TensorRole("model.embed_tokens.weight", tuple(shape), "model.embed_tokens", "embeddings", None, "embed", 0, True)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def test_the_stored_probe_gives_the_figures_of_the_whole_table():
    rng = np.random.default_rng(3)
    table = rng.standard_normal((1500, 48)).astype(np.float16)  # the reference's anchors, as stored
    sub = rng.standard_normal((1800, 48)).astype(np.float32)
    ri, si = np.arange(1500), rng.choice(1800, 1500, replace=False)  # every anchor shared
    reads = []

    def read():
        reads.append(1)
        return table

    got = _unrelated_tokens(_TokenPair(RowSource(_Stream(sub)), _role(sub.shape), read, ri, si,
                                       alignment.unrelated_probe(table.astype(np.float32))), None, {}, 48)
    assert not reads  # the whole table was never read
    want = _unrelated_tokens(_TokenPair(RowSource(_Stream(sub)), _role(sub.shape), read, ri, si), None, {}, 48)
    assert reads
    assert _close(got[0], want[0])
    g, w = got[1].alignment.identity_rows, want[1].alignment.identity_rows
    assert (g.n_rows, g.n_cols) == (w.n_rows, w.n_cols) == (alignment.UNRELATED_HELD, 48)
    assert _close(g.score, w.score) and _close(g.z, w.z) and _close(g.log10_p, w.log10_p)


def test_the_probe_is_used_only_when_every_anchor_token_is_shared():
    from checker.references.prints import TensorPrint

    tokens = tuple(f"t{i}" for i in range(64))
    table = np.random.default_rng(4).standard_normal((64, 16)).astype(np.float32)
    probe = alignment.unrelated_probe(table)
    g = probe.sketch
    rp = TensorPrint(_role((64, 16)), "F32", (), 64, 16, anchor_tokens=tokens,
                     arrays={"anchor": table, "row_index": np.arange(64), "geometry": g.upper,
                             "geometry_moments": np.array([g.n, g.s1, g.s2, g.s3]), "held_normed": probe.held[0],
                             "held_gram": probe.held[1]})
    rows = RowSource(_Stream(table))
    same = Vocabulary("v", tokens, ())
    assert _token_pair(rows, _role((64, 16)), same, rp, same, lambda: table).probe is not None
    fewer = Vocabulary("v", tokens[:-1] + ("other",), ())
    pair = _token_pair(rows, _role((64, 16)), fewer, rp, same, lambda: table)
    assert len(pair) == 63 and pair.probe is None  # other positions: the whole table decides


def _as_old(entry_folder, drop: set[str]) -> None:
    """Rewrite a registered fingerprint without the arrays named in ``drop``, as registered by a
    version that did not store them (digests recomputed, so it verifies)."""
    arrays_path, meta_path = entry_folder / "fingerprint.safetensors", entry_folder / "fingerprint.json"
    arrays = {k: v for k, v in load_file(str(arrays_path)).items() if k.split("|")[-1] not in drop}
    save_file(arrays, str(arrays_path))
    meta = json.loads(meta_path.read_text())
    meta["array_sha256"] = {k: array_digest(a) for k, a in sorted(arrays.items())}
    meta_path.write_text(json.dumps(meta))
    entry = json.loads((entry_folder / "entry.json").read_text())
    entry["fingerprint"]["sha256"] = {n: sha256_file(entry_folder / n) for n in ("fingerprint.json", "fingerprint.safetensors")}
    (entry_folder / "entry.json").write_text(json.dumps(entry))


def _evidence(folder, registry):
    reader = open_checkpoint(folder)
    modules = split_modules(reader.tensors())
    return gather_evidence(reader, modules, model_vocabulary(folder, reader), load_references(registry))[0]


def _leaves(x, path=""):
    if isinstance(x, dict):
        for k in sorted(x, key=str):
            yield from _leaves(x[k], f"{path}.{k}")
    elif isinstance(x, (list, tuple, np.ndarray)):
        for i, v in enumerate(x):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, x


def _same_figures(a, b) -> None:
    la, lb = list(_leaves([asdict(m) for m in a])), list(_leaves([asdict(m) for m in b]))
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (p, x), (_, y) in zip(la, lb):
        if isinstance(x, float) and isinstance(y, float):
            assert _close(x, y), (p, x, y)
        else:
            assert x == y, (p, x, y)


def test_old_fingerprints_give_the_same_figures(zoo, tmp_path, monkeypatch):
    """An unrelated language model (the probe and the stored index sides), a fine-tuned vision
    tower (the whole tables), and a vocabulary that shares all but a few anchor tokens (the whole
    table again): the same figures from a fingerprint with the stored sides and from one without."""
    new, old = tmp_path / "new", tmp_path / "old"
    shutil.copytree(zoo.registry, new)
    shutil.copytree(zoo.registry, old)
    _as_old(old / "foreign-vlm", set(PROBE_ARRAYS) | {"index_rows", "index_gram"})
    read: list[str] = []
    view = ArrayStore._view
    monkeypatch.setattr(store_mod.ArrayStore, "_view", lambda self, key: read.append(key) or view(self, key))

    folder = zoo.save("stored-sides", zoo.ft_vit, zoo.ind_lm)
    got = _evidence(folder, new)
    # the unrelated embedding table was not read (the tiny models' output heads, trained on the same
    # text, have alike geometries, r ~0.87: that pair reads its whole table, as it should)
    assert "model.embed_tokens.weight|anchor" not in read and "model.embed_tokens.weight|held_normed" in read
    assert any(k.endswith("|index_rows") for k in read)
    _same_figures(got, _evidence(folder, old))

    vocab = list(zoo.vocab)
    vocab[-3:] = ["<other_0>", "<other_1>", "<other_2>"]
    other = synth.save_checkpoint(zoo.root / "stored-sides-vocab", synth.state(zoo.ind_lm), vocab)
    read.clear()
    got = _evidence(other, new)
    assert any(k.endswith("|anchor") and "embed_tokens" in k for k in read)  # partial overlap: the whole table
    _same_figures(got, _evidence(other, old))
