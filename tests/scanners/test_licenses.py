"""License catalogue, detector and folder scanner.

Every reference text is detected whole, as a three-paragraph excerpt from its
middle, re-wrapped with mangled whitespace, and pasted into a README's license
section. Near-identical siblings (Llama 3.1/3.2/3.3/4, Qwen and Qwen research,
the two Gemma terms) must each come out as themselves; text that is none of
them must come out as "unknown".
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from checker.errors import RulePackError, ScanError
from checker.resources import rules_dir
from checker.scanners.licenses import (
    OBLIGATION_KINDS,
    UNKNOWN,
    LicenseFinding,
    Obligation,
    catalogue,
    detect_license,
    detect_licenses,
    find_mentions,
    obligations_for,
    parse_license_expression,
    scan_licenses,
)

LICENSES_DIR = rules_dir() / "licenses"
CATALOGUE = catalogue()
IDS = [lic.id for lic in CATALOGUE.licenses]
LLAMAS = ["llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4"]
QWEN = "LicenseRef-scancode-qwen-2024"
QWEN_RESEARCH = "LicenseRef-scancode-qwen-research-2024"
TONGYI = "LicenseRef-scancode-tongyi-qianwen-2023"
TONGYI_RESEARCH = "LicenseRef-fromscratch-tongyi-qianwen-research-2023"
GEMMA_2024 = "LicenseRef-scancode-gemma-tou-2024-04-01"
GEMMA_2025 = "LicenseRef-scancode-gemma-tou-2025-03-24"

GPL_EXCERPT = """\
                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007

 Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>
 Everyone is permitted to copy and distribute verbatim copies
 of this license document, but changing it is not allowed.

                            Preamble

  The GNU General Public License is a free, copyleft license for
software and other kinds of works.

  The licenses for most software and other practical works are designed
to take away your freedom to share and change the works.  By contrast,
the GNU General Public License is intended to guarantee your freedom to
share and change all versions of a program--to make sure it remains free
software for all its users.  We, the Free Software Foundation, use the
GNU General Public License for most of our software; it applies also to
any other work released this way by its authors.  You can apply it to
your programs, too.

  15. Disclaimer of Warranty.

  THERE IS NO WARRANTY FOR THE PROGRAM, TO THE EXTENT PERMITTED BY
APPLICABLE LAW.  EXCEPT WHEN OTHERWISE STATED IN WRITING THE COPYRIGHT
HOLDERS AND/OR OTHER PARTIES PROVIDE THE PROGRAM "AS IS" WITHOUT WARRANTY
OF ANY KIND, EITHER EXPRESSED OR IMPLIED, INCLUDING, BUT NOT LIMITED TO,
THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR
PURPOSE.  THE ENTIRE RISK AS TO THE QUALITY AND PERFORMANCE OF THE PROGRAM
IS WITH YOU.  SHOULD THE PROGRAM PROVE DEFECTIVE, YOU ASSUME THE COST OF
ALL NECESSARY SERVICING, REPAIR OR CORRECTION.
"""

BSD_3 = """\
Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED.
"""

PROSE = """\
We trained this model on a mixture of public web text, code and books for
three weeks on our own cluster. The tokenizer was learned from the same data.
Evaluation results on standard benchmarks are reported below, together with
the hyper-parameters and the learning-rate schedule we used.
"""


def text_of(license_id: str) -> str:
    return CATALOGUE.get(license_id).text


def collapse(text: str) -> str:
    return " ".join(text.split())


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def middle_excerpt(text: str) -> str:
    """Three paragraphs from the middle, more when they are under 60 words (list items)."""
    paras = paragraphs(text)
    start, count = max(0, len(paras) // 2 - 1), 3
    while len(" ".join(paras[start : start + count]).split()) < 60 and start + count < len(paras):
        count += 1
    return "\n\n".join(paras[start : start + count])


def mangle(text: str, seed: int) -> str:
    """The same words with every gap replaced by random whitespace (re-wrapped, tabs, CRLF)."""
    rng = random.Random(seed)
    gaps = [" ", "  ", "\n", "\t", " \n    ", "\r\n", "\n\n"]
    return "".join(word + rng.choice(gaps) for word in text.split())


def readme_with(text: str) -> str:
    return (
        "---\nlicense: other\nlicense_name: custom\n---\n# Our model\n\nA model we trained ourselves.\n\n"
        "## Usage\n\n```python\nfrom transformers import AutoModel\nmodel = AutoModel.from_pretrained('org/model')\n```\n\n"
        f"## License\n\n{text}\n\n## Citation\n\n```\n@misc{{ours, title={{Our model}}}}\n```\n"
    )


def words(text: str) -> str:
    """Words without list markers such as "(l)" or "2.", to compare wording only."""
    return " ".join(w for w in re.findall(r"\w+", text.lower()) if len(w) > 1)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- catalogue


def test_catalogue_validates_against_its_schema():
    schema = json.loads((rules_dir() / "schema" / "license-catalogue.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load((LICENSES_DIR / "catalogue.yaml").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []


def test_catalogue_ids():
    assert IDS == [
        "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4",
        GEMMA_2024, GEMMA_2025, QWEN, QWEN_RESEARCH, TONGYI, TONGYI_RESEARCH,
        "LicenseRef-scancode-deepseek-la-1.0",
        "bigscience-openrail-m", "bigscience-bloom-rail-1.0", "creativeml-openrail-m",
        "LicenseRef-scancode-exaone-ai-model-1.1-nc", "LicenseRef-scancode-falcon-2-11b-1.0",
        "LicenseRef-fromscratch-chatglm3-6b", "LicenseRef-fromscratch-codegeex4",
        "Apache-2.0", "MIT", "CC-BY-NC-4.0",
    ]  # fmt: skip


def test_every_reference_text_is_catalogued_with_its_provenance():
    sources = json.loads((LICENSES_DIR / "texts" / "SOURCES.json").read_text(encoding="utf-8"))["files"]
    texts = sorted(p.name for p in (LICENSES_DIR / "texts").glob("*.txt"))
    assert sorted(lic.corpus_file for lic in CATALOGUE.licenses) == texts
    assert sorted(entry["file"] for entry in sources) == texts
    for entry in sources:
        blob = (LICENSES_DIR / "texts" / entry["file"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"], entry["file"]


@pytest.mark.parametrize(
    "license_id,clause",
    [(lic.id, ob.clause) for lic in CATALOGUE.licenses for ob in lic.obligations],
)
def test_every_obligation_clause_is_verbatim_in_its_text(license_id, clause):
    assert collapse(clause) in collapse(text_of(license_id))


def test_obligation_kinds_are_the_known_ones_and_model_licenses_have_some():
    for lic in CATALOGUE.licenses:
        assert {ob.kind for ob in lic.obligations} <= set(OBLIGATION_KINDS)
        assert lic.obligations, lic.id


def test_obligations_an_evaluator_needs():
    def clauses(license_id: str, kind: str) -> str:
        return " | ".join(ob.clause for ob in obligations_for(license_id) if ob.kind == kind)

    for version in ("llama3.1", "llama3.2", "llama3.3", "llama4"):
        assert "“Built with Llama”" in clauses(version, "naming")
        assert "include “Llama” at the beginning of any such AI model name" in clauses(version, "naming")
        assert "greater than 700 million monthly active users" in clauses(version, "field_of_use")
        assert "Acceptable Use Policy" in clauses(version, "acceptable_use_policy")
    assert "“Built with Meta Llama 3”" in clauses("llama3", "naming")
    assert "improve any other large language model" in clauses("llama2", "use_restrictions")
    assert "FOR NON-COMMERCIAL PURPOSES ONLY" in clauses(QWEN_RESEARCH, "non_commercial")
    assert clauses(QWEN, "non_commercial") == ""
    assert "100 million monthly active users" in clauses(QWEN, "field_of_use")
    assert "distillation methods" in clauses(GEMMA_2025, "share_alike")
    assert "NonCommercial purposes only" in clauses("CC-BY-NC-4.0", "non_commercial")
    assert CATALOGUE.get("llama3.1").third_party_model_license is True
    assert CATALOGUE.get("Apache-2.0").third_party_model_license is False


def test_obligations_for_unknown_and_bad_ids():
    assert obligations_for(UNKNOWN) == ()
    assert all(isinstance(ob, Obligation) for ob in obligations_for("MIT"))
    with pytest.raises(ScanError) as err:
        obligations_for("lama3.3")
    assert str(err.value).endswith(": no license 'lama3.3' in the catalogue; did you mean 'llama3.3'?")


def test_lookup_by_alias_and_link():
    assert CATALOGUE.lookup("Qwen-Research").id == QWEN_RESEARCH
    assert CATALOGUE.lookup("apache-2.0").id == "Apache-2.0"
    assert CATALOGUE.lookup("gemma").id == GEMMA_2025
    assert CATALOGUE.lookup("llama3.1").id == "llama3.1"
    assert CATALOGUE.lookup("LicenseRef-scancode-llama-4-cla-2025").id == "llama4"
    assert CATALOGUE.lookup("gpl-3.0") is None
    assert CATALOGUE.by_link("https://ai.google.dev/gemma/terms/").id == GEMMA_2025
    assert CATALOGUE.by_link("https://example.com/LICENSE") is None


def _mini_catalogue(tmp_path: Path, entry_yaml: str) -> Path:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "mit.txt").write_bytes((LICENSES_DIR / "texts" / "mit.txt").read_bytes())
    path = tmp_path / "catalogue.yaml"
    path.write_text("catalogue_version: 1\nlicenses:\n" + entry_yaml, encoding="utf-8")
    return path


_MIT_ENTRY = """\
- id: MIT
  name: MIT License
  publisher: (template)
  hub_license: mit
  aliases: []
  url: https://opensource.org/license/mit
  corpus_file: mit.txt
  sha256: {sha}
  third_party_model_license: false
  obligations:
  - kind: attribution
    clause: {clause}
"""
_MIT_SHA = hashlib.sha256((LICENSES_DIR / "texts" / "mit.txt").read_bytes()).hexdigest()


def test_malformed_catalogue_fails_with_file_line_and_path(tmp_path):
    path = _mini_catalogue(tmp_path, _MIT_ENTRY.format(sha=_MIT_SHA, clause="The above copyright notice") + "  colour: red\n")
    with pytest.raises(RulePackError) as err:
        catalogue(path)
    assert str(err.value) == f"{path}:15: unknown key 'colour' (at $.licenses[0])"


def test_catalogue_refuses_a_clause_that_is_not_in_the_text(tmp_path):
    path = _mini_catalogue(tmp_path, _MIT_ENTRY.format(sha=_MIT_SHA, clause="You must not use the Software for evil."))
    with pytest.raises(RulePackError) as err:
        catalogue(path)
    assert str(err.value) == f"{path}:14: clause is not verbatim in mit.txt (at $.licenses[0].obligations[0].clause)"


def test_catalogue_refuses_an_edited_reference_text(tmp_path):
    path = _mini_catalogue(tmp_path, _MIT_ENTRY.format(sha="f" * 64, clause="The above copyright notice"))
    with pytest.raises(RulePackError) as err:
        catalogue(path)
    assert str(err.value) == f"{path}:10: reference text 'mit.txt' does not match its sha256 (at $.licenses[0].sha256)"


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize("license_id", IDS)
def test_detects_full_text(license_id):
    det = detect_license(text_of(license_id))
    assert (det.license_id, det.ambiguous_with) == (license_id, ())
    assert det.confidence >= 0.95
    assert det.coverage == 1.0
    assert det.candidates[0].license_id == license_id


@pytest.mark.parametrize("license_id", IDS)
def test_detects_whitespace_mangled_copy(license_id):
    det = detect_license(mangle(text_of(license_id), seed=len(license_id)))
    assert (det.license_id, det.ambiguous_with) == (license_id, ())
    assert det.confidence >= 0.95


@pytest.mark.parametrize("license_id", IDS)
def test_detects_text_pasted_into_a_readme_license_section(license_id):
    det = detect_license(readme_with(text_of(license_id)))
    assert (det.license_id, det.ambiguous_with) == (license_id, ())
    assert det.confidence >= 0.95


@pytest.mark.parametrize("license_id", IDS)
def test_detects_excerpt_from_the_middle(license_id):
    excerpt = middle_excerpt(text_of(license_id))
    for text in (excerpt, mangle(excerpt, seed=1)):
        det = detect_license(text)
        if det.ambiguous_with:
            # Allowed only when the excerpt really is in every sibling, word for word.
            tied = {det.license_id, *det.ambiguous_with}
            assert license_id in tied
            assert all(words(excerpt) in words(text_of(other)) for other in tied)
            assert det.confidence <= 1 / len(tied) + 1e-9
        else:
            assert det.license_id == license_id
            assert det.confidence >= 0.5


def test_excerpts_shared_by_llama_versions_are_reported_as_ambiguous_not_guessed():
    # Section 4 is word for word the same in every Llama license since Llama 2.
    section = next(p for p in paragraphs(text_of("llama3.2")) if p.startswith("4. Limitation of Liability"))
    det = detect_license(section)
    assert {det.license_id, *det.ambiguous_with} == set(LLAMAS)
    assert 0.15 < det.confidence <= 1 / 6
    assert det.reason == "the text holds nothing that tells these licenses apart"


@pytest.mark.parametrize("license_id", ["llama3.1", "llama3.2", "llama3.3", "llama4"])
def test_each_llama_version_is_itself(license_id):
    paras = paragraphs(text_of(license_id))
    # The redistribution and commercial-terms paragraphs carry the version.
    notice = next(p for p in paras if "attribution notice" in p)
    commercial = next(p for p in paras if "Additional Commercial Terms" in p)
    for text in (text_of(license_id), notice + "\n\n" + commercial):
        det = detect_license(text)
        assert (det.license_id, det.ambiguous_with) == (license_id, ())
        assert det.confidence >= 0.9
        others = {c.license_id for c in det.candidates[1:]}
        assert others & set(LLAMAS)  # the siblings are there, and lose


@pytest.mark.parametrize(
    "license_id,sibling",
    [(QWEN, QWEN_RESEARCH), (QWEN_RESEARCH, QWEN), (TONGYI, TONGYI_RESEARCH), (TONGYI_RESEARCH, TONGYI),
     (GEMMA_2024, GEMMA_2025), (GEMMA_2025, GEMMA_2024), ("Apache-2.0", "LicenseRef-scancode-falcon-2-11b-1.0"),
     ("bigscience-openrail-m", "creativeml-openrail-m"), ("LicenseRef-fromscratch-chatglm3-6b", "LicenseRef-fromscratch-codegeex4")],
)  # fmt: skip
def test_near_duplicates_are_told_apart(license_id, sibling):
    det = detect_license(text_of(license_id))
    assert det.license_id == license_id
    scores = {c.license_id: c.score for c in det.candidates}
    assert scores[license_id] == 1.0
    assert scores.get(sibling, 0.0) < 0.95


def test_qwen_research_paragraphs_are_research():
    grant = "\n".join(line for line in text_of(QWEN_RESEARCH).splitlines() if "NON-COMMERCIAL" in line or "Non-Commercial" in line)
    notice = next(line for line in text_of(QWEN_RESEARCH).splitlines() if "attribution notices" in line)
    assert detect_license(grant + "\n" + notice).license_id == QWEN_RESEARCH
    notice = next(line for line in text_of(QWEN).splitlines() if "attribution notices" in line)
    assert detect_license(notice).license_id == QWEN


def test_a_notice_line_is_enough():
    det = detect_license("Llama 3.1 is licensed under the Llama 3.1 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved.")
    assert det.license_id == "llama3.1"
    assert 0.5 <= det.confidence < 1.0


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t", PROSE, GPL_EXCERPT, BSD_3, readme_with("See the LICENSE file."), "MIT License\n\nCopyright (c) 2024 Someone\n"],
    ids=["empty", "blank", "prose", "gpl-3.0", "bsd-3-clause", "readme-without-license", "mit-title-only"],
)
def test_unknown_text_is_unknown(text):
    det = detect_license(text)
    assert det.license_id == UNKNOWN
    assert det.coverage == 0.0
    assert 0.5 <= det.confidence <= 1.0
    assert det.reason


def test_a_license_with_its_obligation_removed_is_not_claimed():
    # CC BY 4.0 is CC BY-NC 4.0 without the NonCommercial terms: it must not
    # inherit the non-commercial obligation.
    cc_by = re.sub(r"  i\. NonCommercial means.*?exchange\.\n\n", "", text_of("CC-BY-NC-4.0"), flags=re.S)
    cc_by = cc_by.replace("Attribution-NonCommercial", "Attribution").replace(", for NonCommercial purposes only", "")
    cc_by = cc_by.replace(" for\n               NonCommercial purposes only", "")
    det = detect_license(cc_by)
    assert det.license_id == UNKNOWN
    assert det.candidates[0].license_id == "CC-BY-NC-4.0"
    assert det.reason.startswith("close to CC-BY-NC-4.0, but")
    no_mau = re.sub(r"2\. Additional Commercial Terms\..*?such rights\.", "2. Reserved.", text_of("llama3.1"), flags=re.S)
    det = detect_license(no_mau)
    assert det.license_id == UNKNOWN
    assert "(field_of_use)" in det.reason


def test_two_licenses_in_one_file():
    found = detect_licenses(text_of("Apache-2.0") + "\n\n---\n\n" + text_of("llama3.1"))
    assert [d.license_id for d in found] == ["Apache-2.0", "llama3.1"]
    assert [d.license_id for d in detect_licenses(PROSE)] == [UNKNOWN]


def test_mentions_name_licenses_not_models():
    text = "Fine-tuned from Llama 3.1 and Qwen. Released under the Llama 3.1 Community License and Apache License, Version 2.0."
    assert find_mentions(text) == (("llama3.1", "Llama 3.1 Community License"), ("Apache-2.0", "Apache License, Version 2.0"))
    assert find_mentions("Built on Llama 3 and Qwen 2.5 with Gemma tokenizer.") == ()


def test_spdx_expressions_are_parsed_by_license_expression():
    assert parse_license_expression("apache-2.0 OR mit") == ("Apache-2.0", "MIT")
    assert parse_license_expression("cc-by-nc-4.0 AND (mit OR bsd-3-clause)") == ("CC-BY-NC-4.0", "MIT", "BSD-3-Clause")
    assert parse_license_expression("apache-2.0 AND") == ("apache-2.0 AND",)


# ---------------------------------------------------------------- folder scan


def by_source(findings: tuple[LicenseFinding, ...]) -> dict[str, list[LicenseFinding]]:
    out: dict[str, list[LicenseFinding]] = {}
    for f in findings:
        out.setdefault(f.source, []).append(f)
    return out


def test_scan_a_llama_derivative(tmp_path):
    write(tmp_path, "README.md", "---\nlanguage: en\nlicense: llama3.1\nbase_model: meta-llama/Llama-3.1-8B\n---\n# Model\n\nText.\n\n"
          "## License\n\nThis model is released under the Llama 3.1 Community License.\n")  # fmt: skip
    write(tmp_path, "LICENSE", text_of("llama3.1"))
    write(tmp_path, "NOTICE", "Llama 3.1 is licensed under the Llama 3.1 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved.\n")
    write(tmp_path, "original/LICENSE.txt", text_of("llama3.1"))
    write(tmp_path, "license.py", "raise SystemExit('never imported')\n")
    write(tmp_path, ".cache/LICENSE", GPL_EXCERPT)
    findings = scan_licenses(tmp_path)
    assert [(f.file, f.source, f.detected, f.method, f.line) for f in findings] == [
        ("LICENSE", "license_file", "llama3.1", "text", 1),
        ("NOTICE", "notice", "llama3.1", "text", 1),
        ("README.md", "card_metadata", "llama3.1", "metadata", 3),
        ("README.md", "readme_section", "llama3.1", "mention", 10),
        ("original/LICENSE.txt", "license_file", "llama3.1", "text", 1),
    ]
    lic = findings[0]
    assert lic.confidence >= 0.95 and lic.coverage == 1.0
    assert lic.obligations == obligations_for("llama3.1")
    assert lic.excerpt.startswith("LLAMA 3.1 COMMUNITY LICENSE AGREEMENT Llama 3.1 Version Release Date")
    assert len(lic.excerpt) <= 160
    card = findings[2]
    assert (card.declared, card.excerpt, card.confidence) == ("llama3.1", "license: llama3.1", 1.0)
    mention = findings[3]
    assert mention.confidence == 0.6
    assert mention.declared == "Llama 3.1 Community License"


def test_scan_card_license_other_with_license_name(tmp_path):
    write(tmp_path, "README.md", "---\nlicense: other\nlicense_name: qwen-research\nlicense_link: https://huggingface.co/Qwen/Qwen2.5-3B/blob/main/LICENSE\n---\n")
    (finding,) = scan_licenses(tmp_path)
    assert (finding.source, finding.detected, finding.declared, finding.line) == ("card_metadata", QWEN_RESEARCH, "other/qwen-research", 2)
    assert "non_commercial" in {ob.kind for ob in finding.obligations}
    assert finding.excerpt == "license: other; license_name: qwen-research; license_link: https://huggingface.co/Qwen/Qwen2.5-3B/blob/main/LICENSE"


def test_scan_card_license_other_resolved_by_link_or_unknown(tmp_path):
    write(tmp_path, "README.md", "---\nlicense: other\nlicense_link: https://ai.google.dev/gemma/terms\n---\n")
    assert [f.detected for f in scan_licenses(tmp_path)] == [GEMMA_2025]
    write(tmp_path, "README.md", "---\nlicense: other\nlicense_name: our-own-license\n---\n")
    (finding,) = scan_licenses(tmp_path)
    assert (finding.detected, finding.declared, finding.obligations) == (UNKNOWN, "other/our-own-license", ())
    assert finding.reason == "'other/our-own-license' names no catalogue license"


def test_scan_card_spdx_expressions_and_lists(tmp_path):
    write(tmp_path, "README.md", "---\nlicense: apache-2.0 OR mit\n---\n")
    assert [(f.detected, f.declared) for f in scan_licenses(tmp_path)] == [("Apache-2.0", "Apache-2.0"), ("MIT", "MIT")]
    write(tmp_path, "README.md", "---\nlicense:\n- cc-by-nc-4.0\n- gpl-3.0\n---\n")
    assert [(f.detected, f.declared) for f in scan_licenses(tmp_path)] == [("CC-BY-NC-4.0", "cc-by-nc-4.0"), (UNKNOWN, "GPL-3.0-only")]


def test_scan_local_license_link_and_unknown_files(tmp_path):
    write(tmp_path, "README.md", "---\nlicense: other\nlicense_link: docs/terms.txt\n---\n## Licensing\n\nSee the LICENSE file.\n")
    write(tmp_path, "docs/terms.txt", text_of(GEMMA_2024))
    write(tmp_path, "LICENSE", GPL_EXCERPT)
    findings = scan_licenses(tmp_path)
    assert [(f.file, f.source, f.detected) for f in findings] == [
        ("LICENSE", "license_file", UNKNOWN),
        ("README.md", "card_metadata", UNKNOWN),
        ("docs/terms.txt", "license_file", GEMMA_2024),
    ]  # the short "See the LICENSE file." section names nothing and gives no finding
    assert findings[0].reason.startswith("too little of any catalogue text")


def test_scan_readme_section_with_pasted_text_and_use_policy(tmp_path):
    readme = readme_with(text_of("MIT"))
    write(tmp_path, "README.md", readme)
    write(tmp_path, "USE_POLICY.md", text_of("llama3").split("Meta Llama 3 Acceptable Use Policy")[1])
    findings = by_source(scan_licenses(tmp_path))
    (section,) = findings["readme_section"]
    line = readme.splitlines().index("## License") + 1
    assert (section.detected, section.line, section.method) == ("MIT", line, "text")
    (policy,) = findings["use_policy"]
    assert policy.detected == "llama3"
    assert policy.coverage < 0.5  # the policy, not the license


def test_scan_requires_a_folder(tmp_path):
    with pytest.raises(ScanError) as err:
        scan_licenses(tmp_path / "missing")
    assert str(err.value) == f"{tmp_path / 'missing'}: not a folder"


def test_scan_malformed_card_fails(tmp_path):
    write(tmp_path, "README.md", "---\nlicense: [apache-2.0\n---\n")
    with pytest.raises(ScanError) as err:
        scan_licenses(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'README.md'}: invalid YAML front matter at line 3: expected ',' or ']', but got '<stream end>'"
        " (while parsing a flow sequence at line 2)"
    )
