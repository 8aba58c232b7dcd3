"""Declared and implied lineage: what a submission's own files say it came from.

A model built "from scratch" has no ``base_model``; a fine-tune usually says
so in its card or its adapter config, and configs keep traces of where they
were saved from (``_name_or_path``), which code builds them (``auto_map``) and
which tokenizer they reuse. These are hints for the evaluator, not verdicts:
the same architecture or tokenizer is no evidence of copied weights (see
DESIGN.md), and ``auto_map`` code is recorded here and never imported or run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.errors import ScanError
from checker.yamlio import load_json
from checker.scanners.model_card import read_model_card

HINT_KINDS = (
    "declared_base_model",
    "name_or_path",
    "architecture",
    "model_type",
    "sub_model_type",
    "remote_code",
    "tokenizer_hint",
    "generation_hint",
)
CONFIG_FILES = ("config.json", "adapter_config.json", "tokenizer_config.json", "generation_config.json")
# generation_config keys that carry lineage: special-token ids are a tokenizer's
# fingerprint (128000/128001/128009 are Llama 3's); sampling defaults and
# transformers_version are noise.
_GENERATION_KEYS = ("_from_model_config", "bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
_MAX_DEPTH = 4
_EXCERPT_CHARS = 160
_HF_URL = re.compile(r"^https?://(www\.)?huggingface\.co/", re.IGNORECASE)


@dataclass(frozen=True)
class LineageHint:
    """One statement in the submission's files about where it came from."""

    file: str
    """Path relative to the submission folder, with '/' separators."""
    key: str
    """Where in the file: a front-matter key or a dotted JSON path (``vision_config.model_type``)."""
    value: str
    """The value as written (JSON for non-strings)."""
    excerpt: str
    """``key: value`` as a short quote for the report."""
    kind: str
    """One of HINT_KINDS."""


def scan_lineage(folder: Path) -> tuple[LineageHint, ...]:
    """All lineage hints of a submission folder, in file order; malformed JSON raises ScanError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScanError(str(folder), "not a folder")
    hints: list[LineageHint] = []
    card = read_model_card(folder)
    if card is not None:
        rel = Path(card.file).relative_to(folder).as_posix()
        relation = f" ({card.base_model_relation})" if card.base_model_relation else ""
        for base in card.base_model:
            hints.append(_hint(rel, "base_model", base, "declared_base_model", f"base_model: {base}{relation}"))
    for path in sorted(folder.rglob("*.json")):
        rel_path = path.relative_to(folder)
        if path.name not in CONFIG_FILES or any(p.startswith(".") for p in rel_path.parts) or not path.is_file():
            continue
        hints += _config_hints(_read_json(path), path.name, rel_path.as_posix())
    return tuple(hints)


def declared_ancestors(hints: tuple[LineageHint, ...]) -> tuple[str, ...]:
    """What the submission itself names as its ancestors (card base_model, adapter base).

    Hub URLs are reduced to the repo id (``.../meta-llama/Llama-3.1-8B/tree/main``
    -> ``meta-llama/Llama-3.1-8B``). Anything else a submission declares (free
    text such as "Llama 3.1 8B", a local path) is kept as written: a declared
    ancestor is never dropped, even when it names no repository.
    """
    out: list[str] = []
    for hint in hints:
        if hint.kind != "declared_base_model":
            continue
        value = hint.value.strip()
        repo = _HF_URL.sub("", value).rstrip("/")
        repo = re.sub(r"/(tree|blob|resolve|commit)/.*$", "", repo)
        name = repo if _looks_like_repo_id(repo) else value
        if name and name not in out:
            out.append(name)
    return tuple(out)


def _looks_like_repo_id(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?", value)) and ".." not in value


def _read_json(path: Path) -> dict[str, Any]:
    return load_json(path, ScanError)


def _config_hints(data: dict[str, Any], name: str, rel: str) -> list[LineageHint]:
    if name == "adapter_config.json":
        out = []
        base = data.get("base_model_name_or_path")
        if isinstance(base, str) and base.strip():
            peft = data.get("peft_type")
            note = f" ({peft} adapter)" if isinstance(peft, str) else ""
            out.append(_hint(rel, "base_model_name_or_path", base.strip(), "declared_base_model", f"base_model_name_or_path: {base.strip()}{note}"))
        return out + _auto_map(data, rel, "")
    if name == "tokenizer_config.json":
        out = [
            _hint(rel, key, data[key], "tokenizer_hint")
            for key in ("tokenizer_class", "name_or_path")
            if isinstance(data.get(key), str) and data[key].strip()
        ]
        return out + _auto_map(data, rel, "")
    if name == "generation_config.json":
        return [_hint(rel, key, data[key], "generation_hint") for key in _GENERATION_KEYS if data.get(key) is not None]
    return _model_config(data, rel, "", 0)


def _model_config(data: dict[str, Any], rel: str, prefix: str, depth: int) -> list[LineageHint]:
    """config.json: names, architectures and model types, with nested sub-model configs."""
    out: list[LineageHint] = []
    name = data.get("_name_or_path")
    if isinstance(name, str) and name.strip():
        out.append(_hint(rel, f"{prefix}_name_or_path", name.strip(), "name_or_path"))
    archs = data.get("architectures")
    if isinstance(archs, list):
        out += [_hint(rel, f"{prefix}architectures", a, "architecture") for a in archs if isinstance(a, str)]
    model_type = data.get("model_type")
    if isinstance(model_type, str) and model_type:
        out.append(_hint(rel, f"{prefix}model_type", model_type, "sub_model_type" if prefix else "model_type"))
    out += _auto_map(data, rel, prefix)
    if depth < _MAX_DEPTH:
        # vision_config, audio_config, text_config, encoder, decoder, ...: a
        # composite model names each part's own type and origin.
        for key, value in data.items():
            if isinstance(value, dict) and key != "auto_map":
                out += _model_config(value, rel, f"{prefix}{key}.", depth + 1)
    return out


def _auto_map(data: dict[str, Any], rel: str, prefix: str) -> list[LineageHint]:
    """auto_map entries name the Python classes a loader would import: recorded, never executed."""
    auto_map = data.get("auto_map")
    if not isinstance(auto_map, dict):
        return []
    out = []
    for cls, ref in auto_map.items():
        refs = ref if isinstance(ref, list) else [ref]
        for r in refs:
            if isinstance(r, str) and r:
                out.append(_hint(rel, f"{prefix}auto_map.{cls}", r, "remote_code"))
    return out


def _hint(file: str, key: str, value: Any, kind: str, excerpt: str | None = None) -> LineageHint:
    shown = value if isinstance(value, str) else json.dumps(value)
    text = excerpt if excerpt is not None else f"{key}: {shown}"
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 1] + "…"
    return LineageHint(file=file, key=key, value=shown, excerpt=text, kind=kind)
