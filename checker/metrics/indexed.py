"""The index-aligned test: each sampled reference unit against the submission unit at the same index.

The full test (:mod:`.rowmatch`) searches every submission unit for the best match
of each reference row, which absorbs permuted and pruned units but pays for the
search: the best of n correlations stands above zero even between unrelated models,
so a weak signal that sits at the *same* index (a merge such as 0.2 x reference +
0.8 x independent, whose units were never moved) drowns in it. This test makes no
search at all. Under the null of independent initialisation and training, the order
of the hidden columns of one model carries no information about the other's, so the
row correlations of index-matched units have the exact column-shuffle moments of
:func:`checker.metrics.stats.null_moments`, like every held-out score here.

Nothing is selected, so every column may score: at most ``INDEX_COLS`` aligned
columns (fixed by the width) and the K sampled rows of the fingerprint. Columns are
standardised over those rows on each side, a per-column affine map that commutes
with the column shuffle of the null (and undoes a folded norm gain).

The test runs on the same-index layer pair only (linear in depth). It scores every
column, the screen's search half included, so a pair the screen picked could not be
added without breaking its null; the layer pairs are fixed before any data is seen. The exact null needs the two rows' Gram matrices
(k x k over the columns); the submission's is computed once per matrix and shared by
every reference that reads it through the same alignment.

The reference's side depends on the fingerprint alone when the alignment is the identity
(every unrelated reference, every unpermuted copy): its normed rows and their Gram matrix are
computed once, at registration (:func:`reference_side`, stored with the fingerprint), and every
reference aligned by identity is scored from it (:func:`identity_scores`), so an extra
reference costs two dot products per matrix, not a k x k x m product.
"""

from __future__ import annotations

import functools

import numpy as np

from checker.metrics import stats

#: At most this many aligned hidden columns score the test (z grows with sqrt(rows x columns):
#: a 0.05 merge at 128 rows x 1024 columns stands at z ~ 15; the exact null costs rows^2 x columns).
INDEX_COLS = 1024
#: Name of the statistic in the evidence.
INDEX_STATISTIC = "index_row_pearson"


@functools.lru_cache(maxsize=64)
def index_columns(aligned: int) -> np.ndarray:
    """Positions (within the aligned dims) that score the test, fixed by their number. Drawn once
    per width (every reference asks again for every matrix) and handed out read-only."""
    if aligned <= INDEX_COLS:
        out = np.arange(aligned)
    else:
        rng = np.random.default_rng(stats.shape_seed(aligned, 3))
        out = np.sort(rng.choice(aligned, size=INDEX_COLS, replace=False))
    out.flags.writeable = False
    return out


def _f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float32)


def reference_side(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's side of the test under the identity alignment: its normed rows at the
    scoring columns (k x at most INDEX_COLS) and their Gram matrix (k x k), both rounded to
    float16 as the registry stores them. A function of the fingerprint's rows alone: computed once,
    at registration, so each reference aligned by identity costs two dot products per matrix."""
    an, _ = stats.normed_rows(rows[:, index_columns(rows.shape[1])], units=True)
    an = _f16(an)
    return an, _f16(an.astype(np.float64) @ an.T.astype(np.float64))


def identity_scores(sides: list[tuple[np.ndarray, np.ndarray]],
                    sub_normed: tuple[np.ndarray, np.ndarray]) -> list[stats.HeldOut | None]:
    """:func:`index_score` for references aligned by identity (same width, no permutation, no
    signs), from their :func:`reference_side` (the same units sampled); ``sub_normed`` is
    ``stats.normed_rows(..., units=True)`` of the submission's rows at the scoring columns."""
    bn, gb = sub_normed
    k, m = bn.shape
    if m < 8 or k < 2:
        return [None] * len(sides)
    b, g = bn.astype(np.float32).ravel(), gb.astype(np.float32).ravel()
    out = []
    for an, ga in sides:  # two float32 dot products per reference (the sides are float16 values)
        sd = stats.gram_null_sd(float(np.dot(ga.ravel(), g)), k, m)
        out.append(stats.held_out_from_sd(float(np.dot(an.ravel(), b)) / k, sd, k, m))
    return out


def index_score(ref_rows: np.ndarray, sub_rows: np.ndarray, ref_index: np.ndarray, sub_index: np.ndarray,
                signs: np.ndarray, sub_normed: tuple[np.ndarray, np.ndarray] | None = None) -> stats.HeldOut | None:
    """Held-out score of reference rows against the submission rows at the same unit indices.

    ``ref_rows`` are the reference's sampled rows (k x reference hidden), ``sub_rows`` the
    submission's rows at the same unit indices (k x submission hidden); ``ref_index``,
    ``sub_index`` and ``signs`` are the hidden alignment. ``sub_normed`` is ``stats.normed_rows(..., units=True)`` of the
    submission's scoring columns when the caller already has it. None when too few columns remain.
    """
    pos = index_columns(len(ref_index))
    if len(pos) < 8 or ref_rows.shape[0] < 2:
        return None
    ref = stats.normed_rows(ref_rows[:, ref_index[pos]] * signs[pos], units=True)
    sub = sub_normed if sub_normed is not None else stats.normed_rows(sub_rows[:, sub_index[pos]], units=True)
    return stats.held_out_normed(ref, sub)
