"""Write a report in the requested formats, all or nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from checker.errors import ReportError
from checker.report.json_report import dumps
from checker.report.i18n import DEFAULT_LANG
from checker.report.render import render_html, render_index, render_markdown, write_pdf

FORMATS = ("json", "html", "md", "pdf", "cyclonedx")
SUFFIX = {"cyclonedx": "cdx.json"}


def parse_formats(spec: str, allowed: tuple[str, ...] = FORMATS) -> tuple[str, ...]:
    fmts = tuple(f.strip().lower() for f in spec.split(",") if f.strip())
    bad = [f for f in fmts if f not in allowed]
    if bad or not fmts:
        raise ReportError("--format", f"unknown format {bad[0] if bad else spec!r} (choose from {', '.join(allowed)})")
    return fmts


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be read by others
    os.replace(tmp, path)


def render_all(report: dict, formats: tuple[str, ...], lang: str = DEFAULT_LANG) -> dict[str, bytes]:
    """Render every requested format in memory first, so a failure leaves no partial report.

    The PDF is the HTML's rendering with the JSON attached; both come from the same JSON."""
    out: dict[str, bytes] = {}
    html = render_html(report, lang) if ("html" in formats or "pdf" in formats) else None
    canonical = dumps(report).encode()
    for f in formats:
        if f == "json":
            out["json"] = canonical
        elif f == "html":
            out["html"] = html.encode()
        elif f == "md":
            out["md"] = render_markdown(report, lang).encode()
        elif f == "cyclonedx":
            from checker.report.cyclonedx import build_bom  # cyclonedx-python-lib loads only for this format

            out["cyclonedx"] = build_bom(report).encode()
        elif f == "pdf":
            out["pdf"] = write_pdf(html, report, lang, canonical)
    return out


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # --out names a file, or a folder we may not create
        raise ReportError(str(folder), f"cannot create the output folder ({exc.strerror or exc})") from None


def _write_files(folder: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    """Write (name, bytes) pairs into ``folder``, each atomically; a failure names the file."""
    _mkdir(folder)
    paths = []
    for name, data in files:
        p = folder / name
        try:
            _atomic_write(p, data)
        except OSError as exc:
            raise ReportError(str(p), f"cannot write ({exc.strerror or exc})") from None
        paths.append(p)
    return paths


def write_rendered(rendered: dict[str, bytes], folder: Path, stem: str = "report") -> list[Path]:
    return _write_files(folder, [(f"{stem}.{SUFFIX.get(fmt, fmt)}", data) for fmt, data in rendered.items()])


def write_index(entries: list[dict], folder: Path, lang: str = DEFAULT_LANG, pack: str = "", date: str = "") -> list[Path]:
    """index.html and index.csv of a batch (see ``checker.report.batch``)."""
    from checker.report.batch import index_csv

    return _write_files(folder, [("index.html", render_index(entries, lang, pack, date).encode()),
                                 ("index.csv", index_csv(entries).encode())])
