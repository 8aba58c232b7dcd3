"""A token table's content digest is skipped only where it could match nothing (digests.CopyProbe).

The probe reads the rows each reference print recorded of its tables (float16, at known indices).
It must never rule out a table that is a copy (as stored, or the reference's bfloat16 or float16
rounding: each shares a digest with the reference), and it must rule out a table whose recorded
rows differ, so that a noised copy's 4.2 GB of tables (at 70B) are not hashed for nothing."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from checker import synth
from checker.audit import audit
from checker.metrics import digests, engine
from checker.metrics.digests import CopyProbe, copy_probe
from checker.rules import load_pack


def _table(rows: int = 300, cols: int = 40) -> torch.Tensor:
    """float32 values over every range a rounding treats apart: normal, float16 subnormal, below
    float16's smallest subnormal, near and beyond float16's largest value, zeros, negatives."""
    g = torch.Generator().manual_seed(0)
    t = torch.randn(rows, cols, generator=g) * 0.02
    scales = torch.tensor([1e-5, 3e-8, 1e-9, 6e4, 7e4, 0.0, 1.0, 0.3])  # per column group
    t *= scales.repeat_interleave(cols // len(scales))[None, :] / 0.02 * (torch.rand(rows, cols, generator=g) + 0.5)
    # and the edges: float16's largest values and its overflow, its smallest subnormal and half of it,
    # its smallest normal, and the value whose bfloat16 and float16 roundings lie farthest apart
    edges = torch.tensor([65504.0, 65519.99, 65520.0, 2.0 ** -25 * (1 + 2 ** -10), 2.0 ** -25 * (1 - 2 ** -10),
                          2.0 ** -24, 2.0 ** -14 * (1 - 2 ** -11), 2.0 ** -14, 1.003418, -1.003418, -0.0])
    t[: len(edges) * 3].view(-1)[: len(edges) * 3 * cols: cols + 1][: len(edges)] = edges
    t[::7, -1] = edges.repeat(rows // 7 // len(edges) + 1)[: len(t[::7, -1])]
    return t


def _print(t: torch.Tensor, idx: np.ndarray, digests_=("d",)):
    """A reference print as registration records it: the sampled rows, float32 values rounded to float16."""
    with np.errstate(over="ignore"):  # beyond float16's range: recorded as infinite, as registration does
        arrays = {"anchor": t[torch.as_tensor(idx)].numpy().astype(np.float16), "row_index": idx}
    return types.SimpleNamespace(role=types.SimpleNamespace(shape=tuple(t.shape)), digests=digests_,
                                 has=lambda name: name in arrays, stored=arrays.get)


def _feed(probe: CopyProbe, table: torch.Tensor, step: int) -> bool:
    for s in range(0, table.shape[0], step):
        if probe.rules_out(table[s:s + step], s):
            return True
    return False


@pytest.mark.parametrize("step", [1, 7, 300])
@pytest.mark.parametrize("form", ["as stored", "bfloat16 rounding", "float16 rounding", "bfloat16 stored"])
def test_a_copy_in_any_form_that_shares_a_digest_is_never_ruled_out(form, step):
    t = _table()
    idx = np.sort(np.random.default_rng(1).choice(t.shape[0], 120, replace=False))
    ref = t
    if form == "bfloat16 stored":  # the reference itself in bfloat16: its rows rounded to float16 from there
        ref = t.to(torch.bfloat16).float()
    if form == "float16 rounding":  # a rounding to infinity is no copy the engine accepts: those values set to 0
        ref = torch.where(t.to(torch.float16).isfinite(), t, torch.zeros(()))
    sub = {"as stored": ref, "bfloat16 rounding": ref.to(torch.bfloat16), "bfloat16 stored": ref.to(torch.bfloat16),
           "float16 rounding": ref.to(torch.float16)}[form]
    assert not _feed(CopyProbe([(idx, _print(ref, idx).stored("anchor"))]), sub, step)


@pytest.mark.parametrize("scale", [1e-5, 3e-8, 1.0, 6e4])
def test_one_changed_value_of_a_recorded_row_rules_the_copy_out(scale):
    t = _table()
    col = {1e-5: 0, 3e-8: 5, 1.0: 30, 6e4: 15}[scale]
    t[17, col] = 0.7 * scale  # within float16's range (a recorded infinity rules nothing out)
    idx = np.array([5, 17, 200])
    probe = lambda: CopyProbe([(idx, _print(t, idx).stored("anchor"))])  # noqa: E731
    changed = t.clone()
    changed[17, col] = t[17, col] * 1.02 + (1e-6 if scale < 1e-4 else 0)  # beyond any rounding
    assert _feed(probe(), changed, 7)
    unsampled = t.clone()
    unsampled[18] += 1.0  # a row no reference recorded: only the digest can tell
    assert not _feed(probe(), unsampled, 7)
    assert not _feed(probe(), t, 300)


def test_every_same_shape_reference_tensor_must_be_ruled_out():
    t, other = _table(), _table() * 2
    idx = np.arange(0, 300, 10)
    assert copy_probe(t.shape, [_print(other, idx)]).rules_out(t, 0)
    assert not copy_probe(t.shape, [_print(other, idx), _print(t, idx)]).rules_out(t, 0)  # a copy of the second
    assert copy_probe(t.shape, [_print(t[:, :20], idx)]).rules_out(t, 0)  # another shape: no digest can match
    assert copy_probe(t.shape, [_print(t, idx, digests_=())]).rules_out(t, 0)  # no digests recorded (a fixed table)
    bare = types.SimpleNamespace(role=types.SimpleNamespace(shape=tuple(t.shape)), digests=("d",),
                                 has=lambda name: False, stored=lambda name: None)
    assert copy_probe(t.shape, [_print(other, idx), bare]) is None  # a tensor that recorded no rows: digest it


def _digested_shapes(monkeypatch) -> list:
    shapes = []

    class Counting(digests.Digester):
        def __init__(self, shape, stored, first_only=False):
            super().__init__(shape, stored, first_only)
            self.shape = tuple(shape)

        def update(self, block):
            shapes.append(self.shape)
            super().update(block)

    monkeypatch.setattr(engine, "Digester", Counting)
    return shapes


def test_a_noised_copys_tables_are_not_digested_and_an_exact_copys_still_are(zoo, monkeypatch):
    shapes = _digested_shapes(monkeypatch)
    gen = torch.Generator().manual_seed(4)
    state = synth.state(zoo.ref_lm)
    table = tuple(state["model.embed_tokens.weight"].shape)
    noised = {k: v + 0.05 * v.std() * torch.randn(v.shape, generator=gen) if "embed" in k or "lm_head" in k else v
              for k, v in state.items()}
    folder = zoo.save("noised-tables", tensors=noised)
    result = audit(str(folder), zoo.registry, load_pack())
    mods = {m.name: m for m in result.modules}
    assert mods["model.embed_tokens"].status == "derived", mods["model.embed_tokens"].reason
    assert table not in shapes, shapes
    # the same audit with the probe off: the tables are digested, and nothing else changes
    monkeypatch.setattr(engine, "copy_probe", lambda shape, prints: None)
    before = audit(str(folder), zoo.registry, load_pack())
    assert table in shapes
    assert before.modules == result.modules and before.verdict == result.verdict
    monkeypatch.undo()
    shapes = _digested_shapes(monkeypatch)
    result = audit(str(zoo.save("copy-tables", zoo.ref_lm)), zoo.registry, load_pack())
    assert {m.name: m.status for m in result.modules}["model.embed_tokens"] == "identical"
    assert table in shapes


def test_a_table_read_in_many_blocks(zoo, tmp_path, monkeypatch):
    """Real registration and audit with tables cut into 8-row blocks: a noised copy is ruled out in
    its first block, and the rest of the table is still read into the file hash and checked finite;
    a copy in every form that shares a digest is still found identical and never ruled out."""
    import hashlib

    from checker.errors import WeightsError
    from checker.references.registry import add_reference
    from checker.weights.stream import StreamedTensor

    state = synth.state(zoo.ref_lm)
    width = state["model.embed_tokens.weight"].shape[1]
    monkeypatch.setattr(StreamedTensor.blocks, "__defaults__", (width * 8, False))  # 8 rows a block
    registry = tmp_path / "registry"
    add_reference(str(zoo.save("blocks-ref", zoo.ref_lm)), registry, ref_id="ref", license="apache-2.0")
    outcomes = []
    real = engine.copy_probe

    def spying(shape, prints):
        probe = real(shape, prints)
        rules_out = probe.rules_out
        probe.rules_out = lambda b, start: outcomes.append(rules_out(b, start)) or outcomes[-1]
        return probe

    monkeypatch.setattr(engine, "copy_probe", spying)
    gen = torch.Generator().manual_seed(4)
    tables = [k for k in state if "embed" in k or "lm_head" in k]
    noised = {**state, **{k: state[k] + 0.05 * state[k].std() * torch.randn(state[k].shape, generator=gen) for k in tables}}
    folder = zoo.save("blocks-noised", tensors=noised)
    result = audit(str(folder), registry, load_pack())
    assert {m.name: m.status for m in result.modules}["model.embed_tokens"] == "derived"
    assert outcomes[0] is True  # ruled out in the first block; no later block was probed
    for f in result.submission.files:
        if f.path.endswith(".safetensors"):
            assert f.sha256 == hashlib.sha256((folder / f.path).read_bytes()).hexdigest()
    poisoned = dict(noised)
    poisoned["model.embed_tokens.weight"] = noised["model.embed_tokens.weight"].clone()
    poisoned["model.embed_tokens.weight"][-1, 0] = float("nan")  # in the last block, after the ruling out
    with pytest.raises(WeightsError, match="model.embed_tokens.weight"):
        audit(str(zoo.save("blocks-nan", tensors=poisoned)), registry, load_pack())
    forms = {"bf16 rounding": lambda v: v.to(torch.bfloat16).float(), "fp16 rounding": lambda v: v.to(torch.float16).float(),
             "bf16 stored": lambda v: v.to(torch.bfloat16), "fp16 stored": lambda v: v.to(torch.float16)}
    for name, form in forms.items():
        outcomes.clear()
        copy_ = {**state, **{k: form(state[k]) for k in tables}}
        result = audit(str(zoo.save(f"blocks-{name.replace(' ', '-')}", tensors=copy_)), registry, load_pack())
        assert {m.name: m.status for m in result.modules}["model.embed_tokens"] == "identical", name
        assert len(outcomes) > 2 and not any(outcomes), name
