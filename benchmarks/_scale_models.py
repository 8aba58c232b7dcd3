"""Helpers of ``benchmarks/scale.py``: synthetic Llama-like checkpoints, registry clones, file floors.

Models are written tensor by tensor, shard by shard (bf16, at most ``MAX_SHARD``
bytes a shard unless one tensor is larger), so generating 16 GB never holds more
than one shard in memory. Every tensor is drawn from generators seeded by
(model seed, tensor name, row chunk): the derived copy regenerates the
reference's tensors instead of keeping them, and the output does not depend on
the number of threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import save_file

MAX_SHARD = 2 * 10**9
MIB = 2**20
STD = 0.02            # weight scale of freshly initialised Llama-style matrices
CHUNK = 1 << 22       # elements per generator chunk (threads fill chunks in parallel)
_POOL = ThreadPoolExecutor(os.cpu_count() or 1)


@dataclass(frozen=True)
class Spec:
    """Shapes of a Llama-style decoder (grouped-query attention: k/v have ``kv`` rows)."""
    hidden: int
    ffn: int
    kv: int
    layers: int
    vocab: int

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """Non-layer tensors first, so they sit in shards of their own (see ``make_stem``)."""
        h, out = self.hidden, [("model.embed_tokens.weight", (self.vocab, self.hidden)),
                               ("model.norm.weight", (self.hidden,)), ("lm_head.weight", (self.vocab, self.hidden))]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            out += [(p + "self_attn.q_proj.weight", (h, h)), (p + "self_attn.k_proj.weight", (self.kv, h)),
                    (p + "self_attn.v_proj.weight", (self.kv, h)), (p + "self_attn.o_proj.weight", (h, h)),
                    (p + "mlp.gate_proj.weight", (self.ffn, h)), (p + "mlp.up_proj.weight", (self.ffn, h)),
                    (p + "mlp.down_proj.weight", (h, self.ffn)),
                    (p + "input_layernorm.weight", (h,)), (p + "post_attention_layernorm.weight", (h,))]
        return out

    def layer_params(self) -> int:
        h = self.hidden
        return 2 * h * h + 2 * self.kv * h + 3 * h * self.ffn + 2 * h

    def params(self) -> int:
        return 2 * self.vocab * self.hidden + self.hidden + self.layers * self.layer_params()

    def config(self) -> dict:
        head = 128 if self.hidden >= 4096 else 64
        return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": self.hidden,
                "intermediate_size": self.ffn, "num_hidden_layers": self.layers, "num_attention_heads": self.hidden // head,
                "num_key_value_heads": self.kv // head, "head_dim": head, "vocab_size": self.vocab,
                "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def spec_for_bytes(nbytes: float, hidden: int, ffn: int, kv: int, vocab: int) -> Spec:
    """Depth grows with the size at fixed width, so sizes differ only in the number of layers."""
    base = Spec(hidden, ffn, kv, 0, vocab)
    layers = max(1, round((nbytes / 2 - base.params()) / base.layer_params()))
    return replace(base, layers=layers)


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


def _random(seed: int, name: str, shape: tuple[int, ...], std: float) -> torch.Tensor:
    """N(0, std^2) in bf16, filled in row chunks by a thread pool (torch releases the GIL)."""
    out = torch.empty(shape, dtype=torch.bfloat16)
    flat = out.view(-1)
    starts = range(0, flat.numel(), CHUNK)

    def fill(s: int) -> None:
        flat[s:s + CHUNK].normal_(0.0, std, generator=torch.Generator().manual_seed(_seed(seed, name, s)))

    list(_POOL.map(fill, starts))
    return out


def _tensor(kind: str, seeds: tuple[int, int], noise: float, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """One tensor of the reference, the derived copy (reference + noise, FFN units permuted) or the independent model."""
    base_seed = seeds[1] if kind == "independent" else seeds[0]
    is_norm = len(shape) == 1
    t = _random(base_seed, name, shape, STD)
    if is_norm:
        t += 1.0  # RMSNorm gains near 1
    if kind not in ("derived", "permuted"):
        return t
    t += _random(seeds[1], name, shape, noise * STD)
    if ".mlp." in name:
        layer = int(name.split(".")[2])
        ffn = shape[1] if "down_proj" in name else shape[0]
        perm = torch.randperm(ffn, generator=torch.Generator().manual_seed(_seed(seeds[1], "perm", layer)))
        t = t[:, perm].contiguous() if "down_proj" in name else t[perm]
    return _hidden_permuted(t, name, seeds[1]) if kind == "permuted" else t


def _hidden_permuted(t: torch.Tensor, name: str, seed: int) -> torch.Tensor:
    """``t`` with the residual stream permuted and sign-flipped, the same way in every tensor
    (function-preserving: a norm's gain is permuted, every matrix reading or writing the stream
    has those columns or rows permuted and flipped)."""
    hidden = t.shape[-1] if t.dim() == 1 or not any(k in name for k in ("o_proj", "down_proj")) else t.shape[0]
    g = torch.Generator().manual_seed(_seed(seed, "hidden"))
    perm = torch.randperm(hidden, generator=g)
    signs = torch.where(torch.rand(hidden, generator=g) < 0.5, -1.0, 1.0).to(t.dtype)
    if t.dim() == 1:
        return t[perm].contiguous()
    if "o_proj" in name or "down_proj" in name:
        return (t[perm] * signs[:, None]).contiguous()
    return (t[:, perm] * signs).contiguous()


def _plan(spec: Spec, max_shard: int) -> list[list[tuple[str, tuple[int, ...]]]]:
    shards, cur, size = [], [], 0
    for name, shape in spec.tensors():
        nbytes = 2 * torch.Size(shape).numel()
        first_layer = name.startswith("model.layers.0.") and name.endswith("q_proj.weight")
        if cur and (size + nbytes > max_shard or first_layer):
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape))
        size += nbytes
    return shards + ([cur] if cur else [])


def write_model(folder: Path, spec: Spec, kind: str, seed: int = 0, noise: float = 0.2,
                max_shard: int = MAX_SHARD) -> int:
    """Write a sharded bf16 checkpoint with index, config, tokenizer, license card; returns bytes of weights.

    ``kind``: "reference", "derived" (reference + ``noise`` x STD Gaussian noise, FFN units permuted
    consistently across gate/up rows and down columns), "permuted" (the derived copy with its residual
    stream permuted and sign-flipped as well) or "independent" (fresh draws).
    """
    assert kind in ("reference", "derived", "independent", "permuted"), kind
    folder.mkdir(parents=True, exist_ok=True)
    seeds = (_seed("reference", seed), _seed(kind, seed))
    plan = _plan(spec, max_shard)
    weight_map, total = {}, 0
    for k, tensors in enumerate(plan, 1):
        fname = f"model-{k:05d}-of-{len(plan):05d}.safetensors"
        shard = {name: _tensor(kind, seeds, noise, name, shape) for name, shape in tensors}
        save_file(shard, str(folder / fname), metadata={"format": "pt"})
        total += sum(t.numel() * 2 for t in shard.values())
        weight_map.update({name: fname for name in shard})
        del shard
    _write_json(folder / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    _write_json(folder / "config.json", spec.config())
    tokens = {f"tok{i}": i for i in range(spec.vocab)}  # one shared tokenizer: the token anchors exist for every model
    _write_json(folder / "tokenizer.json",
                {"version": "1.0", "added_tokens": [], "model": {"type": "BPE", "vocab": tokens, "merges": []}})
    (folder / "README.md").write_text(f"---\nlicense: apache-2.0\n---\n# synthetic {kind}\n", encoding="utf-8")
    (folder / "THIRD_PARTY.yaml").write_text("components: []\n", encoding="utf-8")
    return total


def make_stem(src: Path, dst: Path) -> None:
    """The model without its layers (embeddings, final norm, LM head): hard links to ``src``'s non-layer shards.

    Its audit measures the fixed cost (process, rule pack, report, embeddings) that a per-layer cost excludes.
    """
    index = json.loads((src / "model.safetensors.index.json").read_text())
    by_file: dict[str, list[str]] = {}
    for name, fname in index["weight_map"].items():
        by_file.setdefault(fname, []).append(name)
    keep = {f for f, names in by_file.items() if not any(n.startswith("model.layers.") for n in names)}
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(keep) + ["tokenizer.json", "README.md", "THIRD_PARTY.yaml"]:
        try:
            os.link(src / f, dst / f)
        except OSError:
            shutil.copy2(src / f, dst / f)
    weight_map = {n: f for n, f in index["weight_map"].items() if f in keep}
    total = sum((src / f).stat().st_size for f in keep)
    _write_json(dst / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    _write_json(dst / "config.json", {**json.loads((src / "config.json").read_text()), "num_hidden_layers": 0})


def entry_folder(registry: Path, ref_id: str) -> Path:
    """A registry entry's folder: the id with "/" replaced by "__" (checker/references/registry.py)."""
    return registry / ref_id.replace("/", "__")


def clone_entry(src_registry: Path, src_id: str, dst_registry: Path, new_id: str) -> None:
    """Register a copy of an entry under a new id: its fingerprint files are copied untouched (their digests
    are checked on load), only ``entry.json``'s id changes."""
    dst = entry_folder(dst_registry, new_id)
    shutil.copytree(entry_folder(src_registry, src_id), dst)
    entry = json.loads((dst / "entry.json").read_text(encoding="utf-8"))
    entry["id"] = new_id
    _write_json(dst / "entry.json", entry)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


# -- floors: what reading the same files costs, measured in the same run --------------------

def files_of(*folders: Path) -> list[Path]:
    return sorted(p for f in folders for p in f.rglob("*") if p.is_file())


def evict(files: list[Path]) -> None:
    """Drop the files from the page cache (written pages are flushed first: dirty pages cannot be dropped)."""
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_all(files: list[Path]) -> float:
    buf = memoryview(bytearray(16 * MIB))
    t = time.perf_counter()
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass
    return time.perf_counter() - t


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_files(files: list[Path], workers: int) -> float:
    """Wall time to hash every file, one file per task, largest first, on ``workers`` processes."""
    if workers == 1:
        t = time.perf_counter()
        for f in files:
            _sha256(str(f))
        return time.perf_counter() - t
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(abs, range(workers * 2)))  # start the workers before the clock
        t = time.perf_counter()
        list(pool.map(_sha256, [str(f) for f in sorted(files, key=lambda p: -p.stat().st_size)]))
        return time.perf_counter() - t


def floors(folder: Path) -> dict:
    """Cold read (evicted first), then warm read, then sha256 on one core and on all cores (warm)."""
    files = files_of(folder)
    nbytes = sum(f.stat().st_size for f in files)
    evict(files)
    cold = read_all(files)
    warm = read_all(files)
    return {"bytes": nbytes, "cold": cold, "warm": warm, "sha1": sha256_files(files, 1),
            "shaN": sha256_files(files, os.cpu_count() or 1), "cold_gbps": nbytes / cold / 1e9}


def meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    from checker.hardware import bf16_hardware  # decides the CPU's search path (checker.metrics.rowmatch)

    bf16 = "bfloat16 search" if bf16_hardware() else "no bfloat16 arithmetic: float32 search"
    return (f"{os.cpu_count()} CPUs ({cpu}; {bf16}), RAM {meminfo('MemTotal') / 2**30:.1f} GiB, GPU {gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}; load average {os.getloadavg()[0]:.1f}")
