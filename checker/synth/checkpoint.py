"""Hugging Face-style checkpoint folders: safetensors (optionally sharded), tokenizer, config."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def write_tokenizer(folder: Path, vocab: list[str]) -> None:
    data = {"version": "1.0", "added_tokens": [], "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(vocab)}, "merges": []}}
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")


def save_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], vocab: list[str] | None = None,
                    config: dict | None = None, shards: int = 1) -> Path:
    """Write a Hugging Face-style folder: safetensors (optionally sharded), tokenizer, config."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    if shards <= 1:
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    else:
        names = sorted(tensors)
        weight_map = {}
        for i in range(shards):
            part = names[i::shards]
            fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            save_file({n: tensors[n] for n in part}, str(folder / fname), metadata={"format": "pt"})
            weight_map.update({n: fname for n in part})
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}), encoding="utf-8")
    if vocab is not None:
        write_tokenizer(folder, vocab)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder
