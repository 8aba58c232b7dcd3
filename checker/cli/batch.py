"""Audit one or several submissions and write their reports; several also get index.html, index.csv
and a summary table.

One submission: any input error stops the run with exit 2 and nothing is written.
Several: a submission that cannot be read (its weights, its files, or its Hub download)
is listed as an error and the others still complete; an error that concerns the whole run
(registry, rule pack, output, rendering) still stops everything before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from checker.audit import AuditResult
from checker.cli.display import batch_table, console, verdict_table
from checker.errors import ReferenceFetchError, ScanError, WeightsError
from checker.exitcodes import ExitCode
from checker.report.batch import BatchRow, entries, row_from_report
from checker.report.i18n import messages
from checker.report.json_report import build_report
from checker.report.writer import SUFFIX, render_all, write_index, write_rendered

#: Errors that concern one submission only: in a batch it is listed as an error, the others go on.
SUBMISSION_ERRORS = (WeightsError, ScanError, ReferenceFetchError)


def batch_exit_code(verdicts: list[str]) -> ExitCode:
    """Worst outcome first: any fail -> 1; else any submission that could not be audited -> 2;
    else any inconclusive -> 3; else 0."""
    if "fail" in verdicts:
        return ExitCode.FAIL
    if "error" in verdicts:
        return ExitCode.USAGE
    if "inconclusive" in verdicts:
        return ExitCode.INCONCLUSIVE
    return ExitCode.PASS


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def run_audits(specs: list[str], audit_one: Callable[[str], AuditResult], formats: tuple[str, ...], out: Path,
               lang: str, pack_id: str, command_for: Callable[[str], str]) -> ExitCode:
    """Audit every spec, render every report, then write them (and the batch index)."""
    m = messages(lang)
    multiple = len(specs) > 1
    prepared: list[tuple[str, dict | None, dict | None, str | None]] = []  # (spec, report, rendered, error)
    for spec in specs:
        try:
            report = build_report(audit_one(spec), command_for(spec))
        except SUBMISSION_ERRORS as exc:
            if not multiple:
                raise
            prepared.append((spec, None, None, str(exc)))
            continue
        prepared.append((spec, report, render_all(report, formats, lang), None))
    rows: list[BatchRow] = []
    used: set[str] = set()
    main_file = "html" if "html" in formats else formats[0]
    for spec, report, rendered, error in prepared:
        if report is None:
            rows.append(BatchRow(spec, "error", None, (), None, error))
            continue
        name = slug(report["submission"]["id"])
        while name in used:  # two submissions named alike (a/model, b/model) never share a folder
            name += "-2"
        used.add(name)
        verdict_table(report, lang)  # before writing: a display problem must not leave a report behind
        paths = write_rendered(rendered, out / name if multiple else out)
        console.print(m.t("term.reports", paths=", ".join(str(p) for p in paths)), markup=False)
        rows.append(row_from_report(report, f"{name}/report.{SUFFIX.get(main_file, main_file)}"))
    if multiple:
        ranked = entries(rows)
        date = next((r["created"] for _, r, _, _ in prepared if r is not None), "")
        batch_table(ranked, pack_id, lang)
        paths = write_index(ranked, out, lang, pack_id, date)
        console.print(m.t("term.index", paths=", ".join(str(p) for p in paths)), markup=False)
    return batch_exit_code([r.verdict for r in rows])
