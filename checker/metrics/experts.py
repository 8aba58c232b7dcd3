"""Fused 3-D mixture-of-experts tensors as per-expert 2-D matrices.

MoE checkpoints often store all experts of a layer in one tensor with no ``.weight``
suffix. Known layouts (slices as stored, ``E`` experts, hidden width ``H``, expert width ``I``):

- transformers v5 (Mixtral, Qwen2/3-MoE, ...), GGUF ``ffn_*_exps`` (after the reader's
  reversal): ``gate_up_proj`` [E, 2I, H] (gate then up), ``down_proj`` [E, H, I]: each slice
  is stored like ``nn.Linear`` (out x in);
- Llama 4 ``feed_forward.experts``, Qwen3-VL-MoE: ``gate_up_proj`` [E, H, 2I] (gate then up),
  ``down_proj`` [E, I, H]: slices are in x out;
- gpt-oss: as Llama 4, but gate and up interleaved (``gate_up[..., ::2]``, ``[..., 1::2]``);
  it is the one known layout that stores a per-expert ``gate_up_proj_bias`` beside it.

Every slice is turned into the 2-D matrix a dense FFN of the same role would have
(``gate``/``up``: I x H, ``down``: H x I), so a submission's expert is compared exactly like a
dense FFN matrix with a reference's dense FFNs (upcycling) and experts (borrowed experts),
and a reference's fused experts are fingerprinted the same way. Which axis is hidden is
decided by the module's hidden width (the input width of its attention matrices); where both
axes have that width, by the other fused tensors of the same layer, then by the name.
A fused tensor whose layout cannot be decided is listed as not compared, never dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

import torch

from checker.metrics.interface import Skipped
from checker.modules import Module, TensorRole

#: Roles a fused 3-D expert tensor can have (rules/modules/roles.yaml) and the roles of its parts.
PART_ROLES = {"gate_up": ("gate", "up"), "gate": ("gate",), "up": ("up",), "down": ("down",)}
#: Units axis of each part as a dense FFN stores it (nn.Linear: out x in).
_UNITS_AXIS = {"gate": 0, "up": 0, "down": 1}
_ATTENTION = frozenset({"q", "k", "v", "qkv", "o"})
_MATRICES = frozenset({"gate", "up", "down", "linear"})
#: Names whose known layout is in x out when the shape cannot tell (Llama 4).
_IN_OUT_NAMES = re.compile(r"(^|\.)feed_forward\.experts\.")


@dataclass(frozen=True)
class ExpertPlan:
    """How one fused expert tensor splits into per-expert dense matrices."""

    role: TensorRole  # the stored tensor
    experts: int
    in_out: bool  # slices stored in x out (transposed against nn.Linear)
    interleaved: bool  # gate|up alternate along the units axis (gpt-oss)

    def parts(self) -> tuple[TensorRole, ...]:
        """The virtual 2-D tensors, expert by expert, as dense FFN matrices."""
        out = []
        a, b = self.role.shape[1:]
        rows, cols = (b, a) if self.in_out else (a, b)  # out x in
        parts = PART_ROLES[self.role.role]
        for e in range(self.experts):
            for part in parts:
                name = f"{self.role.name}[e={e}]" + (f".{part}" if len(parts) > 1 else "")
                out.append(TensorRole(name, (rows // len(parts), cols), self.role.module, self.role.kind,
                                      self.role.layer, part, _UNITS_AXIS[part], True))
        return tuple(out)


def part_roles(role: str) -> tuple[str, ...]:
    """The roles a tensor's comparisons are recorded under (a fused gate|up: gate and up)."""
    return PART_ROLES.get(role, (role,))


def is_fused_expert(tr: TensorRole) -> bool:
    return len(tr.shape) == 3 and tr.role in PART_ROLES


def hidden_width(module: Module) -> int | None:
    """The module's residual width: the most common input width of its attention matrices
    (of its other 2-D matrices when it has none); None when it holds no 2-D matrix."""
    for roles in (_ATTENTION, _MATRICES):
        widths = Counter(t.shape[1 - t.units_axis] for t in module.tensors
                         if len(t.shape) == 2 and t.decisive and t.role in roles)
        if widths:
            return widths.most_common(1)[0][0]
    return None


def _orientation(tr: TensorRole, hidden: int | None) -> bool | None:
    """Whether the slices are in x out, from the hidden width alone (None: undecided)."""
    a, b = tr.shape[1:]
    # gate/up take the hidden stream in; down writes it out.
    hidden_first = a == hidden
    hidden_last = b == hidden
    if hidden_first == hidden_last:
        return None
    return hidden_first if tr.role != "down" else hidden_last


def expert_plans(modules) -> dict[str, ExpertPlan | Skipped]:
    """For every fused 3-D expert tensor of the modules: how to split it, or why it is not compared."""
    out: dict[str, ExpertPlan | Skipped] = {}
    for m in modules:
        fused = [t for t in m.tensors if is_fused_expert(t)]
        if not fused:
            continue
        hidden = hidden_width(m)
        names = {t.name for t in m.tensors}
        decided = {t.name: _orientation(t, hidden) for t in fused}
        by_layer: dict = {}
        for t in fused:
            if decided[t.name] is not None:
                by_layer.setdefault(t.layer, set()).add(decided[t.name])
        for t in fused:
            in_out = decided[t.name]
            if in_out is None:
                if hidden is not None and hidden not in t.shape[1:]:
                    out[t.name] = Skipped(t.name, f"not compared: no axis of the expert tensor {list(t.shape)} has the "
                                                  f"hidden width {hidden}", "v.skip.expert_axes",
                                          (("shape", str(list(t.shape))), ("hidden", int(hidden))))
                    continue
                sibling = by_layer.get(t.layer, set())
                in_out = next(iter(sibling)) if len(sibling) == 1 else bool(_IN_OUT_NAMES.search(t.name))
            units = t.shape[2] if in_out else t.shape[1]
            if t.role == "gate_up" and units % 2:
                out[t.name] = Skipped(t.name, f"not compared: the fused gate and up expert tensor has an odd number "
                                              f"of units ({units})", "v.skip.expert_split", (("units", int(units)),))
                continue
            interleaved = t.role == "gate_up" and in_out and f"{t.name}_bias" in names
            out[t.name] = ExpertPlan(t, t.shape[0], in_out, interleaved)
    return out


def expert_slices(plan: ExpertPlan, native: torch.Tensor) -> Iterator[tuple[TensorRole, torch.Tensor]]:
    """(virtual role, 2-D matrix) for every part of every expert, one expert at a time
    (views of the loaded tensor, made contiguous one slice at a time)."""
    parts = iter(plan.parts())
    for e in range(plan.experts):
        s = native[e]
        if plan.in_out:
            s = s.T  # now out x in, as nn.Linear stores it
        if plan.role.role == "gate_up":
            n = s.shape[0] // 2
            halves = (s[0::2], s[1::2]) if plan.interleaved else (s[:n], s[n:])
        else:
            halves = (s,)
        for h in halves:
            yield next(parts), h.contiguous()


def not_compared(tr: TensorRole) -> Skipped:
    """A tensor of three or more axes that no rule turns into matrices."""
    return Skipped(tr.name, f"not compared: a {len(tr.shape)}-D tensor of role '{tr.role}' that no known layout "
                            f"splits into matrices", "v.skip.not_compared", (("ndim", len(tr.shape)), ("role", tr.role)))
