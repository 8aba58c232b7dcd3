"""Terminal tables (rich). Only the CLI prints.

Tables fit an 80-column terminal: text columns wrap (``overflow="fold"``),
numeric columns never wrap and are never cut, and columns an evaluator can
find in the report (kind, layer map) are left out of the table.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

from checker.report.context import best_match, sentence
from checker.report.fmt import fmt_layer_map, fmt_p, fmt_pct, fmt_z
from checker.report.i18n import Messages, messages

STYLE = {"pass": "green", "independent": "green", "fail": "bold red", "derived": "bold red", "identical": "bold red",
         "warn": "yellow", "inconclusive": "yellow", "review": "magenta", "not_applicable": "dim", "error": "bold red"}

# Text from a submission goes through esc(): rich markup in a model name must neither crash nor restyle
# the output. Piped output (CI logs) gets a wide page so long findings stay on one line each.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _s(status: str, m: Messages) -> str:
    return f"[{STYLE.get(status, 'white')}]{esc(m.status(status))}[/]"


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", expand=False, pad_edge=False)


def _num_col(t: Table, name: str) -> None:
    t.add_column(name, justify="right", no_wrap=True, overflow="ignore")


def _text_col(t: Table, name: str, ratio: int | None = None) -> None:
    t.add_column(name, overflow="fold", ratio=ratio)


def verdict_table(report: dict, lang: str = "en", out: Console | None = None) -> None:
    """The modules and criteria of one report, and its verdict line."""
    out = out or console
    m = messages(lang)
    sub = report["submission"]["id"]
    t = _table(esc(m.t("term.modules", submission=sub)))
    _text_col(t, m.t("w.module"))
    _text_col(t, m.t("w.status"))
    _num_col(t, m.t("w.share"))
    _text_col(t, m.t("term.best"))
    _num_col(t, m.t("w.z"))
    _num_col(t, m.t("w.p_corrected"))
    maps = []
    for mod in report["modules"]:
        best = best_match(mod)
        if best:
            t.add_row(esc(mod["name"]), _s(mod["status"], m), fmt_pct(mod["param_fraction"]),
                      esc(f"{best['reference']}:{best['reference_module']}"), fmt_z(best["z_score"]),
                      fmt_p(best["p_value_corrected"], best["log10_p_value_corrected"]))
            if mod["status"] in ("derived", "identical") and best["layer_map"]:
                maps.append(f"  {esc(mod['name'])} {m.t('term.layers')}: {fmt_layer_map(best['layer_map'])}")
        else:
            t.add_row(esc(mod["name"]), _s(mod["status"], m), fmt_pct(mod["param_fraction"]), esc(sentence(mod, "reason", m)[0]), "", "")
    out.print(t)
    for line in maps:
        out.print(line)
    c = _table(esc(m.t("term.criteria", submission=sub, pack=report["rulepack"]["id"], version=report["rulepack"]["version"])))
    _text_col(c, m.t("crit.id"))
    _text_col(c, m.t("crit.status"))
    _text_col(c, m.t("crit.finding"), ratio=1)
    for cr in report["criteria"]:
        waived = f" ({esc(m.t('crit.waived'))})" if cr.get("waiver") and cr["waiver"]["active"] else ""
        c.add_row(esc(cr["id"]), _s(cr["status"], m) + waived, esc(sentence(cr, "message", m)[0]))
    out.print(c)
    out.print(m.t("term.verdict", verdict=_s(report["verdict"], m), share=fmt_pct(report["derived_param_fraction"])))


def batch_table(entries: list[dict], pack: str, lang: str = "en", out: Console | None = None) -> None:
    """The batch summary: every submission ranked, as in index.html and index.csv."""
    out = out or console
    m = messages(lang)
    t = _table(esc(m.t("term.batch", n=len(entries), pack=pack)))
    _num_col(t, m.t("index.rank"))
    _text_col(t, m.t("index.submission"))
    _text_col(t, m.t("index.verdict"))
    _num_col(t, m.t("index.share"))
    _text_col(t, m.t("index.failed"), ratio=1)
    for e in entries:
        detail = esc(", ".join(e["failed"])) if e["error"] is None else esc(f"{m.t('term.error')}: {e['error']}")
        if e.get("review"):
            detail += ("; " if detail else "") + f"[magenta]{esc(m.t('index.review', modules=', '.join(e['review'])))}[/]"
        t.add_row(str(e["rank"]), esc(e["id"]), _s(e["verdict"], m), fmt_pct(e["derived_param_fraction"]), detail)
    out.print(t)
