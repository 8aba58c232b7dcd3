"""The index-aligned test catches weak merges that the unit search drowns, and stays quiet between
independent models."""

from __future__ import annotations

import numpy as np
import pytest

from checker import synth
from checker.audit import audit
from checker.metrics.indexed import index_score
from checker.metrics.stats import held_out_score
from checker.rules import load_pack


def _merged(zoo, alpha: float) -> dict:
    ref, ind = synth.state(zoo.ref_lm), synth.state(zoo.ind_lm)
    return {n: alpha * ref[n] + (1 - alpha) * ind[n] for n in ref}


@pytest.mark.parametrize("alpha", [0.2, 0.05])
def test_a_weak_merge_is_derived_through_its_index_aligned_units(zoo, alpha):
    folder = synth.save_checkpoint(zoo.root / f"merge{alpha}", _merged(zoo, alpha), zoo.vocab)
    mods = {mv.name: mv for mv in audit(str(folder), zoo.registry, load_pack()).modules}
    mv = mods["model"]
    assert mv.status == "derived", mv.reason
    assert (mv.best.reference, mv.best.reference_module) == ("foreign-vlm", "model")
    assert dict(mv.best.layer_map) == {0: 0, 1: 1, 2: 2, 3: 3}
    cell = next(c for c in mv.best.cells if c.sub_layer == c.ref_layer == 1)
    assert cell.index_z > 8 and {r.role for r in cell.index} >= {"q", "k", "v", "o", "gate", "up", "down"}


def test_an_independent_model_gives_index_aligned_scores_at_chance(zoo):
    folder = zoo.save("index-independent", zoo.ind_lm)
    mods = {mv.name: mv for mv in audit(str(folder), zoo.registry, load_pack()).modules}
    mv = mods["model"]
    assert mv.status == "independent", mv.reason
    cells = [c for m in mv.matches for c in m.cells if c.index]
    zs = [r.z for c in cells for r in c.index]
    # the same-index layer pairs of every role of equal unit count (the screen sent nothing else)
    assert len(zs) >= 4 * 7 and all(c.sub_layer == c.ref_layer for c in cells)
    assert abs(np.mean(zs)) < 0.6 and max(abs(z) for z in zs) < 4.5


def test_index_score_uses_the_hidden_alignment_and_its_signs():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((64, 48))
    perm = rng.permutation(48)
    signs = np.where(rng.random(48) < 0.5, -1.0, 1.0)
    sub = np.empty_like(ref)
    sub[:, perm] = ref * signs  # reference dim j sits at submission dim perm[j], sign flipped
    ho = index_score(ref, sub, np.arange(48), perm, signs)
    assert ho.score > 0.99 and ho.z > 20
    assert index_score(ref, sub, np.arange(48), np.arange(48), np.ones(48)).z < 5
    # the same rows, unaligned: exactly the held-out score of the raw rows
    plain = held_out_score(ref - ref.mean(0), sub - sub.mean(0), np.ones(64))
    assert np.isfinite(plain.z)


def test_index_score_ignores_rescaled_units():
    """A merge whose units were rescaled (an FFN unit's input row times c, its output column divided by
    c: function-preserving) scores as the unscaled one: the sampled rows are scaled to unit RMS
    before their columns are standardised over them."""
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((64, 48)) * rng.uniform(0.5, 2.0, 48)
    sub = 0.3 * ref + rng.standard_normal((64, 48))  # a weak merge
    ident, ones = np.arange(48), np.ones(48)
    plain = index_score(ref, sub, ident, ident, ones)
    scaled = index_score(ref, sub * np.exp(rng.uniform(-43.7, 43.7, 64))[:, None], ident, ident, ones)
    assert plain.z > 5 and scaled.z == pytest.approx(plain.z, rel=1e-6)
