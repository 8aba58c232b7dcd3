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
  cold read of its ~141 GB at the measured throughput; with more than one reference, the slice and stem are
  audited again against as many (clones of a registered independent slice), and the projection with them
  is set against the projection with one (`--slice-only --refs 1,50` runs just this).
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
from _scale_report import GB, LLAMA_70B, _count, report  # noqa: E402

TINY = sm.Spec(hidden=64, ffn=192, kv=64, layers=1, vocab=256)  # its audit is the tool's own fixed cost
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


def child(cmd: list[str], log: Path, samples: list | None = None) -> Run:
    """Run ``cmd`` with output to ``log``; the peak RSS is the child's own (its VmHWM), not the
    benchmark's. ``samples``, if given, receives the child's VmRSS (KiB) every 50 ms."""
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
        watcher = threading.Thread(target=_watch_hwm, args=(p.pid, peak, samples), daemon=True)
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


def _watch_hwm(pid: int, peak: list, samples: list | None = None) -> None:
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
            elif line.startswith("VmRSS:") and samples is not None:
                samples.append(int(line.split()[1]))
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


def measure_slice(refs: int) -> dict:
    """The slice and its stem, audited cold against the reference; with ``refs`` > 1 also against the
    reference plus refs-1 unrelated references (clones of a registered independent slice, and of its
    stem for the stem): the per-reference cost at 70B width, where each reference's prints are a
    small part of a layer's bytes."""
    spec = ARGS.slice
    d = ARGS.workdir / "slice"
    logs = ARGS.workdir / "logs" / d.name
    print(f"# slice: {spec.layers} layers, hidden {spec.hidden}, FFN {spec.ffn}, vocab {spec.vocab}", flush=True)
    kinds = ("reference", "derived") + (("independent",) if refs > 1 else ())
    r = {"spec": spec, "gen": generate(d, spec, kinds), "refs": refs}
    for kind in kinds:
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
    if refs > 1:
        for part, reg in (("", "reg"), ("stem-", "reg-stem")):
            registry_add(d / f"{part}independent", d / f"{reg}-unrelated", "unrelated/independent", logs)
            build_registry(d / reg, d / f"{reg}-unrelated", refs, d / f"{reg}-{refs}")
        r["audit_n"] = audit(d / "derived", d / f"reg-{refs}", logs / f"slice-{refs}refs", cold=True)
        r["stem_n"] = audit(d / "stem-derived", d / f"reg-stem-{refs}", logs / f"stem-{refs}refs", cold=True)
    if not ARGS.keep:
        shutil.rmtree(d)
    return r


# -- output ------------------------------------------------------------------------------------------

def main() -> None:
    global ARGS, FLAGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default=None, help="checkpoint sizes in GB (default 2,8,16; --quick 0.01,0.02)")
    p.add_argument("--refs", default=None, help="reference counts (default 1,10,50; --quick 1,3)")
    p.add_argument("--workdir", type=Path, default=Path("/work/bench-scale"), help="where the models go (outside the repo)")
    p.add_argument("--keep", action="store_true", help="keep the generated models and registries")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-slice", action="store_true")
    p.add_argument("--slice-only", action="store_true", help="only the 70B-width slice (with the largest --refs)")
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
    sizes = [] if ARGS.slice_only else sorted(sizes)
    results = [measure_size(gb, refs, not ARGS.skip_naive and i == 0) for i, gb in enumerate(sizes)]
    sl = None if ARGS.skip_slice else measure_slice(max(refs))
    print(f"\n# scale benchmark, {time.perf_counter() - t:.0f}s; machine: {machine()}; {flags}")
    report(results, sl)


ARGS: argparse.Namespace
FLAGS: list[str] = []

if __name__ == "__main__":
    main()
