"""Tiny, really trained models shared by the tests (built once per session, under tmp)."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing is ever downloaded at test time


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """The CLI's evidence cache lives in a per-session temporary folder, never in the home folder."""
    monkeypatch.setenv("FROMSCRATCH_CACHE", str(tmp_path_factory.getbasetemp() / "fromscratch-cache"))

from checker import synth  # noqa: E402
from checker.references.registry import add_reference  # noqa: E402

STEPS = 150


@dataclass(frozen=True)
class Zoo:
    root: Path
    vocab: list
    ref_lm: object
    ref_vit: object
    ft_lm: object
    ind_lm: object
    ft_vit: object
    ind_vit: object
    registry: Path

    def save(self, name: str, *models, vocab=True, config=None, shards: int = 1, tensors=None) -> Path:
        state = {}
        for m in models:
            state.update(synth.state(m))
        if tensors:
            state.update(tensors)
        return synth.save_checkpoint(self.root / name, state, self.vocab if vocab else None, config, shards)


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> Zoo:
    root = tmp_path_factory.mktemp("zoo")
    text = synth.stdlib_text()
    vocab = synth.char_vocab(text)
    lm_cfg, vit_cfg = synth.LMConfig(vocab=len(vocab)), synth.ViTConfig()
    ref_lm, ref_vit = synth.new_lm(lm_cfg, 0), synth.new_vit(vit_cfg, 0)
    synth.train_lm(ref_lm, text, vocab, STEPS, seed=0)
    synth.train_vit(ref_vit, STEPS, seed=0)
    ft_lm = copy.deepcopy(ref_lm)  # fine-tuned copy: real optimizer steps on other text
    synth.train_lm(ft_lm, synth.stdlib_text(("inspect.py",)), vocab, STEPS // 2, lr=1e-3, seed=5)
    ft_vit = copy.deepcopy(ref_vit)
    synth.train_vit(ft_vit, STEPS // 2, lr=1e-3, seed=5)
    ind_lm, ind_vit = synth.new_lm(lm_cfg, 1), synth.new_vit(vit_cfg, 1)  # same config, tokenizer and data
    synth.train_lm(ind_lm, text, vocab, STEPS, seed=1)
    synth.train_vit(ind_vit, STEPS, seed=1)
    z = Zoo(root, vocab, ref_lm, ref_vit, ft_lm, ind_lm, ft_vit, ind_vit, root / "registry")
    ref = z.save("foreign-vlm", ref_vit, ref_lm, config={"model_type": "qwen2_5_vl"})
    add_reference(str(ref), z.registry, ref_id="foreign-vlm", license="llama3.1")
    return z
