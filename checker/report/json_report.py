"""The canonical JSON report (``schema_version: 1``); every other format renders from it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import shlex

import jsonschema

from checker.audit import AuditResult
from checker.errors import ReportError
from checker.exitcodes import VERDICT_EXIT
from checker.metrics.fixed_tables import FIXED_KEYS
from checker.report.i18n import messages
from checker.metrics.interface import REVIEW_ONLY, Match, ModuleEvidence
from checker.modules import Module
from checker.verdicts import Architecture, Evidence, ModuleVerdict, Msg, architecture_sentence, p_from_log10
from checker.yamlio import schema

SCHEMA_VERSION = 1
_p = p_from_log10  # floored at 1e-300; the exact log10 is written beside it


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None:
        return None
    if math.isinf(x) or math.isnan(x):
        return None
    return round(float(x), digits)


def _match(m: Match, correction: float, significant: bool, full: bool, module: Module | None = None) -> dict:
    a = m.alignment
    out = {
        "reference": m.reference, "reference_module": m.reference_module, "reference_kind": m.reference_kind,
        "statistic": m.statistic, "score": _num(m.score), "z_score": _num(m.z, 3),
        "p_value": _p(m.log10_p), "log10_p_value": _num(m.log10_p, 3),
        "p_value_corrected": _p(min(0.0, m.log10_p + correction)),
        "log10_p_value_corrected": _num(min(0.0, m.log10_p + correction), 3),
        "fisher_log10_p_value": _num(m.fisher_log10_p, 3), "decisive": m.decisive, "significant": significant,
        "identical_fraction": _num(m.identical_fraction), "cells_tested": m.cells_tested,
        "cells_indexed": m.cells_indexed,
        "layer_map": {str(s): r for s, r in m.layer_map},
        "alignment": {"source": a.source, "permuted": a.permuted, "sign_flips": a.sign_flips,
                      "matched_dims": a.matched_dims, "anchor_z": a.anchor_z, "rotated": a.rotated},
    }
    if full:
        out["alignment"]["permutation"] = list(a.permutation)
        out["recovered_alignment"] = recovered_alignment(m)
        out["layer_matrix"] = layer_matrix(m)
        out["weak_evidence"] = weak_evidence(m, module)
    return out


def layer_matrix(m: Match) -> dict:
    """The layer x layer grid of one match: z and score per (submission layer, reference layer)."""
    subs, refs = m.layers()
    z = {(c.sub_layer, c.ref_layer): c for c in m.cells if c.roles or c.index}

    def best(c):  # the full test where it ran, else the index-aligned test (a merge never moved units)
        return (c.z, c.score) if c.roles and (not c.index or c.z >= c.index_z) else (c.index_z, c.index_score)

    return {
        "sub_layers": subs, "ref_layers": refs,
        "z": [[_num(best(z[(s, r)])[0], 2) if (s, r) in z else None for r in refs] for s in subs],
        "score": [[_num(best(z[(s, r)])[1], 4) if (s, r) in z else None for r in refs] for s in subs],
        "index_z": [[_num(z[(s, r)].index_z, 2) if (s, r) in z and z[(s, r)].index else None for r in refs] for s in subs],
    }


def weak_evidence(m: Match, module: Module | None) -> list[dict]:
    """Norm-weight and bias comparisons on the mapped layer pairs (the diagonal when none is mapped),
    each labelled by the submission tensor it compares; shown, never decisive.

    The engine's weak scores carry a role and a layer pair; the tensor name is taken from the
    module map (``tensor``) when one tensor of that role sits in that layer, else the candidates
    are listed (``tensor_candidates``)."""
    pairs = set(m.layer_map) or {(c.sub_layer, c.ref_layer) for c in m.cells if c.sub_layer == c.ref_layer}
    names: dict = {}
    for t in (module.tensors if module is not None else ()):
        if not t.decisive:
            names.setdefault((t.layer, t.role), []).append(t.name)
    out = []
    for c in m.cells:
        if (c.sub_layer, c.ref_layer) not in pairs and c.sub_layer is not None:
            continue
        for w in c.weak:
            named = getattr(w, "tensor", None)  # newer engines name the tensors themselves
            cands = [named] if named else names.get((c.sub_layer, w.role), [])
            row = {"sub_layer": c.sub_layer, "ref_layer": c.ref_layer, "role": w.role,
                   "tensor": cands[0] if len(cands) == 1 else None,
                   "pearson": _num(w.pearson), "raw_cosine": _num(w.raw_cosine), "decisive": False}
            if len(cands) > 1:
                row["tensor_candidates"] = cands
            if getattr(w, "reference_tensor", None):
                row["reference_tensor"] = w.reference_tensor
            out.append(row)
    return out[:64]


def fixed_parameters(module: Module, skipped) -> int:
    """Parameters of the module's fixed tables (sinusoids, masks, constants: never evidence)."""
    names = {s.what for s in skipped if s.key in FIXED_KEYS}
    return sum(t.numel for t in module.tensors if t.name in names)


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
        "hidden": {"source": a.source, "matched_dims": a.matched_dims, "permuted": a.permuted, "rotated": a.rotated,
                   "dims_moved": moved, "sign_flips": a.sign_flips, "anchor_z": a.anchor_z},
        "layer_map": {str(s): r for s, r in m.layer_map},
        "reference_layers_unmatched": sorted(set(ref_layers) - mapped_ref) if m.layer_map else [],
        "submission_layers_unmatched": sorted(set(sub_layers) - mapped_sub) if m.layer_map else [],
        "repeated_reference_layers": sorted({r for _, r in m.layer_map if sum(1 for _, x in m.layer_map if x == r) > 1}),
        "layers": layers,
    }


def _module(mv: ModuleVerdict, correction: tuple[float, float], ev: ModuleEvidence | None) -> dict:
    """``correction``: log10 of the exact-null family's test count, and of the REVIEW_ONLY family's."""
    sig = {id(m) for m in mv.significant}
    module = ev.module if ev is not None else None
    return {
        "name": mv.name, "kind": mv.kind, "family": mv.family, "parameters": mv.parameters,
        "param_fraction": _num(mv.param_fraction, 8), "status": mv.status, "reason": mv.reason,
        **_said("reason", mv.reason_key, mv.reason_args),
        "coverage": _num(mv.coverage, 6), "derived_parameters": mv.derived_parameters,
        "fixed_table_fraction": None if module is None else _num(fixed_parameters(module, mv.skipped) / max(module.parameters, 1), 6),
        "layers": len(mv.layers),
        "best_match": None if mv.best is None else {"reference": mv.best.reference, "reference_module": mv.best.reference_module},
        "matches": [_match(m, correction[m.statistic in REVIEW_ONLY], id(m) in sig, m is mv.best, module) for m in mv.matches],
        "baseline": _baseline(mv),
        "skipped": _group_skipped(mv.skipped),
    }


def _baseline(mv: ModuleVerdict) -> dict:
    """The empirical baseline beside the calibrated p-values: how the module scores against the
    reference modules it is *not* related to (the non-significant comparisons)."""
    sig = {id(m) for m in mv.significant}
    others = [m for m in mv.matches if m.decisive and id(m) not in sig and m.identical_fraction < 0.99 and m.statistic not in REVIEW_ONLY]
    return {"comparisons": len(others),
            "max_score": _num(max((m.score for m in others), default=None)),
            "max_z_score": _num(max((m.z for m in others), default=None), 3)}


def _group_skipped(skipped) -> list[dict]:
    """Comparisons that could not be made, grouped by reason (a module pair can skip hundreds of tensors)."""
    groups: dict[str, list[str]] = {}
    said = {}
    for s in skipped:
        groups.setdefault(s.reason, []).append(s.what)
        said.setdefault(s.reason, s)
    return [{"reason": reason, **_said("reason", said[reason].key, said[reason].args), "count": len(whats), "examples": whats[:3]}
            for reason, whats in groups.items()]


def _evidence(e: Evidence) -> dict:
    out = {k: v for k, v in dataclasses.asdict(e).items() if v is not None and k not in ("text_key", "text_args")}
    return {**out, **_said("text", e.text_key, e.text_args)}


def _said(field: str, key: str, args) -> dict:
    """A sentence's catalogue key and arguments beside its English text (``message`` ->
    ``message_key``, ``message_args``), so that any tool can write it in another language;
    absent for free text that is not the tool's own."""
    if not key:
        return {}
    text = Msg(key, args).as_json()
    return {f"{field}_key": text["key"], f"{field}_args": text["args"]}


def build_report(result: AuditResult, command: str | None = None) -> dict:
    """The report as a JSON-ready dict, validated against rules/schema/report.schema.json.

    ``command`` is the command line that reproduces this audit (the CLI passes it)."""
    # REVIEW_ONLY statistics are a family of their own (verdicts/modules.py): not among the exact-null tests
    tests = sum(1 for mv in result.modules for m in mv.matches if m.decisive and m.statistic not in REVIEW_ONLY)
    reviews = sum(1 for mv in result.modules for m in mv.matches if m.statistic in REVIEW_ONLY)
    evidence = {ev.module.name: ev for ev in result.facts.modules}
    modules = [_module(mv, (correction_for(tests), correction_for(reviews)), evidence.get(mv.name)) for mv in result.modules]
    weighed = sum(mv.evidence_parameters for mv in result.modules)
    fixed = sum(fixed_parameters(evidence[mv.name].module, mv.skipped) for mv in result.modules if mv.name in evidence)
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
        "created": created(result.created),
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
        "derived_module_fraction": _num(result.derived_module_fraction, 8),
        "significance": next((c.params.significance for c in result.pack.criteria if c.kind == "weights"), result.pack.significance),
        "tests": tests,
        "null_hypothesis": null_hypothesis(),
        "coverage": _num(sum(mv.compared_parameters for mv in result.modules) / weighed, 6) if weighed else None,
        "fixed_table_fraction": _num(fixed / max(sub.parameters, 1), 6),
        "modules": modules,
        "criteria": [
            {"id": r.id, "title": r.title, "kind": r.kind, "severity": r.severity, "status": r.status, "message": r.message,
             **_said("message", r.message_key, r.message_args),
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
        "architecture": _architecture(result.facts.architecture),
        "reproducibility": reproducibility(result, command),
    }
    validate_report(report)
    return report


def null_hypothesis() -> dict:
    """What the weights tests' p-values are computed against, said plainly: a model started from a
    reference's initial weights is not independent of it, whatever data it was trained on."""
    said = Msg("report.null_hypothesis")
    return {"hypothesis": "independent initialisation and training", "text": messages("en").say(said.as_json()),
            **_said("text", said.key, said.args)}


def correction_for(tests: int) -> float:
    return math.log10(max(tests, 1))


def created(stamp: str) -> str:
    """The report's date; SOURCE_DATE_EPOCH (reproducible builds) overrides the clock, so two
    runs on the same input give byte-identical reports."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).isoformat(timespec="seconds")
    return stamp


def reproducibility(result: AuditResult, command: str | None) -> dict:
    """What an evaluator needs to re-run the audit: the command, the versions, the digests."""
    versions = {"fromscratch": result.tool_version, "python": platform.python_version()}
    for pkg in ("torch", "numpy", "scipy", "safetensors"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    sub = result.submission
    spec = sub.id + (f"@{sub.revision}" if sub.revision else "") if sub.source_type == "huggingface" else sub.path
    return {"command": command or f"fromscratch audit {shlex.quote(spec)} --registry REGISTRY --rules {shlex.quote(result.pack.id)}",
            "versions": versions, "platform": platform.platform(terse=True)}


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


def _architecture(arch: Architecture) -> dict:
    """The architecture facts, with the summary's catalogue sentence beside its English text."""
    said = architecture_sentence(arch)
    return {**_plain(arch), **(_said("summary", said.key, said.args) if said else {})}


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
