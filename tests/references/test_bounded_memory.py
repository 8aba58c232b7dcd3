"""What keeps memory flat however deep the model: registration writes each print to a scratch file as
it is made (and the registered fingerprint is the same bytes as one written from memory), a
reference's read pages are released as an audit goes on, and neither the file hash nor the content
digests hold a large tensor beside the one before it."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch

from checker.errors import CheckerError, RegistryError
from checker.metrics import engine
from checker.references import store as store_mod
from checker.references.fingerprint import build_fingerprint, fingerprint_pass, save_fingerprint
from checker.references.registry import add_reference
from checker.references.store import ArrayStore, SpillFile, array_digest
from checker.weights import open_checkpoint
from checker.weights import stream as stream_mod
from checker.weights.stream import CheckpointStream


def _model(folder, layers: int = 3, hidden: int = 48, seed: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    t = {"model.embed_tokens.weight": torch.randn(300, hidden, generator=g)}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "self_attn.q_proj.weight"] = torch.randn(hidden, hidden, generator=g)
        t[p + "mlp.up_proj.weight"] = torch.randn(2 * hidden, hidden, generator=g)
        t[p + "mlp.down_proj.weight"] = torch.randn(hidden, 2 * hidden, generator=g)
        t[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(hidden, generator=g)
    save_torch({k: v.to(torch.bfloat16) for k, v in t.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": hidden}))
    return folder


def test_spilled_prints_give_the_same_fingerprint_bytes(tmp_path):
    src = _model(tmp_path / "m")
    in_memory = build_fingerprint(open_checkpoint(src), None, "m")
    with SpillFile(tmp_path) as spill:
        spilled, _ = fingerprint_pass(open_checkpoint(src), None, "m", spill=spill)
        assert all(not tp.arrays for tp in spilled.tensors)  # nothing held: every array is in the scratch file
        assert any(tp.store is spill for tp in spilled.tensors)
        reads = []
        real_get = spill.get
        spill.get = lambda key: (reads.append(key), real_get(key))[1]
        assert spilled.nbytes() == in_memory.nbytes() and not reads  # sizes from the scratch file's index
        save_fingerprint(spilled, tmp_path / "a")
        assert sorted(reads) == sorted(spill._at) and len(set(reads)) == len(reads)  # each array read once
    save_fingerprint(in_memory, tmp_path / "b")
    for name in ("fingerprint.safetensors", "fingerprint.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_registration_leaves_no_scratch_file_and_no_registry_on_failure(tmp_path):
    src = _model(tmp_path / "m")
    reg = tmp_path / "reg"
    add_reference(str(src), reg, "v/m", "apache-2.0")
    assert sorted(p.name for p in reg.iterdir()) == ["v__m"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(CheckerError, match="model.safetensors"):
        add_reference(str(bad), tmp_path / "reg2", "v/bad", "apache-2.0")
    assert not (tmp_path / "reg2").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == []


def test_references_are_verified_and_loaded_one_at_a_time(tmp_path, monkeypatch):
    """One parsed fingerprint JSON at a time (a real vocabulary parses to tens of MB, 50 of them at
    once, more than a gigabyte); a tampered one still stops the load in one line."""
    from checker.references import registry

    reg = tmp_path / "reg"
    for i in range(3):
        add_reference(str(_model(tmp_path / f"m{i}", layers=1, seed=i)), reg, f"v/m{i}", "apache-2.0")
    events = []
    verify, load = registry.RegistryEntry.verify, registry.load_fingerprint
    monkeypatch.setattr(registry.RegistryEntry, "verify", lambda self: events.append("verify") or verify(self))
    monkeypatch.setattr(registry, "load_fingerprint", lambda *a: events.append("load") or load(*a))
    assert [e.id for e, _ in registry.load_references(reg)] == ["v/m0", "v/m1", "v/m2"]
    assert events == ["verify", "load"] * 3
    card = reg / "v__m2" / "fingerprint.json"
    card.write_text(card.read_text().replace('"v/m2"', '"v/mX"', 1) + " ")
    with pytest.raises(RegistryError, match="fingerprint.json: does not match the digest"):
        registry.load_references(reg)


def test_spill_file_reads_back_as_stored(tmp_path):
    rows = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    with SpillFile(tmp_path) as spill:
        spill.put("t|rows", rows)  # a HALF array: kept as float16, as the registry stores it
        spill.put("t|row_index", np.arange(5))
        assert spill.get("t|rows").dtype == np.float16
        assert np.array_equal(spill.get_float32("t|rows"), rows.astype(np.float16).astype(np.float32))
        assert np.array_equal(spill.get("t|row_index"), np.arange(5))
        with pytest.raises(ValueError):
            spill.view("t|row_index")[0] = 1
        assert spill.get("t|missing") is None and not spill.has("t|missing")


def test_a_scratch_folder_that_cannot_be_written_is_one_line(tmp_path):
    with pytest.raises(RegistryError, match="cannot create the registration's scratch file") as err:
        SpillFile(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(err.value) and "\n" not in str(err.value)


def _rss_file_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssFile"):
            return int(line.split()[1])
    raise AssertionError("no RssFile")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RssFile from /proc/self/status (Linux)")
def test_read_pages_of_a_reference_are_released(tmp_path, monkeypatch):
    arrays = {f"t{i}|rows": np.full((1024, 1024), i, np.float16) for i in range(24)}  # 2 MiB each
    path = tmp_path / "fingerprint.safetensors"
    save_file(arrays, str(path))
    st = ArrayStore(path, {k: array_digest(a) for k, a in arrays.items()})
    monkeypatch.setattr(store_mod, "RELEASE_BYTES", 1 << 60)
    before = _rss_file_kib()
    for k in arrays:
        st.view(k)
    assert _rss_file_kib() - before > 30_000  # 48 MiB read and mapped in
    st.release()
    assert _rss_file_kib() - before < 8_000
    monkeypatch.setattr(store_mod, "RELEASE_BYTES", 8 * 2**20)
    peak = 0
    for k in arrays:  # released every 8 MiB read, by the store itself
        assert float(st.get_float32(k)[3, 3]) == float(k[1:].split("|")[0])  # values intact after a release
        peak = max(peak, _rss_file_kib() - before)
    assert peak < 20_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RssFile from /proc/self/status (Linux)")
def test_small_arrays_count_what_a_read_maps(tmp_path, monkeypatch):
    """A page fault maps the cached pages around it (64 KiB), so reading 300 small sketches that lie
    between large arrays maps some 19 MB: each read counts that much towards a release."""
    arrays = {}
    for i in range(300):
        arrays[f"t{i:03d}|gram"] = np.full(2048, i, np.float16)  # 4 KiB
        arrays[f"t{i:03d}|rows"] = np.zeros((256, 256), np.float16)  # 128 KiB between them
    path = tmp_path / "fingerprint.safetensors"
    save_file(arrays, str(path))
    st = ArrayStore(path, {k: array_digest(a) for k, a in arrays.items()})
    monkeypatch.setattr(store_mod, "RELEASE_BYTES", 2 * 2**20)
    st.release()
    before, peak = _rss_file_kib(), 0
    for i in range(300):
        assert float(st.view(f"t{i:03d}|gram")[5]) == i
        peak = max(peak, _rss_file_kib() - before)
    assert peak < 6_000


class _SlowHash:
    """A sha256 whose updates take a while, so reads would run ahead of it."""

    def __init__(self, real):
        self._h = real()

    def update(self, b):
        time.sleep(0.02)
        self._h.update(b)

    def hexdigest(self):
        return self._h.hexdigest()


def test_the_file_hash_never_holds_a_large_tensor_beside_the_next(tmp_path, monkeypatch):
    big = {f"w{i}": np.random.default_rng(i).standard_normal((256, 1024)).astype(np.float32) for i in range(4)}  # 1 MiB each
    save_file(big, str(tmp_path / "model.safetensors"))
    want = stream_mod.hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()
    monkeypatch.setattr(stream_mod, "HASH_BACKLOG", 1536 * 1024)  # room for one such tensor, not two
    real = stream_mod.hashlib.sha256
    monkeypatch.setattr(stream_mod.hashlib, "sha256", lambda *a: _SlowHash(real))
    s = CheckpointStream(open_checkpoint(tmp_path))
    for st in s:
        st.load()
    # the backlog counts the tensor about to be read: never 2 MiB waiting at once
    assert s.peak_backlog <= 1536 * 1024
    assert s.files[0].sha256 == want


def test_content_digests_make_room_before_the_next_tensor(monkeypatch):
    monkeypatch.setattr(engine, "DIGEST_BACKLOG", 3 * 2**20)
    done = []
    with engine._Digests() as d:
        for i in range(3):
            t = torch.full((512, 1024), float(i))  # 2 MiB each
            d.make_room(t.numel() * 4)
            assert d._bytes + t.numel() * 4 <= 3 * 2**20 or not d._pending
            d.keep(d.start(t), done.append)
        skipped = d.start(torch.ones(4))  # started early and never kept: no callback
        late = d.start(torch.full((512, 1024), 7.0))
        d.make_room(3 * 2**20)  # collects both before either is kept
        d.keep(late, done.append)  # the digest kept after its collection is not lost
    assert len(done) == 4 and skipped[1] is not None and skipped[0] is None
