"""Peak memory of reading and fingerprinting checkpoints of growing size.

Prints one row per model size: the peak resident memory of a fresh process
that (a) reads every tensor through the lazy reader and (b) builds the
registry fingerprint. With lazy, tensor-by-tensor reading the peak follows
the largest tensor, not the model: the rows should stay flat while the model
grows. Run: python benchmarks/reader_memory.py [--max-gib 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

CHILD = r"""
import json, sys, threading, time
from pathlib import Path
from checker.weights import open_checkpoint
from checker.references.fingerprint import build_fingerprint

# Anonymous resident memory (heap), sampled: memory-mapped weight pages are file-backed
# and reclaimable, so they are reported apart (ru_maxrss would count them as if owned).
peak = {"anon": 0, "file": 0}
def sample():
    while True:
        fields = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith(("RssAnon", "RssFile")))
        peak["anon"] = max(peak["anon"], int(fields["RssAnon"].split()[0]) / 1024)
        peak["file"] = max(peak["file"], int(fields["RssFile"].split()[0]) / 1024)
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
time.sleep(0.05)
base = peak["anon"]
t = time.time()
r = open_checkpoint(Path(sys.argv[1]))
n = 0
for info in r.tensors():
    n += r.get(info.name).numel()
read_s, read_peak = time.time() - t, peak["anon"]
t = time.time()
fp = build_fingerprint(r, None, "bench")
print(json.dumps({"params": n, "base_mib": base, "read_peak_mib": read_peak, "read_s": read_s, "fp_peak_mib": peak["anon"],
                  "fp_s": time.time() - t, "fp_bytes": fp.nbytes(), "mapped_peak_mib": peak["file"]}))
"""


def make_model(folder: Path, gib: float, hidden: int = 2048, ffn: int = 5632) -> None:
    """A Llama-shaped fp16 checkpoint of about ``gib`` GiB, in 2 GiB shards."""
    per_layer = 4 * hidden * hidden + 3 * hidden * ffn
    layers = max(1, int(gib * 2**30 / 2 / per_layer))
    g = torch.Generator().manual_seed(0)
    shard, size, index, k = {}, 0, {}, 0
    folder.mkdir(parents=True, exist_ok=True)

    def flush():
        nonlocal shard, size, k
        if shard:
            name = f"model-{k:05d}.safetensors"
            save_file(shard, str(folder / name))
            index.update({t: name for t in shard})
            shard, size, k = {}, 0, k + 1

    for i in range(layers):
        p = f"model.layers.{i}."
        for n, shape in (("self_attn.q_proj", (hidden, hidden)), ("self_attn.k_proj", (hidden, hidden)),
                         ("self_attn.v_proj", (hidden, hidden)), ("self_attn.o_proj", (hidden, hidden)),
                         ("mlp.gate_proj", (ffn, hidden)), ("mlp.up_proj", (ffn, hidden)), ("mlp.down_proj", (hidden, ffn))):
            shard[p + n + ".weight"] = (torch.randn(shape, generator=g) * 0.02).half()
            size += shape[0] * shape[1] * 2
        shard[p + "input_layernorm.weight"] = torch.ones(hidden).half()
        if size > 2 * 2**30:
            flush()
    flush()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--max-gib", type=float, default=2.0)
    args = ap.parse_args()
    sizes = [s for s in (0.25, 0.5, 1.0, 2.0, 4.0, 8.0) if s <= args.max_gib]
    print("peak anonymous memory (heap) of a fresh process; mapped = file-backed weight pages (reclaimable)")
    print(f"{'model GiB':>9} {'params':>13} {'baseline MiB':>12} {'read peak MiB':>14} {'fingerprint peak MiB':>21} {'mapped MiB':>11} {'read s':>7} {'fp s':>7} {'fp bytes/param':>15}")
    with tempfile.TemporaryDirectory() as d:
        for gib in sizes:
            folder = Path(d) / f"m{gib}"
            t = time.time()
            make_model(folder, gib)
            out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout)
            print(f"{gib:>9.2f} {r['params']:>13,} {r['base_mib']:>12.0f} {r['read_peak_mib']:>14.0f} {r['fp_peak_mib']:>21.0f} {r['mapped_peak_mib']:>11.0f} {r['read_s']:>7.1f} {r['fp_s']:>7.1f} "
                  f"{r['fp_bytes'] / r['params']:>15.4f}")
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()


if __name__ == "__main__":
    main()
