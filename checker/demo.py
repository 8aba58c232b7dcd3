"""The embedded demo: a foreign reference model and a submission that borrows its vision encoder.

The reference is a small vision-language model (a Qwen2.5-VL-style vision
tower plus a Llama-style decoder), really trained. The submission fine-tunes a
copy of the reference's vision tower with real optimizer steps and trains its
own language model from scratch with the same architecture and tokenizer.
A correct audit flags exactly the vision tower.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from checker import synth
from checker.audit import AuditResult, audit
from checker.references.registry import add_reference
from checker.rules import load_pack

APACHE_NOTICE = "Licensed under the Apache License, Version 2.0 (the \"License\");\nyou may not use this file except in compliance with the License.\n"


@dataclass(frozen=True)
class DemoRun:
    reference: Path
    submission: Path
    registry: Path
    result: AuditResult


def build_models(root: Path, steps: int = 200) -> tuple[Path, Path]:
    text = synth.stdlib_text()
    vocab = synth.char_vocab(text)
    lm_cfg, vit_cfg = synth.LMConfig(vocab=len(vocab)), synth.ViTConfig()
    # The foreign reference: vision tower and language model, each trained.
    ref_vit, ref_lm = synth.new_vit(vit_cfg, 101), synth.new_lm(lm_cfg, 102)
    synth.train_vit(ref_vit, steps, seed=101)
    synth.train_lm(ref_lm, text, vocab, steps, seed=102)
    config = {"model_type": "qwen2_5_vl", "architectures": ["Qwen2_5_VLForConditionalGeneration"]}
    reference = synth.save_checkpoint(root / "foreign-vlm", {**synth.state(ref_vit), **synth.state(ref_lm)}, vocab,
                                      {**config, "_name_or_path": "example-org/foreign-vlm"})
    # The submission: a fine-tuned copy of the foreign vision tower beside an original language model.
    sub_vit = copy.deepcopy(ref_vit)
    synth.train_vit(sub_vit, steps // 2, lr=1e-3, seed=7)
    sub_lm = synth.new_lm(lm_cfg, 2025)
    synth.train_lm(sub_lm, text, vocab, steps, seed=2025)
    submission = synth.save_checkpoint(root / "submission", {**synth.state(sub_vit), **synth.state(sub_lm)}, vocab,
                                       {**config, "_name_or_path": "our-lab/sovereign-vlm"})
    (submission / "README.md").write_text(
        "---\nlicense: apache-2.0\n---\n# sovereign-vlm\n\nA demo submission built by `fromscratch demo`.\n", encoding="utf-8")
    return reference, submission


def run_demo(out: Path, steps: int = 200) -> DemoRun:
    models = out / "models"
    reference, submission = build_models(models, steps)
    registry = out / "registry"
    if (registry / "foreign-vlm").exists():
        import shutil
        shutil.rmtree(registry / "foreign-vlm")
    add_reference(str(reference), registry, ref_id="foreign-vlm", license="apache-2.0", publisher="example-org")
    result = audit(str(submission), registry, load_pack())
    (out / "demo.json").write_text(json.dumps({"reference": str(reference), "submission": str(submission)}), encoding="utf-8")
    return DemoRun(reference, submission, registry, result)
