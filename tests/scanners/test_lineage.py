"""Lineage hints from the card and the config files; remote code is recorded, never run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.errors import ScanError
from checker.scanners.lineage import LineageHint, declared_ancestors, scan_lineage


def write_json(folder: Path, name: str, data) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def hints_of(hints, kind):
    return [(h.file, h.key, h.value) for h in hints if h.kind == kind]


@pytest.fixture
def vlm(tmp_path: Path) -> Path:
    """A vision-language submission whose vision tower declares a foreign origin."""
    (tmp_path / "README.md").write_text(
        "---\nlicense: apache-2.0\nbase_model:\n- our-org/base-7b\n- https://huggingface.co/google/siglip-so400m-patch14-384\n"
        "base_model_relation: finetune\n---\n# Model\n",
        encoding="utf-8",
    )
    write_json(tmp_path, "config.json", {
        "_name_or_path": "/data/ckpt/step-90000",
        "architectures": ["OurVLForConditionalGeneration"],
        "model_type": "our_vl",
        "auto_map": {"AutoConfig": "configuration_our_vl.OurVLConfig", "AutoModel": "modeling_our_vl.OurVLModel"},
        "vision_config": {"model_type": "siglip_vision_model", "_name_or_path": "google/siglip-so400m-patch14-384", "hidden_size": 1152},
        "text_config": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "rope_scaling": {"type": "linear"}},
        "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0",
    })  # fmt: skip
    write_json(tmp_path, "tokenizer_config.json", {
        "tokenizer_class": "Qwen2Tokenizer",
        "name_or_path": "Qwen/Qwen2-7B",
        "auto_map": {"AutoTokenizer": ["tokenization_our.OurTokenizer", None]},
        "model_max_length": 32768,
    })  # fmt: skip
    write_json(tmp_path, "generation_config.json", {
        "_from_model_config": True, "bos_token_id": 151643, "eos_token_id": [151645, 151643],
        "temperature": 0.7, "transformers_version": "4.45.0",
    })  # fmt: skip
    (tmp_path / "modeling_our_vl.py").write_text(
        f"open({str(tmp_path / 'EXECUTED')!r}, 'w').close()\nraise SystemExit('remote code must never run')\n", encoding="utf-8"
    )
    return tmp_path


def test_scan_lineage_of_a_vision_language_model(vlm):
    hints = scan_lineage(vlm)
    assert all(isinstance(h, LineageHint) for h in hints)
    assert hints_of(hints, "declared_base_model") == [
        ("README.md", "base_model", "our-org/base-7b"),
        ("README.md", "base_model", "https://huggingface.co/google/siglip-so400m-patch14-384"),
    ]
    assert hints[0].excerpt == "base_model: our-org/base-7b (finetune)"
    assert hints_of(hints, "name_or_path") == [
        ("config.json", "_name_or_path", "/data/ckpt/step-90000"),
        ("config.json", "vision_config._name_or_path", "google/siglip-so400m-patch14-384"),
    ]
    assert hints_of(hints, "architecture") == [
        ("config.json", "architectures", "OurVLForConditionalGeneration"),
        ("config.json", "text_config.architectures", "Qwen2ForCausalLM"),
    ]
    assert hints_of(hints, "model_type") == [("config.json", "model_type", "our_vl")]
    assert hints_of(hints, "sub_model_type") == [
        ("config.json", "vision_config.model_type", "siglip_vision_model"),
        ("config.json", "text_config.model_type", "qwen2"),
    ]
    assert hints_of(hints, "remote_code") == [
        ("config.json", "auto_map.AutoConfig", "configuration_our_vl.OurVLConfig"),
        ("config.json", "auto_map.AutoModel", "modeling_our_vl.OurVLModel"),
        ("tokenizer_config.json", "auto_map.AutoTokenizer", "tokenization_our.OurTokenizer"),
    ]
    assert hints_of(hints, "tokenizer_hint") == [
        ("tokenizer_config.json", "tokenizer_class", "Qwen2Tokenizer"),
        ("tokenizer_config.json", "name_or_path", "Qwen/Qwen2-7B"),
    ]
    assert hints_of(hints, "generation_hint") == [
        ("generation_config.json", "_from_model_config", "true"),
        ("generation_config.json", "bos_token_id", "151643"),
        ("generation_config.json", "eos_token_id", "[151645, 151643]"),
    ]
    assert not any("transformers_version" in h.key or "torch_dtype" in h.key or "temperature" in h.key for h in hints)
    assert not (vlm / "EXECUTED").exists()
    assert declared_ancestors(hints) == ("our-org/base-7b", "google/siglip-so400m-patch14-384")


def test_adapter_base_is_a_declared_ancestor(tmp_path):
    (tmp_path / "README.md").write_text("---\nbase_model: meta-llama/Llama-3.1-8B-Instruct\n---\n", encoding="utf-8")
    write_json(tmp_path, "adapter_config.json", {
        "base_model_name_or_path": "meta-llama/Llama-3.1-8B-Instruct", "peft_type": "LORA", "r": 16,
    })  # fmt: skip
    write_json(tmp_path, "checkpoint-500/adapter_config.json", {"base_model_name_or_path": "/home/me/models/llama", "peft_type": "LORA"})
    hints = scan_lineage(tmp_path)
    assert hints_of(hints, "declared_base_model") == [
        ("README.md", "base_model", "meta-llama/Llama-3.1-8B-Instruct"),
        ("adapter_config.json", "base_model_name_or_path", "meta-llama/Llama-3.1-8B-Instruct"),
        ("checkpoint-500/adapter_config.json", "base_model_name_or_path", "/home/me/models/llama"),
    ]
    assert hints[1].excerpt == "base_model_name_or_path: meta-llama/Llama-3.1-8B-Instruct (LORA adapter)"
    # Deduplicated; a local path names no repository but is still a declared ancestor, kept as written.
    assert declared_ancestors(hints) == ("meta-llama/Llama-3.1-8B-Instruct", "/home/me/models/llama")


def test_base_model_urls_and_free_text_are_never_dropped(tmp_path):
    (tmp_path / "README.md").write_text(
        "---\nbase_model:\n  - https://huggingface.co/meta-llama/Llama-3.1-8B/tree/main\n  - Llama 3.1 8B\n---\n", encoding="utf-8")
    assert declared_ancestors(scan_lineage(tmp_path)) == ("meta-llama/Llama-3.1-8B", "Llama 3.1 8B")


def test_a_from_scratch_submission_declares_no_ancestor(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Trained from scratch\n", encoding="utf-8")
    write_json(tmp_path, "config.json", {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "transformers_version": "4.44.0"})
    hints = scan_lineage(tmp_path)
    # Same architecture as Llama is recorded, and is no ancestor.
    assert [(h.kind, h.value) for h in hints] == [("architecture", "LlamaForCausalLM"), ("model_type", "llama")]
    assert declared_ancestors(hints) == ()


def test_hidden_folders_and_other_json_are_ignored(tmp_path):
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "config.json").write_text("{broken", encoding="utf-8")
    (tmp_path / "tokenizer.json").write_text("{also broken", encoding="utf-8")
    assert scan_lineage(tmp_path) == ()


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_type": "llama"\n  "architectures": []\n}\n', encoding="utf-8")
    with pytest.raises(ScanError) as err:
        scan_lineage(tmp_path)
    assert str(err.value) == f"{path}: invalid JSON at line 3: Expecting ',' delimiter"


def test_json_that_is_not_an_object(tmp_path):
    path = tmp_path / "generation_config.json"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(ScanError) as err:
        scan_lineage(tmp_path)
    assert str(err.value) == f"{path}: expected a JSON object, found list"


def test_malformed_card_fails_the_lineage_scan(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("---\nbase_model: [a\n---\n", encoding="utf-8")
    with pytest.raises(ScanError) as err:
        scan_lineage(tmp_path)
    assert str(err.value).startswith(f"{path}: invalid YAML front matter at line 3:")
