"""The anchor-geometry screen only spares the permutation search: a copy must stay above it."""

from __future__ import annotations

import numpy as np

from checker import synth
from checker.metrics import alignment
from checker.metrics.anchors import GEOMETRY_MIN_R


def _embed(model) -> np.ndarray:
    return synth.state(model)["model.embed_tokens.weight"].float().numpy()


def test_copies_keep_their_geometry_and_independent_models_do_not(zoo):
    ref = _embed(zoo.ref_lm)
    rng = np.random.default_rng(0)
    perm, sign = rng.permutation(ref.shape[1]), np.where(rng.random(ref.shape[1]) < 0.5, -1.0, 1.0)
    q, _ = np.linalg.qr(rng.standard_normal((ref.shape[1], ref.shape[1])))
    r_ft = alignment.geometry_r(ref, _embed(zoo.ft_lm))
    r_perm = alignment.geometry_r(ref, (_embed(zoo.ft_lm) * sign)[:, perm])
    r_rot = alignment.geometry_r(ref, _embed(zoo.ft_lm) @ q)
    r_ind = alignment.geometry_r(ref, _embed(zoo.ind_lm))
    print(f"geometry r: fine-tuned {r_ft:.3f}, permuted {r_perm:.3f}, rotated {r_rot:.3f}, independent {r_ind:.3f}")
    assert min(r_ft, r_perm, r_rot) > GEOMETRY_MIN_R  # a disguised copy is always searched
    assert abs(r_perm - r_ft) < 1e-4 and abs(r_rot - r_ft) < 1e-4  # orthogonal maps cannot move it
    assert r_ind < GEOMETRY_MIN_R  # an independent model spares the search (cost only, never a verdict)
