"""The layer screen: which (submission tensor, reference tensor) pairs deserve the full test.

Comparing every submission layer with every reference layer by row matching costs
layers^2 x units x hidden per reference. The screen replaces that search with a
statistic that is cheap per pair and computed once per tensor:

- the *hidden Gram sketch* of a units x hidden matrix is the correlation matrix of
  SCREEN_DIMS hidden columns over all units. It is unchanged when units are permuted,
  sign-flipped or (column-standardised) rescaled, and it keeps the exact realisation
  of the weights: a copy shares it even at initialisation, an independent model
  shares none of it;
- two sketches are compared by the Mantel statistic (the sum of products of their
  off-diagonal entries) against its exact permutation null: relabelling the hidden
  dimensions of one model, which is what independent training means for an arbitrary
  basis. Its mean and variance under all n! relabellings have a closed form (Mantel
  1967), so the screen costs one dot product per pair and no shuffles.

The sketch columns lie in the *search half* of the hidden split
(:func:`checker.metrics.stats.split_columns`), so the held-out columns that score the
full test are never seen by the screen: the full test's p-values stay valid for
whichever pairs the screen selects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checker.metrics.stacks import SketchStack, stacked_products
from checker.metrics.stats import log10_sf, shape_seed, split_columns

#: Hidden columns per sketch: 128 columns give 8128 off-diagonal entries (a copy
#: scores z ~ 90, fine-tuned copies in the provenance suite z > 10).
SCREEN_DIMS = 128
#: A pair goes to the full test when its screen z reaches this: p ~ 3e-5, about one
#: false candidate per 30,000 unrelated pairs (the cost of a false candidate is one
#: full test, never a wrong verdict).
SCREEN_Z = 4.0
#: At most this many reference tensors per submission tensor and reference go to the full
#: test (a layer duplicated into several places maps to several layers).
MAX_CANDIDATES = 4
#: Below this many sketch columns the screen cannot discriminate: every pair is tested.
MIN_SCREEN_DIMS = 8


def screen_columns(d: int) -> np.ndarray:
    """The sketch's hidden columns for width ``d``: a fixed random subset of the search half."""
    search, _ = split_columns(d)
    pick = np.random.default_rng(shape_seed(d, 2)).permutation(len(search))[:SCREEN_DIMS]
    return np.sort(search[pick])


@dataclass(frozen=True, eq=False)
class GramSketch:
    """A symmetric correlation matrix with zero diagonal, kept as its upper triangle, and its
    Mantel moments (sums over ordered off-diagonal pairs)."""

    upper: np.ndarray  # n(n-1)/2 entries above the diagonal (float16 when loaded from a fingerprint)
    n: int
    s1: float  # sum of off-diagonal entries
    s2: float  # sum of their squares
    s3: float  # sum over rows of the squared row sums

    @classmethod
    def of(cls, corr: np.ndarray) -> "GramSketch":
        m = np.array(corr, dtype=np.float64)
        np.fill_diagonal(m, 0.0)
        rows = m.sum(axis=1)
        n = m.shape[0]
        return cls(m[np.triu_indices(n, 1)].astype(np.float32), n, float(rows.sum()), float(np.sum(m * m)),
                   float(np.sum(rows * rows)))

    def matrix(self) -> np.ndarray:
        m = np.zeros((self.n, self.n), dtype=np.float64)
        m[np.triu_indices(self.n, 1)] = self.upper
        return m + m.T

    def restrict(self, idx: np.ndarray) -> "GramSketch":
        if len(idx) == self.n and np.all(idx == np.arange(self.n)):
            return self
        return GramSketch.of(self.matrix()[np.ix_(idx, idx)])


@dataclass(frozen=True, slots=True)  # made per target as the screen runs; kept as PairLog rows
class ScreenScore:
    """The screen of one submission tensor against one reference tensor."""

    role: str
    reference_role: str
    mantel_r: float  # correlation of the two sketches' off-diagonal entries
    z: float  # against the exact relabelling null
    log10_p: float
    dims: int  # sketch columns compared


def upper_products(stacked: np.ndarray | SketchStack, sub: GramSketch) -> np.ndarray:
    """Each stacked upper triangle's dot product with ``sub``'s (float32 products, float64 out)."""
    vec = sub.upper.astype(np.float32, copy=False)
    if isinstance(stacked, SketchStack):
        return stacked.products(vec).astype(np.float64)
    return stacked_products(stacked.astype(np.float32, copy=False), vec).astype(np.float64)


def mantel_many(sub: GramSketch, refs: list[GramSketch], stacked: np.ndarray | SketchStack | None = None,
                products: np.ndarray | None = None) -> list[tuple[float, float, float]]:
    """(Mantel r, z, log10 p) of ``sub`` against each of ``refs`` (same columns, same order),
    with the exact mean and variance of the statistic over all relabellings of the columns
    (Mantel 1967). ``stacked`` may hold the refs' upper triangles as rows, to reuse, or
    ``products`` their :func:`upper_products` with ``sub``, already computed."""
    n = sub.n
    if n < 4 or not refs:
        return [(0.0, 0.0, 0.0) for _ in refs]
    if products is None:
        products = upper_products(stacked if stacked is not None else np.stack([r.upper for r in refs]), sub)
    zstat = 2.0 * products
    b1 = np.array([r.s1 for r in refs])
    b2 = np.array([r.s2 for r in refs])
    b3 = np.array([r.s3 for r in refs])
    a1, a2, a3 = sub.s1, sub.s2, sub.s3
    n1, n2, n3 = n * (n - 1), n * (n - 1) * (n - 2), n * (n - 1) * (n - 2) * (n - 3)
    mean = a1 * b1 / n1
    var = (2 * a2 * b2 / n1 + 4 * (a3 - a2) * (b3 - b2) / n2
           + (a1 ** 2 + 2 * a2 - 4 * a3) * (b1 ** 2 + 2 * b2 - 4 * b3) / n3 - mean ** 2)
    sd = np.sqrt(np.clip(var, 0.0, None))
    z = np.where(sd > 1e-150, (zstat - mean) / np.where(sd > 1e-150, sd, 1.0), 0.0)
    r = zstat / np.sqrt(np.clip(a2 * b2, 1e-300, None))
    return [(float(ri), float(zi), float(pi)) for ri, zi, pi in zip(r, z, log10_sf(z))]


def mantel(a: GramSketch, b: GramSketch, role: str, ref_role: str) -> ScreenScore:
    """The screen of one pair (see :func:`mantel_many`)."""
    r, z, lp = mantel_many(a, [b])[0]
    return ScreenScore(role, ref_role, round(r, 6), z, lp, a.n)
