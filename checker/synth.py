"""Tiny, really trained transformer models for the demo, the tests and the benchmark.

Nothing is downloaded: language models learn from text that ships with Python
(the standard library's own source), vision encoders from a synthetic image
task. Tensor names follow real checkpoints (Llama/Qwen2 decoder, Qwen2.5-VL
vision tower, or LLaVA-style ``vision_tower``), so the same module maps apply.
"""

from __future__ import annotations

import json
import math
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

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


def write_tokenizer(folder: Path, vocab: list[str]) -> None:
    data = {"version": "1.0", "added_tokens": [], "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(vocab)}, "merges": []}}
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")


@dataclass(frozen=True)
class LMConfig:
    vocab: int = 100
    hidden: int = 64
    layers: int = 4
    ffn: int = 128
    heads: int = 4


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
        self.model.layers = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.model.norm = RMSNorm(c.hidden)
        self.lm_head = nn.Linear(c.hidden, c.vocab, bias=False)

    def forward(self, ids):
        x = self.model.embed_tokens(ids)
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
        self.visual.blocks = nn.ModuleList([ViTBlock(c) for _ in range(c.layers)])
        self.visual.merger = nn.Module()
        self.visual.merger.mlp = nn.Sequential(nn.Linear(c.hidden, c.out), nn.GELU(), nn.Linear(c.out, c.out))
        self.head = nn.Linear(c.out, classes)  # training head, not saved

    def features(self, img):
        x = self.visual.patch_embed.proj(img).flatten(2).transpose(1, 2)
        for blk in self.visual.blocks:
            x = blk(x)
        return self.visual.merger.mlp(x.mean(1))

    def forward(self, img):
        return self.head(self.features(img))


def _batches_text(ids: torch.Tensor, seq: int, batch: int, gen: torch.Generator):
    while True:
        starts = torch.randint(0, len(ids) - seq - 1, (batch,), generator=gen)
        x = torch.stack([ids[s:s + seq] for s in starts])
        y = torch.stack([ids[s + 1:s + seq + 1] for s in starts])
        yield x, y


def encode(text: str, vocab: list[str]) -> torch.Tensor:
    index = {t: i for i, t in enumerate(vocab)}
    return torch.tensor([index.get(ch, 1) for ch in text], dtype=torch.long)


def train_lm(model: TinyLM, text: str, vocab: list[str], steps: int, lr: float = 3e-3, seed: int = 0,
             seq: int = 48, batch: int = 16) -> float:
    """Real optimizer steps (AdamW, next-character loss); returns the final loss."""
    gen = torch.Generator().manual_seed(seed)
    ids = encode(text, vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    data = _batches_text(ids, seq, batch, gen)
    loss = torch.tensor(math.nan)
    model.train()
    for _ in range(steps):
        x, y = next(data)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def synthetic_images(n: int, c: ViTConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of oriented stripes plus noise; the label is the stripe pattern."""
    labels = torch.randint(0, 8, (n,), generator=gen)
    yy, xx = torch.meshgrid(torch.arange(c.image), torch.arange(c.image), indexing="ij")
    imgs = []
    for lab in labels.tolist():
        angle = lab * math.pi / 8
        wave = torch.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 0.9)
        chans = torch.stack([wave * (0.5 + 0.5 * ((lab >> i) & 1)) for i in range(3)])
        imgs.append(chans + 0.3 * torch.randn(chans.shape, generator=gen))
    return torch.stack(imgs), labels


def train_vit(model: TinyViT, steps: int, lr: float = 2e-3, seed: int = 0, batch: int = 32) -> float:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    loss = torch.tensor(math.nan)
    model.train()
    for _ in range(steps):
        x, y = synthetic_images(batch, model.config, gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def new_lm(c: LMConfig, seed: int) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM(c)


def new_vit(c: ViTConfig, seed: int) -> TinyViT:
    torch.manual_seed(seed)
    return TinyViT(c)


def state(model: nn.Module, drop_prefixes: tuple[str, ...] = ("head.",)) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if not k.startswith(drop_prefixes)}


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
