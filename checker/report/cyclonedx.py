"""CycloneDX 1.6 ML-BOM of an audit, built with cyclonedx-python-lib from the JSON report.

The BOM carries the model component (its files with SHA-256 hashes and its
licenses), the references its derived modules come from as pedigree
ancestors, the rule pack as a standard with one requirement per criterion, and
each criterion result as a claim in ``declarations`` with its evidence.
cyclonedx-python-lib does not model ``declarations`` yet, so that part is added
to the serialised document, which is then validated against the official 1.6
schema.
"""

from __future__ import annotations

import json

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.model.definition import Definitions, Requirement, Standard
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.spdx import fixup_id
from cyclonedx.validation.json import JsonStrictValidator

from checker.errors import ReportError

MODEL_REF = "submission-model"
CONFORMANCE = {"pass": 1.0, "warn": 0.5, "not_applicable": 1.0, "inconclusive": 0.0, "fail": 0.0}


def _license(lic_id: str) -> DisjunctiveLicense:
    spdx = fixup_id(lic_id)
    return DisjunctiveLicense(id=spdx) if spdx else DisjunctiveLicense(name=lic_id)


def build_bom(report: dict) -> str:
    sub = report["submission"]
    detected = sorted({lic["detected"] for lic in report["licenses"] if lic["detected"] != "unknown"})
    files = [Component(type=ComponentType.FILE, name=f["path"], bom_ref=f"file-{i}",
                       hashes=[HashType(alg=HashAlgorithm.SHA_256, content=f["sha256"])]) for i, f in enumerate(sub["files"])]
    registry = {e["id"]: e for e in report["registry"]}
    ancestors = []
    for ref_id in sorted({m["best_match"]["reference"] for m in report["modules"]
                          if m["status"] in ("derived", "identical") and m.get("best_match")}):
        e = registry.get(ref_id, {})
        mods = [m["name"] for m in report["modules"] if m.get("best_match") and m["best_match"]["reference"] == ref_id
                and m["status"] in ("derived", "identical")]
        ancestors.append(Component(
            type=ComponentType.MACHINE_LEARNING_MODEL, name=ref_id, version=e.get("revision"), bom_ref=f"ancestor-{ref_id}",
            licenses=[_license(e["license"])] if e.get("license") else None,
            description=f"detected by weights: modules {', '.join(mods)} derive from it",
        ))
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL, name=sub["id"], version=sub.get("revision"), bom_ref=MODEL_REF,
        licenses=[_license(x) for x in detected] or None, components=files,
        pedigree=Pedigree(ancestors=ancestors) if ancestors else None,
        properties=[Property(name="fromscratch:verdict", value=report["verdict"]),
                    Property(name="fromscratch:derived_param_fraction", value=str(report["derived_param_fraction"])),
                    Property(name="fromscratch:parameters", value=str(sub["parameters"]))],
    )
    pack = report["rulepack"]
    standard = Standard(
        bom_ref="rulepack", name=pack.get("title", pack["id"]), version=pack["version"], description=pack.get("clause"),
        owner=pack.get("programme"),
        requirements=[Requirement(bom_ref=f"requirement-{c['id']}", identifier=c["id"], title=c["title"], text=c["title"])
                      for c in report["criteria"]],
    )
    bom = Bom(metadata=BomMetaData(component=model, properties=[Property(name="fromscratch:rulepack_sha256", value=pack["sha256"])]),
              definitions=Definitions(standards=[standard]))
    doc = json.loads(JsonV1Dot6(bom).output_as_string())
    doc["declarations"] = _declarations(report)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    validate_bom(text)
    return text


def _declarations(report: dict) -> dict:
    claims, evidence, mapping = [], [], []
    for c in report["criteria"]:
        refs = []
        for i, e in enumerate(c["evidence"][:50]):
            ref = f"evidence-{c['id']}-{i}"
            refs.append(ref)
            evidence.append({"bom-ref": ref, "propertyName": f"fromscratch:{c['kind']}", "description": e["text"],
                             "created": report["created"]})
        claim = {"bom-ref": f"claim-{c['id']}", "target": MODEL_REF, "predicate": c["title"],
                 "reasoning": f"{c['status']}: {c['message']}", "evidence": refs}
        claims.append(claim)
        mapping.append({"requirement": f"requirement-{c['id']}", "claims": [claim["bom-ref"]],
                        "conformance": {"score": CONFORMANCE.get(c["status"], 0.0), "rationale": c["message"]}})
    return {
        "assessors": [{"bom-ref": "assessor", "thirdParty": False, "organization": {"name": f"fromscratch {report['tool']['version']}"}}],
        "attestations": [{"summary": f"{report['rulepack']['id']} v{report['rulepack']['version']}: verdict {report['verdict']}",
                          "assessor": "assessor", "map": mapping}],
        "claims": claims,
        "evidence": evidence,
    }


def validate_bom(text: str) -> None:
    err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if err is not None:
        raise ReportError("report.cdx.json", f"does not validate against CycloneDX 1.6: {err}")
