"""The model card: README.md's YAML front matter (Hugging Face metadata) and its body.

The front matter is where a submission *declares* its license (``license``,
``license_name``, ``license_link``) and its ancestry (``base_model``,
``base_model_relation``). Cards write several of these fields either as a
string or as a list; the parsed card always gives tuples so callers never
branch on the shape. Only ``yaml.safe_load`` is used: a card is untrusted
input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from checker.errors import ScanError
from checker.yamlio import StrictSafeLoader

CARD_NAME = "README.md"


@dataclass(frozen=True)
class ModelCard:
    """What the card declares; absent fields are empty tuples or None, never guessed."""

    file: str
    """The README path as it was given (error messages and findings name it)."""
    license: str | None
    """``license:`` as written (a Hugging Face id such as ``llama3.1``, ``other``, or an SPDX
    expression); a list is joined with `` AND `` (every listed license applies)."""
    licenses: tuple[str, ...]
    """The ``license:`` values one by one, whether the card wrote a string or a list."""
    license_name: str | None
    """``license_name:``, the name a card gives when ``license: other``."""
    license_link: str | None
    """``license_link:``, a URL or a path inside the repository."""
    base_model: tuple[str, ...]
    """``base_model:`` repo ids, whether the card wrote a string or a list."""
    base_model_relation: str | None
    """``base_model_relation:`` (adapter, merge, quantized, finetune) when declared."""
    tags: tuple[str, ...]
    datasets: tuple[str, ...]
    library_name: str | None
    pipeline_tag: str | None
    keys: tuple[str, ...]
    """Every top-level front-matter key, in card order (disclosure checks look for absent ones)."""
    key_lines: tuple[tuple[str, int], ...]
    """(key, 1-based line in README.md) for each top-level key."""
    body: str
    """The Markdown after the front matter."""
    body_line: int
    """1-based line of README.md where ``body`` starts."""
    third_party: object = field(default=None, compare=False)
    """``third_party:`` as parsed (a third-party inventory, validated by the disclosure scanner)."""

    def line_of(self, key: str) -> int | None:
        """The README line of a front-matter key, for findings that point at it."""
        for name, line in self.key_lines:
            if name == key:
                return line
        return None


def read_model_card(folder: Path) -> ModelCard | None:
    """The card of a submission folder, or None when it has no README.md."""
    folder = Path(folder)
    path = folder / CARD_NAME
    if not path.is_file():
        # Case-insensitive file systems are not the only source of "readme.md".
        matches = [p for p in folder.glob("*") if p.name.lower() == CARD_NAME.lower() and p.is_file()]
        if not matches:
            return None
        path = sorted(matches)[0]
    return parse_model_card(path)


def parse_model_card(path: Path) -> ModelCard:
    """Parse one README.md; malformed front matter raises ScanError with the line."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ScanError(str(path), f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ScanError(str(path), f"not UTF-8 text (byte {exc.start})") from None
    return parse_model_card_text(text, str(path))


def parse_model_card_text(text: str, file: str) -> ModelCard:
    """Parse README text; ``file`` names it in errors."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return _card(file, {}, (), text, 1)
    close = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if close is None:
        raise ScanError(file, "front matter opened with '---' at line 1 is never closed")
    block = "".join(lines[1:close])
    try:
        data = yaml.load(block, Loader=StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
        node = yaml.compose(block, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        # Lines are README lines: +1 for 1-based, +1 for the opening '---'.
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 2 if mark is not None else 2
        reason = f"invalid YAML front matter at line {line}: {getattr(exc, 'problem', None) or str(exc).splitlines()[0]}"
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark.line + 2 != line:
            reason += f" ({context} at line {context_mark.line + 2})"
        raise ScanError(file, reason) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScanError(file, f"front matter must be a mapping of keys, not a {type(data).__name__}")
    key_lines: list[tuple[str, int]] = []
    if isinstance(node, yaml.MappingNode):
        key_lines = [(str(k.value), k.start_mark.line + 2) for k, _ in node.value]
    return _card(file, data, tuple(key_lines), "".join(lines[close + 1 :]), close + 2)


def _card(file: str, data: dict[Any, Any], key_lines: tuple[tuple[str, int], ...], body: str, body_line: int) -> ModelCard:
    lines = dict(key_lines)

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise ScanError(file, f"front matter key {key!r} (line {lines.get(key, '?')}) must be a string or a list of strings")
        return tuple(v.strip() for v in items if v.strip())

    def string(key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ScanError(file, f"front matter key {key!r} (line {lines.get(key, '?')}) must be a string")
        return str(value).strip() or None

    def loose_strings(key: str) -> tuple[str, ...]:
        # tags and datasets are informative only: keep the strings, drop the rest.
        value = data.get(key)
        items = value if isinstance(value, list) else [value]
        return tuple(v.strip() for v in items if isinstance(v, str) and v.strip())

    return ModelCard(
        file=file,
        license=" AND ".join(strings("license")) or None,
        licenses=strings("license"),
        license_name=string("license_name"),
        license_link=string("license_link"),
        base_model=strings("base_model"),
        base_model_relation=string("base_model_relation"),
        tags=loose_strings("tags"),
        datasets=loose_strings("datasets"),
        library_name=string("library_name"),
        pipeline_tag=string("pipeline_tag"),
        keys=tuple(str(k) for k in data),
        key_lines=key_lines,
        body=body,
        body_line=body_line,
        third_party=data.get("third_party"),
    )
