"""The scale kernels compute exactly what the plain statistics define."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from checker.metrics import stats
from checker.metrics.rowmatch import Candidate, Group, match_candidates
from checker.metrics.screen import GramSketch, mantel, screen_columns
from checker.metrics.summary import summarize
from checker.weights import open_checkpoint
from checker.weights.stream import CheckpointStream


def test_exact_null_moments_match_shuffles():
    """The analytic sd of the held-out score is the sd of the column-shuffle null, rows correlated."""
    rng = np.random.default_rng(1)
    base = rng.standard_normal((1, 64))
    a = base + 0.5 * rng.standard_normal((20, 64))  # strongly correlated rows
    b = base[:, ::-1] + 0.5 * rng.standard_normal((20, 64))
    sign = np.ones(20)
    sign[:3] = -1.0
    mu, sd = stats.null_moments(stats.rownorm(a), stats.rownorm(b), sign)
    draws = stats.permutation_check(a, b, sign, 4000, seed=2)
    assert mu == 0.0 and abs(draws.mean()) < 0.1 * sd
    assert sd == pytest.approx(draws.std(), rel=0.05)
    assert sd > 2.0 / np.sqrt(20 * 63)  # dependence widens the null far beyond independent rows


def test_mantel_moments_are_the_relabelling_null():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 16))
    y = x @ rng.standard_normal((16, 16)) * 0.2 + rng.standard_normal((200, 16))
    a, b = GramSketch.of(np.corrcoef(x.T)), GramSketch.of(np.corrcoef(y.T))
    s = mantel(a, b, "q", "q")
    ma, mb = a.matrix(), b.matrix()
    null = np.array([np.sum(ma * mb[p][:, p]) for p in (rng.permutation(16) for _ in range(20000))])
    assert s.z == pytest.approx((np.sum(ma * mb) - null.mean()) / null.std(), abs=0.05)


def test_screen_sees_only_the_search_half():
    search, held = stats.split_columns(512)
    cols = screen_columns(512)
    assert len(cols) == 128 and set(cols) <= set(search) and not set(cols) & set(held)
    assert np.array_equal(cols, screen_columns(512))  # a function of the width alone


def test_summary_matches_numpy_in_both_orientations():
    rng = np.random.default_rng(4)
    w = torch.tensor(rng.standard_normal((300, 40)), dtype=torch.float32)
    cols = np.array([1, 5, 7, 30])
    for axis, units in ((0, w.numpy()), (1, w.numpy().T)):
        s = summarize(w, axis, {"k": cols}, np.array([0, 3, 9]))
        assert np.allclose(s.col_mean, units.mean(0), atol=1e-5) and np.allclose(s.col_std, units.std(0), atol=1e-5)
        # over units scaled to unit root mean square on the sketch columns (stats.unit_scaled)
        want = np.corrcoef(stats.unit_scaled(units[:, cols]).T)
        assert np.allclose(s.grams["k"].matrix(), GramSketch.of(want).matrix(), atol=1e-5)
        assert np.array_equal(s.rows, units[[0, 3, 9]])


@pytest.mark.parametrize("axis", [0, 1])
def test_streamed_row_matching_equals_the_plain_statistic(axis):
    """Block by block in torch (the CPU and GPU path) = stats.match_rows in numpy, on units scaled
    to unit root mean square over the search columns."""
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((500, 48))
    perm = rng.permutation(500)
    sub = ref[perm] + 0.8 * rng.standard_normal((500, 48))
    native = torch.tensor(sub if axis == 0 else sub.T.copy(), dtype=torch.float32)
    rows = stats.standardize_columns(ref)[::5]
    search, held = stats.split_columns(48)
    ho, best = stats.match_rows(rows, stats.standardize_columns(stats.unit_scaled(sub, by=sub[:, search])), search, held)
    found = match_candidates(native, axis, [Group(np.arange(48), search, held, (Candidate("c", rows),))])
    got = found.groups[0][0]
    assert np.array_equal(got.best, best)
    assert got.held_out.z == pytest.approx(ho.z, rel=1e-4) and got.held_out.z > 10
    # the same pass yields the exact raw column moments (of the moment sample: all 500 units here)
    assert np.allclose(found.col_mean, sub.mean(0), atol=1e-5) and np.allclose(found.col_std, sub.std(0), rtol=1e-5)


@pytest.mark.parametrize("axis", [0, 1])
def test_the_standardisation_does_not_depend_on_the_block_cut(axis, monkeypatch):
    """A matrix of more than MOMENT_SAMPLE units is standardised with the moments of evenly sampled
    units (all units when there are no more); cutting the pass into other blocks (another device,
    another block size) changes nothing but the summation order."""
    from checker.metrics import rowmatch
    rng = np.random.default_rng(7)
    units, hidden = 3000, 64
    ref = rng.standard_normal((units, hidden)) * rng.uniform(0.5, 2.0, hidden) + rng.uniform(-1, 1, hidden)
    sub = ref[rng.permutation(units)] + 0.9 * rng.standard_normal((units, hidden))
    native = torch.tensor(sub if axis == 0 else sub.T.copy(), dtype=torch.float32)
    rows = stats.standardize_columns(ref)[::37]
    search, held = stats.split_columns(hidden)
    group = Group(np.arange(hidden), search, held, (Candidate("c", rows),))
    blocks = rowmatch.unit_blocks

    def run(block, sample):
        monkeypatch.setattr(rowmatch, "MOMENT_SAMPLE", sample)
        monkeypatch.setattr(rowmatch, "unit_blocks", lambda n, a, device="cpu", stored=False, _b=block:
                            blocks(n, a, _b, device, stored))
        return match_candidates(native, axis, [group])

    exact = run(units * hidden, units)
    sampled, cut = run(units * hidden, 1000), run(128 * hidden, 1000)
    assert np.array_equal(sampled.groups[0][0].best, cut.groups[0][0].best)
    assert sampled.groups[0][0].held_out.z == pytest.approx(cut.groups[0][0].held_out.z, rel=1e-5)
    every = sub[::3]  # 3000 units, at most 1000 sampled: every third
    monkeypatch.setattr(rowmatch, "MOMENT_SAMPLE", 1000)
    assert np.allclose(rowmatch.sampled_units(native, axis).numpy(), every, atol=1e-6)
    # the moments that standardise: of those units, each scaled on the search columns
    mean, sd = rowmatch.group_moments(torch.tensor(every, dtype=torch.float32), torch.as_tensor(search))
    scaled = stats.unit_scaled(every, by=every[:, search])
    assert np.allclose(mean.numpy(), scaled.mean(0), atol=1e-5) and np.allclose(sd.numpy(), scaled.std(0), rtol=1e-5)
    # the raw moments (descriptive) come from the same sampled units
    assert np.allclose(exact.col_mean, sub.mean(0), atol=1e-5) and np.allclose(exact.col_std, sub.std(0), rtol=1e-5)
    for r in (sampled, cut):
        assert np.allclose(r.col_mean, every.mean(0), atol=1e-5) and np.allclose(r.col_std, every.std(0), rtol=1e-5)
    # sampled moments pick (nearly) the units the exact ones pick, and score the copy alike
    assert np.mean(exact.groups[0][0].best == sampled.groups[0][0].best) > 0.95
    assert sampled.groups[0][0].held_out.z > 10
    assert sampled.groups[0][0].held_out.score == pytest.approx(exact.groups[0][0].held_out.score, abs=0.02)
    # and an independent matrix, standardised the same way, is not flagged: the moments do not
    # depend on the reference, so the column-shuffle null of the held-out score holds
    other = rng.standard_normal((units, hidden)) * rng.uniform(0.5, 2.0, hidden) + rng.uniform(-1, 1, hidden)
    native = torch.tensor(other if axis == 0 else other.T.copy(), dtype=torch.float32)
    null = run(128 * hidden, 1000).groups[0][0].held_out
    assert abs(null.z) < 4 and null.log10_p > -3, null


def test_one_pass_hashes_every_file_and_hands_over_every_tensor(tmp_path):
    a = {"x": torch.randn(70, 33).to(torch.bfloat16), "y": torch.randn(5)}
    b = {"z": torch.randn(3, 4, 5)}
    save_file(a, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file(b, str(tmp_path / "model-00002-of-00002.safetensors"))
    stream = CheckpointStream(open_checkpoint(tmp_path))
    seen = {}
    for st in stream:
        if st.info.name == "x":
            seen["x"] = torch.cat(list(st.blocks(max_elements=100)))
        elif st.info.name == "z":
            seen["z"] = st.load()
        # "y" is not consumed: the pass still reads (and hashes) it
    assert torch.equal(seen["x"], a["x"].float()) and torch.equal(seen["z"], b["z"])
    for f in stream.files:
        assert f.sha256 == hashlib.sha256((tmp_path / f.path).read_bytes()).hexdigest()
    assert stream.bytes_read == sum(f.bytes for f in stream.files)
    assert torch.equal(stream.rows("x", 10, 13), a["x"][10:13].float())


@pytest.mark.parametrize("name", ["model.layers.0.mlp.up_proj.weight", "model.layers.0.input_layernorm.weight",
                                  "model.embed_tokens.weight"])
def test_a_nan_anywhere_stops_the_audit_and_registration(zoo, tmp_path, name):
    """The pass checks each value once (through the column moments for matrices): a NaN in a
    matrix, a norm or a token matrix is a one-line input error, never a NaN score."""
    from checker import synth
    from checker.audit import audit
    from checker.errors import WeightsError
    from checker.references.registry import add_reference
    from checker.rules import load_pack

    state = synth.state(zoo.ind_lm)
    t = state[name].clone()
    t.view(-1)[3] = float("inf") if "norm" in name else float("nan")
    state[name] = t
    folder = synth.save_checkpoint(tmp_path / "nan", state, zoo.vocab)
    with pytest.raises(WeightsError, match=f"tensor '{name}' holds NaN or infinite values"):
        audit(str(folder), zoo.registry, load_pack())
    with pytest.raises(WeightsError, match="holds NaN or infinite values"):
        add_reference(str(folder), tmp_path / "reg", "nan-ref", license="apache-2.0")


def test_float64_values_beyond_float32_range_are_refused(zoo, tmp_path):
    """Every statistic runs in float32 or from it: a float64 unit scaled beyond 3.4e38 (finite in the
    file) is a one-line input error naming the reason, in the audit and in registration, not an
    infinite value turned into a NaN score."""
    from checker import synth
    from checker.audit import audit
    from checker.errors import WeightsError
    from checker.rules import load_pack

    state = synth.state(zoo.ind_lm)
    name = "model.layers.0.mlp.up_proj.weight"
    t = state[name].double()
    t[5] *= 1e40
    state[name] = t
    folder = synth.save_checkpoint(tmp_path / "f64", state, zoo.vocab)
    with pytest.raises(WeightsError, match=f"tensor '{name}' holds values beyond float32's range"):
        audit(str(folder), zoo.registry, load_pack())
    from checker.references.registry import add_reference  # registration says the same, not "NaN"
    with pytest.raises(WeightsError, match=f"tensor '{name}' holds values beyond float32's range"):
        add_reference(str(folder), tmp_path / "reg", "f64-ref", license="apache-2.0")


@pytest.mark.parametrize("cut", ["all units", "sampled"])
@pytest.mark.parametrize("axis", [0, 1])
def test_rescaled_units_score_as_the_unscaled_copy(cut, axis, monkeypatch):
    """An adversary rescales units (an FFN unit's input row times c, its output column divided by c:
    the function is unchanged): every third unit (the sample's stride) by 1e3, or every unit by its
    own factor exp(U(-43.7, 43.7)), up to 1e19 (float32 squares overflow beyond 1.8e19). Units are
    scaled to unit RMS before anything pools them, so the copy scores as unscaled (before: z 8.6
    for the first, 0 for the second, against 23). Signs are not undone: a unit's sign flipped
    (also function-preserving) only moves the column means, by at most the column's spread when an
    adversary picks every sign; here z stays above 90% of the unscaled copy's."""
    from checker.metrics import rowmatch
    rng = np.random.default_rng(7)
    units, hidden = 3000, 64
    ref = rng.standard_normal((units, hidden)) * rng.uniform(0.5, 2.0, hidden) + rng.uniform(-1, 1, hidden)
    sub = ref[rng.permutation(units)] + 0.9 * rng.standard_normal((units, hidden))
    monkeypatch.setattr(rowmatch, "MOMENT_SAMPLE", units if cut == "all units" else 1000)
    blocks = rowmatch.unit_blocks
    monkeypatch.setattr(rowmatch, "unit_blocks", lambda n, a, device="cpu", stored=False: blocks(n, a, 700 * hidden, device, stored))
    rows = stats.standardize_columns(ref)[::37]
    search, held = stats.split_columns(hidden)
    group = Group(np.arange(hidden), search, held, (Candidate("c", rows),))

    def score(m):
        native = torch.tensor(m if axis == 0 else m.T.copy(), dtype=torch.float32)
        found = match_candidates(native, axis, [group])
        assert np.isfinite(found.col_std).all() and np.isfinite(found.col_mean).all()  # the raw moments too
        return found.groups[0][0]

    plain = score(sub)
    assert plain.held_out.z > 20
    every_third = sub.copy()
    every_third[::3] *= 1000.0
    factors = np.exp(rng.uniform(-43.7, 43.7, units))
    for scaled in (every_third, sub * factors[:, None]):
        got = score(scaled)
        assert np.array_equal(got.best, plain.best)
        assert got.held_out.z == pytest.approx(plain.held_out.z, rel=1e-3)
    v = rng.standard_normal(hidden)  # every unit's sign chosen to move the column means along v
    for signs in (rng.choice([-1.0, 1.0], units), np.sign(sub @ v)):
        assert score(sub * (factors * signs)[:, None]).held_out.z > 0.9 * plain.held_out.z


def test_unit_scaling_is_exact_beyond_float32_squares():
    """Rows scaled to unit RMS (torch, float32 with a float64 fallback; numpy, float64): rows of 1e30
    and 1e-30 (whose float32 squares overflow or vanish) and a zero row included."""
    from checker.metrics.summary import unit_scaled
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 50))
    scaled = x * np.array([1.0, 1e30, 1e-30, -1e19, 0.0, 3.0])[:, None]
    want = stats.unit_scaled(x)
    want[4] = 0.0
    got = unit_scaled(torch.tensor(scaled, dtype=torch.float32)).numpy()
    assert np.isfinite(got).all() and np.allclose(got, want * np.sign([1, 1, 1, -1, 1, 1])[:, None], atol=1e-5)
    assert np.allclose(stats.unit_scaled(scaled), want * np.sign([1, 1, 1, -1, 1, 1])[:, None])
    by = scaled[:, :10]  # the scale may come from some of the columns (a search half)
    assert np.allclose(unit_scaled(torch.tensor(scaled, dtype=torch.float32), by=torch.tensor(by, dtype=torch.float32)).numpy(),
                       stats.unit_scaled(scaled, by=by), atol=1e-5)


@pytest.mark.parametrize("axis", [0, 1])
def test_the_screen_sketch_ignores_rescaled_units(axis):
    """A copy whose units carry factors up to 1e19 has the reference's Gram sketch (the screen sends it
    to the full test); without the scaling the largest units would make the sketch theirs. Random
    signs only move the column means a little."""
    from checker.metrics.summary import gram_sketch
    rng = np.random.default_rng(5)
    w = rng.standard_normal((400, 48)) @ rng.standard_normal((48, 48))  # correlated columns
    factors = np.exp(rng.uniform(-43.7, 43.7, 400))
    cols = np.arange(0, 48, 3)

    def sketch(m):
        return gram_sketch(torch.tensor(m if axis == 0 else m.T.copy(), dtype=torch.float32), axis, cols).matrix()

    assert np.allclose(sketch(w * factors[:, None]), sketch(w), atol=1e-4)
    assert np.allclose(sketch(w * (factors * rng.choice([-1.0, 1.0], 400))[:, None]), sketch(w), atol=0.03)


@pytest.mark.parametrize("axis", [0, 1])
def test_the_held_out_null_stays_calibrated_with_sampled_moments(axis, monkeypatch):
    """The streamed full test of a matrix with more units than MOMENT_SAMPLE standardises (search and
    held-out halves) with the moments of a sample of its units. Over independent pairs, with column
    offsets and scales of their own on each side, its p-values stay uniform."""
    from checker.metrics import rowmatch
    monkeypatch.setattr(rowmatch, "MOMENT_SAMPLE", 60)  # 400 units: every 7th unit sampled
    rng = np.random.default_rng(11)
    units, hidden = 400, 48
    search, held = stats.split_columns(hidden)
    ps = []
    for _ in range(300):
        ref = rng.standard_normal((units, hidden)) * rng.uniform(0.3, 3.0, hidden) + rng.uniform(-2, 2, hidden)
        sub = rng.standard_normal((units, hidden)) * rng.uniform(0.3, 3.0, hidden) + rng.uniform(-2, 2, hidden)
        native = torch.tensor(sub if axis == 0 else sub.T.copy(), dtype=torch.float32)
        group = Group(np.arange(hidden), search, held, (Candidate("c", stats.standardize_columns(ref)[::16]),))
        ps.append(10 ** match_candidates(native, axis, [group]).groups[0][0].held_out.log10_p)
    ps = np.array(ps)
    assert np.mean(ps < 0.01) <= 0.03
    assert 0.02 <= np.mean(ps < 0.05) <= 0.09
    assert 0.4 < np.mean(ps) < 0.6


@pytest.mark.parametrize("case", ["units * 1e-24", "offsets 100 sd", "offsets 1e4 sd", "units * 1e19"])
def test_group_moments_match_float64_at_the_edges(case):
    """The moments that standardise the full test (units scaled over the search columns), against
    float64: units so small that their float32 squares vanish (an adversary's 1e-24, function-
    preserving with the output column times 1e24), or so large that they overflow, and columns
    whose mean is far from zero against their spread (where E[y^2] - E[y]^2 would cancel)."""
    from checker.metrics import rowmatch
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 64)) * rng.uniform(0.5, 2.0, 64)
    if case.startswith("offsets"):
        x[:, ::5] += float(case.split()[1]) * x[:, ::5].std(0)
    elif case == "units * 1e-24":
        x *= 1e-24
    else:
        x *= np.exp(rng.uniform(0, 43.7, 1000))[:, None]
    cols = np.arange(0, 64, 2)
    mean, sd = rowmatch.group_moments(torch.tensor(x, dtype=torch.float32), torch.as_tensor(cols))
    want = stats.unit_scaled(x.astype(np.float32), by=x.astype(np.float32)[:, cols])
    assert np.allclose(sd.numpy(), want.std(0), rtol=1e-3)
    assert np.allclose(mean.numpy(), want.mean(0), rtol=1e-3, atol=1e-3 * want.std(0).max())
