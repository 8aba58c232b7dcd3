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
#: How far beyond the tensor at hand the pass's files are read ahead (:class:`ReadAhead`).
READ_AHEAD_BYTES = 1024 * 1024 * 1024


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


class ReadAhead:
    """Reads a pass's files into the page cache, in order, on a thread of its own, while the pass
    works on the bytes before: a cold file is read from disk beside the work instead of in its way
    (pages first touched through a map are otherwise read a fault at a time, 64 KiB or so each).
    The read stays at most READ_AHEAD_BYTES beyond the end of the tensor the pass has handed out
    last (:meth:`reached`), so at 70B width the next FFN matrices are in the page cache before the
    pass gets to them, and a disk faster than the work never fills memory with what is far ahead.

    The bytes are sent to ``/dev/null`` with ``sendfile``: read at disk speed, never copied into the
    process, the GIL released (measured: 1.7 GB in 1.3 s while a Python loop beside it kept its
    pace; ``posix_fadvise(WILLNEED)`` and ``MADV_WILLNEED`` did nothing on the test machine, and
    ``MADV_POPULATE_READ`` holds the GIL). The pages are the page cache's, not the process's:
    nothing here counts against the memory bound. Where ``sendfile`` is missing or refused, the
    same window is asked for with the ``posix_fadvise`` hint instead, or nothing is done. :meth:`stop` ends it between
    chunks (an audit that ends early leaves no disk traffic behind); a file it cannot open is
    skipped (the pass's own read reports it)."""

    def __init__(self, files: list[tuple[str, int]]):
        self._files = files  # (path, size) in the order the pass reads them
        self._starts, at = {}, 0  # each file's first byte in the concatenated files
        for path, size in files:
            self._starts[path] = at
            at += size
        self._window = READ_AHEAD_BYTES
        self._limit = self._window  # how far into the concatenated files it may read
        self._cond = threading.Condition()
        self._stopped = False
        self._send = True  # sendfile works here (until it fails once)
        self._thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)
        self._thread.start()

    @property
    def limit(self) -> int:
        """How far into the concatenated files it may read now."""
        with self._cond:
            return self._limit

    def reached(self, path: str, offset: int) -> None:
        """The pass has handed out every byte of the files before ``offset`` in file ``path``: read
        on up to READ_AHEAD_BYTES beyond it."""
        with self._cond:
            self._limit = max(self._limit, self._starts[path] + offset + self._window)
            self._cond.notify()

    def stop(self) -> None:
        """Read nothing more: the thread ends once the chunk it is reading (if any) is in."""
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after :meth:`stop`, or once every file is read)."""
        self._thread.join(timeout)

    def _wait(self, done: int) -> int:
        """Bytes it may read now after ``done`` (0 once stopped), waiting while the pass is far behind."""
        with self._cond:
            while not self._stopped and done >= self._limit:
                self._cond.wait()
            return 0 if self._stopped else self._limit - done

    def _fetch(self, null: int, fd: int, at: int, n: int) -> int:
        """Bytes from ``at`` read into the page cache (sent to ``/dev/null``) or, where ``sendfile``
        is missing or refused, asked for with ``posix_fadvise``, n at most: the window paces both.
        0 at the end of the file."""
        if self._send:
            try:
                return os.sendfile(null, fd, at, n)
            except (AttributeError, OSError):
                self._send = False
        try:
            os.posix_fadvise(fd, at, n, os.POSIX_FADV_WILLNEED)
        except (AttributeError, OSError):
            pass
        return n

    def _run(self) -> None:
        done = 0
        try:
            null = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            return
        try:
            for path, size in self._files:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError:
                    done += size
                    continue
                try:
                    at = 0
                    while at < size:
                        room = self._wait(done)
                        if not room:
                            return
                        got = self._fetch(null, fd, at, min(_AHEAD_CHUNK, size - at, room))
                        if got <= 0:
                            break
                        at += got
                        done += got
                    done += size - at
                finally:
                    os.close(fd)
        finally:
            os.close(null)


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
