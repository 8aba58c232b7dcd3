"""The provenance suite's adversary cases (issue 8): function-preserving rotations, weak merges,
partial re-initialisation, mixture-of-experts surgery, same-seed training, and independent
models that share nothing but a fixed position table.

Each case says what a correct audit concludes: ``derived`` (the modules it names, or all, tied to
the reference; ``review`` with the evidence also counts, never ``independent``; the modules it does
not name neither derived, identical nor sent to review) or ``independent`` (no module derived,
identical or sent to review).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

from checker import synth
from checker.audit import audit
from checker.references.registry import add_reference

TABLE_REF = "fixed-table-ref"
STATUS_MARK = {"derived": "D", "identical": "=", "independent": "-", "inconclusive": "?", "review": "R"}
SHORT = {"model": "dec", "model.embed_tokens": "emb", "lm_head": "head", "visual": "vit", "visual.merger": "mrg"}


@dataclass(frozen=True)
class Built:
    subject: synth.Subject
    #: the share of the submission's parameters really copied from the reference (None: all, or not defined)
    true_share: float | None = None


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # "derived" | "independent"
    build: object  # World -> Built
    #: derived cases: the modules that carry the copy (None: every module)
    copied: tuple[str, ...] | None = None
    #: "main": the suite's registry (reference REF); "tables": a reference with fixed position tables
    registry: str = "main"


@dataclass(frozen=True)
class World:
    ref: synth.Subject
    body: synth.Subject  # an independent model: the rest of a partial copy, the other side of a merge
    steps: int
    other_text: str


@dataclass(frozen=True)
class AdvOutcome:
    case: str
    expect: str
    ok: bool
    statuses: tuple[tuple[str, str], ...]  # (module, status)
    margin: float  # derived: weakest -log10 p (corrected) over the copied modules; independent: strongest
    true_share: float | None
    reported_share: float
    problems: tuple[str, ...]


def _splice(lm_from: synth.Subject, vit_from: synth.Subject) -> synth.Subject:
    """The decoder of one subject with the vision tower of another."""
    keep = {k: v for k, v in lm_from.state.items() if not k.startswith("visual.")}
    return replace(lm_from, state={**keep, **{k: v for k, v in vit_from.state.items() if k.startswith("visual.")}}, vit=vit_from.vit)


def _share(s: synth.Subject, prefix: str) -> float:
    total = sum(t.numel() for t in s.state.values())
    return sum(t.numel() for k, t in s.state.items() if k.startswith(prefix)) / total


def _borrowed(w: World, fused: bool) -> Built:
    s = synth.borrow_experts(w.body, w.ref, experts=4, borrowed=2, fused=fused)
    dense = sum(t.numel() for k, t in w.ref.state.items() if k.startswith("model.layers.") and ".mlp." in k)
    return Built(s, 2 * dense / sum(t.numel() for t in s.state.values()))


def _reinit(w: World, layers: tuple[int, ...]) -> Built:
    r = synth.reinit_layers(w.ref, layers)
    return Built(r.subject, r.copied_share)


def _vit_copy(w: World, *edits) -> Built:
    s = _splice(w.body, synth.rotate_residual(w.ref, towers=("vit",)))
    for e in edits:
        s = e(s)
    return Built(s, _share(s, "visual."))


def _decoder_turned(w: World, *taken: str) -> Built:
    """The reference's decoder, its residual stream turned (the merger's output rows with it),
    beside an independent vision tower whose tensors under the prefixes ``taken`` are the reference's."""
    s = _splice(w.ref, w.body)
    s = replace(s, state={**s.state, **{k: v for k, v in w.ref.state.items() if k.startswith(taken)}})
    s = synth.rotate_residual(s, ("lm",))
    return Built(s, 1 - _share(s, "visual.") + sum(_share(s, p) for p in taken))


def _finetune(w: World):
    return lambda s: synth.retrain(s, w.steps // 3, 3e-4, 11)


def _permuted(s: synth.Subject) -> synth.Subject:
    return synth.permute_merger(synth.permute_units(s))


def adversary_cases() -> tuple[Case, ...]:
    lm = ("lm",)
    vit_copied = ("visual", "visual.merger")
    decoder = ("model", "model.embed_tokens", "lm_head")
    merges = tuple(Case(f"merge {a:g} reference + {1 - a:g} independent", "derived",
                        lambda w, a=a: Built(synth.merge(w.ref, w.body, a))) for a in (0.5, 0.2, 0.1, 0.05))
    return (
        Case("control: norm gains folded, no rotation", "derived", lambda w: Built(synth.fold_norms(w.ref))),
        Case("rotation: decoder", "derived", lambda w: Built(synth.rotate_residual(w.ref, lm))),
        Case("rotation: decoder + unit permutation", "derived", lambda w: Built(_permuted(synth.rotate_residual(w.ref, lm)))),
        Case("rotation: decoder + light fine-tune", "derived", lambda w: Built(_finetune(w)(synth.rotate_residual(w.ref, lm)))),
        Case("rotation: whole VLM + unit permutation", "derived", lambda w: Built(_permuted(synth.rotate_residual(w.ref)))),
        Case("rotation: decoder copied, independent vision tower + merger", "derived", _decoder_turned, decoder),
        Case("rotation: decoder + vision tower copied, independent merger", "derived",
             lambda w: _decoder_turned(w, "visual.patch_embed.", "visual.blocks."), (*decoder, "visual")),
        Case("rotation: decoder + merger copied, independent vision tower", "derived",
             lambda w: _decoder_turned(w, "visual.merger."), (*decoder, "visual.merger")),
        Case("rotation: vision tower copied, independent decoder", "derived", _vit_copy, vit_copied),
        Case("rotation: vision tower copied + unit permutation", "derived", lambda w: _vit_copy(w, _permuted), vit_copied),
        Case("rotation: vision tower copied + light fine-tune", "derived", lambda w: _vit_copy(w, _finetune(w)), vit_copied),
        Case("fixed table: Whisper-style 1-D sinusoid, independent", "independent",
             lambda w: Built(_trained(w, 301, positions=True)), registry="tables"),
        Case("fixed table: 2-D sin-cos ViT table, independent", "independent",
             lambda w: Built(_trained(w, 302, pos_embed=True)), registry="tables"),
        Case("MoE: upcycled, fused experts", "derived", lambda w: Built(synth.upcycle(w.ref, fused=True))),
        Case("MoE: upcycled, per-expert tensors", "derived", lambda w: Built(synth.upcycle(w.ref, fused=False))),
        Case("MoE: reference FFNs as 2/4 experts of an independent body, fused", "derived", lambda w: _borrowed(w, True), ("model",)),
        Case("MoE: reference FFNs as 2/4 experts of an independent body, per-expert", "derived",
             lambda w: _borrowed(w, False), ("model",)),
        *merges,
        Case("decoder layers 1, 3 of 4 re-initialised", "derived", lambda w: _reinit(w, (1, 3))),
        Case("decoder layers 2, 3 of 4 re-initialised", "derived", lambda w: _reinit(w, (2, 3))),
        Case("same seed as the reference, trained on other text", "derived",
             lambda w: Built(synth.same_seed(0, w.other_text, w.ref.vocab, w.ref.lm, w.ref.vit, w.steps))),
    )


def _trained(w: World, seed: int, positions: bool = False, pos_embed: bool = False) -> synth.Subject:
    lm = replace(w.ref.lm, positions=64 if positions else 0)
    return synth.train_subject(seed, synth.stdlib_text(), w.ref.vocab, lm, replace(w.ref.vit, pos_embed=pos_embed), w.steps)


def table_registry(root: Path, w: World, unrelated: tuple[str, ...]) -> Path:
    """A registry whose foreign reference carries both fixed tables (trained like the others),
    beside the suite's unrelated references."""
    registry = root / "registry-tables"
    subj = _trained(w, 300, positions=True, pos_embed=True)
    folder = synth.save_checkpoint(root / "refs" / TABLE_REF, subj.state, subj.vocab, {"model_type": "qwen2_5_vl"})
    add_reference(str(folder), registry, ref_id=TABLE_REF, license="other")
    for rid in unrelated:
        add_reference(str(root / "refs" / rid), registry, ref_id=rid, license="other")
    return registry


def judge(case: Case, result, ref_id: str, true_share: float | None) -> AdvOutcome:
    problems, margins = [], []
    names = {mv.name for mv in result.modules}
    for name in case.copied or ():
        if name not in names:
            problems.append(f"{name}: no such module in the submission")
    for mv in result.modules:
        flagged = mv.status in ("derived", "identical")
        p = max(0.0, -mv.log10_p_corrected) if mv.log10_p_corrected is not None else 0.0
        if case.expect == "derived" and (case.copied is None or mv.name in case.copied):
            margins.append(p if mv.best is not None and mv.best.reference == ref_id else 0.0)
            if mv.status == "review":
                continue
            if not flagged:
                problems.append(f"{mv.name}: {mv.status} ({mv.reason})")
            elif mv.best.reference != ref_id:
                problems.append(f"{mv.name}: matched {mv.best.reference}:{mv.best.reference_module}")
        else:
            margins.append(p)
            if flagged or mv.status == "review":
                problems.append(f"{mv.name}: {mv.status} but nothing of it is copied ({mv.reason})")
    margin = (min(margins) if case.expect == "derived" else max(margins)) if margins else math.nan
    statuses = tuple((mv.name, mv.status) for mv in result.modules)
    return AdvOutcome(case.name, case.expect, not problems, statuses, margin, true_share, result.derived_param_fraction, tuple(problems))


def run_adversary(root: Path, world: World, registry: Path, pack, ref_id: str, unrelated: tuple[str, ...]) -> list[AdvOutcome]:
    """Build and audit every adversary case (in a fresh folder each)."""
    t0 = time.time()
    registries = {"main": (registry, ref_id)}
    out = []
    for i, case in enumerate(adversary_cases()):
        if case.registry == "tables" and "tables" not in registries:
            registries["tables"] = (table_registry(root, world, unrelated), TABLE_REF)
        reg, rid = registries[case.registry]
        built = case.build(world)
        folder = synth.save_checkpoint(root / "adversary" / f"adv{i:02d}", built.subject.state, built.subject.vocab)
        out.append(judge(case, audit(str(folder), reg, pack), rid, built.true_share))
    print(f"# {len(out)} adversary cases built and audited in {time.time() - t0:.0f}s", flush=True)
    return out


def print_adversary_table(outcomes: list[AdvOutcome]) -> None:
    """One line per case: expected outcome, pass or miss, each module's status, the p margin, shares."""
    print("\nAdversary cases (issue 8). Modules: D derived, = identical, R review, - independent, ? inconclusive. "
          "true W2: the share of parameters really copied, where only part is ('-': all, or not defined).")
    head = f"{'case':66} {'expected':11} {'result':6} {'modules':34} {'-log10p':>8} {'true W2':>8} {'reported':>8}"
    print(head)
    print("-" * len(head))
    for o in outcomes:
        mods = " ".join(f"{SHORT.get(n, n)}:{STATUS_MARK.get(s, s)}" for n, s in o.statuses)
        true = f"{o.true_share:.1%}" if o.true_share is not None else "-"
        print(f"{o.case[:66]:66} {o.expect:11} {'pass' if o.ok else 'MISS':6} {mods:34} {o.margin:8.1f} {true:>8} {o.reported_share:8.1%}")
        for p in o.problems:
            print(f"      ! {p}")
    der = [o for o in outcomes if o.expect == "derived"]
    ind = [o for o in outcomes if o.expect == "independent"]
    print(f"  derived cases caught {sum(o.ok for o in der)}/{len(der)}; independent cases cleared {sum(o.ok for o in ind)}/{len(ind)}")
