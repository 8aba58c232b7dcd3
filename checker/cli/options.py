"""Option types shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Registry = Annotated[Path, typer.Option("--registry", "-r", help="Registry folder of reference models.", file_okay=False)]
Rules = Annotated[str, typer.Option("--rules", help="Rule pack: a YAML file or the id of a shipped pack.")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Folder for the reports.", file_okay=False)]
Formats = Annotated[str, typer.Option("--format", "-f", help="Comma-separated: json, html, md, pdf, cyclonedx.")]
