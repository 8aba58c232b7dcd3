"""Provenance suite: does the engine catch every disguise, and never accuse an independent model?

A script, not a test: it prints figures. Small Qwen2.5-VL-like models (a vision
tower and a Llama-style decoder) are really trained (a few hundred AdamW steps
on the standard library's source text and a synthetic image task); one of them
is the registered foreign reference, two more are registered as unrelated
references. Derived submissions are the reference disguised in every way the
issue lists, alone and two at a time; independent submissions share the
architecture, config, tokenizer and data but not the weights. Each submission
goes through the real audit with the shipped rule pack (p < 1e-6 after the
correction for every module x reference test). Issue 8's adversary cases (rotations, merges,
re-initialised layers, MoE surgery, same-seed training, fixed-table independents) are defined
in ``benchmarks/_suite_cases.py`` and printed as a second table with pass/miss per case.

    python benchmarks/provenance_suite.py [--quick] [--only all|disguises|adversary] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy import stats as sps

from checker import synth
from checker.audit import audit
from checker.modules import split_modules
from checker.metrics.engine import compare
from checker.references.fingerprint import ANCHOR_TOKENS, K_ROWS, build_fingerprint, estimated_nbytes, load_fingerprint
from checker.references.registry import add_reference
from checker.rules import load_pack
from checker.scanners.tokenizer import read_vocabulary
from checker.weights import open_checkpoint
from checker.weights.interface import TensorInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _suite_cases import World, print_adversary_table, run_adversary  # noqa: E402

REF = "foreign-vlm"
UNRELATED = ("unrelated-a", "unrelated-b")
LOG10_ALPHA = math.log10(1e-6)
#: Module of the reference each submission module must be matched to.
EXPECTED_MODULE = {"model": "model", "visual": "visual", "vision_tower": "visual", "model.embed_tokens": "model.embed_tokens",
                   "lm_head": "lm_head", "visual.merger": "visual.merger", "multi_modal_projector": "visual.merger"}
STACKS = ("model", "visual", "vision_tower")
OTHER_TEXT = synth.stdlib_text(("inspect.py", "typing.py", "dataclasses.py"))


@dataclass(frozen=True)
class Disguise:
    name: str
    rank: int  # order of application when combined: training first, storage last
    apply: object  # Subject -> Subject
    #: how the disguise rearranges a stack's layers: the list of reference layers behind the
    #: submission's layers (None: a fresh layer) -> the same after the disguise; None: unchanged
    layers: object = None


@dataclass(frozen=True)
class Outcome:
    """One submission's audit, reduced to what the table needs."""

    case: str
    derived: bool
    flagged: dict  # module -> status
    ok: bool  # derived: every module flagged with the right reference, module and layer map; independent: none flagged
    problems: tuple[str, ...]
    by_stat: dict  # statistic -> (flagged modules, modules)
    margin: float  # derived: smallest -log10 p (corrected) vs the reference over its modules; independent: largest
    norm_cos: float  # median raw cosine of norm weights with the reference
    norm_pearson: float
    null_module: tuple[float, ...]  # independent cases: log10 p of every module-pair comparison
    null_cells: tuple[tuple[str, float], ...]  # (anchor | layer | screen, log10 p) of every cell in those comparisons
    tests: int = 0  # the comparisons the Bonferroni correction counts (the report's `tests`)


def world(root: Path, steps: int, seeds: int, quick: bool):
    torch.set_num_threads(1)  # oversubscribed threads make tiny-model training many times slower
    text = synth.stdlib_text()
    vocab = synth.char_vocab(text)
    lm, vit = synth.LMConfig(vocab=len(vocab)), synth.ViTConfig()

    def trained(seed: int, lm_cfg=lm, vit_cfg=vit, freeze_norms: bool = False) -> synth.Subject:
        return synth.train_subject(seed, text, vocab, lm_cfg, vit_cfg, steps, freeze_norms=freeze_norms)

    t0 = time.time()
    ref = trained(0)
    registry = root / "registry"
    for rid, subj in ((REF, ref), *((u, trained(100 + i)) for i, u in enumerate(UNRELATED))):
        folder = synth.save_checkpoint(root / "refs" / rid, subj.state, subj.vocab, {"model_type": "qwen2_5_vl"})
        add_reference(str(folder), registry, ref_id=rid, license="other")
    independents = {f"seed {s} (same arch, config, tokenizer, data)": trained(s) for s in range(1, seeds + 1)}
    independents["norm weights near 1 (frozen)"] = trained(seeds + 1, freeze_norms=True)
    if not quick:
        independents["smaller model, same family"] = trained(seeds + 2, replace(lm, hidden=48, layers=3, ffn=96, heads=4),
                                                             replace(vit, hidden=32, layers=2, ffn=64))
        independents["larger model, same family"] = trained(seeds + 3, replace(lm, hidden=96, layers=6, ffn=256, heads=6),
                                                            replace(vit, hidden=64, layers=4, ffn=128))
    print(f"# trained the reference, {len(UNRELATED)} unrelated references and {len(independents)} independent models "
          f"in {time.time() - t0:.0f}s ({steps} steps each)", flush=True)
    return ref, independents, registry


def disguises(steps: int) -> tuple[Disguise, ...]:
    return (
        Disguise("light fine-tune", 0, lambda s: synth.retrain(s, steps // 3, 3e-4, 11)),
        Disguise("heavy fine-tune (lr 2e-3)", 0, lambda s: synth.retrain(s, steps, 2e-3, 12)),
        Disguise("continued pretraining, other text", 0, lambda s: synth.retrain(s, steps, 1e-3, 13, OTHER_TEXT)),
        Disguise("FFN neuron + head permutation", 1, synth.permute_units),
        Disguise("hidden permutation + sign flips", 1, synth.permute_hidden),
        Disguise("rescaling (q*c, k/c, norm gain folded)", 1, synth.rescale),
        Disguise("single units rescaled (up/v/q rows, +-1e-3..1e3)", 1, synth.rescale_units),
        Disguise("heads mixed inside (orthogonal q/k and v/o per head)", 1, synth.mix_heads),
        Disguise("every second layer dropped", 1, synth.drop_layers, layers=lambda seq: seq[::2]),
        Disguise("layer duplicated + fresh layer inserted", 1, synth.repeat_layers,
                 layers=lambda seq: [None if i is None else seq[i] for i in synth.layer_plan(len(seq))]),
        Disguise("50% FFN width pruned", 1, synth.prune_ffn),
        Disguise("25% hidden width pruned", 1, synth.prune_hidden),
        Disguise("vocabulary halved + 20% new tokens", 1, synth.change_vocab),
        Disguise("bf16 round trip", 2, lambda s: synth.round_trip(s, "bf16")),
        Disguise("fp16 round trip", 2, lambda s: synth.round_trip(s, "fp16")),
        Disguise("int8 round trip", 2, lambda s: synth.round_trip(s, "int8")),
        Disguise("vision tower transplanted (LLaVA names, qkv split)", 3, synth.transplant_llava),
    )


def expected_layer_map(module: str, subj: synth.Subject, parts: tuple[Disguise, ...] = ()) -> dict[int, int]:
    """Submission layer -> reference layer after the disguises (in the order they are applied);
    fresh layers are in no pair."""
    seq: list = list(range(subj.lm.layers if module == "model" else subj.vit.layers))
    for d in sorted(parts, key=lambda d: d.rank):
        if d.layers is not None:
            seq = d.layers(seq)
    return {i: r for i, r in enumerate(seq) if r is not None}


def evaluate(case: str, derived: bool, folder: Path, registry: Path, pack, ref: synth.Subject,
             parts: tuple[Disguise, ...] = ()) -> Outcome:
    result = audit(str(folder), registry, pack)
    tests = sum(1 for mv in result.modules for m in mv.matches if m.decisive)
    corr = math.log10(max(tests, 1))
    flagged, problems, by_stat, margins, cos, pear = {}, [], {}, [], [], []
    null_mod, null_cells = [], []
    for mv in result.modules:
        flagged[mv.name] = mv.status
        is_flag = mv.status in ("derived", "identical")
        to_ref = [m for m in mv.matches if m.reference == REF]
        if not derived:  # distinct unrelated model pairs only: derived copies would repeat one comparison
            _collect_null(mv.matches, null_mod, null_cells)
        best_ref = min((m for m in to_ref if m.decisive), key=lambda m: m.log10_p, default=None)
        if best_ref is not None:
            margins.append(-(min(0.0, best_ref.log10_p + corr)))
            stat = best_ref.statistic
            hit = best_ref.log10_p + corr < LOG10_ALPHA
            f, n = by_stat.get(stat, (0, 0))
            by_stat[stat] = (f + hit, n + 1)
        same = max((m.identical_fraction for m in to_ref), default=0.0)
        f, n = by_stat.get("content digest", (0, 0))
        by_stat["content digest"] = (f + (same >= 0.99), n + 1)
        for m in to_ref:
            if m.reference_module == EXPECTED_MODULE.get(mv.name):
                for c in m.cells:  # same-index pairs: the LayerNorm accusation compared layer i with layer i
                    if c.sub_layer == c.ref_layer:
                        cos.extend(w.raw_cosine for w in c.weak if w.role == "norm")
                        pear.extend(w.pearson for w in c.weak if w.role == "norm")
        if derived:
            if not is_flag:
                problems.append(f"{mv.name}: {mv.status} ({mv.reason})")
                continue
            b = mv.best
            want = EXPECTED_MODULE.get(mv.name)
            if b.reference != REF or (want and b.reference_module != want):
                problems.append(f"{mv.name}: matched {b.reference}:{b.reference_module}")
            if mv.name in STACKS and mv.status == "derived":
                lm = expected_layer_map("model" if mv.name == "model" else "visual", ref, parts)
                if dict(b.layer_map) != lm:
                    problems.append(f"{mv.name}: layer map {dict(b.layer_map)} != {lm}")
        elif is_flag:
            problems.append(f"{mv.name}: {mv.status} ({mv.reason})")
    margin = (min(margins) if derived else max(margins)) if margins else float("nan")
    return Outcome(case, derived, flagged, not problems, tuple(problems), by_stat, margin,
                   float(np.median(cos)) if cos else float("nan"), float(np.median(pear)) if pear else float("nan"),
                   tuple(null_mod), tuple(null_cells), tests)


def _collect_null(matches, modules: list, cells: list) -> None:
    for m in matches:
        if m.decisive:
            modules.append(m.log10_p)
            cells.extend(("anchor" if c.sub_layer is None else "layer", c.log10_p) for c in m.cells if c.roles)
            cells.extend(("screen", p) for p in m.screen.log10_p.tolist())


def null_pairs(folders: list[Path]) -> Outcome:
    """Every unordered pair of independent submissions, one fingerprinted as the reference."""
    prints = [build_fingerprint(open_checkpoint(f), read_vocabulary(f), f.name) for f in folders]
    modules, cells = [], []
    for i, j in itertools.combinations(range(len(folders)), 2):
        reader = open_checkpoint(folders[i])
        for ev in compare(reader, split_modules(reader.tensors()), read_vocabulary(folders[i]), [(folders[j].name, prints[j])]):
            _collect_null(ev.matches, modules, cells)
    return Outcome("independent pairs", False, {}, True, (), {}, float("nan"), float("nan"), float("nan"), tuple(modules), tuple(cells))


def combine(base: synth.Subject, parts: tuple[Disguise, ...], cache: dict) -> synth.Subject:
    """Apply the disguises in rank order; trained intermediates are cached (training is the cost)."""
    s = base
    done: tuple[str, ...] = ()
    for d in sorted(parts, key=lambda d: d.rank):
        done += (d.name,)
        if done not in cache:
            cache[done] = d.apply(s)
        s = cache[done]
    return s


STATS = ("heldout_row_pearson", "shared_token_pearson", "hidden_gram_mantel", "content digest")


def print_table(outcomes: list[Outcome]) -> None:
    head = f"{'case':58} {'ok':>3} {'flagged':>8} " + " ".join(f"{s[:14]:>14}" for s in STATS) + f" {'-log10p':>8} {'normcos':>7} {'normr':>6}"
    print(head)
    print("-" * len(head))
    for o in outcomes:
        n_flag = sum(1 for s in o.flagged.values() if s in ("derived", "identical"))
        cells = []
        for s in STATS:
            f, n = o.by_stat.get(s, (0, 0))
            cells.append(f"{f}/{n}" if n else "-")
        print(f"{o.case[:58]:58} {'yes' if o.ok else 'NO':>3} {n_flag:>3}/{len(o.flagged):<4} " + " ".join(f"{c:>14}" for c in cells)
              + f" {o.margin:8.1f} {o.norm_cos:7.3f} {o.norm_pearson:6.3f}")
        for p in o.problems:
            print(f"      ! {p}")


def print_summary(outcomes: list[Outcome]) -> None:
    der = [o for o in outcomes if o.derived]
    ind = [o for o in outcomes if not o.derived]
    print("\nPer statistic (modules; derived = detection rate over derived modules, independent = false-positive rate):")
    for s in STATS:
        fd = sum(o.by_stat.get(s, (0, 0))[0] for o in der)
        nd = sum(o.by_stat.get(s, (0, 0))[1] for o in der)
        fi = sum(o.by_stat.get(s, (0, 0))[0] for o in ind)
        ni = sum(o.by_stat.get(s, (0, 0))[1] for o in ind)
        print(f"  {s:22} TPR {fd}/{nd} = {fd / max(nd, 1):.1%}   FPR {fi}/{ni} = {fi / max(ni, 1):.1%}")
    print(f"  {'audit verdict':22} derived cases caught {sum(o.ok for o in der)}/{len(der)}, "
          f"independent cases flagged {sum(not o.ok for o in ind)}/{len(ind)}")
    dmin = min(o.margin for o in der)
    imax = max(o.margin for o in ind)
    print(f"  margin: weakest derived case -log10 p = {dmin:.1f} ({min(der, key=lambda o: o.margin).case}); "
          f"strongest independent -log10 p = {imax:.2f}; threshold 6")
    cos_i = [o.norm_cos for o in ind if not math.isnan(o.norm_cos)]
    cos_d = [o.norm_cos for o in der if not math.isnan(o.norm_cos)]
    pear_i = [o.norm_pearson for o in ind if not math.isnan(o.norm_pearson)]
    print(f"  LayerNorm trap: raw cosine of norm weights, independent {min(cos_i):.3f}..{max(cos_i):.3f} "
          f"(derived {min(cos_d):.3f}..{max(cos_d):.3f}): a 0.95 cut would flag {sum(c > 0.95 for c in cos_i)}/{len(cos_i)} independent "
          f"models; centred Pearson for independent {min(pear_i):.3f}..{max(pear_i):.3f}")


def print_null(outcomes: list[Outcome]) -> None:
    mod = np.array([p for o in outcomes for p in o.null_module])
    anchor = np.array([p for o in outcomes for a, p in o.null_cells if a == "anchor"])
    layer = np.array([p for o in outcomes for a, p in o.null_cells if a == "layer"])
    screen = np.array([p for o in outcomes for a, p in o.null_cells if a == "screen"])
    print("\nNull calibration (every module x reference-module comparison of an unrelated model pair: "
          "independent submissions x registered references, and independent submissions pairwise):")
    for label, arr in (("module level (Bonferroni over layer pairs)", mod), ("  layer screen, every role pair", screen),
                       ("  layer cells sent to the full test", layer), ("  token / patch anchors", anchor)):
        if len(arr) == 0:
            print(f"  {label:44} n=    0")
            continue
        p = 10.0 ** arr
        ks = sps.kstest(p, "uniform")
        print(f"  {label:44} n={len(p):5d}  p<0.01: {np.mean(p < 0.01):.2%}  p<0.05: {np.mean(p < 0.05):.2%}  "
              f"mean p {p.mean():.3f}  KS D={ks.statistic:.3f} (p={ks.pvalue:.2g})  min p 1e{arr.min():.1f}")


def print_fingerprint_size(registry: Path) -> None:
    fp = load_fingerprint(registry / REF)
    print(f"\nFingerprint size: benchmark reference {fp.nbytes():,} bytes for {fp.parameters:,} parameters "
          f"({fp.nbytes() / fp.parameters:.3f} bytes/parameter; tiny models are dominated by the sampled rows)")
    est = estimated_nbytes([t.role for t in fp.tensors])
    print(f"  analytic estimate for the same shapes: {est:,} bytes (check: {'matches' if est == fp.nbytes() else 'differs'})")
    for label, d, ffn, layers, vocab in (("Llama-2-7B", 4096, 11008, 32, 32000), ("Llama-3-8B (GQA)", 4096, 14336, 32, 128256)):
        kv = d if "Llama-2" in label else 1024
        infos = [TensorInfo("model.embed_tokens.weight", (vocab, d), "BF16", "x"), TensorInfo("lm_head.weight", (vocab, d), "BF16", "x"),
                 TensorInfo("model.norm.weight", (d,), "BF16", "x")]
        for i in range(layers):
            p = f"model.layers.{i}."
            infos += [TensorInfo(p + "self_attn.q_proj.weight", (d, d), "BF16", "x"), TensorInfo(p + "self_attn.k_proj.weight", (kv, d), "BF16", "x"),
                      TensorInfo(p + "self_attn.v_proj.weight", (kv, d), "BF16", "x"), TensorInfo(p + "self_attn.o_proj.weight", (d, d), "BF16", "x"),
                      TensorInfo(p + "mlp.gate_proj.weight", (ffn, d), "BF16", "x"), TensorInfo(p + "mlp.up_proj.weight", (ffn, d), "BF16", "x"),
                      TensorInfo(p + "mlp.down_proj.weight", (d, ffn), "BF16", "x"),
                      TensorInfo(p + "input_layernorm.weight", (d,), "BF16", "x"), TensorInfo(p + "post_attention_layernorm.weight", (d,), "BF16", "x")]
        roles = [t for m in split_modules(infos) for t in m.tensors]
        params = sum(t.numel for t in roles)
        nbytes = estimated_nbytes(roles)
        print(f"  {label}: {params / 1e9:.2f}B parameters -> {nbytes / 2**20:.0f} MiB "
              f"= {nbytes / 2**20 / (params / 1e9):.0f} MiB per billion parameters "
              f"({nbytes / (2 * params):.2%} of the bf16 checkpoint; K_ROWS={K_ROWS}, ANCHOR_TOKENS={ANCHOR_TOKENS})")


def run_disguises(root: Path, ref: synth.Subject, independents: dict, registry: Path, pack, steps: int, quick: bool) -> list[Outcome]:
    """Every disguise (alone, and two at a time unless ``quick``) and every independent model, audited;
    prints the disguise table, the summary, the null calibration and the fingerprint size."""
    ds = disguises(steps)
    combos = [(d,) for d in ds] + ([] if quick else list(itertools.combinations(ds, 2)))
    outcomes, cache = [], {}
    for i, parts in enumerate(combos):
        subj = combine(ref, parts, cache)
        name = " + ".join(d.name for d in parts)
        folder = synth.save_checkpoint(root / "derived" / f"case{i:03d}", subj.state, subj.vocab)
        outcomes.append(evaluate(name, True, folder, registry, pack, ref, parts))
    folders = []
    for j, (name, subj) in enumerate(independents.items()):
        folders.append(synth.save_checkpoint(root / "independent" / f"ind{j:02d}", subj.state, subj.vocab, {"model_type": "qwen2_5_vl"}))
        outcomes.append(evaluate(name, False, folders[-1], registry, pack, ref))
    pairs = null_pairs(folders)
    tests = sorted({o.tests for o in outcomes})
    print(f"# {len(combos)} derived and {len(independents)} independent submissions audited "
          f"against {1 + len(UNRELATED)} references (significance 1e-6 after correction for "
          f"{tests[0]}{'' if len(tests) == 1 else f'-{tests[-1]}'} tests per submission)\n")
    print_table(outcomes)
    print_summary(outcomes)
    print_null(outcomes + [pairs])
    print_fingerprint_size(registry)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and seeds, single disguises only")
    ap.add_argument("--only", choices=("all", "disguises", "adversary"), default="all",
                    help="adversary: only issue 8's adversary cases (one independent model is trained)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the models here (default: a temporary folder)")
    args = ap.parse_args(argv)
    steps, seeds = (120, 2) if args.quick else (300, 5)
    adversary_only = args.only == "adversary"
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        ref, independents, registry = world(root, steps, 1 if adversary_only else seeds, args.quick or adversary_only)
        pack = load_pack()
        bad = [] if adversary_only else [o for o in run_disguises(root, ref, independents, registry, pack, steps, args.quick) if not o.ok]
        if args.only != "disguises":
            body = next(iter(independents.values()))
            adv = run_adversary(root, World(ref, body, steps, OTHER_TEXT), registry, pack, REF, UNRELATED)
            print_adversary_table(adv)
            bad += [o for o in adv if not o.ok]
        print(f"\n# total {time.time() - t0:.0f}s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
