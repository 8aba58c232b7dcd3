"""Reference sketches stacked for one product per submission matrix, bounded in memory.

The screen and the exact-copy gate multiply each submission matrix's sketch with the sketch of
every reference tensor of its shape (:func:`checker.metrics.screen.upper_products`). Against 50
references of 80 layers a shape has some 8,000 sketches: 264 MB as float32 rows, and an audit
needs four such stacks for the whole pass (q and o, k and v, gate and up, down), about 0.9 GB
beside everything else. Held in memory, they made the audit's peak grow with references x depth
(3.1 GiB against 50 references of 64 layers).

A stack of MAP_BYTES or more is written once (CHUNK_BYTES of rows at a time), as float32 rows, to
an unnamed scratch file and mapped read-only. A product reads the stack PRODUCT_ROWS rows at a time
from the page cache, and the pages of the rows done are dropped from the process after each chunk
(``madvise(MADV_DONTNEED)``; they stay in the page cache): at 80 layers x 50 references a stack
was 264 MB resident during each product, now a chunk of about 16 MiB. A stack held in memory is
multiplied by the same chunks, so its figures are bit for bit those of the mapped one; a stack of
at most PRODUCT_ROWS rows is one BLAS call, as before chunks existed (longer stacks moved in the
last digits on some BLAS builds: each chunk's rows are summed by the kernel for their position in
the chunk). Where the scratch file cannot be made, the stack is held in memory. Where ``$TMPDIR``
is a RAM file system (tmpfs), the stack's pages are shared memory: out of the process's RSS, but
not out of the machine's memory or a container's limit.
"""

from __future__ import annotations

import errno
import mmap
import os
import tempfile
from typing import Callable, Sequence

import numpy as np

from checker.references.store import release_all

#: Stacks of at least this many float32 bytes are written to a scratch file and mapped.
MAP_BYTES = 32 * 2**20
#: Bytes of rows widened and written to the scratch file at a time.
CHUNK_BYTES = 64 * 2**20
#: Rows multiplied at a time (16.5 MiB of the screen's 8,256-entry sketches). A fixed count, not a
#: size: the figures must not depend on the machine's memory or on whether the stack is mapped.
PRODUCT_ROWS = 512


def stacked_products(rows: np.ndarray, vec: np.ndarray, done: Callable[[int], None] | None = None) -> np.ndarray:
    """Each float32 row's dot product with ``vec`` (float32), PRODUCT_ROWS rows at a time;
    ``done(n)`` after each chunk, with the rows done so far."""
    out = np.empty(len(rows), dtype=np.float32)
    for a in range(0, len(rows), PRODUCT_ROWS):
        b = min(a + PRODUCT_ROWS, len(rows))
        out[a:b] = rows[a:b] @ vec
        if done is not None:
            done(b)
    return out


class SketchStack:
    """Upper triangles (float16 or float32) as the float32 rows of one matrix."""

    def __init__(self, uppers: Sequence[np.ndarray], after_chunk: Callable[[], None] | None = None):
        self._n = len(uppers)
        self._width = len(uppers[0]) if self._n else 0
        self._step = max(1, CHUNK_BYTES // max(1, self._width * 4))
        self._map: mmap.mmap | None = None
        if self._n * self._width * 4 >= MAP_BYTES:
            self.rows = self._mapped(uppers, after_chunk)
        else:
            self.rows = self._filled(uppers)

    def _filled(self, uppers: Sequence[np.ndarray]) -> np.ndarray:
        out = np.empty((len(uppers), self._width), dtype=np.float32)
        for i, u in enumerate(uppers):  # widened row by row: no float16 stack beside the float32 one
            out[i] = u
        return out

    def _mapped(self, uppers: Sequence[np.ndarray], after_chunk: Callable[[], None] | None) -> np.ndarray:
        nbytes, fh = self._n * self._width * 4, None
        try:
            fh = tempfile.TemporaryFile()
            _reserve(fh, nbytes)
            for a in range(0, self._n, self._step):
                fh.write(self._filled(uppers[a:a + self._step]).data)
                if after_chunk is not None:  # the sketches' own pages (the registry's maps) read so far
                    after_chunk()
            fh.flush()
            self._map = mmap.mmap(fh.fileno(), nbytes, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # no scratch space: in memory, as before
            self._map = None
            return self._filled(uppers)
        finally:
            if fh is not None:
                fh.close()  # the map keeps the (unnamed) file's pages
        return np.frombuffer(self._map, dtype=np.float32).reshape(self._n, self._width)

    def products(self, vec: np.ndarray) -> np.ndarray:
        """Each row's float32 dot product with ``vec`` (float32): :func:`stacked_products`, the
        mapped rows' pages dropped as the chunks are done."""
        if self._map is None or not hasattr(self._map, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return stacked_products(self.rows, vec)
        dropped = [0]

        def drop(rows_done: int) -> None:  # the whole pages of the rows done (madvise takes page-aligned starts)
            end = rows_done * self._width * 4
            end = len(self._map) if rows_done == self._n else end - end % mmap.PAGESIZE
            if end > dropped[0]:
                self._release(dropped[0], end)
                dropped[0] = end
        return stacked_products(self.rows, vec, drop)

    def _release(self, start: int, end: int) -> None:
        self._map.madvise(mmap.MADV_DONTNEED, start, end - start)


def _reserve(fh, nbytes: int) -> None:
    """Allocate the scratch file's blocks first: a full disk (or quota) fails here, where the stack
    falls back to memory, not when a dropped page is read back. A file system that cannot reserve
    blocks ahead is left to the writes."""
    try:
        os.posix_fallocate(fh.fileno(), 0, nbytes)
    except AttributeError:  # no posix_fallocate on this platform
        pass
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise


def sketch_stack(uppers: Sequence[np.ndarray]) -> SketchStack:
    """The stack of registered sketches (views of the registry's maps): their pages are dropped as
    the stack is written."""
    return SketchStack(uppers, release_all)
