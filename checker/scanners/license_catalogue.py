"""The license catalogue: reference texts, obligations, and name lookups.

"No licensing issues related to third-party models" needs two answers: which
licenses a submission ships or declares, and what those licenses oblige. The
catalogue (``rules/licenses/catalogue.yaml``) holds the reference texts and
the obligations, each obligation quoted verbatim from its text so an evaluator
can check the quote. This module loads and validates it, and resolves license
names, ``license_link`` URLs and SPDX expressions to its entries.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from license_expression import ExpressionError, Licensing, get_spdx_licensing

from checker.errors import RulePackError, ScanError
from checker.resources import rules_dir
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
SCHEMA = "license-catalogue.schema.json"


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
