"""What a person sees in the PDF and in a browser: text extracted by pdftotext, the attachment, page
widths, byte-identical output, and headless Chromium loading the HTML without network or errors.

These tests skip locally when WeasyPrint, poppler-utils or chromium are missing; .ci/run installs them."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess

import pytest

from checker.cli.main import main
from checker.report import render
from checker.report.writer import render_all

needs_weasyprint = pytest.mark.skipif(importlib.util.find_spec("weasyprint") is None, reason="PDF needs WeasyPrint (pip install -e '.[test]')")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext/pdfinfo/pdfdetach (apt-get install poppler-utils)")
needs_korean_font = pytest.mark.skipif(not render.korean_font_available(), reason="needs a Korean font (apt-get install fonts-noto-cjk)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
HOSTILE = "<script>alert(1)</script> {{ 7*7 }}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo, run once through the command line with every format (PDF included when it can be made)."""
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return out


def _text(pdf_path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout


@needs_weasyprint
@needs_poppler
def test_demo_pdf_shows_the_verdict_and_every_criterion(demo):
    report = json.loads((demo / "report.json").read_text())
    text = _text(demo / "report.pdf")
    assert "FAIL" in text and "Audit report" in text
    for c in report["criteria"]:
        assert re.search(rf"\b{re.escape(c['id'])}\b", text), c["id"]
    assert "not legal advice" in text
    assert re.search(r"page 1 of \d+", text)  # page numbers from the @page margin boxes
    # The JSON report rides along as an attachment.
    listed = subprocess.run(["pdfdetach", "-list", str(demo / "report.pdf")], capture_output=True, text=True, check=True).stdout
    assert "report.json" in listed


@needs_weasyprint
@needs_poppler
@needs_korean_font
def test_korean_demo_pdf_has_hangul(demo, tmp_path):
    report = json.loads((demo / "report.json").read_text())
    pdf = render_all(report, ("pdf",), "ko")["pdf"]
    (tmp_path / "ko.pdf").write_bytes(pdf)
    text = _text(tmp_path / "ko.pdf")
    assert "불합격" in text and "감사 보고서" in text and "법률 자문이 아닙니다" in text
    for c in report["criteria"]:
        assert c["id"] in text


@needs_weasyprint
def test_korean_pdf_without_a_korean_font_is_a_one_line_error(demo, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(render, "korean_font_available", lambda: False)
    sub = json.loads((demo / "demo.json").read_text())["submission"]
    code = main(["audit", sub, "--registry", str(demo / "registry"), "--out", str(tmp_path / "o"), "--format", "pdf", "--lang", "ko"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "needs a Korean font" in err and "fonts-noto-cjk" in err
    assert not (tmp_path / "o").exists()


@needs_weasyprint
def test_pdf_is_byte_identical_under_source_date_epoch(demo, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    report = json.loads((demo / "report.json").read_text())
    first = render_all(report, ("pdf",))["pdf"]
    second = render_all(json.loads(json.dumps(report)), ("pdf",))["pdf"]
    assert first == second


@needs_weasyprint
def test_no_box_of_the_pdf_is_wider_than_the_page(demo):
    from weasyprint import HTML

    doc = HTML(string=(demo / "report.html").read_text()).render()
    for page in doc.pages:
        right = page.width - page._page_box.margin_right
        stack = list(page._page_box.children)
        while stack:
            box = stack.pop()
            assert box.position_x + box.margin_width() <= right + 0.5, (type(box).__name__, box.position_x + box.margin_width(), right)
            stack.extend(getattr(box, "children", None) or [])


@needs_weasyprint
@needs_poppler
def test_model_card_text_shows_literally_in_the_pdf(zoo, tmp_path):
    from checker.audit import audit
    from checker.report.json_report import build_report
    from checker.rules import load_pack

    folder = zoo.save("pdf-hostile", zoo.ind_vit, zoo.ind_lm)
    (folder / "README.md").write_text(f"---\nlicense: apache-2.0\nbase_model: \"{HOSTILE}\"\n---\n# x\n")
    report = build_report(audit(str(folder), zoo.registry, load_pack()))
    (tmp_path / "r.pdf").write_bytes(render_all(report, ("pdf",))["pdf"])
    text = " ".join(_text(tmp_path / "r.pdf").split())
    assert "<script>alert(1)</script> {{ 7*7 }}" in text


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (apt-get install chromium)")
def test_chromium_loads_the_html_offline_without_errors(demo, tmp_path):
    html_path = demo / "report.html"
    html = html_path.read_text()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.I)
    assert not urls, "the report must not load anything from the network"
    assert "@import" not in html and "url(" not in html
    shot = tmp_path / "report.png"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    run = subprocess.run(base + ["--window-size=1280,2000", f"--screenshot={shot}", html_path.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000, run.stderr[-2000:]
    console_errors = [ln for ln in run.stderr.splitlines() if "CONSOLE" in ln and ("ERROR" in ln or "Uncaught" in ln)]
    assert not console_errors
    dom = subprocess.run(base + ["--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "sec-limits" in dom and "FAIL" in dom
