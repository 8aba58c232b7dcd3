"""Scale benchmark (issue 7): audit time, memory and reference count against the floors of reading the files.

Run (the full benchmark needs ~60 GB of free disk at 16 GB and takes long on a small machine):

    python benchmarks/scale.py                  # 2,8,16 GB; 1/10/50 references; naive at 2 GB; 70B slice
    python benchmarks/scale.py --quick          # smoke run: tiny sizes and widths, a few minutes
    python benchmarks/scale.py --sizes 2 --refs 1,10 --skip-slice --workdir /data/bench --keep

For each size it generates synthetic sharded bf16 Llama-like checkpoints (a reference; a derived copy =
reference + Gaussian noise with FFN units permuted per layer; an independent model), depth growing with the
size at fixed width, and measures through the real CLI (`python -m checker`, in child processes):
- `registry add` of the reference and `audit` of the derived and the independent model: wall time, peak RSS
  (the child's VmHWM, polled from /proc, which counts mapped file pages too), verdict, derived_param_fraction;
- floors on the submission's own files in the same run: cold read (every file evicted with
  posix_fadvise(DONTNEED) first), warm read, sha256 on one core and on all cores (files split across a
  process pool); the audit is timed warm (files just read) and cold (files and registry evicted);
- audit time with 1, 10 and 50 references (the reference plus clones of one registered independent model);
- a naive baseline (both state dicts loaded whole in float32, full Pearson per tensor pair) at the smallest size;
- a 70B-width slice (2 layers at hidden 8192, FFN 28672, vocab 128256) and its stem (the same without
  layers), giving the per-layer cost at real width, projected to an 80-layer 70B model and set against the
  cold read of its ~141 GB at the measured throughput.
The last table sets every ratio beside the issue's target. Each child's log and report.json stay under
WORKDIR/logs; the models and registries are deleted after each size unless --keep.
Peak RSS is the child process's own VmHWM (its workers are not added).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _scale_models as sm  # noqa: E402
from _scale_models import evict, files_of, floors, machine, meminfo, read_all  # noqa: E402

GB = 1e9
LLAMA_70B = sm.Spec(hidden=8192, ffn=28672, kv=1024, layers=80, vocab=128256)
TINY = sm.Spec(hidden=64, ffn=192, kv=64, layers=1, vocab=256)  # its audit is the tool's own fixed cost
TARGETS = {"warm": 2.0, "cold": 1.5, "rss_gib": 2.0, "refs": 1.3, "naive_time": 3.0, "naive_rss": 5.0, "proj": 3.0}
CLI = [sys.executable, "-m", "checker"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "NO_COLOR": "1"}


@dataclass
class Run:
    """One child process: wall seconds, peak RSS (MiB), exit code, and what the audit reported."""
    seconds: float
    rss_mib: float
    rc: int
    verdict: str = "-"
    derived: float | None = None

    @property
    def ok(self) -> bool:
        return self.rc in (0, 1, 3)  # pass, fail, inconclusive: all are results

    def time(self) -> float | None:
        return self.seconds if self.ok else None

    def cell(self) -> str:
        if self.rc == 124:
            return f">{self.seconds:.0f}s killed"
        return f"{self.seconds:.1f}s" if self.ok else f"ERROR rc={self.rc}"


def child(cmd: list[str], log: Path) -> Run:
    """Run ``cmd`` with output to ``log``; the peak RSS is the child's own (os.wait4), not the benchmark's."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
        killed = threading.Event()
        timer = (threading.Timer(ARGS.timeout, lambda: (killed.set(), os.killpg(p.pid, signal.SIGKILL)))
                 if ARGS.timeout else None)
        if timer:
            timer.start()
        peak = [0]
        watcher = threading.Thread(target=_watch_hwm, args=(p.pid, peak), daemon=True)
        watcher.start()
        _, status, _ = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t
        watcher.join()
        if timer:
            timer.cancel()
    p.returncode = 124 if killed.is_set() else os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 1, 3, 124):
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        print(f"  ! {' '.join(cmd[2:5])} ... exited {p.returncode}: " + " | ".join(tail), flush=True)
    return Run(seconds, peak[0] / 1024, p.returncode)


def _watch_hwm(pid: int, peak: list) -> None:
    """The child's own peak RSS: VmHWM of /proc/PID/status, which starts afresh at exec.
    (ru_maxrss from wait4 does not: a forked child inherits the parent's high-water mark, so
    every child reported the benchmark's own RSS.)"""
    path = f"/proc/{pid}/status"
    while True:
        try:
            with open(path) as fh:
                text = fh.read()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak[0] = max(peak[0], int(line.split()[1]))  # KiB
        if "State:\tZ" in text:
            return
        time.sleep(0.05)


# -- the tool through its CLI -----------------------------------------------------------------------

def audit_flags() -> list[str]:
    """--device / --no-cache only where this version of the audit command has them."""
    helptext = subprocess.run(CLI + ["audit", "--help"], capture_output=True, text=True, env=ENV).stdout
    flags = []
    if "--device" in helptext:
        flags += ["--device", ARGS.device]
    if "--no-cache" in helptext:
        flags.append("--no-cache")  # every run must read the weights, not a cached fingerprint
    return flags


def registry_add(src: Path, registry: Path, ref_id: str, logs: Path) -> Run:
    return child(CLI + ["registry", "add", str(src), "--registry", str(registry), "--id", ref_id,
                        "--license", "apache-2.0", "--publisher", "bench"], logs / f"add-{registry.name}.log")


def audit(sub: Path, registry: Path, out: Path, cold: bool = False) -> Run:
    """The fastest of --repeat audits (a shared machine adds noise, never speed), with the largest RSS."""
    runs = []
    for _ in range(ARGS.repeat):
        files = files_of(sub)
        evict(files + files_of(registry)) if cold else read_all(files)
        shutil.rmtree(out, ignore_errors=True)
        runs.append(child(CLI + ["audit", str(sub), "--registry", str(registry), "--format", "json", "--out", str(out)]
                          + FLAGS, out.with_suffix(".log")))
    run = min(runs, key=lambda r: (not r.ok, r.seconds))
    run.rss_mib = max(r.rss_mib for r in runs)
    if (out / "report.json").is_file():
        data = json.loads((out / "report.json").read_text())
        run.verdict, run.derived = data["verdict"], data.get("derived_param_fraction")
    return run


def build_registry(base: Path, extra: Path, n: int, dst: Path) -> None:
    """``dst`` = the registry ``base`` (one reference) plus n-1 unrelated references cloned from ``extra``'s entry."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(base, dst)
    for i in range(n - 1):
        sm.clone_entry(extra, "unrelated/independent", dst, f"unrelated/independent-{i:03d}")


# -- naive baseline (run as `scale.py --naive A B` in a child, so its RSS is measured like the audit's) ----------

def naive(a: Path, b: Path) -> None:
    import torch
    from safetensors.torch import load_file

    def load(folder: Path) -> dict:
        out = {}
        for shard in sorted(folder.glob("*.safetensors")):
            out.update({k: v.float() for k, v in load_file(str(shard)).items()})
        return out

    sa, sb = load(a), load(b)
    rs = [torch.corrcoef(torch.stack([sa[k].flatten(), sb[k].flatten()]))[0, 1].item()
          for k in sa if k in sb and sa[k].shape == sb[k].shape]
    print(f"{sum(r > 0.5 for r in rs)} of {len(rs)} tensor pairs at r > 0.5")  # permuted FFN units score ~0


# -- one size, the slice -----------------------------------------------------------------------------

def generate(folder: Path, spec: sm.Spec, kinds: tuple[str, ...]) -> float:
    t = time.perf_counter()
    for kind in kinds:
        sm.write_model(folder / kind, spec, kind, noise=ARGS.noise)
    os.sync()
    return time.perf_counter() - t


def measure_size(gb: float, refs: list[int], with_naive: bool) -> dict:
    w = ARGS.width
    spec = sm.spec_for_bytes(gb * GB, w.hidden, w.ffn, w.kv, w.vocab)
    d = ARGS.workdir / f"size-{gb:g}GB"
    print(f"# {gb:g} GB: {spec.layers} layers, hidden {spec.hidden}, FFN {spec.ffn}, {_count(spec.params())} params",
          flush=True)
    r = {"gb": gb, "spec": spec, "gen": generate(d, spec, ("reference", "derived", "independent"))}
    sub, logs = d / "derived", ARGS.workdir / "logs" / d.name  # logs and reports outlive the models
    r["shards"] = len(list(sub.glob("*.safetensors")))
    r["floors"] = floors(sub)
    evict(files_of(d / "reference"))
    r["add"] = registry_add(d / "reference", d / "reg-1", "vendor/reference", logs)
    r["add_indep"] = registry_add(d / "independent", d / "reg-unrelated", "unrelated/independent", logs)
    r["warm"] = audit(sub, d / "reg-1", logs / "derived-warm")
    r["cold"] = audit(sub, d / "reg-1", logs / "derived-cold", cold=True)
    r["indep"] = audit(d / "independent", d / "reg-1", logs / "independent-warm")
    r["refs"] = {}
    for n in refs:
        if n == 1:
            r["refs"][1] = r["warm"]
            continue
        build_registry(d / "reg-1", d / "reg-unrelated", n, d / f"reg-{n}")
        r["refs"][n] = audit(sub, d / f"reg-{n}", logs / f"derived-{n}refs")
    if with_naive:
        need, avail = 2 * spec.params() * 4 + 2 * 2**30, meminfo("MemAvailable")
        if need > 0.9 * avail:
            print(f"  naive baseline skipped: needs ~{need / 2**30:.0f} GiB, {avail / 2**30:.0f} GiB available")
        else:
            read_all(files_of(sub, d / "reference"))
            r["naive"] = child([sys.executable, __file__, "--naive", str(sub), str(d / "reference")], logs / "naive.log")
            r["naive_out"] = (logs / "naive.log").read_text().strip().splitlines()[-1:]
    if not ARGS.keep:
        shutil.rmtree(d)
    return r


def measure_slice() -> dict:
    spec = ARGS.slice
    d = ARGS.workdir / "slice"
    logs = ARGS.workdir / "logs" / d.name
    print(f"# slice: {spec.layers} layers, hidden {spec.hidden}, FFN {spec.ffn}, vocab {spec.vocab}", flush=True)
    r = {"spec": spec, "gen": generate(d, spec, ("reference", "derived"))}
    for kind in ("reference", "derived"):
        sm.make_stem(d / kind, d / f"stem-{kind}")
    generate(d / "tiny", TINY, ("reference", "derived"))
    r["floors"] = floors(d / "derived")
    evict(files_of(d / "reference"))
    r["add"] = registry_add(d / "reference", d / "reg", "vendor/reference", logs)
    r["add_stem"] = registry_add(d / "stem-reference", d / "reg-stem", "vendor/reference", logs)
    registry_add(d / "tiny" / "reference", d / "reg-tiny", "vendor/reference", logs)
    r["audit"] = audit(d / "derived", d / "reg", logs / "slice", cold=True)
    r["stem"] = audit(d / "stem-derived", d / "reg-stem", logs / "stem", cold=True)
    r["tiny"] = audit(d / "tiny" / "derived", d / "reg-tiny", logs / "tiny", cold=True)
    if not ARGS.keep:
        shutil.rmtree(d)
    return r


# -- output ------------------------------------------------------------------------------------------

def table(title: str, head: list[str], rows: list[list[object]]) -> None:
    cells = [head] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    print(f"\n## {title}")
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def check(value: float | None, target: float, at_most: bool = True) -> str:
    if value is None:
        return "-"
    ok = value <= target if at_most else value >= target
    return f"{value:.2f}x {'ok' if ok else 'MISS'} ({'<=' if at_most else '>='}{target:g}x)"


def report(sizes: list[dict], sl: dict | None) -> None:
    mib = lambda run: f"{run.rss_mib:.0f}"  # noqa: E731
    gb = lambda r: f"{r['gb']:g} GB"  # noqa: E731
    table("Checkpoints (bf16 safetensors, shards <= 2 GB; submission = derived copy)",
          ["size", "params", "layers", "hidden/FFN", "shards", "generate 3 models"],
          [[gb(r), _count(r["spec"].params()), r["spec"].layers, f"{r['spec'].hidden}/{r['spec'].ffn}", r["shards"],
            f"{r['gen']:.0f}s"] for r in sizes])
    table(f"Floors on the submission's files ({os.cpu_count()} cores)",
          ["size", "cold read", "warm read", "sha256 1 core", "sha256 all cores"],
          [[gb(r), f"{r['floors']['cold']:.2f}s ({r['floors']['cold_gbps']:.2f} GB/s)", f"{r['floors']['warm']:.2f}s",
            f"{r['floors']['sha1']:.2f}s", f"{r['floors']['shaN']:.2f}s"] for r in sizes])
    table("Tool (wall time incl. process start; peak RSS in MiB)",
          ["size", "registry add", "RSS", "audit warm", "audit cold", "RSS", "verdict / derived", "independent", "RSS",
           "verdict / derived"],
          [[gb(r), r["add"].cell(), mib(r["add"]), r["warm"].cell(), r["cold"].cell(),
            f"{max(r['warm'].rss_mib, r['cold'].rss_mib):.0f}", f"{r['warm'].verdict} / {_frac(r['warm'].derived)}",
            r["indep"].cell(), mib(r["indep"]), f"{r['indep'].verdict} / {_frac(r['indep'].derived)}"] for r in sizes])
    ns = sorted({n for r in sizes for n in r["refs"]})
    table("Audit (warm) by number of references", ["size"] + [f"{n} refs" for n in ns],
          [[gb(r)] + [r["refs"][n].cell() if n in r["refs"] else "-" for n in ns] for r in sizes])
    pts = [(r, r["warm"].time()) for r in sizes if r["warm"].ok]
    fit = _fit([r["spec"].layers for r, _ in pts], [t for _, t in pts])
    rows, prev = [], None
    for r, t in pts:
        marginal = "-" if prev is None else f"{(t - prev[1]) / max(1, r['spec'].layers - prev[0]['spec'].layers):.2f}"
        rows.append([gb(r), r["spec"].layers, f"{t:.1f}s", f"{t / r['spec'].layers:.2f}",
                     f"{t / r['floors']['bytes'] * GB:.2f}", marginal])
        prev = (r, t)
    table("Depth linearity (warm audit, fixed width)" + (f"; fit {fit[0]:.1f}s + {fit[1]:.2f}s/layer, R^2 {fit[2]:.4f}"
                                                         if fit else ""),
          ["size", "layers", "audit", "s/layer", "s/GB", "marginal s/layer"], rows)
    naive_rows = [r for r in sizes if "naive" in r]
    if naive_rows:
        table("Naive baseline (both state dicts whole in float32, full Pearson per tensor pair)",
              ["size", "naive", "RSS", "audit warm", "RSS", "naive result"],
              [[gb(r), r["naive"].cell(), mib(r["naive"]), r["warm"].cell(), mib(r["warm"]), "".join(r["naive_out"])]
               for r in naive_rows])
    proj = _projection(sl, mib) if sl else None
    rows = []
    for r in sizes:
        f, refs, nv = r["floors"], r["refs"], r.get("naive")
        rss = max(x.rss_mib for x in (r["add"], r["warm"], r["cold"], r["indep"])) / 1024
        rows.append([gb(r), check(_ratio(r["warm"].time(), f["shaN"]), TARGETS["warm"]),
                     check(_ratio(r["cold"].time(), f["cold"]), TARGETS["cold"]),
                     f"{rss:.2f} GiB {'ok' if rss <= TARGETS['rss_gib'] else 'MISS'} (<=2 GiB)",
                     check(_ratio(refs[max(refs)].time(), refs[1].time()) if len(refs) > 1 else None, TARGETS["refs"]),
                     check(_ratio(nv.time(), r["warm"].time()) if nv else None, TARGETS["naive_time"], False),
                     check(_ratio(nv.rss_mib, r["warm"].rss_mib) if nv else None, TARGETS["naive_rss"], False)])
    table("Targets (issue 7)", ["size", "warm / sha256 all cores", "cold / cold read", "peak RSS (add, audit)",
                                f"{max(ns)} refs / 1", "naive / audit time", "naive / audit RSS"], rows)
    if sl:
        print(f"70B projection / cold read of 70B: {check(proj, TARGETS['proj'])}")


def _projection(sl: dict, mib) -> float | None:
    """80-layer 70B audit = fixed cost + embeddings + 80 x the slice's per-layer cost (each cold).

    fixed: the tiny model's audit (process, rule pack, report); embeddings: the stem's audit (the
    slice without layers) minus that; per layer: (slice - stem) / layers. At a width or vocabulary
    below 70B's (--quick), the embedding and layer parts are scaled by parameter count.
    """
    s, big = sl["spec"], LLAMA_70B
    base, stem, whole = sl["tiny"].time() or 0.0, sl["stem"].time(), sl["audit"].time()
    per_layer = emb = proj_s = proj = None
    if stem is not None and whole is not None and whole > stem:
        per_layer = (whole - stem) / s.layers * big.layer_params() / s.layer_params()
        emb = base + max(0.0, stem - base) * big.vocab * big.hidden / (s.vocab * s.hidden)
        proj_s = emb + big.layers * per_layer
    cold_s = big.params() * 2 / (sl["floors"]["cold_gbps"] * GB)
    if proj_s is not None:
        proj = proj_s / cold_s
    scaled = "" if s == replace(big, layers=s.layers) else " (scaled from the slice by parameter count)"
    fmt = lambda x, u="s": "n/a (slice not slower than its stem)" if x is None else f"{x:.1f}{u}"  # noqa: E731
    table(f"70B projection: 80 layers, hidden 8192, FFN 28672, vocab 128256, {big.params() / 1e9:.1f}B params{scaled}",
          ["item", "value"],
          [["slice", f"{s.layers} layers, hidden {s.hidden}, FFN {s.ffn}, vocab {s.vocab}, "
                     f"{sl['floors']['bytes'] / GB:.2f} GB, cold read {sl['floors']['cold']:.2f}s"],
           ["registry add slice / stem", f"{sl['add'].cell()}, RSS {mib(sl['add'])} MiB / "
                                         f"{sl['add_stem'].cell()}, RSS {mib(sl['add_stem'])} MiB"],
           ["audit slice (cold)", f"{sl['audit'].cell()}, RSS {mib(sl['audit'])} MiB, "
                                  f"{sl['audit'].verdict} / {_frac(sl['audit'].derived)}"],
           ["audit stem = slice without layers (cold)", f"{sl['stem'].cell()}, RSS {mib(sl['stem'])} MiB"],
           ["audit tiny model = fixed cost (cold)", sl["tiny"].cell()],
           ["per layer at 70B width", fmt(per_layer)],
           ["fixed + embeddings at 70B", fmt(emb)],
           ["projected audit", fmt(proj_s)],
           ["cold read of 70B", f"{big.params() * 2 / GB:.0f} GB at {sl['floors']['cold_gbps']:.2f} GB/s = {cold_s:.0f}s"]])
    return proj


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def _frac(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _fit(xs: list[int], ys: list[float]) -> tuple[float, float, float] | None:
    """Least squares y = a + b x, with R^2: linear in depth means a good fit with a flat s/layer."""
    if len(set(xs)) < 3:  # two points always fit a line
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    ss = sum((y - my) ** 2 for y in ys)
    return a, b, 1 - sum((y - a - b * x) ** 2 for x, y in zip(xs, ys)) / ss if ss else 1.0


def main() -> None:
    global ARGS, FLAGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default=None, help="checkpoint sizes in GB (default 2,8,16; --quick 0.01,0.02)")
    p.add_argument("--refs", default=None, help="reference counts (default 1,10,50; --quick 1,3)")
    p.add_argument("--workdir", type=Path, default=Path("/work/bench-scale"), help="where the models go (outside the repo)")
    p.add_argument("--keep", action="store_true", help="keep the generated models and registries")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-slice", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes and widths")
    p.add_argument("--device", default="auto", help="passed to the audit if it has --device")
    p.add_argument("--repeat", type=int, default=1, help="run each audit this many times and keep the fastest")
    p.add_argument("--timeout", type=float, default=0, help="kill a child (add, audit, naive) after this many seconds")
    p.add_argument("--noise", type=float, default=0.2, help="derived copy's noise, as a fraction of the weight std")
    p.add_argument("--naive", nargs=2, type=Path, metavar=("A", "B"), help=argparse.SUPPRESS)
    ARGS = p.parse_args()
    if ARGS.naive:
        return naive(*ARGS.naive)
    q = ARGS.quick
    sizes = [float(s) for s in (ARGS.sizes or ("0.01,0.02" if q else "2,8,16")).split(",")]
    refs = sorted({int(n) for n in (ARGS.refs or ("1,3" if q else "1,10,50")).split(",")} | {1})
    ARGS.width = sm.Spec(256, 768, 64, 0, 1024) if q else sm.Spec(2048, 8192, 512, 0, 32000)
    ARGS.slice = sm.Spec(256, 896, 64, 2, 1024) if q else replace(LLAMA_70B, layers=2)
    ARGS.workdir.mkdir(parents=True, exist_ok=True)
    FLAGS = audit_flags()
    flags = f"audit flags: {' '.join(FLAGS) or '(none)'}"
    print(f"# machine: {machine()}; {flags}\n# workdir {ARGS.workdir}, "
          f"{shutil.disk_usage(ARGS.workdir).free / GB:.0f} GB free", flush=True)
    t = time.perf_counter()
    results = [measure_size(gb, refs, not ARGS.skip_naive and i == 0) for i, gb in enumerate(sorted(sizes))]
    sl = None if ARGS.skip_slice else measure_slice()
    print(f"\n# scale benchmark, {time.perf_counter() - t:.0f}s; machine: {machine()}; {flags}")
    report(results, sl)


ARGS: argparse.Namespace
FLAGS: list[str] = []

if __name__ == "__main__":
    main()
