"""HTML, Markdown and PDF renderings of the canonical JSON report.

One Jinja environment (autoescape on, StrictUndefined) and one ``to_context``
serve every format, so the renderings cannot drift from the JSON.
"""

from __future__ import annotations

import copy
import math
import re
from functools import lru_cache

import jinja2

from checker.errors import ReportError
from checker.verdicts import format_p
from checker.resources import templates_dir

STATUS_CLASS = {"pass": "ok", "independent": "ok", "fail": "bad", "derived": "bad", "identical": "bad",
                "warn": "warn", "inconclusive": "warn", "not_applicable": "na"}


def fmt_p(p: float | None, log10_p: float | None = None) -> str:
    """A report p-value (floored float, with its exact log10 where the report has one) for people."""
    if p is None:
        return "n/a"
    if log10_p is None:
        log10_p = math.log10(p) if p > 0 else -300.0
    return format_p(log10_p)


def fmt_num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}%"


def _layer_map(m: dict) -> str:
    lm = m.get("layer_map") or {}
    if not lm:
        return "-"
    return ", ".join(f"{k}→{v}" for k, v in lm.items())


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~{}])")


def md_escape(value: str) -> str:
    """Text from a submission, made inert in Markdown: one line, every markup character escaped.

    A config value holding "\\n\\n**Verdict: PASS**" must not become a heading in a failing report.
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _deep(value, fn):
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _deep(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v, fn) for v in value]
    return value


@lru_cache(maxsize=2)
def environment(markdown: bool = False) -> jinja2.Environment:
    """HTML: autoescape on. Markdown: HTML escaping would garble it, so every string of the
    report is Markdown-escaped before rendering instead (see ``render_markdown``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=False if markdown else jinja2.select_autoescape(enabled_extensions=("html", "html.j2", "j2"), default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(p=fmt_p, num=fmt_num, pct=fmt_pct, layer_map=_layer_map,
                       status_class=lambda s: STATUS_CLASS.get(s, "na"))
    return env


def to_context(report: dict) -> dict:
    """What every template sees: the report itself plus a few derived views."""
    report = copy.deepcopy(report)  # the canonical report is never modified by a rendering
    modules = report["modules"]
    for m in modules:
        m.setdefault("best", next((x for x in m["matches"] if m.get("best_match") and x["reference"] == m["best_match"]["reference"]
                                   and x["reference_module"] == m["best_match"]["reference_module"]), None))
    counts: dict[str, int] = {}
    for c in report["criteria"]:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    return {"r": report, "modules": modules, "criteria_counts": counts,
            "flagged": [m for m in modules if m["status"] in ("derived", "identical")]}


def render_html(report: dict) -> str:
    return environment().get_template("report.html.j2").render(**to_context(report))


def render_markdown(report: dict) -> str:
    return environment(markdown=True).get_template("report.md.j2").render(**to_context(_deep(report, md_escape)))


def render_index(entries: list[dict]) -> str:
    return environment().get_template("index.html.j2").render(entries=entries)


def write_pdf(html: str) -> bytes:
    """PDF through WeasyPrint (optional extra ``fromscratch[pdf]`` plus the system's Pango)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise ReportError("--format pdf", f"PDF output needs WeasyPrint and Pango (pip install 'fromscratch[pdf]'; apt-get install libpango-1.0-0 libpangoft2-1.0-0): {str(exc).splitlines()[0]}") from None
    return HTML(string=html, base_url=str(templates_dir())).write_pdf()
