"""CPU against GPU on the scale benchmark's models (issue: scale): the same checkpoints audited on each
device, the figures side by side, and every audit's verdicts compared with the first device's.

    python benchmarks/device_compare.py --devices cuda,cpu --sizes 2 --refs 1,10 --workdir /tmp/bench
    python benchmarks/device_compare.py --devices cuda,cpu --slice --workdir /tmp/bench
    python benchmarks/device_compare.py --devices cpu,cpu --quick      # the pipeline, where no GPU is

It drives ``benchmarks/scale.py``'s own code. The first device runs scale.py's measurement of a size (or
of the 70B-width slice) as scale.py would, references registered on that device, and the models are
kept. Every further device then registers the same references again (a fingerprint made on that
device, in a registry of its own) and runs the same audits on the same files. Each device gets
scale.py's tables; the last table sets the devices side by side and compares each audit's report.json
with the first device's: verdict, derived share, criteria, module statuses, best matches and their
layer maps must be equal ("same"); p-values and scores may move in their last digits (the largest
move is shown). Models are deleted at the end unless --keep; logs and reports stay under
WORKDIR/logs, and a summary goes to WORKDIR/logs/device_compare-<part>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _scale_models as sm  # noqa: E402
import _scale_report as sr  # noqa: E402
import scale  # noqa: E402


def registry_add(src: Path, registry: Path, ref_id: str, logs: Path) -> scale.Run:
    """scale.registry_add, on the device being measured (scale.py leaves it to --device auto)."""
    return scale.child(scale.CLI + ["registry", "add", str(src), "--registry", str(registry), "--id", ref_id,
                                    "--license", "apache-2.0", "--publisher", "bench", "--device", scale.ARGS.device],
                       logs / f"add-{registry.name}.log")


def use(device: str) -> None:
    """Point scale.py's children at ``device``."""
    scale.ARGS.device = device
    scale.FLAGS = [device if prev == "--device" else f for prev, f in zip([""] + scale.FLAGS, scale.FLAGS)]


# -- one size, one slice: the first device through scale.py, the others on the same files ------------

def size_on(device: str, tag: str, gb: float, refs: list[int], first: dict) -> dict:
    """scale.measure_size's registrations and audits, on the kept models of ``first``."""
    d = scale.ARGS.workdir / f"size-{gb:g}GB"
    logs = scale.ARGS.workdir / "logs" / d.name / tag
    sub, reg, unrelated = d / "derived", d / f"reg-1-{tag}", d / f"reg-unrelated-{tag}"
    r = {k: first[k] for k in ("gb", "spec", "gen", "shards", "floors")}
    sm.evict(sm.files_of(d / "reference"))
    r["add"] = registry_add(d / "reference", reg, "vendor/reference", logs)
    r["add_indep"] = registry_add(d / "independent", unrelated, "unrelated/independent", logs)
    r["warm"] = scale.audit(sub, reg, logs / "derived-warm")
    r["cold"] = scale.audit(sub, reg, logs / "derived-cold", cold=True)
    r["indep"] = scale.audit(d / "independent", reg, logs / "independent-warm")
    r["refs"] = {1: r["warm"]}
    for n in refs:
        if n > 1:
            scale.build_registry(reg, unrelated, n, d / f"reg-{n}-{tag}")
            r["refs"][n] = scale.audit(sub, d / f"reg-{n}-{tag}", logs / f"derived-{n}refs")
    return r


def slice_on(device: str, tag: str, first: dict) -> dict:
    """scale.measure_slice's registrations and audits, on the kept slice of ``first``."""
    d = scale.ARGS.workdir / "slice"
    logs = scale.ARGS.workdir / "logs" / d.name / tag
    r = {k: first[k] for k in ("spec", "gen", "floors")}
    sm.evict(sm.files_of(d / "reference"))
    r["add"] = registry_add(d / "reference", d / f"reg-{tag}", "vendor/reference", logs)
    r["add_stem"] = registry_add(d / "stem-reference", d / f"reg-stem-{tag}", "vendor/reference", logs)
    registry_add(d / "tiny" / "reference", d / f"reg-tiny-{tag}", "vendor/reference", logs)
    r["audit"] = scale.audit(d / "derived", d / f"reg-{tag}", logs / "slice", cold=True)
    r["stem"] = scale.audit(d / "stem-derived", d / f"reg-stem-{tag}", logs / "stem", cold=True)
    r["tiny"] = scale.audit(d / "tiny" / "derived", d / f"reg-tiny-{tag}", logs / "tiny", cold=True)
    return r


# -- comparing two report.json files -------------------------------------------------------------------

def _verdicts(report: dict) -> dict:
    """What must not depend on the device."""
    out = {"verdict": report["verdict"], "derived_param_fraction": report["derived_param_fraction"],
           "criteria": {c["id"]: c["status"] for c in report["criteria"]}}
    for m in report["modules"]:
        best = next((x for x in m["matches"] if "layer_matrix" in x), None)  # the best match is written in full
        out[m["name"]] = (m["status"], m.get("reason_key"), m["derived_parameters"], m["best_match"],
                          None if best is None else (best["statistic"], best["layer_map"], best["significant"]))
    return out


def _figures(report: dict) -> dict:
    return {(m["name"], x["reference"], x["reference_module"], x["statistic"]): (x["log10_p_value_corrected"], x["score"])
            for m in report["modules"] for x in m["matches"]}


def compare(a: Path, b: Path) -> tuple[str, float | None, float | None]:
    """("same" or what differs, largest move of a log10 p-value, of a score) between two audits' reports."""
    if not (a / "report.json").is_file() or not (b / "report.json").is_file():
        return "no report", None, None
    ra, rb = (json.loads((x / "report.json").read_text()) for x in (a, b))
    va, vb = _verdicts(ra), _verdicts(rb)
    diff = [k for k in va.keys() | vb.keys() if va.get(k) != vb.get(k)]
    fa, fb = _figures(ra), _figures(rb)
    dp = [abs((fa[k][0] or 0) - (fb[k][0] or 0)) for k in fa.keys() & fb.keys()]
    ds = [abs((fa[k][1] or 0) - (fb[k][1] or 0)) for k in fa.keys() & fb.keys()]
    if fa.keys() != fb.keys():
        diff.append(f"{len(fa.keys() ^ fb.keys())} matches only on one side")
    return ("same" if not diff else "DIFFERENT: " + ", ".join(sorted(map(str, diff)))[:300],
            max(dp, default=0.0), max(ds, default=0.0))


# -- output ------------------------------------------------------------------------------------------------

def side_by_side(part: str, cases: list[tuple[str, Path]], runs: dict, tags: list[str]) -> list[dict]:
    """One row per case: each device's time and RSS, and its report against the first device's."""
    rows, record = [], []
    first = tags[0]
    for label, folder in cases:
        cells = [label]
        for tag in tags:
            run = runs[tag].get(label)
            cells.append("-" if run is None else f"{run.cell()} {run.rss_mib:.0f} MiB {run.verdict}")
        entry = {"part": part, "case": label,
                 "runs": {t: None if runs[t].get(label) is None else asdict(runs[t][label]) for t in tags}}
        for tag in tags[1:]:
            if folder is None:
                same, dp, ds = "-", None, None
            else:
                same, dp, ds = compare(_out(folder, first, first), _out(folder, tag, first))
            cells += [same, "-" if dp is None else f"{dp:.2g}", "-" if ds is None else f"{ds:.2g}"]
            entry[f"{tag}_vs_{first}"] = {"verdicts": same, "max_dlog10p": dp, "max_dscore": ds}
        rows.append(cells)
        record.append(entry)
    head = ["case"] + [f"{t}: time RSS verdict" for t in tags]
    for tag in tags[1:]:
        head += [f"{tag} vs {first}", "max |d log10 p|", "max |d score|"]
    sr.table(f"Devices side by side, {part} (same files; each device's own registry)", head, rows)
    return record


def _out(folder: Path, tag: str, first: str) -> Path:
    """Where an audit of ``tag`` wrote its report (the first device's, where scale.py puts it)."""
    return folder if tag == first else folder.parent / tag / folder.name


def _kill_children(signum, frame) -> None:
    """scale.py starts each child in a session of its own: a timeout that ends this process ends them too."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    print(f"\n! device_compare: stopped by signal {signum}; children killed", flush=True)
    os._exit(124)  # not sys.exit: scale.child's timer thread would keep the process alive


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", default="cuda,cpu", help="the first registers and measures; the others re-audit")
    p.add_argument("--sizes", default=None, help="checkpoint sizes in GB (default 2; --quick 0.01)")
    p.add_argument("--refs", default=None, help="reference counts (default 1,10; --quick 1,3)")
    p.add_argument("--slice", action="store_true", help="the 70B-width slice (scale.py's projection) instead of sizes")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/bench-devices"))
    p.add_argument("--keep", action="store_true", help="keep the models and registries")
    p.add_argument("--quick", action="store_true", help="scale.py's tiny widths")
    p.add_argument("--timeout", type=float, default=0, help="kill a child (add, audit) after this many seconds")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, _kill_children)
    signal.signal(signal.SIGINT, _kill_children)
    devices = a.devices.split(",")
    tags = [dev if dev not in devices[:i] else f"{dev}{i}" for i, dev in enumerate(devices)]
    q = a.quick
    scale.ARGS = argparse.Namespace(
        workdir=a.workdir, keep=True, device=devices[0], repeat=1, timeout=a.timeout, noise=0.2, quick=q,
        width=sm.Spec(256, 768, 64, 0, 1024) if q else sm.Spec(2048, 8192, 512, 0, 32000),
        slice=sm.Spec(256, 896, 64, 2, 1024) if q else replace(sr.LLAMA_70B, layers=2))
    scale.registry_add = registry_add
    a.workdir.mkdir(parents=True, exist_ok=True)
    scale.FLAGS = scale.audit_flags()
    if "--device" not in scale.FLAGS:
        sys.exit("device_compare: this version of `audit` has no --device")
    print(f"# devices {', '.join(tags)}; machine: {sm.machine()}\n# workdir {a.workdir}, "
          f"{shutil.disk_usage(a.workdir).free / sr.GB:.0f} GB free; audit flags: {' '.join(scale.FLAGS)}", flush=True)
    t0 = time.perf_counter()
    part = "slice" if a.slice else "sizes"
    record = []
    if a.slice:
        runs, done = {}, {}
        for i, (dev, tag) in enumerate(zip(devices, tags)):
            use(dev)
            t = time.perf_counter()
            sl = scale.measure_slice(1) if i == 0 else slice_on(dev, tag, done[tags[0]])
            done[tag] = sl
            print(f"\n# {tag}: slice in {time.perf_counter() - t:.0f}s", flush=True)
            sr._projection(sl, lambda run: f"{run.rss_mib:.0f}")
            runs[tag] = {"registry add slice": sl["add"], "registry add stem": sl["add_stem"], "audit slice (cold)": sl["audit"],
                         "audit stem (cold)": sl["stem"], "audit tiny (cold)": sl["tiny"]}
        logs = a.workdir / "logs" / "slice"
        cases = [("registry add slice", None), ("registry add stem", None), ("audit slice (cold)", logs / "slice"),
                 ("audit stem (cold)", logs / "stem"), ("audit tiny (cold)", logs / "tiny")]
        record += side_by_side("70B-width slice", cases, runs, tags)
        if not a.keep:
            shutil.rmtree(a.workdir / "slice", ignore_errors=True)
    else:
        sizes = [float(s) for s in (a.sizes or ("0.01" if q else "2")).split(",")]
        refs = sorted({int(n) for n in (a.refs or ("1,3" if q else "1,10")).split(",")} | {1})
        for gb in sizes:
            runs, done = {}, {}
            for i, (dev, tag) in enumerate(zip(devices, tags)):
                use(dev)
                t = time.perf_counter()
                r = scale.measure_size(gb, refs, False) if i == 0 else size_on(dev, tag, gb, refs, done[tags[0]])
                done[tag] = r
                print(f"\n# {tag}: {gb:g} GB in {time.perf_counter() - t:.0f}s; audit flags {' '.join(scale.FLAGS)}", flush=True)
                sr.report([r], None)
                runs[tag] = {"registry add": r["add"], "audit warm": r["warm"], "audit cold": r["cold"],
                             "independent": r["indep"], **{f"{n} refs (warm)": r["refs"][n] for n in refs if n > 1}}
            logs = a.workdir / "logs" / f"size-{gb:g}GB"
            cases = [("registry add", None), ("audit warm", logs / "derived-warm"), ("audit cold", logs / "derived-cold"),
                     ("independent", logs / "independent-warm")] + [(f"{n} refs (warm)", logs / f"derived-{n}refs")
                                                                   for n in refs if n > 1]
            record += side_by_side(f"{gb:g} GB", cases, runs, tags)
            if not a.keep:
                shutil.rmtree(a.workdir / f"size-{gb:g}GB", ignore_errors=True)
    out = a.workdir / "logs" / f"device_compare-{part}.json"
    out.write_text(json.dumps({"machine": sm.machine(), "devices": tags, "rows": record}, indent=1, default=str))
    print(f"\n# device_compare {part}: {time.perf_counter() - t0:.0f}s; summary {out}", flush=True)


if __name__ == "__main__":
    main()
