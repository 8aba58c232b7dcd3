"""Real optimizer steps for the tiny models: next-character loss on the standard library's source,
a synthetic image task for the vision tower."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from checker.synth.models import LMConfig, Subject, TinyLM, TinyViT, ViTConfig, new_lm, new_vit, state

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


def train_subject(seed: int, text: str, vocab: list[str], lm: LMConfig, vit: ViTConfig, steps: int,
                  data_seed: int | None = None, freeze_norms: bool = False) -> Subject:
    """Both towers initialised from ``seed`` and trained ``steps`` steps (batches drawn with
    ``data_seed``, default ``seed``); ``freeze_norms`` keeps every norm gain at its initial 1."""
    a, b = new_lm(lm, seed), new_vit(vit, seed)
    if freeze_norms:
        for model in (a, b):
            for n, p in model.named_parameters():
                if "norm" in n:
                    p.requires_grad_(False)
    data_seed = seed if data_seed is None else data_seed
    train_lm(a, text, vocab, steps, seed=data_seed)
    train_vit(b, steps, seed=data_seed)
    return Subject({**state(b), **state(a)}, vocab, lm, vit)
