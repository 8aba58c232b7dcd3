"""Peak memory against depth at real width (issue 7): does `registry add` or `audit` grow with the layers?

Run (needs ~4 GB of disk per layer and kind at 70B width; a few minutes on 2 cores):

    python benchmarks/memory_depth.py                       # 70B width, 1 and 4 layers, vocab 32000
    python benchmarks/memory_depth.py --layers 1,8 --vocab 128256 --workdir /data/mem

For each depth it writes a reference and a derived copy (reference + noise, FFN units permuted) as
sharded bf16 Llama-like checkpoints (benchmarks/_scale_models.py), then runs `registry add` of the
reference and `audit --no-cache` of the copy through the CLI, each in its own process, and prints its
wall time, peak RSS (the child's VmHWM) and its RSS late in the run (the largest VmRSS over the last
half of the run, polled from /proc every 50 ms). A peak is set by one moment (the anchors, or the
largest tensor) and varies by about 0.1 GiB from run to run, so what grows with depth is read from the
late RSS: its growth per layer between the shallowest and the deepest model, added to the deepest
model's peak, projects the peak of an 80-layer model. A tool whose memory is bounded whatever the
depth shows a growth near zero; the peak at one layer is what the width alone costs (the largest
tensor, held whole in its stored dtype, and the anchors' rows).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _scale_models as sm  # noqa: E402
import scale  # noqa: E402

class Run:
    def __init__(self, seconds: float, rc: int, peak_mib: float, late_mib: float):
        self.seconds, self.rc, self.peak_mib, self.late_mib = seconds, rc, peak_mib, late_mib
        self.verdict, self.derived = "-", None

    def cell(self) -> str:
        return f"{self.seconds:6.1f}s peak {self.peak_mib / 1024:4.2f} GiB late {self.late_mib / 1024:4.2f} GiB" + (
            "" if self.rc in (0, 1, 3) else f" ERROR rc={self.rc}")


def run(cmd: list[str], log: Path) -> Run:
    """``cmd`` as a child process (scale.child), its VmHWM and VmRSS polled from /proc every 50 ms."""
    samples: list[int] = []
    r = scale.child(cmd, log, samples)
    late = max(samples[len(samples) // 2:] or [0])
    return Run(r.seconds, r.rc, r.rss_mib, late / 1024)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", default="1,4", help="depths to measure, comma-separated (default 1,4)")
    p.add_argument("--hidden", type=int, default=8192)
    p.add_argument("--ffn", type=int, default=28672)
    p.add_argument("--kv", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--workdir", type=Path, default=Path("/work/bench-memory"))
    p.add_argument("--keep", action="store_true", help="keep the generated models and registries")
    p.add_argument("--kind", choices=("derived", "permuted"), default="derived",
                   help="the audited copy: FFN units permuted (default), or its residual stream permuted and "
                        "sign-flipped too (the anchors then search the hidden permutation)")
    p.add_argument("--project", type=int, default=80, help="depth to project the peak to (default 80)")
    args = p.parse_args()
    scale.ARGS = argparse.Namespace(timeout=0)  # scale.child reads its kill timeout from there
    depths = sorted(int(x) for x in args.layers.split(","))
    print(f"# {sm.machine()}")
    print(f"# width: hidden {args.hidden}, FFN {args.ffn}, kv {args.kv}, vocab {args.vocab}; audited: {args.kind} copy", flush=True)
    rows = []
    for n in depths:
        spec = sm.Spec(args.hidden, args.ffn, args.kv, n, args.vocab)
        d = args.workdir / f"L{n}"
        for kind in ("reference", args.kind):
            if not (d / kind / "model.safetensors.index.json").exists():
                sm.write_model(d / kind, spec, kind)
        shutil.rmtree(d / "reg", ignore_errors=True)
        shutil.rmtree(d / "out", ignore_errors=True)
        logs = args.workdir / "logs" / f"L{n}"
        add = run(scale.CLI + ["registry", "add", str(d / "reference"), "--registry", str(d / "reg"), "--id", "vendor/reference",
                               "--license", "apache-2.0", "--publisher", "bench", "--device", "cpu"], logs / "add.log")
        sm.read_all(sm.files_of(d / args.kind))  # warm, as the scale benchmark's warm audit
        aud = run(scale.CLI + ["audit", str(d / args.kind), "--registry", str(d / "reg"), "--no-cache", "--device", "cpu",
                               "--format", "json", "--out", str(d / "out")], logs / "audit.log")
        if (d / "out" / "report.json").is_file():
            data = json.loads((d / "out" / "report.json").read_text())
            aud.verdict, aud.derived = data["verdict"], data.get("derived_param_fraction")
        rows.append((n, spec.params(), add, aud))
        print(f"{n:3d} layers {spec.params() / 1e9:6.2f}B params | registry add {add.cell()} | audit {aud.cell()}"
              f" | {aud.verdict} / {aud.derived}", flush=True)
        if not args.keep:
            shutil.rmtree(d)
    if len(rows) >= 2:
        (n0, _, a0, u0), (n1, _, a1, u1) = rows[0], rows[-1]
        for label, r0, r1 in (("registry add", a0, a1), ("audit", u0, u1)):
            per = (r1.late_mib - r0.late_mib) / (n1 - n0)
            at = (r1.peak_mib + max(per, 0.0) * (args.project - n1)) / 1024
            print(f"{label:13s} late RSS grows {per:6.1f} MiB a layer ({n0} -> {n1} layers); peak projected at "
                  f"{args.project} layers: {at:.2f} GiB (target <= 2 GiB)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "memory_depth.json").write_text(json.dumps(
        [{"layers": n, "params": prm, "add_s": a.seconds, "add_peak_mib": a.peak_mib, "add_late_mib": a.late_mib,
          "audit_s": u.seconds, "audit_peak_mib": u.peak_mib, "audit_late_mib": u.late_mib, "verdict": u.verdict}
         for n, prm, a, u in rows], indent=2))


if __name__ == "__main__":
    main()
