"""A batch of audits: one row per submission, ranked, for index.html, index.csv and the terminal."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

#: Best first: a pass, then inconclusive, then fail, then submissions that could not be audited. Within a
#: verdict, a submission with modules under review (evidence of derivation a human must judge) comes after
#: those without.
RANK = {"pass": 0, "inconclusive": 1, "fail": 2, "error": 3}


@dataclass(frozen=True)
class BatchRow:
    """One submission of a batch: its verdict (or ``error`` with the reason) and where its report is."""

    id: str
    verdict: str  # pass | fail | inconclusive | error
    derived_param_fraction: float | None
    failed: tuple[str, ...]  # ids of the failed criteria
    href: str | None  # the report, relative to the index
    error: str | None = None
    review: tuple[str, ...] = ()  # modules with status ``review``


def row_from_report(report: dict, href: str | None) -> BatchRow:
    return BatchRow(report["submission"]["id"], report["verdict"], report["derived_param_fraction"],
                    tuple(c["id"] for c in report["criteria"] if c["status"] == "fail"), href,
                    review=tuple(mod["name"] for mod in report["modules"] if mod["status"] == "review"))


def ranked(rows: list[BatchRow]) -> list[BatchRow]:
    """Best first: verdict (pass, inconclusive, fail, error), then modules under review, then derived share, then name."""
    return sorted(rows, key=lambda r: (RANK.get(r.verdict, 9), bool(r.review),
                                       r.derived_param_fraction if r.derived_param_fraction is not None else 2.0, r.id))


def entries(rows: list[BatchRow]) -> list[dict]:
    """Rows as the index template and the CSV see them (rank from 1)."""
    return [{"rank": i, "id": r.id, "verdict": r.verdict, "derived_param_fraction": r.derived_param_fraction,
             "failed": list(r.failed), "href": r.href, "error": r.error, "review": list(r.review)}
            for i, r in enumerate(ranked(rows), 1)]


def index_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "submission", "verdict", "derived_param_fraction", "failed_criteria", "report", "error", "review_modules"])
    for e in rows:
        share = "" if e["derived_param_fraction"] is None else f"{e['derived_param_fraction']:.8f}".rstrip("0").rstrip(".")
        w.writerow([e["rank"], e["id"], e["verdict"], share, " ".join(e["failed"]), e["href"] or "", e["error"] or "",
                    " ".join(e.get("review", ()))])
    return buf.getvalue()
