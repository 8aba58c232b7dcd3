"""fromscratch compare A B: deep pairwise comparison, layer x layer."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from checker.cli.display import console, esc
from checker.audit import compare_pair
from checker.report.compare_report import build_compare_report
from checker.report.json_report import dumps
from checker.report.render import fmt_p


def compare(
    a: Annotated[str, typer.Argument(help="The model to examine (folder).")],
    b: Annotated[str, typer.Argument(help="The model to compare it with (folder).")],
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Per module, the layer x layer similarity of A with B, the alignment found and the layer map."""
    if format not in ("table", "json"):
        raise typer.BadParameter("choose table or json", param_hint="--format")
    result = build_compare_report(compare_pair(a, b))
    if format == "json":
        typer.echo(dumps(result), nl=False)
        return
    for m in result["modules"]:
        for x in m["matches"]:
            console.print(f"[bold]{esc(m['name'])}[/] ({esc(m['kind'])}) vs {esc(x['reference_module'])} ({esc(x['reference_kind'])}): "
                          f"{x['statistic']} {x['score']:.3f}, z {x['z_score']:.1f}, p {fmt_p(x['p_value'], x['log10_p_value'])}"
                          f"{'' if x['decisive'] else ' (weak evidence only)'}")
            _alignment(x["recovered_alignment"])
            grid = x.get("layer_matrix")
            if grid and grid["sub_layers"] and grid["ref_layers"]:
                t = Table(title="z-score, submission layer (rows) x reference layer (columns)", title_justify="left")
                t.add_column("")
                for rl in grid["ref_layers"]:
                    t.add_column(str(rl), justify="right")
                for sl, row in zip(grid["sub_layers"], grid["z"]):
                    t.add_row(str(sl), *["" if v is None else f"{v:.1f}" for v in row])
                console.print(t)


def _alignment(rec: dict) -> None:
    """The recovered alignment: hidden permutation and signs, layer map, per-role scale factors."""
    h = rec["hidden"]
    line = f"  alignment: {h['source']}"
    if h["permuted"]:
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
            t.add_row(f"{layer['sub_layer']}→{layer['ref_layer']}", f"{r['role']}~{r['reference_role']}", f"{r['z']:.1f}",
                      f"{r['scale']:.3g}", f"{r['scale_spread']:.2f}", f"{r['units_moved']:.0%}")
    console.print(t)
