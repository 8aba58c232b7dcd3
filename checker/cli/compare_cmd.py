"""fromscratch compare A B: deep pairwise comparison, layer x layer."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from checker.cli.display import console, esc
from checker.audit import compare_pair
from checker.hardware import resolve_device
from checker.report.compare_report import build_compare_report
from checker.report.json_report import dumps
from checker.cli.options import Device, Lang
from checker.report.fmt import fmt_num, fmt_p, fmt_pct, fmt_scale, fmt_z
from checker.report.i18n import check_lang, messages


def compare(
    a: Annotated[str, typer.Argument(help="The model to examine: a model folder or a weights file.")],
    b: Annotated[str, typer.Argument(help="The model to compare it with: a model folder or a weights file.")],
    format: Annotated[str, typer.Option("--format", "-f", help="table (terminal) or json.")] = "table",
    lang: Lang = "en",
    device: Device = "auto",
) -> None:
    """Per module, the layer x layer similarity of A with B, the alignment found and the layer map (exit 0; 2 on bad input)."""
    if format not in ("table", "json"):
        raise typer.BadParameter("choose table or json", param_hint="--format")
    m = messages(check_lang(lang))
    result = build_compare_report(compare_pair(a, b, resolve_device(device)))
    if format == "json":
        typer.echo(dumps(result), nl=False)
        return
    for mod in result["modules"]:
        for x in mod["matches"]:
            console.print(f"[bold]{esc(mod['name'])}[/] ({esc(mod['kind'])}) vs {esc(x['reference_module'])} ({esc(x['reference_kind'])}): "
                          f"{esc(m.label('stat', x['statistic']))} {fmt_num(x['score'])}, z {fmt_z(x['z_score'])}, p {fmt_p(x['p_value'], x['log10_p_value'])}"
                          f"{'' if x['decisive'] else ' (' + m.t('w.weak_only') + ')'}")
            _alignment(x["recovered_alignment"], result["min_anchor_z"])
            grid = x.get("layer_matrix")
            if grid and grid["sub_layers"] and grid["ref_layers"]:
                t = Table(title="z-score, submission layer (rows) x reference layer (columns)", title_justify="left")
                t.add_column("")
                for rl in grid["ref_layers"]:
                    t.add_column(str(rl), justify="right")
                for sl, row in zip(grid["sub_layers"], grid["z"]):
                    t.add_row(str(sl), *["" if v is None else fmt_z(v) for v in row])
                console.print(t)


def _alignment(rec: dict, min_z: float) -> None:
    """The recovered alignment: hidden permutation and signs, layer map, per-role scale factors."""
    h = rec["hidden"]
    if h["source"] != "identity" and not h["adopted"]:  # a fit the engine would not adopt is no permutation found
        line = (f"  alignment: none adopted (best anchors {h['source']}, anchor z {fmt_z(h['anchor_z'])}, "
                f"below the adoption threshold {fmt_z(min_z)})")
    else:
        line = f"  alignment: {h['source']}" + (f", anchor z {fmt_z(h['anchor_z'])}" if h["anchor_z"] is not None else "")
    if h["adopted"] and h.get("rotated"):
        line += ", residual stream turned by a fitted orthogonal map (every comparison through it is review-only evidence)"
    elif h["adopted"] and h["permuted"]:
        line += f", hidden permutation found ({h['dims_moved']} of {h['matched_dims']} dims moved), {h['sign_flips']} sign flips"
    console.print(line, markup=False)
    console.print("  layer map: " + (", ".join(f"{k}→{v}" for k, v in rec["layer_map"].items()) or "none significant"))
    for key, label in (("reference_layers_unmatched", "reference layers dropped"), ("submission_layers_unmatched", "submission layers inserted"),
                       ("repeated_reference_layers", "reference layers duplicated")):
        if rec[key]:
            console.print(f"  {label}: {', '.join(map(str, rec[key]))}")
    if not rec["layers"]:
        return
    t = Table(title="mapped layers: per role z, scale factor (spread of per-dimension scales), units at other indices", title_justify="left")
    for col in ("layer", "role", "z", "scale", "spread", "units moved"):
        t.add_column(col, justify="right")
    for layer in rec["layers"]:
        for r in layer["roles"]:
            t.add_row(f"{layer['sub_layer']}→{layer['ref_layer']}", f"{r['role']}~{r['reference_role']}", fmt_z(r["z"]),
                      fmt_scale(r["scale"]), fmt_num(r["scale_spread"], 2), fmt_pct(r["units_moved"], 0))
    console.print(t)
