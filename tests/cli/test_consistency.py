"""The same pair of models gives the same figures through `audit` and through `compare`."""

from __future__ import annotations

import json

from checker.cli.main import main


def test_audit_and_compare_agree_on_z_and_p(zoo, tmp_path, capsys):
    sub = zoo.save("consistency-composite", zoo.ft_vit, zoo.ind_lm)
    assert main(["audit", str(sub), "--registry", str(zoo.registry), "--out", str(tmp_path), "--format", "json"]) == 1
    audit_visual = next(m for m in json.loads((tmp_path / "report.json").read_text())["modules"] if m["name"] == "visual")
    a = next(x for x in audit_visual["matches"] if x["reference_module"] == "visual")
    capsys.readouterr()
    assert main(["compare", str(sub), str(zoo.root / "foreign-vlm"), "--format", "json"]) == 0
    cmp_visual = next(m for m in json.loads(capsys.readouterr().out)["modules"] if m["name"] == "visual")
    c = next(x for x in cmp_visual["matches"] if x["reference_module"] == "visual")
    assert c["layer_map"] == a["layer_map"]
    assert c["z_score"] == a["z_score"] and c["score"] == a["score"] and c["log10_p_value"] == a["log10_p_value"]
    assert c["layer_matrix"] == a["layer_matrix"]


def test_the_same_weights_under_two_registry_ids_give_the_same_figures(zoo, tmp_path):
    """Random choices depend on tensor shapes only, never on names or ids."""
    from checker.audit import audit
    from checker.references.registry import add_reference
    from checker.rules import load_pack

    reg = tmp_path / "reg"
    for rid in ("first-id", "another/name"):
        add_reference(str(zoo.root / "foreign-vlm"), reg, rid, license="apache-2.0")
    sub = zoo.save("two-ids", zoo.ft_vit, zoo.ind_lm)
    result = audit(str(sub), reg, load_pack())
    visual = next(m for m in result.modules if m.name == "visual")
    by_ref = {m.reference: m for m in visual.matches if m.reference_module == "visual"}
    a, b = by_ref["first-id"], by_ref["another/name"]
    assert (a.z, a.score, a.log10_p, a.layer_map) == (b.z, b.score, b.log10_p, b.layer_map)
