"""fromscratch audit SUBMISSION... --registry DIR [--rules PACK] [--format ...] [--out DIR]"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from checker.audit import audit as run_audit
from checker.cli.display import console, verdict_table
from checker.cli.options import Formats, Out, Registry, Rules
from checker.exitcodes import VERDICT_EXIT, ExitCode
from checker.report.json_report import build_report
from checker.report.writer import parse_formats, render_all, write_index, write_rendered
from checker.rules import DEFAULT_PACK, load_pack, load_waivers


def audit(
    submissions: Annotated[list[str], typer.Argument(help="Model folders, weight files, or Hugging Face repo ids (owner/name[@revision]).")],
    registry: Registry,
    rules: Rules = DEFAULT_PACK,
    formats: Formats = "json,html,md",
    out: Out = Path("fromscratch-reports"),
    waivers: Annotated[Optional[Path], typer.Option("--waivers", help="YAML side file of waivers (owner, reason, expiry).", dir_okay=False)] = None,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", metavar="ADDRESS",
        help="Compare with each reference in its own Ray task: 'local' starts a Ray on this machine's cores, "
             "anything else is the address of a running cluster (auto, ray://head:10001). Same results as without; "
             "needs 'pip install fromscratch\\[ray]', and on a cluster fromscratch on every node and the submission "
             "and registry at the same paths.")] = None,
) -> None:
    """Audit submissions against every registered reference; exit 0 pass, 1 fail, 3 inconclusive."""
    fmts = parse_formats(formats)
    pack = load_pack(rules)
    extra = load_waivers(waivers, pack) if waivers is not None else ()
    # Everything is computed and rendered before anything is written: bad input leaves no partial report.
    prepared = []
    for spec in submissions:
        result = run_audit(spec, registry, pack, waivers=extra,
                           ray_address=None if ray in (None, "local") else ray, use_ray=ray is not None)
        report = build_report(result)
        prepared.append((report, render_all(report, fmts)))
    multiple = len(prepared) > 1
    entries = []
    used: set[str] = set()
    for report, rendered in prepared:
        slug = _slug(report["submission"]["id"])
        while slug in used:  # two submissions named alike (a/model, b/model) never share a folder
            slug += "-2"
        used.add(slug)
        folder = out / slug if multiple else out
        verdict_table(report)  # before writing: a display problem must not leave a report behind
        paths = write_rendered(rendered, folder)
        console.print("reports: " + ", ".join(str(p) for p in paths), markup=False)
        entries.append({"id": report["submission"]["id"], "verdict": report["verdict"],
                        "derived_param_fraction": report["derived_param_fraction"],
                        "href": f"{slug}/report.html" if multiple else "report.html"})
    if multiple and "html" in fmts:
        console.print(f"index: {write_index(entries, out)}", markup=False)
    verdicts = {r["verdict"] for r, _ in prepared}
    code = ExitCode.FAIL if "fail" in verdicts else ExitCode.INCONCLUSIVE if "inconclusive" in verdicts else ExitCode.PASS
    raise typer.Exit(int(code))


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


__all__ = ["audit", "VERDICT_EXIT"]
