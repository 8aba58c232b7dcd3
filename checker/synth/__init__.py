"""Tiny, really trained transformer models for the demo, the tests and the benchmark.

Nothing is downloaded: language models learn from text that ships with Python (the standard
library's own source), vision encoders from a synthetic image task. Tensor names follow real
checkpoints (Llama/Qwen2 decoder, Qwen2.5-VL vision tower, or LLaVA-style ``vision_tower``),
so the same module maps apply.

- ``models``: the models, their configs and ``Subject`` (a state dict with vocabulary and configs);
- ``training``: real optimizer steps; ``checkpoint``: Hugging Face-style folders;
- ``spaces`` and ``disguises``: the edits a derivation may use to hide (permutations, pruning,
  rescaling, layer surgery, vocabulary change, storage round trips, renaming, fine-tuning);
- ``rotation``, ``attacks``, ``moe``, ``tables``: issue 8's adversary (residual rotations, weak
  merges, partial re-initialisation, same-seed training, mixture-of-experts surgery, fixed
  position tables).
"""

from checker.synth.attacks import Reinitialised, merge, reinit_layers, same_seed
from checker.synth.checkpoint import save_checkpoint, write_tokenizer
from checker.synth.disguises import (FEEDS, change_vocab, drop_layers, fresh_tensor, layer_plan, norm_targets,
                                     repeat_layers, rescale, rescale_units, retrain, round_trip, transplant_llava)
from checker.synth.models import (STDLIB, Block, LMConfig, RMSNorm, Subject, TinyLM, TinyViT, ViTBlock, ViTConfig,
                                  char_vocab, new_lm, new_vit, state, stdlib_text)
from checker.synth.moe import borrow_experts, fuse_experts, upcycle
from checker.synth.rotation import fold_norms, mix_heads, random_orthogonal, rotate_residual
from checker.synth.spaces import (LAYER, along, axes_of, layer_of, map_spaces, permute_hidden, permute_merger,
                                  permute_units, prune_ffn, prune_hidden, tower_of)
from checker.synth.tables import sincos_2d_table, sinusoidal_table
from checker.synth.training import encode, synthetic_images, train_lm, train_subject, train_vit

__all__ = [
    "STDLIB", "Block", "FEEDS", "LAYER", "LMConfig", "RMSNorm", "Reinitialised", "Subject", "TinyLM", "TinyViT",
    "ViTBlock", "ViTConfig", "along", "axes_of", "borrow_experts", "change_vocab", "char_vocab", "drop_layers",
    "encode", "fold_norms", "fresh_tensor", "fuse_experts", "layer_of", "layer_plan", "map_spaces", "merge", "mix_heads",
    "new_lm", "new_vit", "norm_targets", "permute_hidden", "permute_merger", "permute_units", "prune_ffn",
    "prune_hidden", "random_orthogonal", "reinit_layers", "repeat_layers", "rescale", "rescale_units", "retrain", "rotate_residual",
    "round_trip", "same_seed", "save_checkpoint", "sincos_2d_table", "sinusoidal_table", "state", "stdlib_text",
    "synthetic_images", "tower_of", "train_lm", "train_subject", "train_vit", "transplant_llava", "upcycle",
    "write_tokenizer",
]
