"""The same inputs give the same verdicts on CPU and GPU (issue: scale).

The device only changes how the float32 products are rounded: a GPU sums in another order
(blocked, tree reductions) and may fuse multiply-adds. The CPU test stands in for that: it
audits the same submissions twice, once plainly and once with every float32 block the engine
hands to torch (``unit_blocks``, ``gather_columns``) cut at another size (another summation
order) and jittered by a relative 1e-6 (about 8 float32 ulps, more than a GPU's float32
reductions differ by). Verdicts, module statuses, layer maps and references must not move, and
the p-values only in their last digits. The CUDA test does the real thing where a GPU exists:
the reference is registered and the submissions audited on the GPU, and compared with the CPU.
"""

from __future__ import annotations

import math

import pytest
import torch

from checker import synth
from checker.audit import audit
from checker.metrics import rotation, rowmatch, summary
from checker.references.registry import add_reference
from checker.rules import load_pack

#: relative jitter on every float32 block: 1e-6 is ~8 ulps (float32 eps 1.2e-7)
JITTER = 1e-6
#: units per block in the jittered run: uneven blocks (128 FFN units: 48 + 48 + 32) where the
#: plain run takes all units in one block at these sizes
BLOCK_UNITS = 48
#: the figures (log10 p-values, scores) may move this much, relative or absolute: the verdicts
#: are decided orders of magnitude away (derived modules sit at log10 p < -10, the threshold
#: near -3). At JITTER the largest move seen was 2e-6; a jitter of 1e-1 moves a p-value past
#: this and one of 1 moves statuses (both checked by hand: this test can fail)
TOL = 1e-3


def _cases(zoo) -> dict:
    """A derived vision tower beside an independent decoder, a permuted fine-tuned decoder (row
    matching across blocks), a rotated one (the fitted rotation runs on the device; review) and
    an independent model."""
    def subject(lm, vit):
        return synth.Subject({**synth.state(vit), **synth.state(lm)}, list(zoo.vocab), lm.config, vit.config)

    return {
        "composite": subject(zoo.ind_lm, zoo.ft_vit),
        "permuted": synth.permute_units(subject(zoo.ft_lm, zoo.ind_vit)),
        "rotated": synth.rotate_residual(subject(zoo.ft_lm, zoo.ind_vit), ("lm",)),
        "independent": subject(zoo.ind_lm, zoo.ind_vit),
    }


@pytest.fixture(scope="module")
def folders(zoo) -> dict:
    return {name: synth.save_checkpoint(zoo.root / f"parity-{name}", s.state, s.vocab)
            for name, s in _cases(zoo).items()}


def outcome(result) -> tuple[dict, dict]:
    """(what must be identical, the figures that may differ in their last digits)."""
    exact = {"verdict": result.verdict, "derived_param_fraction": result.derived_param_fraction,
             "criteria": {c.id: c.status for c in result.criteria}}
    figures = {}
    for mv in result.modules:
        best = mv.best
        exact[mv.name] = (mv.status, mv.reason_key, mv.derived_parameters, mv.compared_parameters,
                          None if best is None else (best.reference, best.reference_module, best.statistic,
                                                     best.layer_map, best.decisive, best.cells_tested),
                          tuple((m.reference, m.reference_module, m.statistic) for m in mv.significant))
        if best is not None:
            figures[mv.name] = {"log10_p_corrected": mv.log10_p_corrected, "log10_p": best.log10_p,
                                "fisher_log10_p": best.fisher_log10_p, "score": best.score}
    return exact, figures


def assert_same(a, b) -> float:
    """``a`` and ``b`` agree (see :func:`outcome`); returns the largest move of a figure."""
    (ea, fa), (eb, fb) = outcome(a), outcome(b)
    assert ea == eb
    assert fa.keys() == fb.keys()
    moved = 0.0
    for module, figs in fa.items():
        for key, x in figs.items():
            y = fb[module][key]
            assert math.isclose(x, y, rel_tol=TOL, abs_tol=TOL), (module, key, x, y)
            moved = max(moved, abs(x - y))
    return moved


def _jitter(block: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    noise = torch.randn(block.shape, generator=gen, dtype=torch.float32).to(block.device)
    return block * (1 + JITTER * noise)


@pytest.fixture
def rounded_otherwise(monkeypatch):
    """Every float32 block the engine multiplies, cut at BLOCK_UNITS units and jittered."""
    gen = torch.Generator().manual_seed(0)
    blocks, gather = summary.unit_blocks, summary.gather_columns

    def unit_blocks(native, units_axis, max_elements=summary.BLOCK_ELEMENTS, device="cpu", stored=False):
        hidden = summary.units_by_hidden_shape(tuple(native.shape), units_axis)[1]
        for start, b in blocks(native, units_axis, min(max_elements, BLOCK_UNITS * hidden), device):
            yield start, _jitter(b, gen)  # float32 whether or not the caller asked for stored blocks

    def gather_columns(native, units_axis, cols, device="cpu"):
        return _jitter(gather(native, units_axis, cols, device), gen)

    for module in (summary, rowmatch, rotation):
        monkeypatch.setattr(module, "unit_blocks", unit_blocks)
    monkeypatch.setattr(summary, "gather_columns", gather_columns)


def _audits(zoo, folders, registry=None, device="cpu") -> dict:
    pack = load_pack()
    return {name: audit(str(f), registry or zoo.registry, pack, device=device) for name, f in folders.items()}


@pytest.fixture(scope="module")
def on_cpu(zoo, folders) -> dict:
    return _audits(zoo, folders)


def test_the_cases_cover_derived_review_and_independent(on_cpu):
    statuses = {name: {mv.name: mv.status for mv in r.modules} for name, r in on_cpu.items()}
    assert statuses["composite"]["visual"] == "derived" and statuses["composite"]["model"] == "independent"
    assert statuses["permuted"]["model"] == "derived"
    assert statuses["rotated"]["model"] == "review"
    assert set(statuses["independent"].values()) == {"independent"}


def test_float32_rounding_of_the_products_does_not_move_any_verdict(zoo, folders, on_cpu, rounded_otherwise, tmp_path):
    registry = tmp_path / "registry-rounded"  # the reference's fingerprint is rounded otherwise too
    add_reference(str(zoo.root / "foreign-vlm"), registry, ref_id="foreign-vlm", license="llama3.1")
    again = _audits(zoo, folders, registry)
    moved = max(assert_same(on_cpu[name], again[name]) for name in folders)
    print(f"\nrounded otherwise (jitter {JITTER:g}, {BLOCK_UNITS}-unit blocks): same verdicts; largest move {moved:.3g}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device visible to torch (the CPU test above stands in)")
def test_cuda_gives_the_cpu_verdicts(zoo, folders, on_cpu, tmp_path):
    registry = tmp_path / "registry-cuda"
    add_reference(str(zoo.root / "foreign-vlm"), registry, ref_id="foreign-vlm", license="llama3.1", device="cuda")
    for made, reg in (("cpu", zoo.registry), ("cuda", registry)):
        on_gpu = _audits(zoo, folders, reg, device="cuda")
        moved = max(assert_same(on_cpu[name], on_gpu[name]) for name in folders)
        print(f"\ncuda audit, reference fingerprinted on {made} ({torch.cuda.get_device_name()}): "
              f"same verdicts as cpu; largest move {moved:.3g}")
