"""fromscratch audit SUBMISSION... --registry DIR [--rules PACK] [--format ...] [--out DIR]"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from checker.audit import audit as run_audit, submission_elements
from checker.cache import EvidenceCache, default_dir
from checker.cli.progress import bar
from checker.hardware import resolve_device
from checker.cli.batch import run_audits
from checker.cli.options import Formats, Lang, Out, Registry, Rules, Device, NoCache
from checker.exitcodes import VERDICT_EXIT
from checker.report.i18n import check_lang
from checker.report.writer import parse_formats
from checker.rules import DEFAULT_PACK, load_pack, load_waivers


def audit(
    submissions: Annotated[list[str], typer.Argument(
        help="What to audit, one or more: a model folder, a weights file (.safetensors, .gguf, .bin), "
             "or a Hugging Face repo id pinned as owner/name@revision.")],
    registry: Registry,
    rules: Rules = DEFAULT_PACK,
    formats: Formats = "json,html,md",
    out: Out = Path("fromscratch-reports"),
    waivers: Annotated[Optional[Path], typer.Option("--waivers", metavar="FILE", help="YAML side file of waivers (owner, reason, expiry).", dir_okay=False)] = None,
    lang: Lang = "en",
    device: Device = "auto",
    no_cache: NoCache = False,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", metavar="ADDRESS",
        help="Compare with each reference in its own Ray task: 'local' starts a Ray on this machine's cores, "
             "anything else is the address of a running cluster (auto, ray://head:10001). Same results as without; "
             "needs 'pip install fromscratch\\[ray]', and on a cluster fromscratch on every node and the submission "
             "and registry at the same paths.")] = None,
) -> None:
    """Audit submissions against every registered reference and write their reports.

    With several submissions, --out gets one folder per submission, index.html and index.csv ranking them, and a summary table is printed; a submission that cannot be read is listed as an error and the others still complete.

    \b
    Exit codes:
      0  every criterion passed (every submission)
      1  a criterion failed (in any submission)
      2  usage or input error: nothing is written; in a batch, a submission that
         could not be audited (unless another one failed, which gives 1)
      3  inconclusive: something required could not be evaluated
    """
    fmts = parse_formats(formats)
    check_lang(lang)
    pack = load_pack(rules)
    extra = load_waivers(waivers, pack) if waivers is not None else ()

    def command_for(spec: str) -> str:
        parts = ["fromscratch", "audit", spec, "--registry", str(registry), "--rules", rules]
        parts += ["--waivers", str(waivers)] if waivers is not None else []
        return shlex.join(parts + ["--format", ",".join(fmts), "--lang", lang])

    dev = resolve_device(device)
    cache = None if no_cache else EvidenceCache(default_dir())

    def audit_one(spec: str):
        with bar(f"audit {spec}", submission_elements(spec)) as progress:
            return run_audit(spec, registry, pack, waivers=extra, device=dev, progress=progress, cache=cache,
                             ray_address=None if ray in (None, "local") else ray, use_ray=ray is not None)

    code = run_audits(list(submissions), audit_one, fmts, out, lang, pack.id, command_for)
    raise typer.Exit(int(code))


__all__ = ["audit", "VERDICT_EXIT"]
