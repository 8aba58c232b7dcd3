"""Safe YAML and JSON loading with line numbers, and JSON Schema validation that names the line.

Rule packs and module maps fail closed: the first schema violation stops the
run with ``file:line: reason (at json.path)``. Only PyYAML's safe constructor is used, so a
YAML tag can never construct an object or import code. Files are parsed with libyaml where PyYAML
has it (eight times faster on the license catalogue); a file it refuses is parsed again in Python,
so the message that names the problem is the same on every machine.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import jsonschema
import yaml

from checker.errors import CheckerError
from checker.resources import schema_path


class _Strict:
    """Rejects duplicate keys (the last one would silently win: a criterion written
    ``severity: critical`` then ``severity: info`` could never fail)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class StrictSafeLoader(_Strict, yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads dates as ISO strings (the schemas expect strings)."""


_LOADERS = [(yaml.SafeLoader, StrictSafeLoader)]
if hasattr(yaml, "CSafeLoader"):  # libyaml's parser, the same safe constructor: tried first
    class _FastLoader(_Strict, yaml.CSafeLoader):
        pass

    _LOADERS.insert(0, (yaml.CSafeLoader, _FastLoader))
for _, _loader in _LOADERS:
    _loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def parse_yaml(text: str):
    """(node tree, data) of ``text``: the fast parser first, the Python one for its error message."""
    for composer, loader in _LOADERS:
        try:
            return yaml.compose(text, Loader=composer), yaml.load(text, Loader=loader)  # noqa: S506 - safe loaders
        except yaml.YAMLError:
            if loader is StrictSafeLoader:
                raise
    raise AssertionError("unreachable")


def load_yaml(path: Path, error: Callable[..., CheckerError]) -> tuple[Any, dict[tuple, int]]:
    """Parse ``path`` safely; return the data and a map from JSON path to 1-based line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(str(path), f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error(str(path), f"cannot read ({exc.strerror or exc})") from None
    try:
        node, data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(str(path), f"invalid YAML: {problem}", line=line) from None
    lines: dict[tuple, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: yaml.Node, path: tuple, out: dict[tuple, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[path + (k,)] = key.start_mark.line + 1
            _index_lines(value, path + (k,), out)
            out[path + (k,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), out)


def load_json(path: Path, error: Callable[..., CheckerError], want_object: bool = True) -> Any:
    """Parse a JSON file; every failure is ``error`` naming the file (and the line for bad JSON)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(str(path), f"cannot read ({exc.strerror or exc})") from None
    return parse_json(data, path, error, want_object)


def parse_json(data: bytes, path: Path, error: Callable[..., CheckerError], want_object: bool = True) -> Any:
    """:func:`load_json` of bytes already read from ``path`` (a caller that hashed them parses the
    very bytes it checked)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(str(path), f"not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(str(path), f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if want_object and not isinstance(data, dict):
        raise error(str(path), f"expected a JSON object, found {type(data).__name__}")
    return data


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    return json.loads(schema_path(name).read_text(encoding="utf-8"))


def validate(data: Any, schema_name: str, path: Path, lines: dict[tuple, int], error: Callable[..., CheckerError]) -> None:
    """Raise ``error`` for the most relevant schema violation, with its YAML line."""
    validator = jsonschema.Draft202012Validator(schema(schema_name))
    best = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if best is None:
        return
    loc = tuple(best.absolute_path)
    line = None
    probe = loc
    if best.validator == "additionalProperties" and isinstance(best.instance, dict):
        extra = sorted(set(best.instance) - set(best.schema.get("properties", {})))
        if extra:
            probe = loc + (extra[0],)  # point at the offending key itself
    while line is None:
        line = lines.get(probe)
        if not probe:
            break
        probe = probe[:-1]
    json_path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    raise error(str(path), _describe(best), line=line, json_path=json_path)


def _describe(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"unknown key {extra[0]!r}" if len(extra) == 1 else f"unknown keys {extra}"
    if err.validator == "required":
        return err.message.replace(" is a required property", " is required")
    if err.validator == "enum":
        allowed = ", ".join(repr(x) for x in err.validator_value)
        return f"{err.instance!r} is not one of {allowed}"
    return err.message
