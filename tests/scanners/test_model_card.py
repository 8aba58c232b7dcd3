"""README.md front matter: declared license and ancestry, malformed cards fail with file and line."""

from __future__ import annotations

import pytest

from checker.errors import ScanError
from checker.scanners.model_card import parse_model_card, parse_model_card_text, read_model_card

QWEN_CARD = """\
---
license: other
license_name: qwen-research
license_link: https://huggingface.co/Qwen/Qwen2.5-3B-Instruct/blob/main/LICENSE
language:
- en
pipeline_tag: text-generation
base_model:
- Qwen/Qwen2.5-3B
- Qwen/Qwen2.5-3B-Instruct
base_model_relation: merge
tags:
- chat
- 42
library_name: transformers
---

# Qwen2.5-3B merge

Body text.
"""


def test_card_with_license_other_and_base_model_list(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(QWEN_CARD, encoding="utf-8")
    card = parse_model_card(path)
    assert card.file == str(path)
    assert (card.license, card.licenses) == ("other", ("other",))
    assert card.license_name == "qwen-research"
    assert card.license_link == "https://huggingface.co/Qwen/Qwen2.5-3B-Instruct/blob/main/LICENSE"
    assert card.base_model == ("Qwen/Qwen2.5-3B", "Qwen/Qwen2.5-3B-Instruct")
    assert card.base_model_relation == "merge"
    assert card.tags == ("chat",)  # informative only: non-strings are dropped, not fatal
    assert (card.library_name, card.pipeline_tag) == ("transformers", "text-generation")
    assert card.keys == ("license", "license_name", "license_link", "language", "pipeline_tag", "base_model", "base_model_relation", "tags", "library_name")
    assert card.line_of("license") == 2
    assert card.line_of("base_model") == 8
    assert card.line_of("datasets") is None
    assert card.body_line == 17
    assert card.body.splitlines() == QWEN_CARD.splitlines()[card.body_line - 1 :]


def test_base_model_as_a_string_is_a_tuple():
    card = parse_model_card_text("---\nlicense: llama3.1\nbase_model: meta-llama/Llama-3.1-8B\n---\n", "README.md")
    assert card.base_model == ("meta-llama/Llama-3.1-8B",)
    assert (card.license, card.licenses) == ("llama3.1", ("llama3.1",))
    assert card.base_model_relation is None


def test_card_without_front_matter():
    card = parse_model_card_text("# A model\n\nNo metadata here.\n", "README.md")
    assert (card.license, card.licenses, card.license_name, card.base_model, card.keys) == (None, (), None, (), ())
    assert card.body.startswith("# A model")
    assert card.body_line == 1


def test_empty_front_matter_and_bom(tmp_path):
    path = tmp_path / "README.md"
    path.write_bytes("\ufeff---\n---\nbody\n".encode("utf-8"))
    card = parse_model_card(path)
    assert card.keys == ()
    assert card.body == "body\n"


def test_read_model_card_of_a_folder(tmp_path):
    assert read_model_card(tmp_path) is None
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n", encoding="utf-8")
    assert read_model_card(tmp_path).license == "mit"


def test_license_list_applies_every_license():
    card = parse_model_card_text("---\nlicense:\n- apache-2.0\n- cc-by-nc-4.0\n---\n", "README.md")
    assert card.licenses == ("apache-2.0", "cc-by-nc-4.0")
    assert card.license == "apache-2.0 AND cc-by-nc-4.0"


@pytest.mark.parametrize(
    "text,reason",
    [
        ("---\nlicense: apache-2.0\n  bad: indent\n---\n", "invalid YAML front matter at line 3: mapping values are not allowed here"),
        (
            "---\nlicense: apache-2.0\nbase_model: [a, b\n---\nbody\n",
            "invalid YAML front matter at line 4: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 3)",
        ),
        ("---\nlicense: mit\n", "front matter opened with '---' at line 1 is never closed"),
        ("---\n- a\n- b\n---\n", "front matter must be a mapping of keys, not a list"),
        ("---\nlicense: mit\nbase_model:\n  repo: x\n---\n", "front matter key 'base_model' (line 3) must be a string or a list of strings"),
        ("---\nlicense: [mit, 3]\n---\n", "front matter key 'license' (line 2) must be a string or a list of strings"),
        ("---\nlicense_name: {a: b}\n---\n", "front matter key 'license_name' (line 2) must be a string"),
        ("---\nlicense: !!python/object/apply:os.system ['true']\n---\n", "invalid YAML front matter at line 2: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ],
    ids=["indent", "unclosed-list", "unclosed-front-matter", "not-a-mapping", "base-model-dict", "license-int", "name-dict", "python-tag"],
)
def test_malformed_front_matter_names_file_and_line(tmp_path, text, reason):
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScanError) as err:
        parse_model_card(path)
    assert str(err.value) == f"{path}: {reason}"


def test_card_that_is_not_utf8(tmp_path):
    path = tmp_path / "README.md"
    path.write_bytes(b"---\nlicense: mit\n---\n\xff\xfe")
    with pytest.raises(ScanError) as err:
        parse_model_card(path)
    assert str(err.value) == f"{path}: not UTF-8 text (byte 21)"
