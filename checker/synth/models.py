"""The tiny models: a Llama/Qwen2-style decoder and a Qwen2.5-VL-style vision tower.

Tensor names follow real checkpoints (``model.layers.N.self_attn.q_proj``, ``visual.blocks.N.attn.qkv``),
so the same module maps apply. A ``Subject`` is a model as a state dict with its vocabulary and
configs: what the disguises and attacks edit.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from checker.synth.tables import sincos_2d_table, sinusoidal_table

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def stdlib_text(names: tuple[str, ...] = ("textwrap.py", "argparse.py", "json/decoder.py"), limit: int = 200_000) -> str:
    """Training text from the standard library's source files."""
    parts = []
    for n in names:
        p = STDLIB / n
        if p.is_file():
            parts.append(p.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)[:limit]


def char_vocab(text: str, extra: int = 0) -> list[str]:
    """A character vocabulary (sorted), optionally with ``extra`` made-up tokens."""
    chars = sorted(set(text))
    return ["<pad>", "<unk>"] + chars + [f"<extra_{i}>" for i in range(extra)]


@dataclass(frozen=True)
class LMConfig:
    vocab: int = 100
    hidden: int = 64
    layers: int = 4
    ffn: int = 128
    heads: int = 4
    #: > 0: a fixed Whisper-style sinusoidal table ``model.embed_positions.weight`` of this many
    #: positions is added to the token embeddings (frozen, never trained)
    positions: int = 0


class RMSNorm(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Block(nn.Module):
    """A Llama-style block: RMSNorm, q/k/v/o attention, gated MLP."""

    def __init__(self, c: LMConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.input_layernorm = RMSNorm(c.hidden)
        self.post_attention_layernorm = RMSNorm(c.hidden)
        self.self_attn = nn.ModuleDict({n: nn.Linear(c.hidden, c.hidden, bias=False) for n in ("q_proj", "k_proj", "v_proj", "o_proj")})
        self.mlp = nn.ModuleDict({"gate_proj": nn.Linear(c.hidden, c.ffn, bias=False), "up_proj": nn.Linear(c.hidden, c.ffn, bias=False),
                                  "down_proj": nn.Linear(c.ffn, c.hidden, bias=False)})

    def forward(self, x):
        b, t, d = x.shape
        h = self.input_layernorm(x)
        a = self.self_attn
        q, k, v = (a[n](h).view(b, t, self.heads, -1).transpose(1, 2) for n in ("q_proj", "k_proj", "v_proj"))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + a["o_proj"](y)
        h = self.post_attention_layernorm(x)
        return x + self.mlp["down_proj"](F.silu(self.mlp["gate_proj"](h)) * self.mlp["up_proj"](h))


class TinyLM(nn.Module):
    """Decoder with Llama/Qwen2 tensor names: model.layers.N.self_attn.q_proj, ..."""

    def __init__(self, c: LMConfig) -> None:
        super().__init__()
        self.config = c
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(c.vocab, c.hidden)
        if c.positions:
            self.model.embed_positions = nn.Embedding(c.positions, c.hidden)
            self.model.embed_positions.weight = nn.Parameter(sinusoidal_table(c.positions, c.hidden), requires_grad=False)
        self.model.layers = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.model.norm = RMSNorm(c.hidden)
        self.lm_head = nn.Linear(c.hidden, c.vocab, bias=False)

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
        if self.config.positions:
            x = x + self.model.embed_positions.weight[: ids.shape[1]]
        for blk in self.model.layers:
            x = blk(x)
        return self.lm_head(self.model.norm(x))


@dataclass(frozen=True)
class ViTConfig:
    hidden: int = 48
    layers: int = 3
    ffn: int = 96
    heads: int = 4
    patch: int = 4
    image: int = 16
    out: int = 64  # merger output (the language model's hidden size)
    #: a fixed 2-D sin-cos table ``visual.pos_embed`` [patches, hidden] added to the patch
    #: embeddings (frozen, never trained)
    pos_embed: bool = False


class ViTBlock(nn.Module):
    """A Qwen2.5-VL-style vision block: norm1, fused attn.qkv, attn.proj, norm2, mlp.fc1/fc2."""

    def __init__(self, c: ViTConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.norm1, self.norm2 = nn.LayerNorm(c.hidden), nn.LayerNorm(c.hidden)
        self.attn = nn.ModuleDict({"qkv": nn.Linear(c.hidden, 3 * c.hidden), "proj": nn.Linear(c.hidden, c.hidden)})
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(c.hidden, c.ffn), "fc2": nn.Linear(c.ffn, c.hidden)})

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.attn["qkv"](self.norm1(x)).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        x = x + self.attn["proj"](F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x))))


class TinyViT(nn.Module):
    """Vision tower named like Qwen2.5-VL (``visual.*``)."""

    def __init__(self, c: ViTConfig, classes: int = 8) -> None:
        super().__init__()
        self.config = c
        self.visual = nn.Module()
        self.visual.patch_embed = nn.Module()
        self.visual.patch_embed.proj = nn.Conv2d(3, c.hidden, c.patch, c.patch, bias=False)
        if c.pos_embed:
            table = sincos_2d_table(c.image // c.patch, c.hidden)
            self.visual.pos_embed = nn.Parameter(table, requires_grad=False)
        self.visual.blocks = nn.ModuleList([ViTBlock(c) for _ in range(c.layers)])
        self.visual.merger = nn.Module()
        self.visual.merger.mlp = nn.Sequential(nn.Linear(c.hidden, c.out), nn.GELU(), nn.Linear(c.out, c.out))
        self.head = nn.Linear(c.out, classes)  # training head, not saved

    def features(self, img):
        x = self.visual.patch_embed.proj(img).flatten(2).transpose(1, 2)
        if self.config.pos_embed:
            x = x + self.visual.pos_embed
        for blk in self.visual.blocks:
            x = blk(x)
        return self.visual.merger.mlp(x.mean(1))

    def forward(self, img):
        return self.head(self.features(img))


def new_lm(c: LMConfig, seed: int) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(c)


def new_vit(c: ViTConfig, seed: int) -> TinyViT:
    torch.manual_seed(seed)
    return TinyViT(c)


def state(model: nn.Module, drop_prefixes: tuple[str, ...] = ("head.",)) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if not k.startswith(drop_prefixes)}


@dataclass(frozen=True)
class Subject:
    """A model as a state dict with its vocabulary and configs: what a disguise edits."""

    state: dict
    vocab: list
    lm: LMConfig
    vit: ViTConfig
