"""``to_context``: what every report template sees, derived from the canonical JSON only.

The HTML (and so the PDF) and the Markdown render this one context, in one
language, so the renderings cannot drift from the JSON or from each other.
"""

from __future__ import annotations

import copy
import re

from checker.metrics.anchors import ANCHOR_MIN_Z
from checker.report import svg
from checker.report.fmt import fmt_int, fmt_layer_map, fmt_p, fmt_pct, fmt_z
from checker.report.i18n import Messages, messages

FLAGGED = ("derived", "identical")
STATISTICS = ("heldout_row_pearson", "shared_token_pearson")
GLOSSARY = ("heldout_row_pearson", "shared_token_pearson", "hidden_gram_mantel", "rotation_aligned_row_pearson", "z", "p", "p_corrected", "coverage", "layer_map",
            "alignment", "scale", "units_moved", "weak", "baseline", "null")


def anchor(prefix: str, name: str) -> str:
    """An HTML id for a module or criterion (stable, ASCII, unique per prefix and name)."""
    return f"{prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


def label(m: Messages, group: str, value: str | None) -> str:
    return m.label(group, value)


_STAT_NAMES = re.compile(r"\b(heldout\\?_row\\?_pearson|shared\\?_token\\?_pearson|hidden\\?_gram\\?_mantel)\b")


def humanize(text: str, m: Messages) -> str:
    """The tool's own messages name statistics by identifier; a reader sees their readable names."""
    return _STAT_NAMES.sub(lambda g: m.label("stat", g.group(1)), text)


def best_match(module: dict) -> dict | None:
    b = module.get("best_match")
    if not b:
        return None
    return next((x for x in module["matches"] if x["reference"] == b["reference"] and x["reference_module"] == b["reference_module"]), None)


def alignment_adopted(hidden: dict) -> bool:
    """Whether the engine adopts this anchor alignment: only anchors agreeing far beyond chance
    (z >= ANCHOR_MIN_Z) replace the identity; below that no permutation is found, whatever was fitted."""
    z = hidden.get("anchor_z")
    return hidden.get("source") != "identity" and z is not None and z >= ANCHOR_MIN_Z


def _module_view(mod: dict, m: Messages, reason: str, skipped: list[str]) -> dict:
    """``reason`` and ``skipped`` (each skipped group's reason) are already written in ``m``'s language."""
    best = best_match(mod)
    view = {**mod, "reason": reason, "skipped": [{**s, "reason": text} for s, text in zip(mod.get("skipped", []), skipped)],
            "anchor": anchor("mod", mod["name"]), "best": best, "kind_label": label(m, "kind", mod["kind"]),
            "status_label": m.status(mod["status"]), "figures": None}
    if best is None:
        return view
    grid = best.get("layer_matrix")
    rec = best.get("recovered_alignment")
    view["stat_label"] = label(m, "stat", best["statistic"])
    view["heatmap"] = svg.heatmap(grid, best["layer_map"], m.t("fig.heatmap", module=mod["name"], reference=best["reference"]),
                                  m.t("fig.sub_layer"), m.t("fig.ref_layer")) if grid else ""
    view["null"] = svg.null_curve(best["z_score"], mod["baseline"]["max_z_score"] if mod["baseline"]["comparisons"] else None,
                                  {"title": m.t("fig.null_title"), "null": m.t("fig.null_label"),
                                   "observed": m.t("fig.observed"), "baseline": m.t("fig.baseline")})
    view["alignment"] = None if rec is None else {**rec, "adopted": alignment_adopted(rec["hidden"]), "min_anchor_z": ANCHOR_MIN_Z}
    view["weak"] = [{**w, "tensor_label": w.get("tensor") or (m.t("weak.one_of", names=", ".join(w["tensor_candidates"]))
                                                              if w.get("tensor_candidates") else m.t("weak.unnamed")),
                     "role_label": label(m, "role", w["role"])} for w in best.get("weak_evidence", [])]
    return view


def _summary(r: dict, modules: list[dict], m: Messages) -> dict:
    """The plain-language summary: the verdict, what was copied from what and how much, and what would change it."""
    sub = r["submission"]["id"]
    verdict = m.t(f"summary.verdict.{r['verdict']}", submission=sub, pack=r["rulepack"]["id"], n=len(r["registry"]))
    copied = []
    for mod in modules:
        b = mod["best"]
        if mod["status"] not in FLAGGED or b is None:
            continue
        key = "summary.identical" if mod["status"] == "identical" else "summary.derived"
        copied.append(m.t(key, module=mod["name"], kind=mod["kind_label"], share=fmt_pct(mod["param_fraction"]),
                          parameters=fmt_int(mod["parameters"]), reference=b["reference"], reference_module=b["reference_module"],
                          layers=fmt_layer_map(b["layer_map"]), p=fmt_p(b["p_value_corrected"], b["log10_p_value_corrected"]),
                          z=fmt_z(b["z_score"]), identical=fmt_pct(b["identical_fraction"], 1)))
    if copied:
        copied.append(m.t("summary.share", share=fmt_pct(r["derived_param_fraction"])))
    else:
        copied.append(m.t("summary.nothing_copied", n=len(r["registry"])))
    review = [mod["name"] for mod in modules if mod["status"] == "review"]
    if review:
        copied.append(m.t("summary.review_modules", modules=", ".join(review)))
    open_ = [mod["name"] for mod in modules if mod["status"] == "inconclusive"]
    if open_:
        copied.append(m.t("summary.open_modules", modules=", ".join(open_)))
    failed = [c for c in r["criteria"] if c["status"] == "fail"]
    changes = []
    flagged = [mod["name"] for mod in modules if mod["status"] in FLAGGED]
    if flagged:
        changes.append(m.t("summary.change.derived", modules=", ".join(flagged)))
    for c in failed:
        if c["kind"] in ("weights", "derived_share") and flagged:
            continue
        changes.append(m.t("summary.change.criterion", id=c["id"], title=c["title"]))
    if r["verdict"] == "inconclusive" or any(c["status"] == "inconclusive" for c in r["criteria"]):
        changes.append(m.t("summary.change.inconclusive"))
    changes.append(m.t("summary.change.registry", n=len(r["registry"])))
    return {"verdict": verdict, "copied": copied, "changes": changes,
            "failed": ", ".join(c["id"] for c in failed)}


def _criteria(r: dict, modules: list[dict], m: Messages, said: list[dict]) -> list[dict]:
    names = {mod["name"]: mod["anchor"] for mod in modules}
    out = []
    for c, text in zip(r["criteria"], said):
        links = []
        for e in c["evidence"]:
            mod = e.get("module")
            if mod in names and (mod, names[mod]) not in links:
                links.append((mod, names[mod]))
        section = {"weights": "sec-weights", "derived_share": "sec-weights", "license": "sec-licenses", "lineage": "sec-lineage",
                   "disclosure": "sec-disclosure", "tokenizer": "sec-tokenizer", "architecture": "sec-cover"}.get(c["kind"], "sec-criteria")
        # A finding the catalogue cannot write (free text, not the tool's) keeps a lead in the report's language.
        lead = m.t(f"finding.{c['status']}") if m.lang != "en" and not text["keyed"] else ""
        out.append({**c, "message": text["message"], "evidence": [{**e, "text": t} for e, t in zip(c["evidence"], text["evidence"])],
                    "anchor": anchor("crit", c["id"]), "status_label": m.status(c["status"]),
                    "severity_label": label(m, "severity", c["severity"]), "kind_label": label(m, "ckind", c["kind"]),
                    "lead": lead, "links": links, "section": section})
    return out


def _not_evaluated(criteria: list[dict], modules: list[dict], m: Messages) -> list[dict]:
    rows = []
    for mod in modules:
        if mod["status"] in ("inconclusive", "review"):
            rows.append({"what": mod["name"], "reason": mod["reason"], "anchor": mod["anchor"]})
        for s in mod["skipped"]:
            rows.append({"what": m.t("notev.tensors", count=s["count"], module=mod["name"], examples=", ".join(s["examples"])),
                         "reason": s["reason"], "anchor": mod["anchor"]})
        if mod.get("coverage") is not None and mod["coverage"] < 0.999 and mod["status"] not in ("inconclusive",):
            rows.append({"what": mod["name"], "reason": m.t("notev.coverage", coverage=fmt_pct(mod["coverage"], 1)), "anchor": mod["anchor"]})
    for c in criteria:
        if c["status"] in ("inconclusive", "not_applicable"):
            rows.append({"what": c["id"], "reason": c["message"], "anchor": c["anchor"]})
    return rows


def sentence(obj: dict, field: str, m: Messages) -> tuple[str, bool]:
    """``obj[field]`` (a finding, a reason, an evidence line) in ``m``'s language: written from the
    catalogue when the report gives its key (``field_key``, ``field_args``), else the text as it is
    (free text that is not the tool's own). Returns the text and whether the catalogue wrote it."""
    key = obj.get(f"{field}_key")
    if key:
        return humanize(m.say({"key": key, "args": obj.get(f"{field}_args") or {}}), m), True
    return humanize(obj[field], m), False


def deep_map(value, fn):
    """Every string of a JSON value through ``fn`` (dict keys excepted)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: deep_map(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_map(v, fn) for v in value]
    return value


def to_context(report: dict, lang: str = "en", escape=None) -> dict:
    """What every template sees: the report itself (never modified), the catalogue ``m``, and derived views.

    ``escape`` (Markdown) applies to every string of the report and to the sentences written from
    the catalogue, which are written from the unescaped arguments first."""
    m = messages(lang)
    esc = escape or (lambda text: text)
    r = deep_map(copy.deepcopy(report), esc) if escape else copy.deepcopy(report)
    reasons = [esc(sentence(mod, "reason", m)[0]) for mod in report["modules"]]
    said = []
    for c in report["criteria"]:
        text, keyed = sentence(c, "message", m)
        said.append({"message": esc(text), "keyed": keyed, "evidence": [esc(sentence(e, "text", m)[0]) for e in c["evidence"]]})
    skipped = [[esc(sentence(s, "reason", m)[0]) for s in mod.get("skipped", [])] for mod in report["modules"]]
    modules = [_module_view(mod, m, reason, skips) for mod, reason, skips in zip(r["modules"], reasons, skipped)]
    weights_modules = [mod for mod in modules if mod["best"] is not None]
    criteria = _criteria(r, modules, m, said)
    counts: dict[str, int] = {}
    for c in r["criteria"]:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    return {
        "r": r, "m": m, "lang": lang, "modules": modules, "evidence_modules": weights_modules,
        "criteria": criteria, "criteria_counts": counts, "summary": _summary(r, modules, m),
        "flagged": [mod for mod in modules if mod["status"] in FLAGGED],
        "not_evaluated": _not_evaluated(criteria, modules, m),
        "glossary": [(m.t(f"gloss.{k}.term"), m.t(f"gloss.{k}.text")) for k in GLOSSARY],
        "verdict_label": m.status(r["verdict"]),
        "architecture_summary": esc(sentence(report["architecture"], "summary", m)[0]),
        # reports written before the field existed were tested against the same null
        "null_hypothesis": esc(sentence(report["null_hypothesis"], "text", m)[0] if "null_hypothesis" in report
                               else m.t("report.null_hypothesis")),
    }
