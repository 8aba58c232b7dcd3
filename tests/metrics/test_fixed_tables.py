"""Fixed tables (sinusoids, masks, constants) are recognised by formula and are never evidence (issue 8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from checker.metrics.fixed_tables import alibi_slopes, recognise
from checker.weights.values import scan


# -- the formulas as the model code that ships them writes them --------------------------------

def whisper_sinusoids(length: int, channels: int, max_timescale: float = 10000) -> torch.Tensor:
    """openai/whisper ``sinusoids`` (the encoder's ``positional_embedding`` / HF ``embed_positions``)."""
    log_timescale_increment = np.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, None] * inv_timescales[None, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)


def vaswani_interleaved(n: int, d: int, base: float = 10000) -> torch.Tensor:
    """The original Transformer table: even columns sin, odd columns cos, w_i = base^(-2i/d)."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    w = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    out = torch.zeros(n, d, dtype=torch.float64)
    out[:, 0::2], out[:, 1::2] = torch.sin(pos * w), torch.cos(pos * w)
    return out.float()


def fairseq_sinusoids(n: int, d: int, padding_idx: int = 1) -> torch.Tensor:
    """fairseq ``SinusoidalPositionalEmbedding.get_embedding`` (odd width padded, padding row zeroed)."""
    half = d // 2
    f = math.log(10000) / (half - 1)
    f = torch.exp(torch.arange(half, dtype=torch.float) * -f)
    e = torch.arange(n, dtype=torch.float).unsqueeze(1) * f.unsqueeze(0)
    e = torch.cat([torch.sin(e), torch.cos(e)], dim=1).view(n, -1)
    if d % 2 == 1:
        e = torch.cat([e, torch.zeros(n, 1)], dim=1)
    e[padding_idx, :] = 0
    return e


def mae_2d_sincos(d: int, grid: int, cls_token: bool = False) -> torch.Tensor:
    """MAE ``get_2d_sincos_pos_embed`` (numpy, float64), shaped [1, n, d] as ``pos_embed`` is stored."""
    def one_d(dim, pos):
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gh, gw = np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32)
    g = np.stack(np.meshgrid(gw, gh), axis=0).reshape(2, 1, grid, grid)
    emb = np.concatenate([one_d(d // 2, g[0]), one_d(d // 2, g[1])], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, d]), emb], axis=0)
    return torch.from_numpy(emb).float().unsqueeze(0)


def gpt2_bias(n: int) -> torch.Tensor:
    return torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n)


def trained_like(shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.02


# -- recognisers: positive ---------------------------------------------------------------------

@pytest.mark.parametrize("table,kind", [
    (whisper_sinusoids(1500, 64), "sinusoid_1d"),
    (whisper_sinusoids(64, 32, max_timescale=500000), "sinusoid_1d"),
    (vaswani_interleaved(128, 48), "sinusoid_1d"),
    (vaswani_interleaved(128, 48, base=100).T.contiguous(), "sinusoid_1d"),
    (fairseq_sinusoids(70, 33), "sinusoid_1d"),
    (mae_2d_sincos(48, 4), "sincos_2d"),
    (mae_2d_sincos(64, 14, cls_token=True), "sincos_2d"),
    (mae_2d_sincos(64, 14)[0], "sincos_2d"),
    (1.0 / (10000 ** (torch.arange(0, 64, 2).float() / 64)), "rotary_inv_freq"),
    (1.0 / (500000 ** (torch.arange(0, 128, 2).float() / 128)), "rotary_inv_freq"),
    (torch.tensor(alibi_slopes(16)).float(), "alibi_slopes"),
    (torch.tensor(alibi_slopes(12)).float().view(12, 1, 1), "alibi_slopes"),
    (gpt2_bias(64), "causal_mask"),
    (gpt2_bias(32).to(torch.uint8), "causal_mask"),
    (torch.full((16, 16), -1e9).triu(1), "causal_mask"),
    (torch.arange(512).view(1, -1), "position_ids"),
    (torch.eye(48), "identity"),
    (torch.tensor(-1e4), "constant"),
    (torch.ones(64), "constant"),
    (torch.zeros(32, 16), "constant"),
])
@pytest.mark.parametrize("dtype", [None, torch.bfloat16, torch.float16])
def test_a_fixed_table_is_recognised_by_formula_also_after_16_bit_rounding(table, kind, dtype):
    t = table if dtype is None or not table.dtype.is_floating_point else table.to(dtype)
    got = recognise(t)
    assert got is not None and got.kind == kind, (kind, got)


# -- recognisers: negative ---------------------------------------------------------------------

def test_trained_and_random_tensors_are_not_fixed_tables():
    assert recognise(trained_like((1500, 64))) is None
    assert recognise(trained_like((48, 48)) + torch.eye(48)) is None  # an identity-initialised matrix, trained
    assert recognise(trained_like((17, 48))) is None
    assert recognise(1 + trained_like((64,))) is None  # a trained norm
    assert recognise(torch.randperm(64)) is None  # shuffled ids are not positions
    assert recognise(torch.rand(32, 32).tril()) is None  # a triangle of values, not a mask


@pytest.mark.parametrize("table", [whisper_sinusoids(256, 64), vaswani_interleaved(128, 48), mae_2d_sincos(48, 4)[0],
                                   mae_2d_sincos(64, 8, cls_token=True)[0]])
def test_a_near_sinusoid_with_noise_is_not_a_fixed_table(table):
    noisy = table + 0.01 * torch.randn(table.shape, generator=torch.Generator().manual_seed(1))
    assert recognise(table) is not None and recognise(noisy) is None
    trained = table.clone()
    trained[5, 3] += 0.05  # one value moved by training
    assert recognise(trained) is None


def test_near_formula_vectors_and_masks_are_not_fixed_tables():
    inv = 1.0 / (10000 ** (torch.arange(0, 64, 2).float() / 64))
    assert recognise(inv * (1 + 0.05 * torch.rand(32, generator=torch.Generator().manual_seed(2)))) is None
    mask = gpt2_bias(16).clone()
    mask[0, 0, 3, 9] = True
    assert recognise(mask) is None
    assert recognise(torch.eye(8) + 0.01) is None


# -- end to end: the false accusation of issue 8 --------------------------------------------------

def _fixed_tables(lm_hidden: int, vit_hidden: int) -> dict:
    """A Whisper encoder's position table (a module of its own here) and an MAE 2-D sin-cos ViT
    table with its class row (4 x 4 patches, through the anchor path): the same in every model of
    these shapes."""
    return {"model.encoder.embed_positions.weight": whisper_sinusoids(64, lm_hidden),
            "visual.pos_embed": mae_2d_sincos(vit_hidden, 4, cls_token=True)[0]}


def _audit_pair(zoo, tmp_path, ref_models, sub_models, tables, name):
    """Register the reference models with ``tables`` and audit the submission models with the same
    tables, rounded to bf16 (a release in another precision)."""
    from checker import synth
    from checker.audit import audit
    from checker.references.registry import add_reference
    from checker.rules import load_pack

    registry = tmp_path / f"registry-{name}"
    ref = zoo.save(f"{name}-ref", *ref_models, tensors=tables)
    add_reference(str(ref), registry, ref_id="foreign", license="llama3.1")
    state = {k: v for m in sub_models for k, v in synth.state(m).items()}
    state.update({k: v.to(torch.bfloat16) for k, v in tables.items()})
    return audit(str(synth.save_checkpoint(tmp_path / f"{name}-sub", state, zoo.vocab)), registry, load_pack())


def test_independent_models_sharing_fixed_position_tables_are_not_accused(zoo, tmp_path, monkeypatch):
    from checker.metrics import anchors, engine
    from checker.metrics.interface import FIXED_TABLE_KEY
    from checker.references import fingerprint

    tables = _fixed_tables(zoo.ref_lm.config.hidden, zoo.ref_vit.config.hidden)
    result = _audit_pair(zoo, tmp_path, (zoo.ref_vit, zoo.ref_lm), (zoo.ind_vit, zoo.ind_lm), tables, "fixed")
    mods = {mv.name: mv for mv in result.modules}
    assert not [mv.name for mv in result.modules if mv.status in ("derived", "identical")], [mv.reason for mv in result.modules]
    assert next(c for c in result.criteria if c.id == "W1").status != "fail"
    skipped = {s.what: s for mv in result.modules for s in mv.skipped if s.key == FIXED_TABLE_KEY}
    assert {k: s.args for k, s in skipped.items()} == {
        "model.encoder.embed_positions.weight": (("kind", "sinusoid_1d"),), "visual.pos_embed": (("kind", "sincos_2d"),)}
    assert skipped["visual.pos_embed"].reason == "not evidence: fixed table (2-D sin-cos position table)"
    assert mods["visual"].status == mods["model"].status == "independent"

    # The report lists them as not evidence, with their share of the parameters.
    from checker.report.json_report import build_report
    from checker.report.render import render_html, render_markdown

    report = build_report(result)
    by_name = {m["name"]: m for m in report["modules"]}
    assert by_name["model.encoder"]["fixed_table_fraction"] == 1.0
    assert by_name["visual"]["fixed_table_fraction"] == pytest.approx(17 * 48 / by_name["visual"]["parameters"], abs=1e-6)
    assert report["fixed_table_fraction"] == pytest.approx((64 * 64 + 17 * 48) / result.submission.parameters, abs=1e-6)
    assert "not evidence: fixed table (2-D sin-cos position table)" in render_markdown(report)
    assert "Fixed tables (sinusoidal position tables" in render_html(report)
    assert "고정 테이블(2차원 사인·코사인 위치 테이블)" in render_html(report, "ko")

    # The same models without the fix: the tables alone make the independent models "derived".
    for mod in (engine, anchors, fingerprint):
        monkeypatch.setattr(mod, "not_evidence" if mod is engine else "recognise", lambda *a, **k: None)
    before = {mv.name: mv for mv in _audit_pair(zoo, tmp_path, (zoo.ref_vit, zoo.ref_lm), (zoo.ind_vit, zoo.ind_lm), tables,
                                                "unfixed").modules}
    assert {before["model.encoder"].status, before["visual"].status} <= {"derived", "identical"}


def test_each_kind_is_named_in_both_catalogues_as_the_engine_writes_it():
    from checker.metrics.fixed_tables import KINDS
    from checker.report.messages import en, ko

    for kind, words in KINDS.items():
        assert en.MESSAGES[f"kind.{kind}"] == words and f"kind.{kind}" in ko.MESSAGES


def _print(name, shape, digests, layer=None):
    from types import SimpleNamespace

    from checker.modules import TensorRole
    return SimpleNamespace(role=TensorRole(name, shape, "m", "decoder", layer, "linear", 0, True), digests=digests)


def test_a_digest_in_two_unrelated_references_is_not_evidence_but_one_inherited_by_a_fine_tune_is():
    from types import SimpleNamespace

    from checker.metrics.digests import reference_digests
    from checker.metrics.fixed_tables import SHARED_TABLE_KEY, not_evidence, shared_digests

    table = trained_like((12, 8), seed=3)  # a table of some formula not recognised here
    d = reference_digests(table)
    fp = lambda *prints: SimpleNamespace(tensors=prints)  # noqa: E731
    a = fp(_print("t", (12, 8), d), _print("layers.0.q", (8, 8), ("qa",), 0))
    b = fp(_print("t", (12, 8), d), _print("layers.0.q", (8, 8), ("qb",), 0))
    shared = shared_digests([("a", a), ("b", b)])
    skip = not_evidence("x.t", table, shared)
    assert skip is not None and skip.key == SHARED_TABLE_KEY and skip.args == (("references", 2),)
    assert skip.reason == "not evidence: fixed table (shared by 2 registered references)"
    assert not_evidence("x.t", table + 1e-3, shared) is None
    # b froze a's layers (a VLM and the tower it froze): what they share stays evidence
    frozen = fp(_print("t", (12, 8), d), _print("layers.0.q", (8, 8), ("qa",), 0))
    assert not_evidence("x.t", table, shared_digests([("a", a), ("frozen", frozen)])) is None


@pytest.mark.parametrize("table,kind", [
    (vaswani_interleaved(128, 48, base=100).T.contiguous(), "sinusoid_1d"),
    (whisper_sinusoids(256, 64).T.contiguous(), "sinusoid_1d"),
    (fairseq_sinusoids(70, 34).T.contiguous(), "sinusoid_1d"),
    (mae_2d_sincos(64, 14, cls_token=True)[0].T.contiguous(), "sincos_2d"),
    (vaswani_interleaved(128, 48), "sinusoid_1d"),
])
@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_a_large_transposed_table_is_still_recognised_when_its_columns_are_read_in_blocks(table, kind, dtype, monkeypatch):
    """Tensors of mapped.MAP_BYTES or more first read two columns in row blocks to decide whether
    the transposed checks can pass (fixed_tables._may_start_a_table): a real table must pass it."""
    from checker.weights import mapped

    monkeypatch.setattr(mapped, "MAP_BYTES", 1)
    monkeypatch.setattr(mapped, "WALK_BYTES", 100)
    t = table if dtype is None else table.to(dtype)
    got = recognise(t)
    assert got is not None and got.kind == kind, (kind, got)
    assert recognise(trained_like(tuple(t.shape)).to(t.dtype)) is None
    # the engine's one pass (weights.values.scan) hands over the same two columns: same answers,
    # and the fixed-table check then walks nothing itself
    sc = scan(t)
    assert sc.head is not None and torch.equal(sc.head, t[:, :2])
    assert (sc.lo, sc.hi) == (float(t.min()), float(t.max()))
    monkeypatch.setattr(mapped, "row_blocks", lambda m: pytest.fail("walked again"))
    got = recognise(t, sc.head)
    assert got is not None and got.kind == kind, (kind, got)
    trained = trained_like(tuple(t.shape)).to(t.dtype)
    assert recognise(trained, trained[:, :2].clone()) is None


def test_a_mapped_additive_mask_is_set_aside_before_its_infinities_are_refused(zoo, tmp_path, monkeypatch):
    """The engine's one walk of a mapped matrix (weights.values.scan) gives the range and the columns
    the fixed-table check reads; the check comes first, so an additive causal mask holding -inf is
    set aside as a fixed table, not refused as a tensor with infinite values, and a transposed
    sinusoid table is recognised from the walk's columns alone."""
    from checker.metrics.interface import FIXED_TABLE_KEY
    from checker.weights import mapped

    monkeypatch.setattr(mapped, "MAP_BYTES", 1)  # every tensor mapped, so walked in row blocks
    monkeypatch.setattr(mapped, "WALK_BYTES", 256)
    mask = torch.full((64, 64), float("-inf")).triu(1)
    tables = {"model.layers.0.self_attn.causal_mask": mask,
              "model.encoder.embed_positions.weight": whisper_sinusoids(64, 32).T.contiguous()}
    walks = []
    real = mapped.row_blocks
    monkeypatch.setattr(mapped, "row_blocks", lambda m: (walks.append(tuple(m.shape)), real(m))[1])
    result = _audit_pair(zoo, tmp_path, (zoo.ref_lm,), (zoo.ind_lm,), tables, "mapped-tables")
    skipped = {s.what: s.args for mv in result.modules for s in mv.skipped if s.key == FIXED_TABLE_KEY}
    assert skipped.get("model.layers.0.self_attn.causal_mask") == (("kind", "causal_mask"),), skipped
    assert skipped.get("model.encoder.embed_positions.weight") == (("kind", "sinusoid_1d"),), skipped
    assert walks.count((32, 64)) <= 2  # one walk at registration (fingerprint), one in the audit's pass
