"""Option types shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Registry = Annotated[Path, typer.Option("--registry", "-r", metavar="DIR", file_okay=False,
                                         help="Registry folder of reference models (made by 'fromscratch registry add').")]
Rules = Annotated[str, typer.Option("--rules", metavar="PACK", help="Rule pack: a YAML file or the id of a shipped pack "
                                                                   "(see 'fromscratch rules list').")]
Out = Annotated[Path, typer.Option("--out", "-o", metavar="DIR", file_okay=False,
                                   help="Folder for the reports (created if missing; with several submissions, one sub-folder each "
                                        "plus index.html and index.csv).")]
Formats = Annotated[str, typer.Option("--format", "-f", metavar="FORMATS",
                                      help="Comma-separated list of json, html, md, pdf, cyclonedx.")]
Lang = Annotated[str, typer.Option("--lang", metavar="LANG", help="Language of the reports and tables: en or ko (Korean).")]
Device = Annotated[str, typer.Option("--device", metavar="DEVICE",
                                     help="Where the matrix work runs: auto (the GPU when torch sees one), cpu or cuda. "
                                          "Verdicts are the same on both.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the evidence cache "
                                                          "(default: $FROMSCRATCH_CACHE or ~/.cache/fromscratch).")]
