"""``fromscratch compare A B``: the engine's full view of one pair, as a JSON-ready dict."""

from __future__ import annotations

from pathlib import Path

from checker.metrics.engine import compare
from checker.metrics.interface import Match
from checker.modules import split_modules
from checker.references.fingerprint import build_fingerprint
from checker.report.json_report import _match, _num
from checker.scanners.tokenizer import compare_vocabularies, read_vocabulary
from checker.weights import open_checkpoint

#: B is fingerprinted on the fly with more rows than a registry entry keeps.
COMPARE_ROWS = 512


def _grid(m: Match) -> dict:
    subs = sorted({c.sub_layer for c in m.cells if c.sub_layer is not None})
    refs = sorted({c.ref_layer for c in m.cells if c.ref_layer is not None})
    z = {(c.sub_layer, c.ref_layer): c for c in m.cells if c.roles}
    return {
        "sub_layers": subs, "ref_layers": refs,
        "z": [[_num(z[(s, r)].z, 2) if (s, r) in z else None for r in refs] for s in subs],
        "score": [[_num(z[(s, r)].score, 4) if (s, r) in z else None for r in refs] for s in subs],
    }


def _recovered(m: Match) -> dict:
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


def compare_models(a: str, b: str) -> dict:
    ra, rb = open_checkpoint(a), open_checkpoint(b)
    pa, pb = Path(a), Path(b)
    va = read_vocabulary(pa if pa.is_dir() else pa.parent)
    vb = read_vocabulary(pb if pb.is_dir() else pb.parent)
    fp = build_fingerprint(rb, vb, str(b), k_rows=COMPARE_ROWS)
    evidence = compare(ra, split_modules(ra.tensors()), va, [(str(b), fp)])
    modules = []
    for ev in evidence:
        matches = []
        for m in ev.matches:
            d = _match(m, 0.0, False, True)
            d.pop("p_value_corrected", None)
            d.pop("significant", None)
            d["layer_matrix"] = _grid(m)
            d["recovered_alignment"] = _recovered(m)
            matches.append(d)
        modules.append({"name": ev.module.name, "kind": ev.module.kind, "parameters": ev.module.parameters,
                        "matches": matches, "skipped": [{"what": s.what, "reason": s.reason} for s in ev.skipped]})
    tok = None
    if va is not None and vb is not None:
        t = compare_vocabularies(va, vb, str(b))
        tok = {"vocab_jaccard": t.vocab_jaccard, "same_id_fraction": t.same_id_fraction, "merges_agreement": t.merges_agreement}
    return {"schema_version": 1, "a": str(a), "b": str(b), "modules": modules, "tokenizer": tok,
            "note": "p-values are per module pair (Bonferroni over layer pairs), not corrected across modules"}
