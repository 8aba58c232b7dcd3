"""Disguises beyond re-indexing: rescaling, layer surgery, vocabulary change, storage round trips,
renaming, and continued training (real optimizer steps)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import replace

import torch

from checker.synth.models import Subject, TinyLM, TinyViT, state, stdlib_text
from checker.synth.spaces import LAYER, along, layer_of
from checker.synth.training import train_lm, train_vit

#: norm -> the linears it feeds (their input columns carry the norm's gain)
FEEDS = {"input_layernorm": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
         "post_attention_layernorm": ("mlp.gate_proj", "mlp.up_proj"), "norm1": ("attn.qkv",), "norm2": ("mlp.fc1",)}
NORM = re.compile(r"^(.*\.)(input_layernorm|post_attention_layernorm|norm1|norm2)\.weight$")


def norm_targets(name: str, names) -> list[str]:
    """The weights of the linears that norm weight ``name`` feeds (the final norm feeds the LM head)."""
    m = NORM.match(name)
    if m:
        return [m.group(1) + f + ".weight" for f in FEEDS[m.group(2)]]
    return ["lm_head.weight"] if name == "model.norm.weight" and "lm_head.weight" in names else []


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
            out[name] = along(t, 0, mult)
    for name in list(out):
        targets = norm_targets(name, out)
        if not targets:
            continue
        gain = torch.exp(torch.empty(out[name].shape[0]).uniform_(-1.0, 1.0, generator=g))
        out[name] = out[name] * gain
        bias = name[: -len("weight")] + "bias"
        if bias in out:
            out[bias] = out[bias] * gain
        for tname in targets:
            out[tname] = along(out[tname], 1, 1 / gain)
    return replace(s, state=out)


def drop_layers(s: Subject, keep_every: int = 2) -> Subject:
    """Keep layers 0, 2, 4, ... of each stack, renumbered consecutively."""
    out = {}
    for name, t in s.state.items():
        layer = layer_of(name)
        if layer is None:
            out[name] = t
        elif layer % keep_every == 0:
            out[LAYER.sub(lambda m: f".{m.group(1)}.{layer // keep_every}.", name, count=1)] = t
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
        m = LAYER.search(name)
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
                out[f"{prefix}{i}.{suffix}"] = t.clone() if src is not None else fresh_tensor(suffix, t, g)
    depth = {p: len(layer_plan(n, duplicate, insert_after)) for p, n in sizes.items()}
    lm = replace(s.lm, layers=depth.get("model.layers.", s.lm.layers))
    vit = replace(s.vit, layers=next((n for p, n in depth.items() if p != "model.layers."), s.vit.layers))
    return replace(s, state=out, lm=lm, vit=vit)


def fresh_tensor(suffix: str, like: torch.Tensor, g: torch.Generator) -> torch.Tensor:
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


def rescale_units(s: Subject, spread: float = math.log(1e3), seed: int = 9) -> Subject:
    """Function-preserving rescaling of single units, each by its own factor ``±exp(U(-spread,
    spread))``: an FFN unit's up row times c with its down column divided by c (the gate's
    activation multiplies a linear up projection), a value dimension's v row times c with its
    o column divided by c, a query dimension's q row times c with its key row divided by c; in a
    vision tower the fused qkv's q, k and v rows (and biases) and the output projection's
    columns. Nothing in a layer keeps one scale: the per-unit factors differ by up to
    ``exp(2 * spread)``. For the synthetic models (no rotary embedding, as many key as query
    rows); under RoPE a rotated pair of q dimensions must share its factor, and with grouped
    keys a key row's factor is shared by its query heads."""
    g = torch.Generator().manual_seed(seed)
    out = dict(s.state)

    def factors(n: int) -> torch.Tensor:
        mag = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(-spread, spread, generator=g))
        return mag * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()

    def scaled(name: str, axis: int, c: torch.Tensor) -> None:
        t = out[name]
        out[name] = along(t.double(), axis, c).to(t.dtype)

    for name in sorted(s.state):
        if name.endswith("mlp.up_proj.weight"):
            c = factors(out[name].shape[0])
            scaled(name, 0, c)
            scaled(name.replace("up_proj", "down_proj"), 1, 1 / c)
        elif name.endswith("self_attn.v_proj.weight"):
            c = factors(out[name].shape[0])
            scaled(name, 0, c)
            scaled(name.replace("v_proj", "o_proj"), 1, 1 / c)
        elif name.endswith("self_attn.q_proj.weight"):
            c = factors(out[name].shape[0])
            scaled(name, 0, c)
            scaled(name.replace("q_proj", "k_proj"), 0, 1 / c)
        elif name.endswith("attn.qkv.weight"):
            d = out[name].shape[0] // 3
            q, v = factors(d), factors(d)
            c = torch.cat([q, 1 / q, v])
            scaled(name, 0, c)
            bias = name[: -len("weight")] + "bias"
            if bias in out:
                scaled(bias, 0, c)
            scaled(name.replace("attn.qkv", "attn.proj"), 1, 1 / v)
    return replace(s, state=out)
