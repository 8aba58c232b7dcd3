"""Where a layer's time goes at real width: profile the audit of a 70B-width slice on one device.

    python benchmarks/slice_profile.py --device cuda --workdir /tmp/slice            # 2 layers, 70B shapes
    python benchmarks/slice_profile.py --device cpu --quick --workdir /tmp/slice     # smoke run, small widths

It writes a reference and a derived copy (scale.py's models: bf16, noise plus permuted FFN units) with
``--layers`` layers at Llama-70B widths, and the same models without their layers (the stem). In this
process, with the chosen device and every core, it registers both references, then audits the derived
slice and its stem with the files evicted from the page cache first (cold), under cProfile. It prints:
- the cold read and the all-core sha256 of the slice's files (the floors, measured in the same run);
- audit wall times, the per-layer cost (slice minus stem, over the layers), and the projection to an
  80-layer 70B model against the cold read of its weights at the measured throughput;
- the profile of the slice audit: the functions with the most time of their own, and the engine's stages.
``--also-cpu`` audits the same files on the CPU afterwards, for the side-by-side figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _scale_models as sm  # noqa: E402
from _scale_report import LLAMA_70B  # noqa: E402

STAGES = ("compare_matrix", "match_candidates", "gram_sketch", "_index_tests", "find_anchors", "column_moments_sampled",
          "unit_rows", "update", "read", "hexdigest", "scan", "value_range", "not_evidence", "reference_digests")


def _audit(folder: Path, registry: Path, device: str, profile: bool):
    from checker.audit import audit
    from checker.rules import load_pack

    sm.evict(sm.files_of(folder, registry))
    prof = cProfile.Profile() if profile else None
    t = time.perf_counter()
    if prof:
        prof.enable()
    result = audit(str(folder), registry, load_pack(), device=device)  # no evidence cache
    if prof:
        prof.disable()
    return time.perf_counter() - t, result, prof


def _print_profile(prof: cProfile.Profile, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print("\n".join(line[:150] for line in out.getvalue().splitlines()[4:]))
    print("engine stages (cumulative seconds, calls):")
    for (file, line, name), (_, calls, _, cum, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][3]):
        if name in STAGES and "checker" in file:
            print(f"  {cum:8.2f}s {calls:6d}  {name} ({Path(file).name}:{line})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--workdir", type=Path, default=Path("/tmp/slice-profile"))
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="small widths (hidden 1024, FFN 3584, vocab 8000)")
    p.add_argument("--also-cpu", action="store_true", help="audit the same files on the CPU too")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from checker.hardware import resolve_device
    from checker.references.registry import add_reference

    device = resolve_device(args.device)  # also: every core, freed blocks reused
    spec = replace(LLAMA_70B, layers=args.layers)
    if args.quick:
        spec = sm.Spec(hidden=1024, ffn=3584, kv=128, layers=args.layers, vocab=8000)
    d = args.workdir
    shutil.rmtree(d, ignore_errors=True)
    print(f"# slice on {device}: {spec.layers} layers, hidden {spec.hidden}, FFN {spec.ffn}, kv {spec.kv}, "
          f"vocab {spec.vocab}; {sm.machine()}", flush=True)
    t = time.perf_counter()
    for kind in ("reference", "derived"):
        sm.write_model(d / kind, spec, kind)
        sm.make_stem(d / kind, d / f"stem-{kind}")
    print(f"generated in {time.perf_counter() - t:.1f}s", flush=True)
    fl = sm.floors(d / "derived")
    print(f"floors: {fl['bytes'] / 1e9:.2f} GB; cold read {fl['cold']:.2f}s ({fl['cold_gbps']:.2f} GB/s), "
          f"warm read {fl['warm']:.2f}s, sha256 1 core {fl['sha1']:.2f}s, all cores {fl['shaN']:.2f}s", flush=True)
    for name, src in (("reg", d / "reference"), ("reg-stem", d / "stem-reference")):
        t = time.perf_counter()
        add_reference(str(src), d / name, ref_id="vendor/reference", license="apache-2.0", device=device)
        print(f"registered {src.name} on {device} in {time.perf_counter() - t:.1f}s", flush=True)

    stem_s, _, _ = _audit(d / "stem-derived", d / "reg-stem", device, False)
    whole_s, result, prof = _audit(d / "derived", d / "reg", device, True)
    per_layer = (whole_s - stem_s) / spec.layers
    big = LLAMA_70B.params() * 2 / 1e9
    proj = stem_s + LLAMA_70B.layers * per_layer
    read = big / fl["cold_gbps"]
    print(f"\naudit (cold, {device}): slice {whole_s:.1f}s (verdict {result.verdict}, derived share "
          f"{result.derived_param_fraction:.3f}), stem {stem_s:.1f}s -> {per_layer:.2f}s per layer; peak RSS of "
          f"this process, registrations included {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB "
          f"(scale.py measures the audit's own)")
    print(f"projection, 80-layer 70B ({big:.0f} GB): {proj:.0f}s = {proj / read:.1f}x its cold read "
          f"({read:.0f}s at {fl['cold_gbps']:.2f} GB/s); target 3x", flush=True)
    _print_profile(prof, args.top)
    if args.also_cpu and device != "cpu":
        cpu_s, cpu_result, _ = _audit(d / "derived", d / "reg", "cpu", False)
        same = cpu_result.verdict == result.verdict and cpu_result.derived_param_fraction == result.derived_param_fraction
        print(f"\nthe same audit on cpu ({os.cpu_count()} cores): {cpu_s:.1f}s, verdict {cpu_result.verdict} "
              f"({'same' if same else 'DIFFERENT'} verdict and derived share)", flush=True)
    if not args.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
