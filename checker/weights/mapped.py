"""Tensors too large to hold: read through a memory map whose pages are kept out of the process.

At 405B width one FFN matrix is 1.74 GB in bf16 and an embedding 4.2 GB; held whole, a single
tensor passes the audit's memory bound. The stream hands a tensor of MAP_BYTES or more over as a
view of a private memory map of its bytes instead (:func:`map_tensor`): every pass reads it as it
would a tensor in memory, so every value and every statistic is bit for bit the same.

Pages touched through a map count against the process until they are dropped. A governor thread
watches the process's file-backed resident memory (``/proc/self/statm``) while any map is alive,
and whenever it has grown by PAGE_BUDGET since the first map opened, drops every live map's pages
(``madvise(MADV_DONTNEED)``): they stay in the page cache, and the next touch maps them again from
the file, as the first did. Nothing is ever written through a map (the stream hands out read-only
views in practice: the map is copy-on-write, so a stray write could not reach the file either), so
dropping pages never loses a value. Where the platform lacks ``madvise`` or ``/proc``, maps still
work and their pages are left to the kernel.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
import weakref
from typing import Iterator

import torch

#: Tensors of at least this many stored bytes are mapped rather than read into memory.
MAP_BYTES = 256 * 1024 * 1024
#: Growth of the process's file-backed resident memory that makes the governor drop mapped pages.
PAGE_BUDGET = 256 * 1024 * 1024
#: Bytes per row block when a large tensor is walked in storage order (:func:`row_blocks`).
WALK_BYTES = 32 * 1024 * 1024
#: Bytes of a large matrix's units copied out at a time when its units are its columns.
GATHER_BYTES = 128 * 1024 * 1024
_TICK_S = 0.01
_AHEAD_CHUNK = 64 * 1024 * 1024
#: At most this many bytes of a tensor are read ahead (:func:`read_ahead`).
READ_AHEAD_BYTES = 512 * 1024 * 1024


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4096


_PAGE = _page_size()


def _file_resident() -> int | None:
    """Bytes of file-backed (and shared) memory resident in this process, or None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[2]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class _Governor:
    """Drops the pages of live maps whenever the file-backed resident memory outgrows its budget."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._maps: list[weakref.ref] = []
        self._thread: threading.Thread | None = None
        self._base = 0
        self.drops = 0  # how many times pages were dropped (tests, benchmarks)

    def watch(self, mm: mmap.mmap) -> None:
        if not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        with self._lock:
            self._maps = [r for r in self._maps if r() is not None]
            if not self._maps:
                self._base = _file_resident() or 0
            self._maps.append(weakref.ref(mm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="page-governor", daemon=True)
                self._thread.start()

    def drop(self) -> None:
        """Drop every live map's pages now."""
        with self._lock:
            maps = [m for m in (r() for r in self._maps) if m is not None]
        for m in maps:
            try:
                m.madvise(mmap.MADV_DONTNEED)
            except (ValueError, OSError):  # closed meanwhile
                pass
        self.drops += 1

    def pace(self) -> None:
        """Drop the live maps' pages if they are over budget: called between the blocks of a walk,
        so that an operation faster than the governor's tick cannot pile pages up."""
        if self._maps:
            now = _file_resident()
            if now is not None and now - self._base > PAGE_BUDGET:
                self.drop()

    def _run(self) -> None:
        while True:
            time.sleep(_TICK_S)
            with self._lock:
                self._maps = [r for r in self._maps if r() is not None]
                if not self._maps:
                    self._thread = None
                    return
            self.pace()


GOVERNOR = _Governor()


def map_tensor(fd: int, begin: int, end: int, dtype: torch.dtype, shape: tuple[int, ...]) -> tuple[torch.Tensor, memoryview]:
    """The tensor stored at bytes ``begin:end`` of the open file ``fd``, as a view of a private memory
    map, and a view of the same bytes (to hash them). The map lives as long as either view; its
    pages are governed (see the module). The caller checks that the file holds ``end`` bytes: a
    map past the end of a file faults on first touch."""
    start = begin - begin % mmap.ALLOCATIONGRANULARITY
    mm = mmap.mmap(fd, end - start, offset=start, access=mmap.ACCESS_COPY)
    GOVERNOR.watch(mm)
    raw = memoryview(mm)[begin - start:end - start]
    numel = (end - begin) // torch.empty((), dtype=dtype).element_size()
    t = torch.frombuffer(mm, dtype=dtype, count=numel, offset=begin - start).reshape(shape)
    return t, raw


def read_ahead(path, begin: int, end: int, stop: threading.Event | None = None) -> None:
    """Have the kernel read bytes ``begin:end`` of the file at ``path`` into the page cache. The
    stream asks for each tensor while the one before it is being compared, so a cold file is read
    from disk beside the work instead of in its way (pages first touched through a map are
    otherwise read a fault at a time, 64 KiB or so each). The bytes are sent to ``/dev/null`` with
    ``sendfile``: read at disk speed, never copied into the process, the GIL released (measured:
    1.7 GB in 1.3 s while a Python loop beside it kept its pace; ``posix_fadvise(WILLNEED)`` and
    ``MADV_WILLNEED`` did nothing on the test machine, and ``MADV_POPULATE_READ`` holds the GIL).
    The pages are the page cache's, not the process's: nothing here counts against the memory
    bound. At most READ_AHEAD_BYTES are read (the head of a larger tensor: the rest, at 405B width
    1.2 GB of an FFN matrix, is still read from disk as the walks touch it), in chunks, and ``stop`` ends it
    between chunks (an audit that ends early leaves no disk traffic behind). Where ``sendfile``
    is missing or refused, the same hint is given with ``posix_fadvise``, or nothing is done."""
    end = min(end, begin + READ_AHEAD_BYTES)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            at = begin
            while at < end and not (stop is not None and stop.is_set()):
                sent = os.sendfile(null, fd, at, min(_AHEAD_CHUNK, end - at))
                if sent <= 0:
                    break
                at += sent
        finally:
            os.close(null)
    except (AttributeError, OSError):
        try:
            os.posix_fadvise(fd, begin, end - begin, os.POSIX_FADV_WILLNEED)
        except (AttributeError, OSError):
            pass
    finally:
        os.close(fd)


def large(t: torch.Tensor) -> bool:
    """Whether ``t`` is large enough to be mapped (and so walked in row blocks, never in one sweep)."""
    return t.numel() * t.element_size() >= MAP_BYTES


def row_blocks(m: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, block of whole rows) of a tensor, WALK_BYTES at a time, pacing the governor
    after each block. A sweep in one operation over a mapped tensor maps pages faster than the
    governor's tick, and one that reads a few values of every row (a column) maps all of it: the
    kernel maps the 64 KiB around each fault."""
    row = max(1, m[0].numel() * m.element_size()) if m.dim() and len(m) else 1
    step = max(1, WALK_BYTES // row)
    for s in range(0, len(m) if m.dim() else 1, step):
        yield s, m[s:s + step] if m.dim() else m
        GOVERNOR.pace()


def to_device(t: torch.Tensor, device: str) -> torch.Tensor:
    """``t`` on ``device``; a large CPU tensor is copied in row blocks (:func:`row_blocks`), so a
    mapped tensor's pages are dropped as the copy goes on instead of all being mapped at once."""
    if t.device.type == torch.device(device).type or not large(t) or t.dim() == 0:
        return t.to(device)
    out = torch.empty(t.shape, dtype=t.dtype, device=device)
    for s, b in row_blocks(t):
        out[s:s + len(b)] = b.to(device)
    return out
