"""Terminal tables (rich). Only the CLI prints."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

from checker.report.render import fmt_p, fmt_pct

STYLE = {"pass": "green", "independent": "green", "fail": "bold red", "derived": "bold red", "identical": "bold red",
         "warn": "yellow", "inconclusive": "yellow", "not_applicable": "dim"}

# Text from a submission goes through esc(): rich markup in a model name must neither crash nor restyle
# the output. Piped output (CI logs) gets a wide page so statuses are not cut to "indepe…".
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _s(status: str) -> str:
    return f"[{STYLE.get(status, 'white')}]{status}[/]"


def verdict_table(report: dict) -> None:
    sub = report["submission"]["id"]
    t = Table(title=esc(f"{sub}: modules"), title_justify="left")
    for col in ("module", "kind", "share", "status", "best match", "score", "z", "p (corrected)", "layer map"):
        t.add_column(col, justify="right" if col in ("share", "score", "z", "p (corrected)") else "left")
    for m in report["modules"]:
        best = next((x for x in m["matches"] if m.get("best_match") and x["reference"] == m["best_match"]["reference"]
                     and x["reference_module"] == m["best_match"]["reference_module"]), None)
        if best:
            lm = ", ".join(f"{k}→{v}" for k, v in best["layer_map"].items()) or "-"
            t.add_row(esc(m["name"]), esc(m["kind"]), fmt_pct(m["param_fraction"]), _s(m["status"]),
                      esc(f"{best['reference']}:{best['reference_module']}"), f"{best['score']:.3f}", f"{best['z_score']:.1f}",
                      fmt_p(best["p_value_corrected"], best["log10_p_value_corrected"]), lm)
        else:
            t.add_row(esc(m["name"]), esc(m["kind"]), fmt_pct(m["param_fraction"]), _s(m["status"]), esc(m["reason"]), "", "", "", "")
    console.print(t)
    c = Table(title=esc(f"{sub}: criteria ({report['rulepack']['id']} v{report['rulepack']['version']})"), title_justify="left")
    for col in ("id", "severity", "status", "finding"):
        c.add_column(col)
    for cr in report["criteria"]:
        waived = " (waived)" if cr.get("waiver") and cr["waiver"]["active"] else ""
        c.add_row(esc(cr["id"]), cr["severity"], _s(cr["status"]) + waived, esc(cr["message"]))
    console.print(c)
    console.print(f"verdict: {_s(report['verdict'])}   derived parameter share: {fmt_pct(report['derived_param_fraction'])}")
