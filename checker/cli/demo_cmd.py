"""fromscratch demo: runs with no input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from checker.cli.display import console, verdict_table
from checker.demo import run_demo
from checker.exitcodes import VERDICT_EXIT
from checker.report.json_report import build_report
from checker.report.writer import parse_formats, render_all, write_rendered


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo models, registry and reports.")] = Path("fromscratch-demo"),
    formats: Annotated[str, typer.Option("--format", "-f", help="Comma-separated: json, html, md, pdf, cyclonedx.")] = "json,html,md",
) -> None:
    """Build a reference and a submission that borrows its vision encoder, then audit it."""
    fmts = parse_formats(formats)
    console.print("building and training the demo models (about a minute on 2 CPU cores)...")
    run = run_demo(out)
    report = build_report(run.result)
    rendered = render_all(report, fmts)
    verdict_table(report)
    paths = write_rendered(rendered, out)
    console.print("reports: " + ", ".join(str(p) for p in paths), markup=False)
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
