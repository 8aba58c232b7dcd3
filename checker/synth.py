"""Tiny, really trained transformer models for the demo, the tests and the benchmark.

Nothing is downloaded: language models learn from text that ships with Python
(the standard library's own source), vision encoders from a synthetic image
task. Tensor names follow real checkpoints (Llama/Qwen2 decoder, Qwen2.5-VL
vision tower, or LLaVA-style ``vision_tower``), so the same module maps apply.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sysconfig
import zlib
from collections import defaultdict
from dataclasses import dataclass, replace
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


@contextlib.contextmanager
def _one_thread():
    """Tiny models train as fast on one thread as on two, and many times slower when torch's
    threads compete with other processes for the cores (seen: 100 steps in 105 s instead of 5 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_lm(model: TinyLM, text: str, vocab: list[str], steps: int, lr: float = 3e-3, seed: int = 0,
             seq: int = 48, batch: int = 16) -> float:
    """Real optimizer steps (AdamW, next-character loss); returns the final loss."""
    with _one_thread():
        return _train_lm(model, text, vocab, steps, lr, seed, seq, batch)


def _train_lm(model, text, vocab, steps, lr, seed, seq, batch) -> float:
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
    with _one_thread():
        return _train_vit(model, steps, lr, seed, batch)


def _train_vit(model, steps, lr, seed, batch) -> float:
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


# -- disguises: the edits a derivation may use to hide, applied to a saved state ---------------
#
# Each tensor name of the two synthetic layouts says which of its axes lives in which
# "space": the residual width (``hidden``, one per tower), a layer's FFN neurons (``ffn``),
# its attention heads (``heads``; ``qkv`` for a fused q|k|v), or neither. A permutation of a
# space applied to every axis in it preserves the model's function.

_AXES: tuple[tuple[re.Pattern, dict[int, str]], ...] = tuple((re.compile(p), a) for p, a in (
    (r"(embed_tokens|lm_head)\.weight$", {1: "hidden"}),
    (r"(q_proj|k_proj|v_proj)\.weight$", {0: "heads", 1: "hidden"}),
    (r"o_proj\.weight$", {0: "hidden", 1: "heads"}),
    (r"(gate_proj|up_proj)\.weight$", {0: "ffn", 1: "hidden"}),
    (r"down_proj\.weight$", {0: "hidden", 1: "ffn"}),
    (r"norm\d?\.(weight|bias)$", {0: "hidden"}),
    (r"patch_embed\.proj\.weight$", {0: "hidden"}),
    (r"attn\.qkv\.weight$", {0: "qkv", 1: "hidden"}),
    (r"attn\.qkv\.bias$", {0: "qkv"}),
    (r"attn\.proj\.weight$", {0: "hidden", 1: "heads"}),
    (r"attn\.proj\.bias$", {0: "hidden"}),
    (r"mlp\.fc1\.weight$", {0: "ffn", 1: "hidden"}),
    (r"mlp\.fc1\.bias$", {0: "ffn"}),
    (r"mlp\.fc2\.weight$", {0: "hidden", 1: "ffn"}),
    (r"mlp\.fc2\.bias$", {0: "hidden"}),
    (r"merger\.mlp\.0\.weight$", {1: "hidden"}),
))
_LAYER = re.compile(r"\.(layers|blocks)\.(\d+)\.")


@dataclass(frozen=True)
class Subject:
    """A model as a state dict with its vocabulary and configs: what a disguise edits."""

    state: dict
    vocab: list
    lm: LMConfig
    vit: ViTConfig


def axes_of(name: str) -> dict[int, str]:
    return next((a for p, a in _AXES if p.search(name)), {})


def tower_of(name: str) -> str:
    return "vit" if name.startswith("visual.") else "lm"


def layer_of(name: str) -> int | None:
    m = _LAYER.search(name)
    return int(m.group(2)) if m else None


def _along(t: torch.Tensor, axis: int, v: torch.Tensor) -> torch.Tensor:
    shape = [1] * t.dim()
    shape[axis] = -1
    return t * v.view(shape).to(t.dtype)


def map_spaces(s: Subject, edit) -> Subject:
    """Re-index (and optionally rescale) every axis by its space.

    ``edit(tower, space, layer, size)`` returns None (leave alone) or
    ``(index, multiplier or None)``; multipliers are not applied to norm weights
    (a sign flip of the residual commutes with RMSNorm's positive gain).
    """
    out = {}
    for name, t in s.state.items():
        for axis, space in axes_of(name).items():
            got = edit(tower_of(name), space, layer_of(name), t.shape[axis])
            if got is None:
                continue
            idx, mult = got
            t = t.index_select(axis, idx)
            if mult is not None and not re.search(r"norm\d?\.(weight|bias)$", name):
                t = _along(t, axis, mult)
        out[name] = t.contiguous()
    return replace(s, state=out)


def _heads(s: Subject, tower: str) -> int:
    return s.lm.heads if tower == "lm" else s.vit.heads


def permute_units(s: Subject, seed: int = 1) -> Subject:
    """FFN neurons and attention heads permuted within every layer (function-preserving)."""
    cache: dict = {}

    def edit(tower, space, layer, size):
        if space not in ("ffn", "heads", "qkv"):
            return None
        key = (tower, "heads" if space == "qkv" else space, layer)
        if key not in cache:
            g = torch.Generator().manual_seed(seed * 1000 + zlib.crc32(repr(key).encode()) % 997)
            cache[key] = torch.randperm(_heads(s, tower) if key[1] == "heads" else size, generator=g)
        perm = cache[key]
        if space == "ffn":
            return perm, None
        nh = _heads(s, tower)
        hd = (size // 3 if space == "qkv" else size) // nh
        head_idx = (perm[:, None] * hd + torch.arange(hd)).flatten()
        if space == "qkv":
            head_idx = torch.cat([head_idx + i * nh * hd for i in range(3)])
        return head_idx, None

    return map_spaces(s, edit)


def permute_hidden(s: Subject, seed: int = 2) -> Subject:
    """One permutation with random sign flips of each tower's residual width."""
    cache: dict = {}

    def edit(tower, space, layer, size):
        if space != "hidden":
            return None
        if tower not in cache:
            g = torch.Generator().manual_seed(seed + (7 if tower == "vit" else 0))
            cache[tower] = (torch.randperm(size, generator=g), torch.where(torch.rand(size, generator=g) < 0.5, -1.0, 1.0))
        return cache[tower]

    return map_spaces(s, edit)


def prune_ffn(s: Subject, keep: float = 0.5, seed: int = 3) -> Subject:
    """Keep a random ``keep`` share of every layer's FFN neurons."""
    cache: dict = {}

    def edit(tower, space, layer, size):
        if space != "ffn":
            return None
        if (tower, layer) not in cache:
            g = torch.Generator().manual_seed(seed * 100 + (layer or 0) + (50 if tower == "vit" else 0))
            cache[(tower, layer)] = torch.sort(torch.randperm(size, generator=g)[: int(size * keep)]).values
        return cache[(tower, layer)], None

    return map_spaces(s, edit)


def prune_hidden(s: Subject, keep: float = 0.75, towers: tuple[str, ...] = ("lm", "vit"), seed: int = 6) -> Subject:
    """Width pruning of the residual stream (as Minitron prunes embedding channels): keep a
    random ``keep`` share of each named tower's hidden dimensions, the same subset removed
    everywhere the residual lives (embedding and LM-head columns, q/k/v/gate/up/fc1/qkv
    columns, o/down/proj/fc2 rows, norm weights, the patch embedding's output channels, the
    merger's input; for the decoder also the merger's output rows, which feed the decoder's
    residual). Attention and FFN widths stay, so ``TinyLM`` cannot load the result; the
    configs still describe the reference's widths."""
    cache: dict = {}

    def kept(tower: str, size: int) -> torch.Tensor:
        if tower not in cache:
            g = torch.Generator().manual_seed(seed + (7 if tower == "vit" else 0))
            cache[tower] = torch.sort(torch.randperm(size, generator=g)[: int(size * keep)]).values
        return cache[tower]

    def edit(tower, space, layer, size):
        return (kept(tower, size), None) if space == "hidden" and tower in towers else None

    out = map_spaces(s, edit)
    if "lm" in towers:
        state = dict(out.state)
        for name in ("visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias"):
            if name in state and state[name].shape[0] == s.lm.hidden:
                state[name] = state[name].index_select(0, kept("lm", s.lm.hidden)).contiguous()
        out = replace(out, state=state)
    return out


def rescale(s: Subject, c: float = 3.7, seed: int = 4) -> Subject:
    """Function-preserving rescaling: q*c with k/c, and every norm's gain (and bias) times a
    positive per-dimension vector, divided out of the columns of the matrices it feeds."""
    g = torch.Generator().manual_seed(seed)
    out = dict(s.state)
    for name in list(out):
        t = out[name]
        if name.endswith("q_proj.weight"):
            out[name] = t * c
        elif name.endswith("k_proj.weight"):
            out[name] = t / c
        elif name.endswith(("attn.qkv.weight", "attn.qkv.bias")):
            d = t.shape[0] // 3
            mult = torch.cat([torch.full((d,), c), torch.full((d,), 1 / c), torch.ones(d)])
            out[name] = _along(t, 0, mult)
    feeds = {"input_layernorm": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
             "post_attention_layernorm": ("mlp.gate_proj", "mlp.up_proj"), "norm1": ("attn.qkv",), "norm2": ("mlp.fc1",)}
    for name in list(out):
        m = re.match(r"^(.*\.)(input_layernorm|post_attention_layernorm|norm1|norm2)\.weight$", name)
        targets = [m.group(1) + f + ".weight" for f in feeds[m.group(2)]] if m else []
        if name == "model.norm.weight" and "lm_head.weight" in out:
            m, targets = True, ["lm_head.weight"]
        if not m:
            continue
        gain = torch.exp(torch.empty(out[name].shape[0]).uniform_(-1.0, 1.0, generator=g))
        out[name] = out[name] * gain
        bias = name[: -len("weight")] + "bias"
        if bias in out:
            out[bias] = out[bias] * gain
        for tname in targets:
            out[tname] = _along(out[tname], 1, 1 / gain)
    return replace(s, state=out)


def drop_layers(s: Subject, keep_every: int = 2) -> Subject:
    """Keep layers 0, 2, 4, ... of each stack, renumbered consecutively."""
    out = {}
    for name, t in s.state.items():
        layer = layer_of(name)
        if layer is None:
            out[name] = t
        elif layer % keep_every == 0:
            out[_LAYER.sub(lambda m: f".{m.group(1)}.{layer // keep_every}.", name, count=1)] = t
    return replace(s, state=out)


def layer_plan(n: int, duplicate: int = 1, insert_after: int = 2) -> list[int | None]:
    """The reference layer behind each layer of a stack of ``n`` after ``repeat_layers``: layer
    ``duplicate`` appears twice, and a fresh layer (None) follows layer ``insert_after`` (both
    clamped so that the fresh layer sits between copied ones)."""
    d, a = min(duplicate, n - 1), min(insert_after, n - 2)
    out: list[int | None] = []
    for i in range(n):
        out.append(i)
        if i == d:
            out.append(i)
        if i == a:
            out.append(None)
    return out


def repeat_layers(s: Subject, duplicate: int = 1, insert_after: int = 2, seed: int = 7) -> Subject:
    """Depth up-scaling: in each stack, reference layer ``duplicate`` is copied twice in a row and
    a freshly initialised layer (default ``nn.Linear`` init, norms at 1, biases 0) is inserted
    after layer ``insert_after`` (see ``layer_plan``); layers are renumbered consecutively."""
    g = torch.Generator().manual_seed(seed)
    by_layer: dict = defaultdict(dict)  # (stack prefix, layer) -> {suffix: tensor}
    out = {}
    for name, t in s.state.items():
        m = _LAYER.search(name)
        if m is None:
            out[name] = t
        else:
            by_layer[(name[: m.start()] + f".{m.group(1)}.", int(m.group(2)))][name[m.end():]] = t
    sizes = defaultdict(int)
    for prefix, layer in by_layer:
        sizes[prefix] = max(sizes[prefix], layer + 1)
    for prefix, n in sizes.items():
        for i, src in enumerate(layer_plan(n, duplicate, insert_after)):
            tensors = by_layer[(prefix, src if src is not None else 0)]
            for suffix, t in tensors.items():
                out[f"{prefix}{i}.{suffix}"] = t.clone() if src is not None else _fresh(suffix, t, g)
    depth = {p: len(layer_plan(n, duplicate, insert_after)) for p, n in sizes.items()}
    lm = replace(s.lm, layers=depth.get("model.layers.", s.lm.layers))
    vit = replace(s.vit, layers=next((n for p, n in depth.items() if p != "model.layers."), s.vit.layers))
    return replace(s, state=out, lm=lm, vit=vit)


def _fresh(suffix: str, like: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A freshly initialised tensor shaped like ``like``: norms 1, biases 0, matrices U(+-1/sqrt(fan_in))."""
    if re.search(r"norm\d?\.weight$", suffix) or "layer_norm" in suffix:
        return torch.ones_like(like) if suffix.endswith("weight") else torch.zeros_like(like)
    if like.dim() < 2:
        return torch.zeros_like(like)
    bound = 1.0 / math.sqrt(like[0].numel())
    return (torch.rand(like.shape, generator=g) * 2 - 1).mul_(bound).to(like.dtype)


def change_vocab(s: Subject, keep: float = 0.5, new: float = 0.2, seed: int = 5) -> Subject:
    """Prune the vocabulary to ``keep`` of its tokens (shuffled ids), add ``new`` made-up
    tokens with fresh rows: embeddings, LM head and tokenizer change together."""
    g = torch.Generator().manual_seed(seed)
    n = len(s.vocab)
    rest = torch.randperm(n - 2, generator=g)[: int(n * keep) - 2] + 2
    order = torch.cat([torch.tensor([0, 1]), rest])
    extra = int(n * new)
    vocab = [s.vocab[i] for i in order.tolist()] + [f"<new_{i}>" for i in range(extra)]
    out = dict(s.state)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        t = out[name]
        fresh = torch.randn((extra, t.shape[1]), generator=g) * float(t.std())
        out[name] = torch.cat([t[order], fresh]).contiguous()
    return replace(s, state=out, vocab=vocab, lm=replace(s.lm, vocab=len(vocab)))


def round_trip(s: Subject, dtype: str) -> Subject:
    """Store in bfloat16 or float16, or quantise to int8 (symmetric, per row) and back."""
    if dtype in ("bf16", "fp16"):
        to = torch.bfloat16 if dtype == "bf16" else torch.float16
        return replace(s, state={k: v.to(to) for k, v in s.state.items()})
    out = {}
    for name, t in s.state.items():
        t = t.float()
        scale = t.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127.0
        out[name] = (torch.round(t / scale).clamp(-127, 127) * scale).contiguous()
    return replace(s, state=out)


def transplant_llava(s: Subject) -> Subject:
    """Re-save the Qwen2.5-VL-style ``visual.*`` tower LLaVA-style, the fused qkv split."""
    names = {"attn.proj": "self_attn.out_proj", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
             "norm1": "layer_norm1", "norm2": "layer_norm2"}
    out = {}
    for name, t in s.state.items():
        m = re.match(r"^visual\.blocks\.(\d+)\.(.+)\.(weight|bias)$", name)
        if m:
            prefix = f"vision_tower.vision_model.encoder.layers.{m.group(1)}."
            if m.group(2) == "attn.qkv":
                for part, chunk in zip(("q_proj", "k_proj", "v_proj"), t.chunk(3, dim=0)):
                    out[f"{prefix}self_attn.{part}.{m.group(3)}"] = chunk.contiguous()
            else:
                out[f"{prefix}{names[m.group(2)]}.{m.group(3)}"] = t
        elif name == "visual.patch_embed.proj.weight":
            out["vision_tower.vision_model.embeddings.patch_embedding.weight"] = t
        elif name.startswith("visual.merger.mlp."):
            idx, kind = re.match(r"^visual\.merger\.mlp\.(\d)\.(.+)$", name).groups()
            out[f"multi_modal_projector.linear_{int(idx) // 2 + 1}.{kind}"] = t
        else:
            out[name] = t
    return replace(s, state=out)


def retrain(s: Subject, steps: int, lr: float, seed: int, text: str | None = None) -> Subject:
    """Continue training both towers from the subject's weights (real optimizer steps)."""
    torch.manual_seed(seed)
    lm, vit = TinyLM(s.lm), TinyViT(s.vit)
    lm.load_state_dict({k: v for k, v in s.state.items() if not k.startswith("visual.")})
    vit_state = {k: v for k, v in s.state.items() if k.startswith("visual.")}
    vit.load_state_dict({**vit_state, **{k: v for k, v in vit.state_dict().items() if k.startswith("head.")}})
    train_lm(lm, text or stdlib_text(), s.vocab, steps, lr=lr, seed=seed)
    train_vit(vit, steps, lr=lr, seed=seed)
    return replace(s, state={**state(vit), **state(lm)})
