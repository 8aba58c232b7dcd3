"""``fromscratch compare A B``: the engine's full view of one pair, as a JSON-ready dict."""

from __future__ import annotations

from pathlib import Path

from checker.metrics.engine import compare
from checker.metrics.interface import Match
from checker.modules import split_modules
from checker.references.fingerprint import build_fingerprint
from checker.report.json_report import _match, _num, recovered_alignment
from checker.scanners.tokenizer import compare_vocabularies, model_vocabulary
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


def compare_models(a: str, b: str) -> dict:
    ra, rb = open_checkpoint(a), open_checkpoint(b)
    pa, pb = Path(a), Path(b)
    va = model_vocabulary(pa if pa.is_dir() else pa.parent, ra)
    vb = model_vocabulary(pb if pb.is_dir() else pb.parent, rb)
    fp = build_fingerprint(rb, vb, str(b), k_rows=COMPARE_ROWS)
    evidence = compare(ra, split_modules(ra.tensors()), va, [(str(b), fp)])
    modules = []
    for ev in evidence:
        matches = []
        for m in ev.matches:
            d = _match(m, 0.0, False, True)
            d.pop("p_value_corrected", None)
            d.pop("log10_p_value_corrected", None)
            d.pop("significant", None)
            d["layer_matrix"] = _grid(m)
            d["recovered_alignment"] = recovered_alignment(m)
            matches.append(d)
        modules.append({"name": ev.module.name, "kind": ev.module.kind, "parameters": ev.module.parameters,
                        "matches": matches, "skipped": [{"what": s.what, "reason": s.reason} for s in ev.skipped]})
    tok = None
    if va is not None and vb is not None:
        t = compare_vocabularies(va, vb, str(b))
        tok = {"vocab_jaccard": t.vocab_jaccard, "same_id_fraction": t.same_id_fraction, "merges_agreement": t.merges_agreement}
    return {"schema_version": 1, "a": str(a), "b": str(b), "modules": modules, "tokenizer": tok,
            "note": "p-values are per module pair (Bonferroni over layer pairs), not corrected across modules"}
