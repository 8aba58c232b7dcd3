"""fromscratch registry add|list"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from checker.cli.display import console, esc
from checker.cli.options import Registry
from checker.references.registry import add_reference, list_entries

app = typer.Typer(no_args_is_help=True, help="Manage the registry of third-party reference models.")


@app.command("add")
def add(
    source: Annotated[str, typer.Argument(help="A local model folder or a Hugging Face repo id.")],
    registry: Registry,
    ref_id: Annotated[Optional[str], typer.Option("--id", help="Reference id (default: folder name or repo id).")] = None,
    license: Annotated[Optional[str], typer.Option("--license", help="License id (default: the model card's).")] = None,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Hub revision to pin (default: main, resolved to a commit).")] = None,
    publisher: Annotated[Optional[str], typer.Option("--publisher", help="Who publishes the reference.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild an existing entry.")] = False,
) -> None:
    """Register a reference model and store its fingerprint."""
    e = add_reference(source, registry, ref_id, license, revision, publisher, replace)
    console.print(f"registered {e.id}: {e.parameters:,} parameters, license {e.license or 'not recorded'}, "
                  f"revision {e.revision or 'local folder'}, {len(e.files)} weight file(s) -> {e.folder}", markup=False)


@app.command("list")
def list_(registry: Registry) -> None:
    """List the registered reference models."""
    t = Table()
    for col in ("id", "source", "revision", "license", "parameters"):
        t.add_column(col)
    for e in list_entries(registry):
        t.add_row(esc(e.id), esc(e.source), esc(e.revision or "-"), esc(e.license or "-"), f"{e.parameters:,}")
    console.print(t)
