"""Reference sketches stacked for the screen's products (metrics.stacks.SketchStack).

A large stack lives in a mapped scratch file whose pages are dropped after each chunk of a
product: the products must be those of the same rows in memory, bit for bit, and the audit's
evidence must not change; the pages must leave the process."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from checker import synth
from checker.audit import audit
from checker.metrics import stacks
from checker.metrics.screen import GramSketch, upper_products
from checker.metrics.stacks import SketchStack
from checker.rules import load_pack


def _uppers(n: int = 300, width: int = 8128, dtype=np.float16) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(-1, 1, width).astype(dtype) for _ in range(n)]


def _sub(width: int = 8128) -> GramSketch:
    return GramSketch(np.random.default_rng(1).uniform(-1, 1, width).astype(np.float32), 128, 0.0, 1.0, 1.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_a_mapped_stack_gives_the_products_of_the_rows_in_memory(monkeypatch, dtype):
    uppers, sub = _uppers(dtype=dtype), _sub()
    in_memory = upper_products(np.stack(uppers).astype(np.float32), sub)  # what the screen computed before
    monkeypatch.setattr(stacks, "MAP_BYTES", 1)
    monkeypatch.setattr(stacks, "CHUNK_BYTES", 7 * 8128 * 4)  # written in uneven chunks: 300 rows = 42 x 7 + 6
    released = []
    st = SketchStack(uppers, lambda: released.append(1))
    assert st._map is not None and len(released) == 43  # written in chunks, the sketches' pages released after each
    assert np.array_equal(upper_products(st, sub), in_memory)
    monkeypatch.undo()
    held = SketchStack(uppers[:5])
    assert held._map is None
    assert np.array_equal(upper_products(held, sub), upper_products(np.stack(uppers[:5]).astype(np.float32), sub))


@pytest.mark.parametrize("where", ["file", "reservation"])
def test_without_scratch_space_the_stack_is_held_in_memory(monkeypatch, where):
    uppers, sub = _uppers(40), _sub()
    monkeypatch.setattr(stacks, "MAP_BYTES", 1)

    def no_space(*a, **k):
        raise OSError(28, "No space left on device")

    if where == "file":
        monkeypatch.setattr(stacks.tempfile, "TemporaryFile", no_space)
    else:  # the file opens, its blocks cannot be reserved (a full disk or a quota)
        monkeypatch.setattr(stacks.os, "posix_fallocate", no_space)
    st = SketchStack(uppers)
    assert st._map is None
    assert np.array_equal(upper_products(st, sub), upper_products(np.stack(uppers).astype(np.float32), sub))


def _file_rss_kib() -> int:
    """File-backed and shared resident memory (a scratch file on tmpfs counts as shared)."""
    with open("/proc/self/status") as fh:
        return sum(int(line.split()[1]) for line in fh if line.startswith(("RssFile", "RssShmem")))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status (Linux)")
def test_a_mapped_stacks_pages_leave_the_process_after_each_product():
    uppers, sub = _uppers(4000), _sub()  # 130 MB of float32 rows
    st = SketchStack(uppers)
    assert st._map is not None
    before = _file_rss_kib()
    big = upper_products(st, sub)
    assert _file_rss_kib() - before < 16 * 1024  # not the 127 MiB the rows take
    assert np.array_equal(big, upper_products(np.stack(uppers).astype(np.float32), sub))
    st.rows.sum()  # touched without a product's drop, they do count
    assert _file_rss_kib() - before > 100 * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status (Linux)")
def test_a_product_holds_one_chunk_of_rows_at_a_time(monkeypatch):
    """A product of a long mapped stack (4,000 rows, 130 MB) never has more than about one chunk
    of rows resident, and gives the products of the same rows held in memory, chunk for chunk."""
    uppers, sub = _uppers(4000), _sub()
    st = SketchStack(uppers)
    assert st._map is not None
    release, seen = SketchStack._release, []

    def sampled(self, start, end):
        seen.append(_file_rss_kib() - before)  # just before the chunk's pages are dropped
        release(self, start, end)
    monkeypatch.setattr(SketchStack, "_release", sampled)
    before = _file_rss_kib()
    got = upper_products(st, sub)
    chunk_kib = stacks.PRODUCT_ROWS * 8128 * 4 // 1024
    assert len(seen) == -(-4000 // stacks.PRODUCT_ROWS) and max(seen) < 2 * chunk_kib + 4096
    assert np.array_equal(got, upper_products(np.stack(uppers).astype(np.float32), sub))
    rows = np.stack(uppers).astype(np.float32)
    chunked = np.concatenate([rows[a:a + stacks.PRODUCT_ROWS] @ sub.upper for a in range(0, 4000, stacks.PRODUCT_ROWS)])
    assert np.array_equal(got.astype(np.float32), chunked)


@pytest.mark.parametrize("case", ["fine-tuned", "hidden permuted"])
def test_the_audit_is_the_same_with_its_stacks_mapped(zoo, monkeypatch, case):
    """Both stacks: the same-shape one (every reference tensor of the shape, aligned by identity)
    and the per-role one (targets under another alignment: a permuted residual stream)."""
    from checker.metrics import engine, matrices

    if case == "fine-tuned":
        folder = zoo.save("stacks-ft", zoo.ft_lm, zoo.ind_vit)
    else:
        s = synth.permute_hidden(synth.Subject({**synth.state(zoo.ind_vit), **synth.state(zoo.ft_lm)},
                                               list(zoo.vocab), zoo.ft_lm.config, zoo.ind_vit.config))
        folder = synth.save_checkpoint(zoo.root / "stacks-permuted", s.state, s.vocab)
    held = audit(str(folder), zoo.registry, load_pack())
    mapped_by = []
    for module in (engine, matrices):
        monkeypatch.setattr(module, "sketch_stack", lambda uppers, m=module.__name__: (
            mapped_by.append(m), stacks.sketch_stack(uppers))[1])
    monkeypatch.setattr(stacks, "MAP_BYTES", 1)
    result = audit(str(folder), zoo.registry, load_pack())
    assert "checker.metrics.engine" in mapped_by
    if case == "hidden permuted":
        assert "checker.metrics.matrices" in mapped_by  # the per-role stack was built, and mapped
    assert result.modules == held.modules and result.verdict == held.verdict
