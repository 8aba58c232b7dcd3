"""The licensing half of the clause: licenses, lineage, disclosure, waivers, CycloneDX."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from checker import synth
from checker.cli.main import main
from checker.references.registry import add_reference

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


@pytest.fixture(scope="module")
def registry(zoo, tmp_path_factory):
    reg = tmp_path_factory.mktemp("lic-registry")
    add_reference(str(zoo.root / "foreign-vlm"), reg, ref_id="meta-llama/Llama-3.1-8B", license="llama3.1")
    return reg


def _submission(zoo, tmp_path, case: str, models) -> Path:
    folder = tmp_path / Path(case).name
    shutil.copytree(GOLDEN / case, folder, ignore=shutil.ignore_patterns("expected.yaml"))
    state = {}
    for m in models:
        state.update(synth.state(m))
    synth.save_checkpoint(folder, state, zoo.vocab)
    return folder


def test_llama_31_derivative_reports_license_obligations_lineage_and_failures(zoo, registry, tmp_path):
    sub = _submission(zoo, tmp_path, "sovereign-ai-2025/llama-derivative", (zoo.ft_lm,))
    out = tmp_path / "out"
    assert main(["audit", str(sub), "--registry", str(registry), "--out", str(out), "--format", "json,html,md,cyclonedx"]) == 1
    report = json.loads((out / "report.json").read_text())
    lic = next(x for x in report["licenses"] if x["file"] == "LICENSE")
    assert lic["detected"] == "llama3.1" and lic["confidence"] > 0.9
    clauses = {(o["kind"], o["clause"]) for o in lic["obligations"]}
    assert any(k == "field_of_use" and "700 million monthly active users" in c for k, c in clauses)
    assert any(k in ("naming", "attribution") and "Built with Llama" in c for k, c in clauses)
    assert report["lineage"]["declared_ancestors"] == ["meta-llama/Llama-3.1-8B"]
    assert {d["module"] for d in report["lineage"]["detected"]} >= {"model"}
    crit = {c["id"]: c for c in report["criteria"]}
    assert crit["L1"]["status"] == "fail" and "third-party model license" in crit["L1"]["message"]
    assert crit["L2"]["status"] == "fail" and "third-party pre-trained ancestor declared: meta-llama/Llama-3.1-8B" in crit["L2"]["message"]
    html = (out / "report.html").read_text()
    assert "700 million monthly active users" in html and "meta-llama/Llama-3.1-8B" in html
    bom = (out / "report.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom) is None
    doc = json.loads(bom)
    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert [a["name"] for a in model["pedigree"]["ancestors"]] == ["meta-llama/Llama-3.1-8B"]
    assert {c["bom-ref"] for c in doc["declarations"]["claims"]} == {f"claim-{c}" for c in crit}


def test_apache_original_passes_the_licensing_criteria(zoo, registry, tmp_path):
    sub = _submission(zoo, tmp_path, "sovereign-ai-2025/apache-original", (zoo.ind_vit, zoo.ind_lm))
    out = tmp_path / "out"
    assert main(["audit", str(sub), "--registry", str(registry), "--out", str(out), "--format", "json,cyclonedx"]) == 0
    crit = {c["id"]: c["status"] for c in json.loads((out / "report.json").read_text())["criteria"]}
    assert crit["L1"] == crit["L2"] == crit["L3"] == "pass"
    assert "pedigree" not in json.loads((out / "report.cdx.json").read_text())["metadata"]["component"]


def _waiver_file(tmp_path, expires: str) -> Path:
    p = tmp_path / f"waivers-{expires}.yaml"
    p.write_text(yaml.safe_dump({"waivers": [{"criterion": "L3", "owner": "Programme office (J. Kim)",
                                               "reason": "inventory promised for the next milestone", "expires": expires}]}))
    return p


def test_waiver_is_shown_and_expires(zoo, registry, tmp_path):
    sub = _submission(zoo, tmp_path, "self-check/unknown-license", (zoo.ind_vit, zoo.ind_lm))
    (sub / "THIRD_PARTY.yaml").write_text("components:\n  - {name: some/encoder, role: encoder}\n")
    base = ["audit", str(sub), "--registry", str(registry), "--rules", "sovereign-ai-2025", "--format", "json"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 1  # L3 fails: revision and license missing (and L1: unknown)
    main(base + ["--out", str(tmp_path / "b"), "--waivers", str(_waiver_file(tmp_path, "2999-01-01"))])
    l3 = next(c for c in json.loads((tmp_path / "b" / "report.json").read_text())["criteria"] if c["id"] == "L3")
    assert l3["status"] == "warn" and l3["waiver"]["status_before_waiver"] == "fail"
    assert "missing revision, license" in l3["message"] and "waived by Programme office (J. Kim)" in l3["message"]
    main(base + ["--out", str(tmp_path / "c"), "--waivers", str(_waiver_file(tmp_path, "2001-01-01"))])
    l3 = next(c for c in json.loads((tmp_path / "c" / "report.json").read_text())["criteria"] if c["id"] == "L3")
    assert l3["status"] == "fail" and "expired on 2001-01-01" in l3["message"]


def test_malformed_inventory_is_an_input_error(zoo, registry, tmp_path, capsys):
    sub = _submission(zoo, tmp_path, "sovereign-ai-2025/apache-original", (zoo.ind_lm,))
    (sub / "THIRD_PARTY.yaml").write_text("components:\n  - name: x\n    role: donor\n")
    assert main(["audit", str(sub), "--registry", str(registry), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"fromscratch: {sub / 'THIRD_PARTY.yaml'}:3: 'donor' is not one of 'initial_weights', 'encoder', 'decoder', 'adapter', 'tokenizer', 'teacher', 'dataset', 'code', 'other' (at $.components[0].role)"
    assert not (tmp_path / "o").exists()


def test_pack_with_unknown_license_id_is_rejected(tmp_path):
    pack = tmp_path / "p.yaml"
    pack.write_text("id: p\nversion: '1.0'\ntitle: t\nprogramme: {name: P, clause: C}\ndefaults: {}\ncriteria:\n"
                    "  - id: L1\n    title: l\n    kind: license\n    severity: critical\n    params:\n      allow: [Apache-2.0, apache-3.0]\n")
    assert main(["rules", "validate", str(pack)]) == 2


def test_scoped_waiver_covers_only_its_module(zoo, registry, tmp_path):
    sub = _submission(zoo, tmp_path, "self-check/undeclared-derivative", (zoo.ft_vit, zoo.ind_lm))
    waivers = tmp_path / "w.yaml"

    def w1_with(module: str):
        waivers.write_text(yaml.safe_dump({"waivers": [
            {"criterion": "W1", "module": module, "owner": "J. Kim", "reason": "accepted encoder", "expires": "2999-01-01"}]}))
        out = tmp_path / module
        main(["audit", str(sub), "--registry", str(registry), "--rules", "self-check", "--out", str(out), "--format", "json", "--waivers", str(waivers)])
        return next(c for c in json.loads((out / "report.json").read_text())["criteria"] if c["id"] == "W1")

    other = w1_with("some-other-module")
    assert other["status"] == "fail" and "does not cover this finding" in other["message"]
    partial = w1_with("visual")  # visual.merger is flagged too and stays uncovered
    assert partial["status"] == "fail"


def test_scoped_waivers_covering_every_flagged_module_turn_w1_into_a_warning(zoo, registry, tmp_path):
    sub = _submission(zoo, tmp_path, "self-check/undeclared-derivative", (zoo.ft_vit, zoo.ind_lm))

    def w1_with(name: str, *scopes: dict):
        waivers = tmp_path / f"{name}.yaml"
        waivers.write_text(yaml.safe_dump({"waivers": [
            {"criterion": "W1", **scope, "owner": "J. Kim", "reason": "accepted encoder", "expires": "2999-01-01"} for scope in scopes]}))
        main(["audit", str(sub), "--registry", str(registry), "--rules", "self-check", "--out", str(tmp_path / name), "--format", "json",
              "--waivers", str(waivers)])
        report = json.loads((tmp_path / name / "report.json").read_text())
        flagged = {m["name"] for m in report["modules"] if m["status"] in ("derived", "identical")}
        return flagged, next(c for c in report["criteria"] if c["id"] == "W1")

    flagged, w1 = w1_with("both-modules", {"module": "visual"}, {"module": "visual.merger"})
    assert flagged == {"visual", "visual.merger"}  # every flagged module has its own scoped waiver
    assert w1["status"] == "warn" and w1["waiver"]["active"] and w1["waiver"]["status_before_waiver"] == "fail"
    assert w1["waiver"]["module"] == "visual" and "[waived for visual / any reference by J. Kim until 2999-01-01" in w1["message"]
    assert w1["message_key"] == "v.waiver.applied_scoped"
    _, by_ref = w1_with("reference", {"reference": "meta-llama/Llama-3.1-8B"})  # one waiver for the one reference they come from
    assert by_ref["status"] == "warn" and by_ref["waiver"]["reference"] == "meta-llama/Llama-3.1-8B"


def test_inherited_license_the_catalogue_does_not_know_is_not_a_pass(zoo, tmp_path):
    reg = tmp_path / "reg"
    add_reference(str(zoo.root / "foreign-vlm"), reg, ref_id="vendor/vlm", license="my-custom-eula")
    sub = _submission(zoo, tmp_path, "sovereign-ai-2025/apache-original", (zoo.ft_vit, zoo.ind_lm))
    main(["audit", str(sub), "--registry", str(reg), "--out", str(tmp_path / "o"), "--format", "json"])
    l1 = next(c for c in json.loads((tmp_path / "o" / "report.json").read_text())["criteria"] if c["id"] == "L1")
    assert l1["status"] == "fail" and "my-custom-eula" in l1["message"]


def test_pack_naming_an_unregistered_reference_is_an_input_error(zoo, registry, tmp_path, capsys):
    pack = tmp_path / "p.yaml"
    pack.write_text("id: p\nversion: '1.0'\ntitle: t\nprogramme: {name: P, clause: C}\ndefaults: {}\ncriteria:\n"
                    "  - {id: W1, title: w, kind: weights, severity: critical, params: {references: [vendor/lm-typo]}}\n")
    sub = _submission(zoo, tmp_path, "sovereign-ai-2025/apache-original", (zoo.ref_lm,))
    assert main(["audit", str(sub), "--registry", str(registry), "--rules", str(pack), "--out", str(tmp_path / "o")]) == 2
    assert "criterion W1 names reference 'vendor/lm-typo', which is not registered" in capsys.readouterr().err
