"""fromscratch rules validate|list"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from checker.cli.display import console, esc
from checker.rules import load_pack, shipped_packs

app = typer.Typer(no_args_is_help=True, help="Validate and list rule packs.")


@app.command("validate")
def validate(pack: Annotated[str, typer.Argument(help="A rule pack file or the id of a shipped pack.")]) -> None:
    """Check a rule pack against its JSON Schema; a bad pack is reported as file:line: reason."""
    p = load_pack(pack)
    console.print(f"{p.path}: valid rule pack {p.id} v{p.version} ({len(p.criteria)} criteria, {len(p.waivers)} waivers)", markup=False)


@app.command("list")
def list_() -> None:
    """List the shipped rule packs."""
    t = Table()
    for col in ("id", "version", "title", "criteria"):
        t.add_column(col)
    for path in shipped_packs():
        p = load_pack(path)
        t.add_row(esc(p.id), esc(p.version), esc(p.title), esc(", ".join(c.id for c in p.criteria)))
    console.print(t)
