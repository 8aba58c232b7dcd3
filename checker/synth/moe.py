"""Mixture-of-experts decoders made from dense ones: upcycling and borrowed experts.

Two expert layouts, both real:

- per expert (Qwen2-MoE, Mixtral in transformers < 5): ``model.layers.N.mlp.experts.E.gate_proj.weight``
  [I, H], ``up_proj`` [I, H], ``down_proj`` [H, I], router ``model.layers.N.mlp.gate.weight`` [E, H];
- fused (transformers v5, Llama 4, gpt-oss; GGUF ``ffn_*_exps``): ``mlp.experts.gate_up_proj``
  [E, 2I, H] (gate rows first, then up) and ``mlp.experts.down_proj`` [E, H, I], with no
  ``.weight`` suffix, router ``mlp.router.weight`` [E, H] (name configurable).

These change the architecture, so they are checked by shape, not by function.
"""

from __future__ import annotations

import re
from dataclasses import replace

import torch

from checker.synth.disguises import fresh_tensor
from checker.synth.models import Subject

_DENSE = re.compile(r"^(model\.layers\.\d+\.mlp\.)(gate_proj|up_proj|down_proj)\.weight$")
_PER_EXPERT = re.compile(r"^(model\.layers\.\d+\.mlp\.)experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")


def _dense_ffns(s: Subject) -> dict[str, dict[str, torch.Tensor]]:
    """Layer prefix ``model.layers.N.mlp.`` -> {"gate_proj": .., "up_proj": .., "down_proj": ..}."""
    out: dict = {}
    for name, t in s.state.items():
        m = _DENSE.match(name)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = t
    if not out:
        raise ValueError("no dense FFN (model.layers.N.mlp.gate_proj/up_proj/down_proj) in the subject")
    return out


def _build(body: Subject, experts_of, n_experts: int, fused: bool, router: str, g: torch.Generator) -> Subject:
    """body without its dense FFNs, plus for each layer prefix the experts ``experts_of(prefix, e)``
    (a dict of gate/up/down weights) and a fresh router."""
    dense = _dense_ffns(body)
    out = {k: v for k, v in body.state.items() if not _DENSE.match(k)}
    for prefix, ffn in dense.items():
        experts = [experts_of(prefix, e, ffn) for e in range(n_experts)]
        hidden = ffn["gate_proj"].shape[1]
        out[prefix + (f"{router}.weight" if fused else "gate.weight")] = fresh_tensor("router.weight", torch.empty(n_experts, hidden), g)
        if fused:
            out[prefix + "experts.gate_up_proj"] = torch.stack([torch.cat([x["gate_proj"], x["up_proj"]]) for x in experts]).contiguous()
            out[prefix + "experts.down_proj"] = torch.stack([x["down_proj"] for x in experts]).contiguous()
        else:
            for e, x in enumerate(experts):
                for part, t in x.items():
                    out[f"{prefix}experts.{e}.{part}.weight"] = t.contiguous()
    return replace(body, state=out)


def upcycle(s: Subject, experts: int = 4, noise: float = 0.01, fused: bool = True, router: str = "router",
            seed: int = 31) -> Subject:
    """Sparse upcycling: every layer's dense FFN copied into each of ``experts`` experts, each copy
    perturbed by Gaussian noise of ``noise`` times the tensor's standard deviation; a fresh router."""
    g = torch.Generator().manual_seed(seed)

    def experts_of(prefix, e, ffn):
        return {k: t + noise * float(t.float().std()) * torch.randn(t.shape, generator=g).to(t.dtype) for k, t in ffn.items()}

    return _build(s, experts_of, experts, fused, router, g)


def borrow_experts(body: Subject, donor: Subject, experts: int = 4, borrowed: int = 2, fused: bool = True,
                   router: str = "router", seed: int = 32) -> Subject:
    """An MoE decoder on ``body``'s (independent) attention, norms and embeddings whose first
    ``borrowed`` experts of layer N are ``donor``'s dense FFN of layer N and whose other experts
    are freshly initialised."""
    g = torch.Generator().manual_seed(seed)
    donated = _dense_ffns(donor)

    def experts_of(prefix, e, ffn):
        if e < borrowed:
            return {k: t.clone() for k, t in donated[prefix].items()}
        return {k: fresh_tensor(k + ".weight", t, g) for k, t in ffn.items()}

    return _build(body, experts_of, experts, fused, router, g)


def fuse_experts(s: Subject, router: str = "router") -> Subject:
    """Per-expert 2-D layout -> fused 3-D layout (transformers v5): same numbers, other names."""
    per: dict = {}
    out = {}
    for name, t in s.state.items():
        m = _PER_EXPERT.match(name)
        if m:
            per.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})[m.group(3)] = t
        elif name.endswith("mlp.gate.weight") and name[: -len("gate.weight")] + "experts.0.gate_proj.weight" in s.state:
            out[name[: -len("gate.weight")] + f"{router}.weight"] = t
        else:
            out[name] = t
    for prefix, by_e in per.items():
        xs = [by_e[e] for e in sorted(by_e)]
        out[prefix + "experts.gate_up_proj"] = torch.stack([torch.cat([x["gate_proj"], x["up_proj"]]) for x in xs]).contiguous()
        out[prefix + "experts.down_proj"] = torch.stack([x["down_proj"] for x in xs]).contiguous()
    return replace(s, state=out)
