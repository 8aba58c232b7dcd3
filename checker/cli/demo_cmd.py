"""fromscratch demo: runs with no input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from checker.cli.display import console, verdict_table
from checker.cli.options import Lang
from checker.demo import run_demo
from checker.exitcodes import VERDICT_EXIT
from checker.report.i18n import check_lang, messages
from checker.report.json_report import build_report
from checker.report.render import korean_font_available
from checker.report.writer import parse_formats, render_all, write_rendered


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo models, registry and reports.")] = Path("fromscratch-demo"),
    formats: Annotated[Optional[str], typer.Option("--format", "-f", help="Comma-separated list of json, html, md, pdf, cyclonedx "
                                                                         "(default: json,html,md and pdf when WeasyPrint is installed).")] = None,
    lang: Lang = "en",
) -> None:
    """Build a reference and a submission that borrows its vision encoder, then audit it (exit 0 when the audit finds exactly that)."""
    check_lang(lang)
    fmts = parse_formats(formats) if formats is not None else _default_formats(lang)
    console.print("building and training the demo models (about a minute on 2 CPU cores)...")
    run = run_demo(out)
    report = build_report(run.result, f"fromscratch audit {run.submission} --registry {run.registry} --rules {run.result.pack.id} "
                                      f"--format {','.join(fmts)} --lang {lang}")
    rendered = render_all(report, fmts, lang)
    verdict_table(report, lang)
    paths = write_rendered(rendered, out)
    console.print(messages(lang).t("term.reports", paths=", ".join(str(p) for p in paths)), markup=False)
    status = {m["name"]: m["status"] for m in report["modules"]}
    expected = (status.get("visual") == "derived" and status.get("visual.merger") == "derived"
                and all(status[n] == "independent" for n in ("model", "model.embed_tokens", "lm_head")) and report["verdict"] == "fail")
    if expected:
        console.print("demo result as expected: the borrowed vision tower (visual, visual.merger) is derived from foreign-vlm "
                      "and the original language model is independent, so the submission fails "
                      f"(an audit would exit {int(VERDICT_EXIT['fail'])}; the demo itself exits 0)")
        raise typer.Exit(0)
    console.print("demo result NOT as expected: the vision tower should be derived and the language model independent")
    raise typer.Exit(1)


def _default_formats(lang: str) -> tuple[str, ...]:
    """json, html, md, and pdf when it can be made; otherwise one line says why not."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:
        console.print(f"no PDF: WeasyPrint is not usable ({str(exc).splitlines()[0]}); pip install 'fromscratch[pdf]'", markup=False)
        return ("json", "html", "md")
    if lang == "ko" and not korean_font_available():
        console.print("no PDF: --lang ko needs a Korean font and fontconfig lists none (install fonts-noto-cjk or fonts-nanum)", markup=False)
        return ("json", "html", "md")
    return ("json", "html", "md", "pdf")

