"""Renderings of the canonical JSON: escaping, formats, and the PDF."""

from __future__ import annotations

import importlib.util
import json

import pytest

from checker.audit import audit
from checker.report.json_report import build_report
from checker.report.render import fmt_p, render_html, render_markdown
from checker.report.writer import render_all
from checker.rules import load_pack

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def report(zoo):
    folder = zoo.save(HOSTILE, zoo.ft_vit, zoo.ind_lm)
    (folder / "README.md").write_text(f"---\nlicense: other\nlicense_name: \"{HOSTILE}\"\n---\n# x\n")
    return build_report(audit(str(folder), zoo.registry, load_pack()))


def test_html_escapes_everything_from_the_submission(report):
    html = render_html(report)
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_renderings_do_not_modify_the_canonical_report(report):
    before = json.dumps(report, sort_keys=True)
    render_html(report)
    render_markdown(report)
    assert json.dumps(report, sort_keys=True) == before


def test_markdown_cannot_be_injected(zoo, tmp_path):
    from checker.report.render import md_escape

    assert md_escape("x\n\n# Audit report: inj\n\n**Verdict: PASS** | `a`") == "x \\# Audit report: inj \\*\\*Verdict: PASS\\*\\* \\| \\`a\\`"


def test_markdown_lists_modules_and_criteria(report):
    md = render_markdown(report)
    assert "| visual | vision encoder |" in md and "**derived**" in md
    assert "| W1 |" in md and "**FAIL**" in md


def test_p_values_are_never_printed_as_zero():
    assert fmt_p(1e-300, -412.3) == "< 1e-412"  # an upper bound, rounded towards 1
    assert fmt_p(0.0123) == "0.0123"
    assert fmt_p(2.5e-9) == "2.5e-09"


@pytest.mark.skipif(importlib.util.find_spec("weasyprint") is None, reason="PDF needs the 'pdf' extra (WeasyPrint)")
def test_pdf_is_rendered_from_the_same_html(report):
    pdf = render_all(report, ("pdf",))["pdf"]
    assert pdf.startswith(b"%PDF-") and len(pdf) > 10_000
