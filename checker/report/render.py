"""HTML, Markdown and PDF renderings of the canonical JSON report.

One Jinja environment per output syntax (autoescape on for HTML, StrictUndefined
everywhere) and one ``to_context`` serve every format, so the renderings cannot
drift from the JSON; the PDF is WeasyPrint's rendering of the very same HTML.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import subprocess
from functools import lru_cache
from typing import TYPE_CHECKING

from checker.errors import ReportError
from checker.report.context import to_context
from checker.report.fmt import FILTERS, fmt_layer_map, fmt_num, fmt_p, fmt_pct  # noqa: F401  (re-exported)
from checker.report.i18n import DEFAULT_LANG, messages
from checker.resources import templates_dir

if TYPE_CHECKING:
    import jinja2

STATUS_CLASS = {"pass": "ok", "independent": "ok", "fail": "bad", "derived": "bad", "identical": "bad",
                "warn": "warn", "inconclusive": "warn", "review": "review", "not_applicable": "na", "error": "bad"}

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~{}])")
#: Hangul syllables and jamo: text that needs a Korean font to show as anything but empty boxes.
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")


def md_escape(value: str) -> str:
    """Text from a submission, made inert in Markdown: one line, every markup character escaped.

    A config value holding "\\n\\n**Verdict: PASS**" must not become a heading in a failing report.
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


@lru_cache(maxsize=2)
def environment(markdown: bool = False) -> jinja2.Environment:
    """HTML: autoescape on. Markdown: HTML escaping would garble it, so every string of the
    report, and every sentence written from the catalogue, is Markdown-escaped instead (see ``render_markdown``).
    jinja2 is imported here, not with the module: an audit that writes only JSON never loads it."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=False if markdown else jinja2.select_autoescape(enabled_extensions=("html", "html.j2", "j2"), default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.filters.update(layer_map=fmt_layer_map, status_class=lambda s: STATUS_CLASS.get(s, "na"))
    return env


def render_html(report: dict, lang: str = DEFAULT_LANG) -> str:
    return environment().get_template("report.html.j2").render(**to_context(report, lang))


def render_markdown(report: dict, lang: str = DEFAULT_LANG) -> str:
    return environment(markdown=True).get_template("report.md.j2").render(**to_context(report, lang, escape=md_escape))


def render_index(entries: list[dict], lang: str = DEFAULT_LANG, pack: str = "", date: str = "") -> str:
    """The batch index: every submission ranked, with its verdict, derived share, failed criteria and report link."""
    m = messages(lang)
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["verdict"]] = counts.get(e["verdict"], 0) + 1
    summary = m.t("index.summary", n=len(entries), counts=", ".join(f"{m.status(k)} {v}" for k, v in sorted(counts.items())))
    return environment().get_template("index.html.j2").render(entries=entries, m=m, lang=lang, summary=summary, pack=pack, date=date)


def korean_font_available() -> bool:
    """Whether fontconfig knows a font that covers Korean (``fc-list :lang=ko``)."""
    exe = shutil.which("fc-list")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, ":lang=ko", "family"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def needs_korean_font(html: str, lang: str) -> bool:
    return lang == "ko" or bool(_HANGUL.search(html))


def _stamp(created: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(created) if created else None
    except ValueError:
        return None


def write_pdf(html: str, report: dict | None = None, lang: str = DEFAULT_LANG, report_json: bytes | None = None) -> bytes:
    """The PDF of ``html`` through WeasyPrint (optional extra ``fromscratch[pdf]`` plus the system's Pango).

    The canonical JSON is embedded as the attachment ``report.json``. The output depends on its
    input only (the identifier is a digest of the HTML and the JSON, the dates are the report's),
    so the same report gives the same bytes; with SOURCE_DATE_EPOCH set the report's date is fixed too.
    """
    if needs_korean_font(html, lang) and not korean_font_available():
        what = "--lang ko" if lang == "ko" else "the report contains Korean text and"
        raise ReportError("--format pdf", f"{what} needs a Korean font for the PDF, and fontconfig lists none "
                                          "(fc-list :lang=ko); install fonts-noto-cjk or fonts-nanum")
    try:
        from weasyprint import HTML, Attachment
    except (ImportError, OSError) as exc:
        raise ReportError("--format pdf", "PDF output needs WeasyPrint and Pango (pip install 'fromscratch[pdf]'; apt-get install "
                                          f"libpango-1.0-0 libpangoft2-1.0-0): {str(exc).splitlines()[0]}") from None
    when = _stamp(report.get("created") if report else None)
    digest = hashlib.sha256(html.encode() + (report_json or b"")).hexdigest()[:32].encode()
    attachments = []
    if report_json is not None:
        attachments.append(Attachment(string=report_json.decode(), name="report.json", description="canonical JSON report (schema_version 1)",
                                      created=when, modified=when, relationship="Source"))
    return HTML(string=html, base_url=str(templates_dir())).write_pdf(attachments=attachments, pdf_identifier=digest)
