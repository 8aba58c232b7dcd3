"""License-text detection: which catalogue license a text is, or the license names it mentions.

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

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from checker.scanners.license_catalogue import UNKNOWN, Catalogue, catalogue

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
MAX_CANDIDATES = 5
# Words that make an alias a license *name* (safe to look for in prose): "Llama
# 3.1" names a model, "Llama 3.1 Community License" names its license.
_NAME_WORDS = frozenset({"license", "licence", "licenseref", "terms", "agreement", "rail", "openrail", "apache", "cc", "creative"})


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
