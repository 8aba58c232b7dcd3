"""Tables of ``benchmarks/scale.py``: every figure beside its floor and the issue's target."""

from __future__ import annotations

import os
from dataclasses import replace

import _scale_models as sm

GB = 1e9
LLAMA_70B = sm.Spec(hidden=8192, ffn=28672, kv=1024, layers=80, vocab=128256)
#: the issue's targets: ratios to the floors measured in the same run
TARGETS = {"warm": 2.0, "cold": 1.5, "rss_gib": 2.0, "refs": 1.3, "naive_time": 3.0, "naive_rss": 5.0, "proj": 3.0}

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
    proj, by_refs = _projection(sl, mib) if sl else (None, None)
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
    if sizes:
        table("Targets (issue 7)", ["size", "warm / sha256 all cores", "cold / cold read", "peak RSS (add, audit)",
                                    f"{max(ns)} refs / 1", "naive / audit time", "naive / audit RSS"], rows)
    if sl:
        print(f"70B projection / cold read of 70B: {check(proj, TARGETS['proj'])}")
        if by_refs is not None:
            print(f"70B projection, {sl['refs']} references / 1: {check(by_refs, TARGETS['refs'])}")


def _project(sl: dict, whole, stem) -> tuple[float | None, float | None, float | None]:
    """(per layer, fixed + embeddings, projected audit) at 70B from a slice audit and its stem's."""
    s, big = sl["spec"], LLAMA_70B
    base, stem, whole = sl["tiny"].time() or 0.0, stem.time(), whole.time()
    if stem is None or whole is None or whole <= stem:
        return None, None, None
    per_layer = (whole - stem) / s.layers * big.layer_params() / s.layer_params()
    emb = base + max(0.0, stem - base) * big.vocab * big.hidden / (s.vocab * s.hidden)
    return per_layer, emb, emb + big.layers * per_layer


def _projection(sl: dict, mib) -> tuple[float | None, float | None]:
    """80-layer 70B audit = fixed cost + embeddings + 80 x the slice's per-layer cost (each cold).

    fixed: the tiny model's audit (process, rule pack, report); embeddings: the stem's audit (the
    slice without layers) minus that; per layer: (slice - stem) / layers. At a width or vocabulary
    below 70B's (--quick), the embedding and layer parts are scaled by parameter count. Returns the
    projection over the cold read of 70B, and with N references over with one (None without).
    """
    s, big = sl["spec"], LLAMA_70B
    per_layer, emb, proj_s = _project(sl, sl["audit"], sl["stem"])
    cold_s = big.params() * 2 / (sl["floors"]["cold_gbps"] * GB)
    proj = None if proj_s is None else proj_s / cold_s
    scaled = "" if s == replace(big, layers=s.layers) else " (scaled from the slice by parameter count)"
    fmt = lambda x, u="s": "n/a (slice not slower than its stem)" if x is None else f"{x:.1f}{u}"  # noqa: E731
    rows = [["slice", f"{s.layers} layers, hidden {s.hidden}, FFN {s.ffn}, vocab {s.vocab}, "
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
            ["cold read of 70B", f"{big.params() * 2 / GB:.0f} GB at {sl['floors']['cold_gbps']:.2f} GB/s = {cold_s:.0f}s"]]
    by_refs = None
    if "audit_n" in sl:
        n = sl["refs"]
        per_n, emb_n, proj_n = _project(sl, sl["audit_n"], sl["stem_n"])
        by_refs = _ratio(proj_n, proj_s)
        rows += [[f"audit slice, {n} references (cold)", f"{sl['audit_n'].cell()}, RSS {mib(sl['audit_n'])} MiB, "
                                                        f"{sl['audit_n'].verdict} / {_frac(sl['audit_n'].derived)}"],
                 [f"audit stem, {n} references (cold)", f"{sl['stem_n'].cell()}, RSS {mib(sl['stem_n'])} MiB"],
                 [f"per layer at 70B width, {n} references", fmt(per_n)],
                 [f"fixed + embeddings at 70B, {n} references", fmt(emb_n)],
                 [f"projected audit, {n} references", fmt(proj_n)]]
    table(f"70B projection: 80 layers, hidden 8192, FFN 28672, vocab 128256, {big.params() / 1e9:.1f}B params{scaled}",
          ["item", "value"], rows)
    return proj, by_refs


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
