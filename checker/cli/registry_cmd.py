"""fromscratch registry add|list"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from checker.cli.display import console, esc
from checker.cli.options import Registry, Device
from checker.errors import RegistryError
from checker.audit import submission_elements
from checker.cli.progress import bar
from checker.hardware import resolve_device
from checker.references.registry import add_reference, list_entries
from checker.scanners.licenses import catalogue

app = typer.Typer(no_args_is_help=True, help="Manage the registry of third-party reference models.")


@app.command("add")
def add(
    source: Annotated[str, typer.Argument(help="The reference model: a local model folder, a weights file, or a Hugging Face "
                                                "repo id (owner/name; pin it with --revision).")],
    registry: Registry,
    ref_id: Annotated[Optional[str], typer.Option("--id", help="Reference id (default: folder name or repo id).")] = None,
    license: Annotated[Optional[str], typer.Option("--license", help="License id from the catalogue (rules/licenses/catalogue.yaml), "
                                                                     "e.g. llama3.1, apache-2.0 (default: the model card's).")] = None,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Hub revision to pin (default: main, resolved to a commit).")] = None,
    publisher: Annotated[Optional[str], typer.Option("--publisher", help="Who publishes the reference.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild an existing entry.")] = False,
    device: Device = "auto",
) -> None:
    """Register a reference model and store its fingerprint (one read of its weights)."""
    if license is not None:
        check_license_id(license)
    dev = resolve_device(device)
    with bar(f"fingerprint {source}", submission_elements(source) if Path(source).exists() else 0) as progress:
        e = add_reference(source, registry, ref_id, license, revision, publisher, replace, dev, progress)
    console.print(f"registered {e.id}: {e.parameters:,} parameters, license {e.license or 'not recorded'}, "
                  f"revision {e.revision or 'local folder'}, {len(e.files)} weight file(s) -> {e.folder}", markup=False)


def check_license_id(license_id: str) -> None:
    """An unknown license id would silently weaken the license criteria: refuse it, naming close catalogue ids."""
    cat = catalogue()
    if cat.lookup(license_id) is not None:
        return
    by_lower = {i.lower(): i for i in cat.ids}
    close = [by_lower[c] for c in difflib.get_close_matches(license_id.lower(), list(by_lower), n=3, cutoff=0.5)]
    hint = f"; close catalogue ids: {', '.join(close)}" if close else f"; catalogue ids: {', '.join(cat.ids[:8])}, ..."
    raise RegistryError("--license", f"unknown license id {license_id!r}{hint} (see rules/licenses/catalogue.yaml)")


@app.command("list")
def list_(registry: Registry) -> None:
    """List the registered reference models."""
    t = Table()
    for col in ("id", "source", "revision", "license", "parameters"):
        t.add_column(col)
    for e in list_entries(registry):
        t.add_row(esc(e.id), esc(e.source), esc(e.revision or "-"), esc(e.license or "-"), f"{e.parameters:,}")
    console.print(t)
