"""The canonical JSON report (``schema_version: 1``); every other format renders from it."""

from __future__ import annotations

import dataclasses
import json
import math

import jsonschema

from checker.audit import AuditResult
from checker.errors import ReportError
from checker.exitcodes import VERDICT_EXIT
from checker.metrics.interface import Match
from checker.verdicts import Evidence, ModuleVerdict, p_from_log10
from checker.yamlio import schema

SCHEMA_VERSION = 1
_p = p_from_log10  # floored at 1e-300; the exact log10 is written beside it


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None:
        return None
    if math.isinf(x) or math.isnan(x):
        return None
    return round(float(x), digits)


def _match(m: Match, correction: float, significant: bool, full: bool) -> dict:
    a = m.alignment
    out = {
        "reference": m.reference, "reference_module": m.reference_module, "reference_kind": m.reference_kind,
        "statistic": m.statistic, "score": _num(m.score), "z_score": _num(m.z, 3),
        "p_value": _p(m.log10_p), "log10_p_value": _num(m.log10_p, 3),
        "p_value_corrected": _p(min(0.0, m.log10_p + correction)),
        "log10_p_value_corrected": _num(min(0.0, m.log10_p + correction), 3),
        "fisher_log10_p_value": _num(m.fisher_log10_p, 3), "decisive": m.decisive, "significant": significant,
        "identical_fraction": _num(m.identical_fraction), "cells_tested": m.cells_tested,
        "layer_map": {str(s): r for s, r in m.layer_map},
        "alignment": {"source": a.source, "permuted": a.permuted, "sign_flips": a.sign_flips,
                      "matched_dims": a.matched_dims, "anchor_z": a.anchor_z},
    }
    if full:
        out["alignment"]["permutation"] = list(a.permutation)
        out["recovered_alignment"] = recovered_alignment(m)
        out["weak_evidence"] = [
            {"sub_layer": c.sub_layer, "ref_layer": c.ref_layer, "role": w.role, "pearson": _num(w.pearson), "raw_cosine": _num(w.raw_cosine),
             "decisive": False}
            for c in m.cells for w in c.weak if (c.sub_layer, c.ref_layer) in set(m.layer_map) or c.sub_layer is None
        ][:64]
    return out


def recovered_alignment(m: Match) -> dict:
    """The alignment the engine recovered, in the evaluator's terms: which hidden permutation
    and sign flips, which layers map where (and which were dropped or inserted), and per
    mapped layer and role the scale factor and the share of units found at other indices."""
    a = m.alignment
    moved = sum(1 for i, p in enumerate(a.permutation) if p != i)
    cells = {(c.sub_layer, c.ref_layer): c for c in m.cells}
    sub_layers = sorted({c.sub_layer for c in m.cells if c.sub_layer is not None and c.roles})
    ref_layers = sorted({c.ref_layer for c in m.cells if c.ref_layer is not None and c.roles})
    mapped_sub = {s for s, _ in m.layer_map}
    mapped_ref = {r for _, r in m.layer_map}
    layers = []
    for s, r in m.layer_map:
        c = cells[(s, r)]
        layers.append({"sub_layer": s, "ref_layer": r, "z": _num(c.z, 2), "roles": [
            {"role": x.role, "reference_role": x.reference_role, "score": _num(x.score, 4), "z": _num(x.z, 2),
             "scale": _num(x.scale, 4), "scale_spread": _num(x.scale_spread, 3), "units_moved": _num(x.units_moved, 3)}
            for x in c.roles]})
    return {
        "hidden": {"source": a.source, "matched_dims": a.matched_dims, "permuted": a.permuted,
                   "dims_moved": moved, "sign_flips": a.sign_flips, "anchor_z": a.anchor_z},
        "layer_map": {str(s): r for s, r in m.layer_map},
        "reference_layers_unmatched": sorted(set(ref_layers) - mapped_ref) if m.layer_map else [],
        "submission_layers_unmatched": sorted(set(sub_layers) - mapped_sub) if m.layer_map else [],
        "repeated_reference_layers": sorted({r for _, r in m.layer_map if sum(1 for _, x in m.layer_map if x == r) > 1}),
        "layers": layers,
    }


def _module(mv: ModuleVerdict, correction: float) -> dict:
    sig = {id(m) for m in mv.significant}
    return {
        "name": mv.name, "kind": mv.kind, "family": mv.family, "parameters": mv.parameters,
        "param_fraction": _num(mv.param_fraction, 8), "status": mv.status, "reason": mv.reason,
        "layers": len(mv.layers),
        "best_match": None if mv.best is None else {"reference": mv.best.reference, "reference_module": mv.best.reference_module},
        "matches": [_match(m, correction, id(m) in sig, m is mv.best) for m in mv.matches],
        "baseline": _baseline(mv),
        "skipped": _group_skipped(mv.skipped),
    }


def _baseline(mv: ModuleVerdict) -> dict:
    """The empirical baseline beside the calibrated p-values: how the module scores against the
    reference modules it is *not* related to (the non-significant comparisons)."""
    sig = {id(m) for m in mv.significant}
    others = [m for m in mv.matches if m.decisive and id(m) not in sig and m.identical_fraction < 0.99]
    return {"comparisons": len(others),
            "max_score": _num(max((m.score for m in others), default=None)),
            "max_z_score": _num(max((m.z for m in others), default=None), 3)}


def _group_skipped(skipped) -> list[dict]:
    """Comparisons that could not be made, grouped by reason (a module pair can skip hundreds of tensors)."""
    groups: dict[str, list[str]] = {}
    for s in skipped:
        groups.setdefault(s.reason, []).append(s.what)
    return [{"reason": reason, "count": len(whats), "examples": whats[:3]} for reason, whats in groups.items()]


def _evidence(e: Evidence) -> dict:
    return {k: v for k, v in dataclasses.asdict(e).items() if v is not None}


def build_report(result: AuditResult) -> dict:
    """The report as a JSON-ready dict, validated against rules/schema/report.schema.json."""
    tests = sum(1 for mv in result.modules for m in mv.matches if m.decisive)
    correction = math.log10(max(tests, 1))
    sub = result.submission
    toks = sorted(result.facts.tokenizers, key=lambda t: -t.vocab_jaccard)
    tokenizer = None
    if toks:
        best = toks[0]
        tokenizer = {**dataclasses.asdict(best), "comparisons": [dataclasses.asdict(t) for t in toks],
                     "note": "tokenizer reuse is reported separately and never decides weight provenance"}
    report = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "fromscratch", "version": result.tool_version},
        "created": result.created,
        "submission": {"id": sub.id, "path": sub.path, "source_type": sub.source_type, "revision": sub.revision,
                       "parameters": sub.parameters,
                       "files": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes, "audited": f.path in sub.audited}
                                 for f in sub.files]},
        "rulepack": {"id": result.pack.id, "version": result.pack.version, "sha256": result.pack.sha256,
                     "title": result.pack.title, "programme": result.pack.programme, "clause": result.pack.clause},
        "registry": [e.as_report() for e in result.references],
        "verdict": result.verdict,
        "exit_code": int(VERDICT_EXIT[result.verdict]),
        "derived_param_fraction": _num(result.derived_param_fraction, 8),
        "significance": next((c.params.significance for c in result.pack.criteria if c.kind == "weights"), result.pack.significance),
        "tests": tests,
        "modules": [_module(mv, correction) for mv in result.modules],
        "criteria": [
            {"id": r.id, "title": r.title, "kind": r.kind, "severity": r.severity, "status": r.status, "message": r.message,
             "evidence": [_evidence(e) for e in r.evidence], "remediation": r.remediation or None,
             "waiver": None if r.waiver is None else {"owner": r.waiver.owner, "reason": r.waiver.reason,
                                                      "expires": r.waiver.expires.isoformat(), "status_before_waiver": r.waived_status,
                                                      "active": r.waived_status is not None, "module": r.waiver.module,
                                                      "reference": r.waiver.reference}}
            for r in result.criteria
        ],
        "licenses": [_license(f) for f in result.facts.licenses],
        "lineage": _lineage(result),
        "disclosure": _disclosure(result.facts.disclosure),
        "tokenizer": tokenizer,
        "architecture": _plain(result.facts.architecture),
    }
    validate_report(report)
    return report


def _lineage(result: AuditResult) -> dict:
    """What the submission declares about its ancestry, beside what its weights reveal."""
    return {
        "declared_ancestors": list(result.facts.declared_ancestors),
        "hints": [{"file": h.file, "key": h.key, "value": h.value, "kind": h.kind, "excerpt": h.excerpt} for h in result.facts.lineage],
        "detected": [{"module": mv.name, "reference": mv.best.reference, "reference_module": mv.best.reference_module,
                      "status": mv.status, "param_fraction": _num(mv.param_fraction, 8)}
                     for mv in result.modules if mv.status in ("derived", "identical") and mv.best is not None],
    }


def _disclosure(inv) -> dict | None:
    if inv is None:
        return None
    return {"file": inv.file, "components": [_plain(c) for c in inv.components]}


def _plain(obj) -> dict:
    """A frozen dataclass as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def _license(f) -> dict:
    return {"file": f.file, "source": getattr(f, "source", None), "detected": f.detected, "confidence": _num(f.confidence, 4),
            "obligations": [{"kind": o.kind, "clause": o.clause} for o in f.obligations],
            "excerpt": getattr(f, "excerpt", None)}


def validate_report(report: dict) -> None:
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema("report.schema.json")).iter_errors(report))
    if err is not None:
        raise ReportError("report.json", f"does not match its schema: {err.message} (at $.{'.'.join(map(str, err.absolute_path))})")


def dumps(report: dict) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
