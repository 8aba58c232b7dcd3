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
    console.print(f"the demo expects: the vision tower (visual, visual.merger) derived from foreign-vlm, the language model independent -> fail "
                  f"(exit code {int(VERDICT_EXIT['fail'])})")
    raise typer.Exit(int(VERDICT_EXIT[report["verdict"]]))
