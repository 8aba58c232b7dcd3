"""License catalogue, license-text detection, and the license scanner of a submission.

"No licensing issues related to third-party models" needs two answers: which
licenses a submission ships or declares, and what those licenses oblige. The
catalogue (``rules/licenses/catalogue.yaml``) holds the reference texts and
the obligations, each obligation quoted verbatim from its text so an evaluator
can check the quote.

Detection compares word 5-gram shingles of a text with every reference text.
Model licenses come in near-identical families (Llama 3.1/3.2/3.3/4 differ
only in a version string, a date and URLs), so each shingle is weighted by how
specific it is: 1 / (number of reference texts that contain it). The license
that explains most of the text's specific weight wins, but only when enough of
the text is long runs of reference text (generic legalese shared with, say,
the GPL never adds up to a run). When the text holds nothing that tells two
siblings apart, the result says so (``ambiguous_with``) rather than pretending.
A text that copies most of a license but leaves out one of its obligation
clauses (CC BY 4.0 against CC BY-NC 4.0) is a different license: unknown.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from license_expression import ExpressionError, Licensing, get_spdx_licensing

from checker.errors import RulePackError, ScanError
from checker.resources import rules_dir
from checker.scanners.model_card import ModelCard, read_model_card
from checker.yamlio import load_yaml, validate

UNKNOWN = "unknown"
OBLIGATION_KINDS = (
    "attribution",
    "naming",
    "field_of_use",
    "acceptable_use_policy",
    "non_commercial",
    "share_alike",
    "use_restrictions",
    "revocable_or_changeable",
    "notice",
)
SOURCES = ("license_file", "card_metadata", "readme_section", "notice", "use_policy")
SCHEMA = "license-catalogue.schema.json"

# Shingle length: 5 words is long enough that shared legal boilerplate rarely
# lines up by chance, short enough that one changed word (a version number)
# changes only five shingles.
SHINGLE = 5
# A text is taken to be a catalogue license when it holds a long verbatim run
# of it: either plenty of matching shingles with a run of at least 15 (about
# 20 words in a row), or, for short texts such as a NOTICE line, at least half
# of the text with a run of at least 8. Boilerplate shared with other licenses
# ("WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED") gives runs of 1-6.
MIN_SHINGLES_LONG, MIN_RUN_LONG = 40, 15
MIN_SHINGLES_SHORT, MIN_RUN_SHORT, MIN_PRECISION_SHORT = 8, 8, 0.5
# Two catalogue texts are told apart when the text holds at least this many
# more shingles of one than of the other (one differing word gives up to 5).
MIN_NET_EVIDENCE = 3
# An obligation clause counts as left out of a copy when long copied runs come
# within CLAUSE_REACH shingles before and after it (room for a dropped
# paragraph around the clause) but less than half of the clause is there.
# Only a text that copies at least MIN_COPY_COVERAGE of a license is checked
# this way: excerpts leave clauses out by nature.
CLAUSE_REACH = 200
MIN_COPY_COVERAGE = 0.5
# A README section that merely names a license is weaker evidence than its text.
MENTION_CONFIDENCE = 0.6
MAX_CANDIDATES = 5
MAX_READ_BYTES = 4 * 1024 * 1024
EXCERPT_CHARS = 160
# Words that make an alias a license *name* (safe to look for in prose): "Llama
# 3.1" names a model, "Llama 3.1 Community License" names its license.
_NAME_WORDS = frozenset({"license", "licence", "licenseref", "terms", "agreement", "rail", "openrail", "apache", "cc", "creative"})


@dataclass(frozen=True)
class Obligation:
    """One duty a license puts on whoever builds on the licensed model."""

    kind: str
    """One of OBLIGATION_KINDS."""
    clause: str
    """The license's own words, verbatim (whitespace collapsed)."""


@dataclass(frozen=True)
class CatalogueLicense:
    """A catalogue entry with its reference text loaded."""

    id: str
    name: str
    publisher: str
    scancode_key: str | None
    hub_license: str
    aliases: tuple[str, ...]
    url: str
    links: tuple[str, ...]
    corpus_file: str
    sha256: str
    third_party_model_license: bool
    obligations: tuple[Obligation, ...]
    text: str = field(repr=False)


@dataclass(frozen=True)
class Catalogue:
    """The validated catalogue, with lookups by id, alias and license_link."""

    path: str
    licenses: tuple[CatalogueLicense, ...]
    _names: Mapping[str, CatalogueLicense] = field(repr=False, compare=False)
    _links: Mapping[str, CatalogueLicense] = field(repr=False, compare=False)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(lic.id for lic in self.licenses)

    def get(self, license_id: str) -> CatalogueLicense:
        """The entry with this id; an unknown id is a programming or rule error."""
        for lic in self.licenses:
            if lic.id == license_id:
                return lic
        close = difflib.get_close_matches(license_id, self.ids, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ScanError(self.path, f"no license {license_id!r} in the catalogue{hint}")

    def lookup(self, name: str) -> CatalogueLicense | None:
        """The entry an id, hub id or alias names (case-insensitive), or None."""
        return self._names.get(_alias_key(name))

    def by_link(self, url: str) -> CatalogueLicense | None:
        """The entry a ``license_link`` URL identifies, or None."""
        return self._links.get(_link_key(url))


@dataclass(frozen=True)
class LicenseCandidate:
    """How well one catalogue license explains a text."""

    license_id: str
    score: float
    """Share of the text's specificity-weighted shingles found in this license, in [0, 1]."""
    coverage: float
    """Share of this license's reference shingles present in the text, in [0, 1]."""


@dataclass(frozen=True)
class LicenseDetection:
    """Which catalogue license a text is, or ``"unknown"``; never a forced guess."""

    license_id: str
    """A catalogue id, or ``"unknown"`` when no reference text is present in it."""
    confidence: float
    """How sure the detector is of ``license_id`` (also when it is ``"unknown"``), in [0, 1]."""
    coverage: float
    """Share of the detected license's reference text present (0 when unknown)."""
    candidates: tuple[LicenseCandidate, ...]
    """Best candidates first, the detected one included."""
    ambiguous_with: tuple[str, ...] = ()
    """Other ids the text fits equally well: it holds nothing that tells them apart."""
    reason: str = ""
    """Why the result is unknown or ambiguous, for the report."""


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


# ---------------------------------------------------------------- catalogue


def default_catalogue_path() -> Path:
    return rules_dir() / "licenses" / "catalogue.yaml"


@lru_cache(maxsize=4)
def catalogue(path: Path | None = None) -> Catalogue:
    """Load, validate (schema, uniqueness, text hashes, verbatim clauses) and cache the catalogue."""
    path = Path(path) if path is not None else default_catalogue_path()
    data, lines = load_yaml(path, RulePackError)
    validate(data, SCHEMA, path, lines, RulePackError)
    texts_dir = path.parent / "texts"

    def fail(reason: str, loc: tuple) -> RulePackError:
        json_path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        return RulePackError(str(path), reason, line=lines.get(loc), json_path=json_path)

    names: dict[str, CatalogueLicense] = {}
    links: dict[str, CatalogueLicense] = {}
    entries: list[CatalogueLicense] = []
    for i, raw in enumerate(data["licenses"]):
        text_path = texts_dir / raw["corpus_file"]
        try:
            blob = text_path.read_bytes()
        except OSError:
            raise fail(f"reference text {raw['corpus_file']!r} is missing from {texts_dir}", ("licenses", i, "corpus_file")) from None
        if hashlib.sha256(blob).hexdigest() != raw["sha256"]:
            raise fail(f"reference text {raw['corpus_file']!r} does not match its sha256", ("licenses", i, "sha256"))
        text = blob.decode("utf-8")
        flat = _collapse(text)
        obligations = []
        for j, ob in enumerate(raw["obligations"]):
            if _collapse(ob["clause"]) not in flat:
                raise fail(f"clause is not verbatim in {raw['corpus_file']}", ("licenses", i, "obligations", j, "clause"))
            obligations.append(Obligation(ob["kind"], _collapse(ob["clause"])))
        lic = CatalogueLicense(
            id=raw["id"],
            name=raw["name"],
            publisher=raw["publisher"],
            scancode_key=raw.get("scancode_key"),
            hub_license=raw["hub_license"],
            aliases=tuple(raw["aliases"]),
            url=raw["url"],
            links=tuple(raw.get("links", ())),
            corpus_file=raw["corpus_file"],
            sha256=raw["sha256"],
            third_party_model_license=raw["third_party_model_license"],
            obligations=tuple(obligations),
            text=text,
        )
        for k, name in enumerate((lic.id, *lic.aliases)):
            key = _alias_key(name)
            if key in names:
                loc = ("licenses", i, "id") if k == 0 else ("licenses", i, "aliases", k - 1)
                raise fail(f"{name!r} already names {names[key].id}", loc)
            names[key] = lic
        for k, url in enumerate(lic.links):
            key = _link_key(url)
            if key in links:
                raise fail(f"link {url!r} already identifies {links[key].id}", ("licenses", i, "links", k))
            links[key] = lic
        entries.append(lic)
    return Catalogue(str(path), tuple(entries), MappingProxyType(names), MappingProxyType(links))


def obligations_for(license_id: str) -> tuple[Obligation, ...]:
    """The obligations of a catalogue license; none for ``"unknown"``."""
    if license_id == UNKNOWN:
        return ()
    return catalogue().get(license_id).obligations


def _alias_key(name: str) -> str:
    return " ".join(str(name).lower().split())


def _link_key(url: str) -> str:
    key = url.strip().lower()
    key = re.sub(r"^https?://", "", key)
    key = re.sub(r"^www\.", "", key)
    return key.rstrip("/")


def _collapse(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- detection

_MD_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\s]*\)")
# Copyright lines name a holder and a year that differ per copy (MIT, Apache's
# appendix); they are not part of what identifies a license.
_COPYRIGHT_LINE = re.compile(r"^[\W_]*copyright\b.{0,100}$", re.IGNORECASE | re.MULTILINE)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# One token per CJK character (those scripts have no spaces), words elsewhere.
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


def _tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    text = _MD_LINK.sub(r"\1", text)  # Markdown copies keep the link text only
    text = _COPYRIGHT_LINE.sub(" ", text)
    return _TOKEN.findall(text.lower())


def _shingles(tokens: list[str]) -> list[int]:
    return [hash(tuple(tokens[i : i + SHINGLE])) for i in range(len(tokens) - SHINGLE + 1)]


@dataclass(frozen=True)
class _Clause:
    kind: str
    start: int  # first and last shingle position in the reference text
    end: int
    shingles: frozenset[int]


@dataclass(frozen=True)
class _Index:
    ids: tuple[str, ...]
    postings: Mapping[int, tuple[int, ...]]  # shingle -> licenses whose text holds it
    sizes: tuple[int, ...]  # distinct shingles per license
    sets: tuple[frozenset[int], ...]  # per license: its shingles
    seqs: tuple[tuple[int, ...], ...]  # per license: its shingles in text order
    clauses: tuple[tuple[_Clause, ...], ...]  # per license: where its obligation clauses are


@lru_cache(maxsize=4)
def _index(cat: Catalogue) -> _Index:
    postings: dict[int, list[int]] = {}
    sets, seqs, clauses = [], [], []
    for i, lic in enumerate(cat.licenses):
        tokens = _tokens(lic.text)
        seq = _shingles(tokens)
        seqs.append(tuple(seq))
        sets.append(frozenset(seq))
        for s in sets[-1]:
            postings.setdefault(s, []).append(i)
        spans = []
        for ob in lic.obligations:
            ctoks = _tokens(ob.clause)
            at = _find(tokens, ctoks)
            if at >= 0 and len(ctoks) >= SHINGLE:
                spans.append(_Clause(ob.kind, at, at + len(ctoks) - SHINGLE, frozenset(_shingles(ctoks))))
        clauses.append(tuple(spans))
    sizes = tuple(len(x) for x in sets)
    return _Index(cat.ids, {s: tuple(v) for s, v in postings.items()}, sizes, tuple(sets), tuple(seqs), tuple(clauses))


def _find(haystack: list[str], needle: list[str]) -> int:
    n = len(needle)
    for i in range(len(haystack) - n + 1):
        if haystack[i] == needle[0] and haystack[i : i + n] == needle:
            return i
    return -1


def detect_license(text: str) -> LicenseDetection:
    """Identify a license text, whole or in part (excerpt, re-wrapped, inside a README)."""
    return _detect(_shingles(_tokens(text)), _index(catalogue()))


def detect_licenses(text: str) -> tuple[LicenseDetection, ...]:
    """Every catalogue license in a text (a LICENSE file may append a model license to a code license).

    The best license is detected, its shingles are taken out, and the rest is
    searched again. Returns ``(unknown,)`` when there is none.
    """
    index = _index(catalogue())
    seq = _shingles(_tokens(text))
    first = _detect(seq, index)
    found = [first]
    while found[-1].license_id != UNKNOWN and len(found) < 4:
        taken = index.sets[index.ids.index(found[-1].license_id)]
        seq = [s for s in seq if s not in taken]
        nxt = _detect(seq, index)
        if nxt.license_id == UNKNOWN:
            break
        found.append(nxt)
    return tuple(found)


def _detect(seq: list[int], index: _Index) -> LicenseDetection:
    unique = set(seq)
    n = len(index.ids)
    matched = [0] * n
    weighted = [0.0] * n
    longest = [0] * n
    total_weight = 0.0
    for s in unique:
        lics = index.postings.get(s)
        if lics is None:
            total_weight += 1.0
            continue
        w = 1.0 / len(lics)
        total_weight += w
        for i in lics:
            matched[i] += 1
            weighted[i] += w
    run: dict[int, int] = {}
    for s in seq:
        run = {i: run.get(i, 0) + 1 for i in index.postings.get(s, ())}
        for i, r in run.items():
            longest[i] = max(longest[i], r)

    order = sorted((i for i in range(n) if matched[i]), key=lambda i: (-weighted[i], -matched[i] / index.sizes[i], i))
    if not order:
        return LicenseDetection(UNKNOWN, 1.0, 0.0, (), reason="no text of any catalogue license" if unique else "no text")
    candidates = tuple(
        LicenseCandidate(index.ids[i], round(weighted[i] / total_weight, 4), round(matched[i] / index.sizes[i], 4))
        for i in order[:MAX_CANDIDATES]
    )
    best = order[0]
    best_id = index.ids[best]
    m, precision, run_b = matched[best], matched[best] / len(unique), longest[best]
    # How surely the text *is* this license's text: most of the text matches
    # (precision) or a long stretch of it does (150 shingles is about a page);
    # damped for very short texts (a one-line NOTICE of 10 shingles gets 0.63).
    strength = max(precision, min(1.0, m / 150)) * (1.0 - math.exp(-m / 10))
    known = (m >= MIN_SHINGLES_LONG and run_b >= MIN_RUN_LONG) or (
        m >= MIN_SHINGLES_SHORT and run_b >= MIN_RUN_SHORT and precision >= MIN_PRECISION_SHORT
    )
    if not known:
        reason = f"too little of any catalogue text (closest {best_id}: {m} shingles, longest run {run_b})"
        return LicenseDetection(UNKNOWN, round(1.0 - strength, 4), 0.0, candidates, reason=reason)

    missing = _missing_clauses(unique, best, index) if m >= MIN_COPY_COVERAGE * index.sizes[best] else None
    if missing:
        # The text is a close copy of best_id with an obligation taken out (say
        # CC-BY-4.0 against CC-BY-NC-4.0): naming best_id would claim the wrong duties.
        in_range, absent = missing
        reason = f"close to {best_id}, but {len(absent)} of its {in_range} clauses in the copied part are missing ({', '.join(absent)})"
        return LicenseDetection(UNKNOWN, round(len(absent) / in_range, 4), 0.0, candidates, reason=reason)

    # Net evidence against each close rival: shingles only the best explains
    # minus shingles only the rival explains.
    rivals = order[1 : 1 + MAX_CANDIDATES]
    nets = {j: 0 for j in rivals}
    for s in unique:
        lics = index.postings.get(s, ())
        has_best = best in lics
        for j in rivals:
            has_rival = j in lics
            nets[j] += 1 if has_best and not has_rival else -1 if has_rival and not has_best else 0
    tied = tuple(j for j in rivals if nets[j] < MIN_NET_EVIDENCE)
    if tied:
        # Nothing tells the tied texts apart: each is as likely as the others.
        distinct = 1.0 / (1 + len(tied))
        reason = "the text holds nothing that tells these licenses apart"
    else:
        # One differing word is worth ~5 shingles: 5 give 0.71, 10 give 0.92.
        distinct = 1.0 - math.exp(-min(nets.values()) / 4) if rivals else 1.0
        reason = ""
    return LicenseDetection(
        best_id,
        round(strength * distinct, 4),
        round(m / index.sizes[best], 4),
        candidates,
        tuple(index.ids[j] for j in tied),
        reason,
    )


def _missing_clauses(unique: set[int], best: int, index: _Index) -> tuple[int, tuple[str, ...]] | None:
    """Obligation clauses of ``best`` that sit inside the copied part of it but are left out.

    A clause is inside when long copied runs of the reference come both before
    and after it; an excerpt that stops before a clause says nothing about it,
    and a few recurring boilerplate phrases are too short to count as runs.
    """
    seq = index.seqs[best]
    runs: list[tuple[int, int]] = []  # (first, last) reference positions of copied runs
    start = None
    for p, s in enumerate(seq):
        if s in unique:
            start = p if start is None else start
        elif start is not None:
            runs.append((start, p - 1))
            start = None
    if start is not None:
        runs.append((start, len(seq) - 1))
    runs = [r for r in runs if r[1] - r[0] + 1 >= MIN_RUN_LONG]

    def inside(c: _Clause) -> bool:
        before = any(c.start - CLAUSE_REACH <= last < c.start for _, last in runs)
        after = any(c.end < first <= c.end + CLAUSE_REACH for first, _ in runs)
        return before and after

    flanked = [c for c in index.clauses[best] if inside(c)]
    absent = tuple(c.kind for c in flanked if len(c.shingles & unique) < 0.5 * len(c.shingles))
    return (len(flanked), absent) if absent else None


def find_mentions(text: str) -> tuple[tuple[str, str], ...]:
    """(catalogue id, phrase) for each license *name* written in prose, first mention first."""
    phrases = _name_phrases(catalogue())
    tokens = _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())
    found: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        hit = next(
            (p for p in phrases.get(tokens[i], ()) if tuple(tokens[i : i + len(p[0])]) == p[0]),
            None,
        )  # phrases are longest first, so "Meta Llama 3 Community License" beats a shorter name
        if hit is None:
            i += 1
            continue
        found.setdefault(hit[1], hit[2])
        i += len(hit[0])
    return tuple(found.items())


@lru_cache(maxsize=4)
def _name_phrases(cat: Catalogue) -> Mapping[str, tuple[tuple[tuple[str, ...], str, str], ...]]:
    by_first: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
    for lic in cat.licenses:
        for name in (lic.name, *lic.aliases):
            tokens = tuple(_TOKEN.findall(unicodedata.normalize("NFKC", name).lower()))
            if len(tokens) >= 2 and _NAME_WORDS & set(tokens):
                by_first.setdefault(tokens[0], []).append((tokens, lic.id, name))
    return {k: tuple(sorted(v, key=lambda p: -len(p[0]))) for k, v in by_first.items()}


def parse_license_expression(value: str) -> tuple[str, ...]:
    """License keys of an SPDX expression (``apache-2.0 OR mit``); the raw value when it is not one."""
    licensing = _spdx()
    try:
        parsed = licensing.parse(value, validate=False)
    except ExpressionError:
        return (value,)
    if parsed is None:
        return ()
    return tuple(licensing.license_keys(parsed))


@lru_cache(maxsize=1)
def _spdx() -> Licensing:
    return get_spdx_licensing()


# ---------------------------------------------------------------- folder scan

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
