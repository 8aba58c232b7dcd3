"""The anchors' submission side is read once per reference and its products are shared across
references, without changing any figure and without piling up memory."""

from __future__ import annotations

import numpy as np
import torch

from checker.metrics import alignment
from checker.metrics.anchors import DERIVED_KEEP, UNRELATED_HELD, RowSource, _TokenPair, _unrelated_tokens
from checker.modules import TensorRole


class _Stream:
    """A token matrix served by row ranges, counting the reads."""

    def __init__(self, mat: np.ndarray):
        self.mat, self.reads = mat, 0

    def rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        self.reads += 1
        return torch.from_numpy(self.mat[start:stop])

    def take_rows(self, name: str, ids: list[int]) -> torch.Tensor:
        self.reads += 1
        return torch.from_numpy(self.mat[ids])


def _role(shape) -> TensorRole:
    return TensorRole("model.embed_tokens.weight", tuple(shape), "model.embed_tokens", "embeddings", None, "embed", 0, True)


def test_unrelated_tokens_give_the_figures_of_the_full_rows():
    rng = np.random.default_rng(0)
    sub, ref = rng.standard_normal((3000, 48)).astype(np.float32), rng.standard_normal((2000, 48)).astype(np.float16)
    ri = np.sort(rng.choice(2000, 1500, replace=False))  # the reference's anchors the submission shares ...
    si = rng.choice(3000, 1500, replace=False)  # ... at its own ids
    pair = _TokenPair(RowSource(_Stream(sub)), _role(sub.shape), lambda: ref, ri, si)
    geometry, anchor = _unrelated_tokens(pair, None, {}, 48)
    full_ref, full_sub = ref[ri].astype(np.float32), sub[si]
    assert abs(geometry - alignment.geometry_r(full_ref, full_sub)) < 1e-9
    want = alignment.identity_rows(full_ref, full_sub, UNRELATED_HELD)
    got = anchor.alignment.identity_rows
    assert (got.n_rows, got.n_cols) == (want.n_rows, want.n_cols) == (UNRELATED_HELD, 48)
    assert abs(got.score - want.score) < 1e-12 and abs(got.z - want.z) < 1e-9 and abs(got.log10_p - want.log10_p) < 1e-9


def test_products_are_kept_across_references_and_rows_are_not():
    stream = _Stream(np.random.default_rng(1).standard_normal((500, 16)).astype(np.float32))
    rows = RowSource(stream)
    made = []

    def make(x):
        made.append(len(x))
        return x.sum()

    first = np.arange(0, 40)
    rows.derived("geometry", "e", first, make)
    rows.derived("geometry", "e", first, make)
    assert len(made) == 1  # the next reference with the same shared tokens reuses the product
    reads = stream.reads
    rows.token_rows("e", first)
    assert stream.reads == reads  # rows cached within a reference ...
    rows.next_reference()
    rows.token_rows("e", first)
    assert stream.reads == reads + 1  # ... and dropped between references
    for i in range(1, DERIVED_KEEP + 1):  # references with other vocabularies: other token sets
        rows.derived("geometry", "e", first + i, make)
    rows.derived("geometry", "e", first + DERIVED_KEEP, make)
    assert len(made) == DERIVED_KEEP + 1  # the latest is kept ...
    rows.derived("geometry", "e", first, make)
    assert len(made) == DERIVED_KEEP + 2  # ... the oldest was let go: at most DERIVED_KEEP are held
