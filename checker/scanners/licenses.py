"""The license scanner of a submission: every license a model folder ships or declares.

License files (``LICENSE``, ``NOTICE``, a use policy, whatever the card's
``license_link`` names), the model card's license metadata and its README
license sections each become findings, identified through the catalogue
(``license_catalogue``) and the text detector (``license_text``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from checker.errors import ScanError
from checker.scanners.license_catalogue import (
    OBLIGATION_KINDS,
    UNKNOWN,
    CatalogueLicense,
    Obligation,
    _collapse,
    catalogue,
    obligations_for,
    parse_license_expression,
)
from checker.scanners.license_text import _tokens, detect_license, detect_licenses, find_mentions
from checker.scanners.model_card import ModelCard, read_model_card

__all__ = [
    # this module
    "LicenseFinding",
    "SOURCES",
    "classify_file",
    "scan_licenses",
    # re-exported from license_catalogue and license_text, where they live
    "OBLIGATION_KINDS",
    "UNKNOWN",
    "Obligation",
    "catalogue",
    "detect_license",
    "detect_licenses",
    "find_mentions",
    "obligations_for",
    "parse_license_expression",
]

SOURCES = ("license_file", "card_metadata", "readme_section", "notice", "use_policy")
# A README section that merely names a license is weaker evidence than its text.
MENTION_CONFIDENCE = 0.6
MAX_READ_BYTES = 4 * 1024 * 1024
EXCERPT_CHARS = 160


@dataclass(frozen=True)
class LicenseFinding:
    """A license a submission ships (a file, a README section) or declares (card metadata)."""

    file: str
    """Path relative to the submission folder, with '/' separators."""
    source: str
    """One of SOURCES."""
    detected: str
    """A catalogue id, or ``"unknown"``."""
    confidence: float
    obligations: tuple[Obligation, ...]
    """The detected license's obligations (empty when unknown)."""
    excerpt: str
    """A short quote of what was read, for the report."""
    line: int = 1
    """1-based line in ``file`` where the source starts."""
    method: str = "text"
    """How it was identified: ``text`` (reference text), ``mention`` (a license name in prose) or ``metadata``."""
    declared: str = ""
    """For metadata and mentions: the string the submission used (e.g. ``other/qwen-research``)."""
    coverage: float = 0.0
    """For text matches: share of the license's reference text present."""
    ambiguous_with: tuple[str, ...] = ()
    """Catalogue ids the text fits equally well (see LicenseDetection)."""
    reason: str = ""
    """Why a text is unknown or ambiguous, or a declared name is not known."""


_TEXT_SUFFIXES = frozenset({"", ".txt", ".md", ".markdown", ".rst"})
_NOT_TEXT_SUFFIXES = frozenset(
    {".py", ".pyc", ".json", ".yaml", ".yml", ".toml", ".js", ".ts", ".html", ".pdf", ".png", ".jpg", ".jpeg", ".gif",
     ".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx", ".h5", ".msgpack", ".model", ".zip", ".gz", ".tar",
     ".csv", ".tsv", ".jsonl", ".parquet", ".arrow", ".npy", ".npz", ".pkl", ".sh", ".ipynb"}
)
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_LICENSE_HEADING = re.compile(r"licen[cs]|许可|协议|協議", re.IGNORECASE)
# A README license section shorter than this that neither holds a license text
# nor names one ("see LICENSE") is not worth a finding.
MIN_UNKNOWN_SECTION_TOKENS = 40


def classify_file(name: str) -> str | None:
    """The license source a file name suggests, or None when it is not a license file."""
    lower = name.lower()
    stem, suffix = os.path.splitext(lower)
    # "LICENSE.apache" and "LICENSE-MODEL" are license files; "license.py" is code.
    if suffix not in _TEXT_SUFFIXES and (suffix in _NOT_TEXT_SUFFIXES or not re.match(r"licen[cs]e|notice|copying", lower)):
        return None
    if re.search(r"use[_\- ]?policy|acceptable[_\- ]use|prohibited[_\- ]use", stem):
        return "use_policy"
    if stem.startswith("notice"):
        return "notice"
    if re.search(r"licen[cs]e|terms[_\- ]of[_\- ]use|^copying", stem):
        return "license_file"
    return None


def scan_licenses(folder: Path) -> tuple[LicenseFinding, ...]:
    """Every license source of a submission folder: files, card metadata, README license sections."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScanError(str(folder), "not a folder")
    findings: list[LicenseFinding] = []
    card = read_model_card(folder)
    linked: Path | None = None
    if card is not None:
        card_rel = Path(card.file).relative_to(folder).as_posix()
        findings += _card_findings(card, card_rel)
        findings += _section_findings(card, card_rel)
        linked = _local_link(folder, card.license_link)
    for path, source in _license_files(folder, linked):
        rel = path.relative_to(folder).as_posix()
        findings += _text_findings(_read_text(path), rel, source, 1)
    findings.sort(key=lambda f: (f.file, f.line, SOURCES.index(f.source), f.detected))
    return tuple(findings)


def _license_files(folder: Path, linked: Path | None) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts) or not path.is_file():
            continue
        source = classify_file(path.name)
        if source is None and path == linked:
            source = "license_file"  # the card's license_link names it, whatever it is called
        if source is not None:
            out.append((path, source))
    return out


def _local_link(folder: Path, link: str | None) -> Path | None:
    """A card's license_link that names a file inside the submission (``LICENSE``, ``docs/terms.txt``)."""
    if not link or re.match(r"^[a-z][a-z0-9+.-]*:", link, re.IGNORECASE):
        return None
    root = folder.resolve()
    target = (root / link).resolve()
    if not target.is_file() or root not in target.parents:
        return None
    return folder / target.relative_to(root)


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            blob = fh.read(MAX_READ_BYTES)
    except OSError as exc:
        raise ScanError(str(path), f"cannot read ({exc.strerror or exc})") from None
    return blob.decode("utf-8-sig", errors="replace")


def _excerpt(text: str) -> str:
    flat = _collapse(text)
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1].rstrip() + "…"


def _text_findings(text: str, rel: str, source: str, line: int, quiet_if_short: bool = False) -> list[LicenseFinding]:
    """Findings for a license text: the texts it holds, else the license names it mentions, else unknown."""
    detections = detect_licenses(text)
    if detections[0].license_id != UNKNOWN:
        return [
            LicenseFinding(
                rel, source, det.license_id, det.confidence, obligations_for(det.license_id), _excerpt(text),
                line=line, method="text", coverage=det.coverage, ambiguous_with=det.ambiguous_with, reason=det.reason,
            )
            for det in detections
        ]
    mentions = find_mentions(text)
    if mentions:
        return [
            LicenseFinding(
                rel, source, lic_id, MENTION_CONFIDENCE, obligations_for(lic_id), _mention_excerpt(text, phrase),
                line=line, method="mention", declared=phrase,
            )
            for lic_id, phrase in mentions
        ]
    if quiet_if_short and len(_tokens(text)) < MIN_UNKNOWN_SECTION_TOKENS:
        return []
    det = detections[0]
    return [LicenseFinding(rel, source, UNKNOWN, det.confidence, (), _excerpt(text), line=line, method="text", reason=det.reason)]


def _mention_excerpt(text: str, phrase: str) -> str:
    flat = _collapse(text)
    at = flat.lower().find(phrase.lower())
    if at < 0:
        return _excerpt(text)
    start, end = max(0, at - 60), min(len(flat), at + len(phrase) + 60)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def _card_findings(card: ModelCard, rel: str) -> list[LicenseFinding]:
    """What the front matter declares; ``license: other`` defers to license_name, then license_link."""
    cat = catalogue()
    values = card.licenses or (("other",) if card.license_name or card.license_link else ())
    line = card.line_of("license") or card.line_of("license_name") or card.line_of("license_link") or 1
    shown = "; ".join(
        f"{key}: {value}"
        for key, value in (("license", ", ".join(card.licenses)), ("license_name", card.license_name), ("license_link", card.license_link))
        if value
    )
    out: list[LicenseFinding] = []

    def emit(lic: CatalogueLicense | None, declared: str) -> None:
        out.append(
            LicenseFinding(
                rel, "card_metadata", lic.id if lic else UNKNOWN, 1.0, lic.obligations if lic else (), _excerpt(shown),
                line=line, method="metadata", declared=declared,
                reason="" if lic else f"{declared!r} names no catalogue license",
            )
        )

    for value in values:
        if value.lower() in ("other", "unknown"):
            lic = cat.lookup(card.license_name) if card.license_name else None
            if lic is None and card.license_link:
                lic = cat.by_link(card.license_link)
            emit(lic, f"{value}/{card.license_name}" if card.license_name else value)
            continue
        lic = cat.lookup(value)
        if lic is not None:
            emit(lic, value)
            continue
        for key in parse_license_expression(value):
            emit(cat.lookup(key), key)
    return out


def _section_findings(card: ModelCard, rel: str) -> list[LicenseFinding]:
    out: list[LicenseFinding] = []
    for line, text in _license_sections(card.body):
        out += _text_findings(text, rel, "readme_section", card.body_line + line - 1, quiet_if_short=True)
    return out


def _license_sections(body: str) -> list[tuple[int, str]]:
    """(1-based body line of the heading, heading + section text) for headings that name a license."""
    lines = body.splitlines()
    headings: list[tuple[int, int, str]] = []  # (index, level, title)
    fenced = False
    for i, raw in enumerate(lines):
        if _FENCE.match(raw):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = _HEADING.match(raw)
        if m:
            headings.append((i, len(m.group(1)), m.group(2)))
        elif i > 0 and lines[i - 1].strip() and _SETEXT.match(raw) and not _HEADING.match(lines[i - 1]):
            headings.append((i - 1, 1 if raw.strip().startswith("=") else 2, lines[i - 1].strip()))
    sections = []
    for k, (i, level, title) in enumerate(headings):
        if not _LICENSE_HEADING.search(title):
            continue
        end = next((j for j, lv, _ in headings[k + 1 :] if lv <= level), len(lines))
        sections.append((i + 1, "\n".join(lines[i:end])))
    return sections
