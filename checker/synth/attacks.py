"""Attacks from issue 8 that are not re-indexings: weak merges, partial re-initialisation, and a
model started from the reference's own initial weights. (Rotations: ``checker.synth.rotation``;
mixture-of-experts surgery: ``checker.synth.moe``; fixed tables: ``checker.synth.tables``.)"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from checker.synth.disguises import fresh_tensor
from checker.synth.models import LMConfig, Subject, ViTConfig
from checker.synth.spaces import LAYER
from checker.synth.training import train_subject


def merge(a: Subject, b: Subject, alpha: float) -> Subject:
    """alpha * a + (1 - alpha) * b, tensor by tensor (a "weak merge" when alpha is small). Both
    subjects must have the same tensor names and shapes; the result keeps a's vocabulary."""
    if set(a.state) != set(b.state):
        raise ValueError(f"merge: tensor names differ ({sorted(set(a.state) ^ set(b.state))[:3]} ...)")
    bad = [k for k in a.state if a.state[k].shape != b.state[k].shape]
    if bad or len(a.vocab) != len(b.vocab):
        raise ValueError(f"merge: shapes differ ({bad[:3]}, vocab {len(a.vocab)} vs {len(b.vocab)})")
    out = {k: (alpha * a.state[k].double() + (1 - alpha) * b.state[k].double()).to(a.state[k].dtype).contiguous()
           for k in a.state}
    return replace(a, state=out)


@dataclass(frozen=True)
class Reinitialised:
    """A subject with some layers freshly initialised, and how much of it is still copied."""

    subject: Subject
    #: parameters of the copied tensors (the layers kept and every non-layer tensor) / all parameters
    copied_share: float
    #: the same over the re-initialised stack only (its layers' parameters)
    stack_share: float


def reinit_layers(s: Subject, layers: tuple[int, ...], seed: int = 21, stack: str = "model.layers") -> Reinitialised:
    """The given layers of ``stack`` replaced by a fresh initialisation of the same shapes (default
    ``nn.Linear`` init, norms 1, biases 0); everything else copied. Returns the true copied share."""
    g = torch.Generator().manual_seed(seed)
    out, fresh, total, stack_total, stack_fresh = {}, 0, 0, 0, 0
    for name, t in s.state.items():
        m = LAYER.search(name)
        in_stack = m is not None and name[: m.start()] + "." + m.group(1) == stack
        total += t.numel()
        stack_total += t.numel() if in_stack else 0
        if in_stack and int(m.group(2)) in layers:
            out[name] = fresh_tensor(name[m.end():], t, g)
            fresh += t.numel()
            stack_fresh += t.numel()
        else:
            out[name] = t
    if not stack_total:
        raise ValueError(f"reinit_layers: no layer of {stack!r} in the subject")
    return Reinitialised(replace(s, state=out), 1 - fresh / total, 1 - stack_fresh / stack_total)


def same_seed(ref_seed: int, text: str, vocab: list[str], lm: LMConfig, vit: ViTConfig, steps: int,
              data_seed: int = 777) -> Subject:
    """A model initialised exactly like the reference (the same seed, hence the same initial
    weights) but trained on other data (``text``, batches drawn with ``data_seed``). Under the
    engine's null, "independent initialisation and training", this counts as derived."""
    return train_subject(ref_seed, text, vocab, lm, vit, steps, data_seed=data_seed)
