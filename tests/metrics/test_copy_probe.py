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
    sub = {"as stored": ref, "bfloat16 rounding": ref.to(torch.bfloat16), "bfloat16 stored": ref.to(torch.bfloat16),
           "float16 rounding": ref.to(torch.float16)}[form]
    if form == "float16 rounding":  # beyond float16's range the rounding is infinite: the engine refuses that table
        sub = torch.where(sub.isfinite(), sub, torch.zeros((), dtype=sub.dtype))
        ref = torch.where(ref.abs() < 65504, ref, torch.zeros(()))
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
