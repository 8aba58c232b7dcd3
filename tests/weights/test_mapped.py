"""Tensors read through a governed memory map (issue: scale, memory at 405B width).

A tensor of ``mapped.MAP_BYTES`` or more is handed over as a view of a memory map instead of being
read into memory. The values are the same bytes, so registration and audit must give the same
fingerprint, the same file hashes and the same figures bit for bit; and the pages touched through a
map must not pile up in the process.
"""

from __future__ import annotations

import os
import threading

import pytest
import torch
from safetensors.torch import load_file, save_file

from checker import synth
from checker.audit import audit
from checker.errors import WeightsError
from checker.metrics import rowmatch
from checker.references.registry import add_reference
from checker.rules import load_pack
from checker.weights import mapped, open_checkpoint
from checker.weights.common import sha256_file
from checker.weights.stream import CheckpointStream
from checker.weights.values import value_range

from checker.report.json_report import build_report, dumps


@pytest.fixture(scope="module")
def subjects(zoo):
    def subject(lm, vit):
        return synth.Subject({**synth.state(vit), **synth.state(lm)}, list(zoo.vocab), lm.config, vit.config)

    # the bfloat16 copy's full test goes through the folded bfloat16 search (rowmatch._Fold)
    cases = {"composite": subject(zoo.ind_lm, zoo.ft_vit), "permuted": synth.permute_units(subject(zoo.ft_lm, zoo.ind_vit)),
             "bf16": synth.round_trip(synth.permute_units(subject(zoo.ft_lm, zoo.ft_vit)), "bf16")}
    return {name: synth.save_checkpoint(zoo.root / f"mapped-{name}", s.state, s.vocab) for name, s in cases.items()}


def _register_and_audit(zoo, subjects, registry):
    """Each submission's JSON report, with the registry's folder and the clock taken out."""
    add_reference(str(zoo.root / "foreign-vlm"), registry, ref_id="foreign-vlm", license="llama3.1")
    pack = load_pack()
    out = {}
    for name, f in subjects.items():
        r = audit(str(f), registry, pack)
        out[name] = (r, dumps(build_report(r)).replace(str(registry), "REGISTRY"))
    return out


def test_mapping_every_tensor_gives_the_same_fingerprint_and_figures_bit_for_bit(zoo, subjects, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    folds = []
    real_fold = rowmatch._Fold.scores
    monkeypatch.setattr(rowmatch, "bf16_hardware", lambda: True)  # the fold on any machine
    monkeypatch.setattr(rowmatch._Fold, "scores", lambda self, b: (folds.append(b.shape), real_fold(self, b))[1])
    read = _register_and_audit(zoo, subjects, tmp_path / "read")
    maps = []
    real = mapped.map_tensor
    monkeypatch.setattr(mapped, "map_tensor", lambda *a: (maps.append(a[3]), real(*a))[1])
    monkeypatch.setattr(mapped, "MAP_BYTES", 1)  # every tensor with any bytes is mapped
    monkeypatch.setattr(mapped, "WALK_BYTES", 700)  # and walked a few rows at a time (uneven blocks)
    mapped_results = _register_and_audit(zoo, subjects, tmp_path / "mapped")
    assert len(maps) > 100  # the reference's and both submissions' tensors went through maps
    for name in ("fingerprint.safetensors", "fingerprint.json"):
        a = next((tmp_path / "read").rglob(name)).read_bytes()
        b = next((tmp_path / "mapped").rglob(name)).read_bytes()
        assert a == b, name
    for name, (r, report) in read.items():
        m, mapped_report = mapped_results[name]
        assert report == mapped_report  # verdicts, every figure and the file hashes (taken from the maps)
        assert r.submission.files == m.submission.files and r.submission.files
        assert _figures(r) == _figures(m)  # unrounded: the report rounds to 6 digits
    assert {mv.status for mv in read["composite"][0].modules} >= {"derived", "independent"}
    assert folds and {mv.status for mv in read["bf16"][0].modules} == {"derived"}


def _figures(result) -> list:
    """Every module's best match's figures, as computed (the JSON report rounds them)."""
    out = []
    for mv in result.modules:
        b = mv.best
        out.append((mv.name, mv.log10_p_corrected) + (() if b is None else (b.score, b.log10_p, b.fisher_log10_p)))
    return out


def _big_model(folder, rows: int, cols: int):
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    t = {"model.layers.0.mlp.up_proj.weight": torch.randn(rows, cols, generator=g).to(torch.bfloat16),
         "model.layers.0.input_layernorm.weight": torch.ones(cols, dtype=torch.bfloat16)}
    save_file(t, str(folder / "model.safetensors"))
    return folder / "model.safetensors"


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc")
def test_pages_touched_through_a_map_are_dropped_as_a_pass_goes_on(tmp_path, monkeypatch):
    path = _big_model(tmp_path / "big", 12288, 16384)  # 384 MiB of bf16
    monkeypatch.setattr(mapped, "MAP_BYTES", 64 << 20)
    monkeypatch.setattr(mapped, "PAGE_BUDGET", 32 << 20)
    stream = CheckpointStream(open_checkpoint(path.parent))
    peak, stop = [0], threading.Event()
    base = mapped._file_resident()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], mapped._file_resident() - base)
            stop.wait(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    drops = mapped.GOVERNOR.drops
    try:
        for st in stream:
            t = st.load()
            if st.nbytes >= mapped.MAP_BYTES:
                lo, hi = value_range(t)  # touches every page once
                total = float(t.sum(dtype=torch.float32))  # and again, in torch
                assert lo < 0 < hi and total == total
            del t
    finally:
        stop.set()
        watcher.join()
    assert stream.files[0].sha256 == sha256_file(path)
    assert mapped.GOVERNOR.drops > drops
    assert peak[0] < 200 << 20, f"file-backed resident memory grew by {peak[0] >> 20} MiB over a 384 MiB tensor"


def test_a_file_truncated_under_the_audit_is_one_error_not_a_fault(tmp_path, monkeypatch):
    path = _big_model(tmp_path / "cut", 64, 64)
    stream = CheckpointStream(open_checkpoint(path.parent))  # the header was read whole
    os.truncate(path, path.stat().st_size - 100)  # then the file shrank (a map past its end would fault)
    monkeypatch.setattr(mapped, "MAP_BYTES", 1)
    with pytest.raises(WeightsError, match="truncated"):
        for st in stream:
            st.load()


@pytest.mark.parametrize("stored", [True, False])
def test_column_units_of_a_large_matrix_come_in_the_same_blocks_and_layout(monkeypatch, stored):
    from checker.metrics import summary

    g = torch.Generator().manual_seed(1)
    m = torch.randn(48, 301, generator=g).to(torch.bfloat16)  # hidden x units, units on columns
    plain = list(summary.unit_blocks(m, 1, max_elements=48 * 20, stored=stored))
    monkeypatch.setattr(mapped, "MAP_BYTES", 1)
    monkeypatch.setattr(mapped, "WALK_BYTES", 7 * 301 * 2)  # 7 stored rows at a time
    monkeypatch.setattr(mapped, "GATHER_BYTES", 48 * 2 * 70)  # 60 units (3 blocks) per chunk: 301 = 5 chunks + 1
    walked = list(summary.unit_blocks(m, 1, max_elements=48 * 20, stored=stored))
    assert [s for s, _ in walked] == [s for s, _ in plain] == list(range(0, 301, 20))
    for (_, a), (_, b) in zip(plain, walked):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)
        assert (a.stride(0) == 1) == (b.stride(0) == 1)  # the same layout: consumers gather the same way
    sample = summary.unit_stride(m, 1, 7)
    monkeypatch.setattr(mapped, "MAP_BYTES", 1 << 40)
    plain_sample = summary.unit_stride(m, 1, 7)
    assert torch.equal(sample, plain_sample)
    assert sample.stride() == plain_sample.stride()  # the same layout, so the same sums downstream
    from checker.metrics import rowmatch

    def moments(x):
        sq = x * x
        return rowmatch.group_moments(x, torch.arange(0, 48, 2), sq)

    for a, b in zip(moments(sample), moments(plain_sample)):
        assert torch.equal(a, b)


def test_a_file_that_cannot_be_mapped_is_read(tmp_path, monkeypatch):
    path = _big_model(tmp_path / "nomap", 64, 64)
    monkeypatch.setattr(mapped, "MAP_BYTES", 1)

    def refuse(*_):
        raise OSError("no mmap here")

    monkeypatch.setattr(mapped, "map_tensor", refuse)
    stream = CheckpointStream(open_checkpoint(path.parent))
    got = {st.info.name: st.load().clone() for st in stream}
    want = load_file(str(path))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert stream.files[0].sha256 == sha256_file(path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device visible to torch")
def test_a_large_tensor_goes_to_the_gpu_in_row_blocks_unchanged(monkeypatch):
    monkeypatch.setattr(mapped, "MAP_BYTES", 1)
    monkeypatch.setattr(mapped, "WALK_BYTES", 1000)
    t = torch.randn(301, 77).to(torch.bfloat16)
    on_gpu = mapped.to_device(t, "cuda")  # 301 rows, 6 at a time
    assert on_gpu.device.type == "cuda" and torch.equal(on_gpu.cpu(), t)


def test_an_integer_tensor_is_digested_block_by_block_as_its_float32_widening():
    from checker.metrics import digests

    q = torch.randint(-128, 127, (12000, 1000), dtype=torch.int8)  # two blocks of at most 8M elements
    whole = digests.reference_digests(q.to(torch.float32))
    assert digests.reference_digests(q) == whole
    small = q[:1000]
    assert digests.reference_digests(small) == digests.reference_digests(small.to(torch.float32)) != whole


def test_the_files_are_read_ahead_of_each_tensor_handed_out(tmp_path, monkeypatch):
    """The stream reads its files ahead (mapped.ReadAhead, on its own thread), shard after shard, and
    tells it the end of each tensor as it hands the tensor out, in file order across shards: the read
    stays READ_AHEAD_BYTES beyond the tensor at hand. The hashes and values do not depend on it."""
    a = {"a.w": torch.randn(64, 32), "b.w": torch.randn(16, 8)}
    b = {"c.w": torch.randn(40, 4)}
    first, second = tmp_path / "model-00001-of-00002.safetensors", tmp_path / "model-00002-of-00002.safetensors"
    save_file(a, str(first))
    save_file(b, str(second))
    weight_map = {k: first.name for k in a} | {"c.w": second.name}
    (tmp_path / "model.safetensors.index.json").write_text(__import__("json").dumps({"weight_map": weight_map}))
    made, events = [], []
    real = mapped.ReadAhead

    def recording(files):
        made.append(real(files))
        return made[-1]

    monkeypatch.setattr(mapped, "ReadAhead", recording)
    monkeypatch.setattr(mapped, "READ_AHEAD_BYTES", 100)
    stream = CheckpointStream(open_checkpoint(str(tmp_path)))
    for st in stream:
        events.append((st.info.name, made[0].limit))
        assert torch.equal(st.load(), {**a, **b}[st.info.name])
    (ahead,) = made
    assert ahead._files == [(str(first), first.stat().st_size), (str(second), second.stat().st_size)]
    ends = {name: e.end for es in (stream._layout[first][1], stream._layout[second][1]) for e in es for name in [e.info.name]}
    told = [ends["a.w"] + 100, ends["b.w"] + 100, first.stat().st_size + ends["c.w"] + 100]
    assert events == [("a.w", told[0]), ("b.w", told[1]), ("c.w", told[2])]  # before each tensor is handed out
    ahead.join(5)
    assert not ahead._thread.is_alive()  # stopped when the pass ended
    assert [f.sha256 for f in stream.files] == [sha256_file(first), sha256_file(second)]


@pytest.mark.skipif(not hasattr(os, "sendfile"), reason="the read-ahead falls back to a hint without sendfile")
def test_read_ahead_puts_the_bytes_in_the_page_cache_not_in_the_process(tmp_path, monkeypatch):
    """The read-ahead of an evicted file makes every page it reached resident (mincore of a map of it),
    while the process's own memory does not grow by the range; it reads no further than it was told
    (READ_AHEAD_BYTES beyond the last tensor handed out), and once stopped it reads nothing more."""
    import ctypes
    import mmap

    path = tmp_path / "big.bin"
    data = os.urandom(1 << 20) * 64  # 64 MiB
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    del data
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        mm = mmap.mmap(fd, 64 << 20, access=mmap.ACCESS_COPY)  # private: ctypes needs a writable buffer
        libc = ctypes.CDLL(None, use_errno=True)
        pages = (64 << 20) // mmap.PAGESIZE
        vec = (ctypes.c_ubyte * pages)()
        head = ctypes.c_char.from_buffer(mm)
        ptr = ctypes.c_void_p(ctypes.addressof(head))

        def resident() -> float:
            if libc.mincore(ptr, ctypes.c_size_t(64 << 20), vec) != 0:
                pytest.skip("mincore unavailable")
            return sum(v & 1 for v in vec) / pages

        def settle(done) -> float:
            for _ in range(500):
                if done():
                    break
                threading.Event().wait(0.01)
            return resident()

        if resident() > 0.01:
            pytest.skip("the file could not be evicted from the page cache here")
        before = _anon_kib()
        monkeypatch.setattr(mapped, "READ_AHEAD_BYTES", 0)
        stopped = mapped.ReadAhead([(str(path), 64 << 20)])  # told nothing yet: waits
        stopped.stop()
        stopped.join(5)
        assert not stopped._thread.is_alive() and resident() < 0.5
        monkeypatch.setattr(mapped, "READ_AHEAD_BYTES", 16 << 20)
        ahead = mapped.ReadAhead([(str(path), 64 << 20)])
        assert 0.2 < settle(lambda: resident() >= 0.25) < 0.5  # 16 MiB, then it waits
        ahead.reached(str(path), 48 << 20)  # a tensor ending at 48 MiB handed out: read on to the end
        ahead.join(10)
        assert not ahead._thread.is_alive() and resident() > 0.95
        assert _anon_kib() - before < 16 * 1024
        del head
        mm.close()
    finally:
        os.close(fd)


@pytest.mark.parametrize("send", [True, False])
def test_the_read_ahead_never_reads_past_its_window(tmp_path, monkeypatch, send):
    """Every read (``sendfile``), or every hint where ``sendfile`` is refused (``posix_fadvise``,
    as on a file system without it), stays within READ_AHEAD_BYTES of the last tensor handed out,
    across files; a file that cannot be opened is skipped with its bytes counted."""
    sizes = [("a", 1000), ("missing", 500), ("b", 700)]
    for name, size in sizes:
        if name != "missing":
            (tmp_path / name).write_bytes(b"x" * size)
    files = {os.path.realpath(tmp_path / name): i for i, (name, _) in enumerate(sizes)}
    starts = {0: 0, 1: 1000, 2: 1500}
    asked = []
    fds = {}
    real_open = os.open

    def opening(path, flags, *a):
        fd = real_open(path, flags, *a)
        if os.path.realpath(path) in files:
            fds[fd] = starts[files[os.path.realpath(path)]]
        return fd

    def sending(out, fd, at, n):
        if not send:
            raise OSError(22, "sendfile refused")
        asked.append((fds[fd] + at, n))
        return n

    def hinting(fd, at, n, advice):
        asked.append((fds[fd] + at, n))

    monkeypatch.setattr(mapped.os, "open", opening)
    monkeypatch.setattr(mapped.os, "sendfile", sending)
    monkeypatch.setattr(mapped.os, "posix_fadvise", hinting)
    monkeypatch.setattr(mapped, "_AHEAD_CHUNK", 64)
    monkeypatch.setattr(mapped, "READ_AHEAD_BYTES", 300)
    ahead = mapped.ReadAhead([(str(tmp_path / name), size) for name, size in sizes])

    def settle(upto):
        for _ in range(500):
            if asked and asked[-1][0] + asked[-1][1] >= upto:
                break
            threading.Event().wait(0.01)
        return asked[-1][0] + asked[-1][1]

    assert settle(300) == 300  # told nothing yet: the first 300 bytes, and no more
    threading.Event().wait(0.05)
    assert asked[-1][0] + asked[-1][1] == 300
    ahead.reached(str(tmp_path / "a"), 900)
    assert settle(1000) == 1000  # the end of "a"; the limit, 1200, falls in "missing": skipped, counted
    threading.Event().wait(0.05)
    assert asked[-1][0] + asked[-1][1] == 1000
    ahead.reached(str(tmp_path / "b"), 400)  # the end of the last file, 1900 into the files
    ahead.join(5)
    assert not ahead._thread.is_alive()
    covered = sorted(asked)
    assert covered[0][0] == 0 and all(x + n == y for (x, n), (y, _) in zip(covered, covered[1:]) if y != 1500)
    assert covered[-1][0] + covered[-1][1] == 2200 and all(n <= 64 for _, n in covered)
    assert not any(x < 1500 and x + n > 1000 for x, n in covered)  # nothing asked of the missing file


def _anon_kib() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("RssAnon:"))


def test_a_tensor_read_into_memory_starts_on_an_aligned_address(tmp_path):
    """A tensor below MAP_BYTES is read into a buffer of its own, which starts on an ALIGN_BYTES
    boundary (hardware.ALIGN_BYTES: bfloat16 products of an unaligned operand run slower), whatever
    the offset of its bytes in the file; the values are the file's."""
    from checker.hardware import ALIGN_BYTES

    tensors = {f"t{i}.w": torch.randn(3 + i, 5).to(torch.bfloat16) for i in range(6)}  # odd sizes: odd offsets
    save_file(tensors, str(tmp_path / "model.safetensors"))
    seen = 0
    for st in CheckpointStream(open_checkpoint(str(tmp_path))):
        t = st.load()
        assert t.data_ptr() % ALIGN_BYTES == 0 and torch.equal(t, tensors[st.info.name])
        seen += 1
    assert seen == len(tensors)

