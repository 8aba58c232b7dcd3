"""Rule packs: YAML validated by JSON Schema, turned into typed, frozen criteria.

A malformed pack stops the run with ``file:line: reason``; nothing is skipped.
Parameters are checked and typed when the pack is loaded, not when a criterion
first runs.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from checker.errors import RulePackError, WaiverError
from checker.resources import rules_dir
from checker.yamlio import load_yaml, validate

DEFAULT_PACK = "sovereign-ai-2025"
#: Default share of a module's evidence (its parameters less fixed tables) that may stay uncompared
#: before the module is inconclusive rather than independent (weights criterion, ``max_uncompared``).
MAX_UNCOMPARED = 0.05


@dataclass(frozen=True)
class WeightsParams:
    significance: float
    statistic: str = "any"
    references: tuple[str, ...] | None = None  # None: all registered references
    allow_identical: bool = False
    max_uncompared: float = MAX_UNCOMPARED


@dataclass(frozen=True)
class DerivedShareParams:
    max_fraction: float
    count_inconclusive: bool = False


@dataclass(frozen=True)
class LicenseParams:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    deny_obligations: tuple[str, ...] = ()
    deny_third_party_model_licenses: bool = False
    min_confidence: float = 0.8
    on_unknown: str = "fail"


@dataclass(frozen=True)
class LineageParams:
    forbid_third_party_ancestors: bool = True
    on_undeclared_derivation: str = "fail"
    on_declared_not_detected: str = "warn"
    first_party: tuple[str, ...] = ()


@dataclass(frozen=True)
class DisclosureParams:
    files: tuple[str, ...] = ("THIRD_PARTY.yaml", "README.md")
    required_fields: tuple[str, ...] = ("name", "revision", "license", "role")
    on_missing: str = "fail"


@dataclass(frozen=True)
class TokenizerParams:
    max_vocab_jaccard: float = 0.9
    max_same_id_fraction: float = 0.9
    on_reuse: str = "warn"


@dataclass(frozen=True)
class ArchitectureParams:
    pass


_PARAMS = {
    "weights": WeightsParams, "derived_share": DerivedShareParams, "license": LicenseParams,
    "lineage": LineageParams, "disclosure": DisclosureParams, "tokenizer": TokenizerParams,
    "architecture": ArchitectureParams,
}


@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    kind: str
    severity: str
    params: object
    clause: str = ""
    modules: tuple[str, ...] = ()  # module kinds it applies to; empty = all
    remediation: str = ""


@dataclass(frozen=True)
class Waiver:
    """An accepted finding: shown as waived, never removed; inert after it expires."""

    criterion: str
    owner: str
    reason: str
    expires: dt.date
    module: str | None = None
    reference: str | None = None

    def active(self, today: dt.date) -> bool:
        return today <= self.expires


@dataclass(frozen=True)
class RulePack:
    id: str
    version: str
    title: str
    programme: str
    clause: str
    path: str
    sha256: str
    significance: float
    on_unknown: str
    criteria: tuple[Criterion, ...]
    waivers: tuple[Waiver, ...] = field(default=())


def resolve_pack(spec: str | Path | None) -> Path:
    """A pack given as a path, or as the id of a shipped pack."""
    if spec is None:
        spec = DEFAULT_PACK
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise RulePackError(str(p), "no such rule pack file")
        return p
    shipped = {q.stem: q for q in (rules_dir() / "packs").glob("*.yaml")}
    if str(spec) in shipped:
        return shipped[str(spec)]
    hint = difflib.get_close_matches(str(spec), list(shipped), n=1)
    more = f"; did you mean {hint[0]!r}?" if hint else f"; shipped packs: {', '.join(sorted(shipped))}"
    raise RulePackError(str(spec), f"no such rule pack{more}")


def shipped_packs() -> tuple[Path, ...]:
    return tuple(sorted((rules_dir() / "packs").glob("*.yaml")))


def load_pack(spec: str | Path | None = None) -> RulePack:
    path = resolve_pack(spec)
    data, lines = load_yaml(path, RulePackError)
    if data is None:
        raise RulePackError(str(path), "the file is empty")
    validate(data, "rulepack.schema.json", path, lines, RulePackError)
    defaults = data.get("defaults", {})
    significance = defaults.get("significance", 1e-6)
    seen: dict[str, int] = {}
    criteria = []
    for i, c in enumerate(data["criteria"]):
        if c["id"] in seen:
            raise RulePackError(str(path), f"duplicate criterion id {c['id']!r} (first at line {seen[c['id']]})",
                                line=lines.get(("criteria", i, "id")), json_path=f"$.criteria[{i}].id")
        seen[c["id"]] = lines.get(("criteria", i, "id"), 0)
        params = dict(c.get("params", {}))
        if c["kind"] == "weights":
            params.setdefault("significance", significance)
            refs = params.get("references", "all")
            params["references"] = None if refs == "all" else tuple(refs)
        for k, v in list(params.items()):
            if isinstance(v, list):
                params[k] = tuple(v)
        criteria.append(Criterion(
            id=c["id"], title=c["title"], kind=c["kind"], severity=c["severity"], params=_PARAMS[c["kind"]](**params),
            clause=c.get("clause", ""), modules=tuple(c.get("modules", ())), remediation=c.get("remediation", "").strip(),
        ))
    _check_license_ids(path, data, lines)
    waivers = _waivers(path, data.get("waivers", []), lines, set(seen), RulePackError)
    return RulePack(
        id=data["id"], version=data["version"], title=data["title"], programme=data["programme"]["name"],
        clause=" ".join(data["programme"]["clause"].split()), path=str(path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(), significance=significance,
        on_unknown=defaults.get("on_unknown", "inconclusive"), criteria=tuple(criteria), waivers=tuple(waivers),
    )


def _waivers(path: Path, items: list, lines: dict, known: set[str] | None, error) -> tuple[Waiver, ...]:
    out = []
    for i, w in enumerate(items):
        if known is not None and w["criterion"] not in known:
            raise error(str(path), f"waiver names unknown criterion {w['criterion']!r}",
                        line=lines.get(("waivers", i, "criterion")), json_path=f"$.waivers[{i}].criterion")
        try:
            expires = dt.date.fromisoformat(w["expires"])
        except ValueError:
            raise error(str(path), f"waiver expiry {w['expires']!r} is not a date",
                        line=lines.get(("waivers", i, "expires")), json_path=f"$.waivers[{i}].expires") from None
        out.append(Waiver(w["criterion"], w["owner"], w["reason"], expires, w.get("module"), w.get("reference")))
    return tuple(out)


def load_waivers(path: Path, pack: RulePack) -> tuple[Waiver, ...]:
    """A waiver side file: checked against its schema and against the pack's criteria."""
    data, lines = load_yaml(path, WaiverError)
    if data is None:
        raise WaiverError(str(path), "the file is empty")
    validate(data, "waivers.schema.json", path, lines, WaiverError)
    return _waivers(path, data["waivers"], lines, {c.id for c in pack.criteria}, WaiverError)


def _check_license_ids(path: Path, data: dict, lines: dict) -> None:
    """Allow and deny lists must name licenses the catalogue knows: a typo must not allow everything."""
    from checker.scanners.licenses import catalogue

    cat = catalogue()
    for i, c in enumerate(data["criteria"]):
        if c["kind"] != "license":
            continue
        for key in ("allow", "deny"):
            for j, name in enumerate(c.get("params", {}).get(key, [])):
                if cat.lookup(name) is None:
                    hint = difflib.get_close_matches(name, list(cat.ids), n=1)
                    raise RulePackError(str(path), f"unknown license {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                                        line=lines.get(("criteria", i, "params", key, j)),
                                        json_path=f"$.criteria[{i}].params.{key}[{j}]")
