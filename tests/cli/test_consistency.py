"""The same pair of models gives the same figures through `audit` and through `compare`."""

from __future__ import annotations

import json

import pytest

from checker.cli.main import main


@pytest.mark.xfail(strict=False, reason="needs the engine to seed its random splits from tensor content and shape and to use "
                                        "the same fingerprint rows in compare and audit (issue 9, lead's part)")
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
