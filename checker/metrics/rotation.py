"""Rotations of the residual stream: the disguise a permutation search cannot see.

Folding each norm's gain into the matrices that read it and then turning the
residual stream by a random orthogonal Q (x -> xQ: embeddings E -> EQ, every
matrix that reads or writes the stream, seen as units x hidden, W -> WQ) leaves
the function unchanged (QuaRot, SliceGPT) and spreads every hidden dimension
over all others, so no permutation of dimensions matches the reference any more.

Token strings fix the rows of an embedding outside the model. When the anchor
geometries are related (``alignment.geometry_r``, unchanged by any orthogonal map:
1.00 for a rotated copy) but neither the identity nor a permutation aligns the
anchors, the orthogonal map is fitted by Procrustes on the search half of the
shared tokens and scored on the held-out half. Every comparison made through it
is then in the reference's basis again, and the ordinary tests run unchanged. It
turns the modules of the stream whose anchors gave it, never a module of another
stream whose width merely coincides (``anchors.lends_rotation``: a vision merger
beside a rotated decoder is scored in its own bases, its input side deciding).

Their p-values are *not* exact: models trained independently on the same
tokenizer and text learn token geometries related by a near-linear map (that is
why embeddings of different models can be aligned at all), so a fitted rotation
can carry some real agreement between independent models. The statistic is
therefore ``rotation_aligned_row_pearson``, one of ``REVIEW_ONLY``: it sets a
module to ``review`` for a human to decide, never to ``derived`` on its own.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from checker.metrics import alignment, stats
from checker.metrics.summary import unit_blocks

#: Name of the statistic of every comparison made through a fitted rotation.
ROTATION_STATISTIC = "rotation_aligned_row_pearson"
#: A rotation is fitted only between anchor geometries this alike (alignment.geometry_r, unchanged by
#: any orthogonal map): a copy, rotated or not, scores 0.96-1.00 in the test models, independent
#: models trained on the same tokenizer and text 0.04 (embeddings) and up to 0.87 (output heads,
#: whose geometry the data largely fixes).
ROTATION_MIN_R = 0.9
#: ... and adopted only when its held-out anchors correlate at least this much (and at z >= 8):
#: rotated copies 0.74-1.00 (0.74 with fewer shared tokens than twice the width), the best
#: independent output head 0.33. Empirical gates for a review-only statistic, not a null.
ROTATION_MIN_SCORE = 0.5
#: At most this many anchors span the anchor space a matrix is compared in (its cost is units x
#: hidden x anchors per matrix: at 70B width, 1,024 anchors keep an FFN matrix at ~240 GFLOP).
PROJECTION_ANCHORS = 1024


def procrustes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The orthogonal R minimising ||a R - b|| (rows of ``a`` and ``b`` correspond)."""
    u, _, vt = np.linalg.svd(a.T @ b, full_matrices=False)
    return u @ vt


def align_rotation(ref_anchor: np.ndarray, sub_anchor: np.ndarray) -> alignment.HiddenAlignment:
    """Fit the orthogonal map taking the reference's anchors to the submission's (equal widths),
    on the search half of the anchors; score it on the held-out half (row correlations under a
    column-shuffle null, which is exact only for a map that knew nothing of the models)."""
    search, held = alignment.anchor_split(ref_anchor.shape[0])
    mu_r, mu_s = ref_anchor[search].mean(axis=0), sub_anchor[search].mean(axis=0)
    r = procrustes(ref_anchor[search] - mu_r, sub_anchor[search] - mu_s)  # ref basis -> sub basis
    a = (ref_anchor[held] - mu_r) @ r  # held-out reference anchors, in the submission's basis
    b = sub_anchor[held] - mu_s
    ev = stats.held_out_score(stats.standardize_columns(a), stats.standardize_columns(b), np.ones(len(held)))
    d = ref_anchor.shape[1]
    idx = np.arange(d)
    # Submission rows x r^T are in the reference's basis.
    return alignment.HiddenAlignment(idx, idx, np.ones(d), ev, aligned_rows=ev, identity_rows=None,
                                 rotation=np.ascontiguousarray(r.T))


def project_onto_anchors(ref_anchor: np.ndarray, sub_anchor: np.ndarray) -> alignment.HiddenAlignment:
    """Too few shared anchors to fit a rotation (fewer than twice the width, as a vision tower's
    pixel inputs): compare every matrix in anchor space instead. A units x hidden matrix W read
    against the centred anchors A, W A^T (units x anchors), is the same for W Q and A Q whatever
    the orthogonal Q, and a permutation of the units still only permutes its rows. The evidence is
    the Mantel test of the anchors' centred cosines (``alignment.geometry_r``), also rotation-free."""
    from checker.metrics.screen import GramSketch, mantel_many

    if ref_anchor.shape[0] > PROJECTION_ANCHORS:  # the comparison space's width: every matrix costs units x hidden x it
        pick = np.sort(np.concatenate(alignment.anchor_split(ref_anchor.shape[0])))[:PROJECTION_ANCHORS]
        ref_anchor, sub_anchor = ref_anchor[pick], sub_anchor[pick]
    r, z, lp = mantel_many(GramSketch.of(alignment.centred_cosines(sub_anchor)), [GramSketch.of(alignment.centred_cosines(ref_anchor))])[0]
    t = ref_anchor.shape[0]
    ev = stats.HeldOut(float(r), float(z), float(lp), t, t, 0.0, 1.0)
    idx = np.arange(t)
    return alignment.HiddenAlignment(idx, idx, np.ones(t), ev, aligned_rows=ev, identity_rows=None,
                                 rotation=np.ascontiguousarray((sub_anchor - sub_anchor.mean(axis=0)).T),
                                 ref_map=np.ascontiguousarray((ref_anchor - ref_anchor.mean(axis=0)).T))


def through(al: alignment.HiddenAlignment, ref_anchor: np.ndarray, sub_anchor: np.ndarray) -> alignment.HiddenAlignment:
    """Another anchor set of the same tokens (an output head) scored through a rotation fitted on
    the input embedding. Output heads are never fitted themselves: what they encode (the next
    token's distribution) is fixed by the data, so independent models trained on the same text
    have output-head geometries as alike as a copy's (0.87 against 0.96 in the test models)."""
    a = ref_anchor if al.ref_map is None else ref_anchor.astype(np.float64) @ al.ref_map
    b = sub_anchor.astype(np.float64) @ al.rotation
    ev = stats.held_out_score(stats.standardize_columns(a), stats.standardize_columns(b), np.ones(a.shape[0]))
    return replace(al, evidence=ev, aligned_rows=ev)


def projected_print(rp, ref_map: np.ndarray):
    """A reference matrix's fingerprint read in anchor space (rows x ``ref_map``): no Gram sketch,
    so every layer pair goes to the full test; column spreads from the sampled rows."""
    from checker.references.fingerprint import TensorPrint

    rows = rp.rows.astype(np.float64) @ ref_map
    sd = rows.std(axis=0)
    return TensorPrint(rp.role, rp.dtype, (), units=rp.units, hidden=ref_map.shape[1], gram=None,
                       arrays={"rows": rows.astype(np.float32), "row_index": rp.row_index,
                               "col_mean": (rp.col_mean.astype(np.float64) @ ref_map).astype(np.float32),
                               "col_std": np.where(sd > 0, sd, 1.0).astype(np.float32)})


def rotated(native: torch.Tensor, units_axis: int, rotation: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """The units x hidden view of a matrix turned into the reference's basis (float32)."""
    rot = torch.as_tensor(rotation.astype(np.float32), device=device)
    return torch.cat([(b @ rot).cpu() for _, b in unit_blocks(native, units_axis, device=device)])
