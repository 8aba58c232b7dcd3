"""``fromscratch compare A B``: the engine's full view of one pair (``audit.compare_pair``), as a JSON-ready dict."""

from __future__ import annotations

from checker.audit import PairComparison
from checker.report.context import ANCHOR_MIN_Z, alignment_adopted
from checker.report.json_report import _group_skipped, _match, _num, layer_matrix, recovered_alignment
from checker.verdicts.shares import coverage


def build_compare_report(pair: PairComparison) -> dict:
    modules = []
    for ev in pair.evidence:
        matches = []
        for m in ev.matches:
            d = _match(m, 0.0, False, True, ev.module)
            d.pop("p_value_corrected", None)
            d.pop("log10_p_value_corrected", None)
            d.pop("significant", None)
            d["layer_matrix"] = layer_matrix(m)
            d["recovered_alignment"] = recovered_alignment(m)
            _adoption(d)
            matches.append(d)
        modules.append({"name": ev.module.name, "kind": ev.module.kind, "parameters": ev.module.parameters,
                        "coverage": _num(coverage(ev.module, ev.matches, ev.skipped), 6),
                        "matches": matches, "skipped": _group_skipped(ev.skipped)})
    t = pair.tokenizer
    tok = None if t is None else {"vocab_jaccard": t.vocab_jaccard, "same_id_fraction": t.same_id_fraction,
                                  "merges_agreement": t.merges_agreement}
    return {"schema_version": 1, "min_anchor_z": ANCHOR_MIN_Z, "a": pair.a, "b": pair.b, "modules": modules, "tokenizer": tok,
            "note": "p-values are per module pair (Bonferroni over layer pairs), not corrected across modules"}


def _adoption(d: dict) -> None:
    """An anchor alignment counts as found only when the engine would adopt it (anchor z at least
    ANCHOR_MIN_Z); a fit below that (say z 1.5 between unrelated models) is no permutation found:
    its anchors and z stay, its permutation and sign flips do not."""
    hidden, short = d["recovered_alignment"]["hidden"], d["alignment"]
    adopted = alignment_adopted(hidden)
    for a in (hidden, short):
        a["adopted"] = adopted
        if not adopted:
            a.update(permuted=False, sign_flips=0)
    if not adopted:
        hidden["dims_moved"] = 0
        short["permutation"] = []
