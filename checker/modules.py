"""Split a checkpoint's tensors into modules (vision encoder, decoder, embeddings, ...).

Each tensor gets a module name (the tensor-name prefix a module map names), a
module kind, a layer index and a role (q, k, v, o, up, gate, down, norm, embed,
...), from the YAML maps in ``rules/modules``. Tensors no map claims fall back to
a generic grouping by name prefix and layer index, so nothing is left out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from checker.errors import ModuleMapError, WeightsError
from checker.resources import rules_dir
from checker.weights.interface import TensorInfo
from checker.yamlio import load_yaml, validate

#: Kinds whose layers are transformer blocks; any two of them can be compared,
#: because a transplanted encoder keeps its weights but not its names.
STACK_KINDS = frozenset({"decoder", "encoder", "vision_encoder", "audio_encoder", "generic"})
#: Kinds whose rows are tokens.
TOKEN_KINDS = frozenset({"embeddings", "lm_head"})


@dataclass(frozen=True)
class TensorRole:
    """Where one tensor sits: module, layer, role, and which axis holds the units."""

    name: str
    shape: tuple[int, ...]
    module: str
    kind: str
    layer: int | None
    role: str
    units_axis: int  # axis of the 2-D weight that enumerates units; the other is hidden
    decisive: bool  # False for norm weights and biases: weak evidence only

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Module:
    """A group of tensors that can be derived (or not) as a whole."""

    name: str
    kind: str
    family: str
    tensors: tuple[TensorRole, ...]

    @property
    def parameters(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted({t.layer for t in self.tensors if t.layer is not None}))

    def by_layer(self) -> dict[int | None, list[TensorRole]]:
        out: dict[int | None, list[TensorRole]] = {}
        for t in self.tensors:
            out.setdefault(t.layer, []).append(t)
        return out


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern
    module: str | None
    kind: str
    layout: str


@dataclass(frozen=True)
class _RoleRule:
    pattern: re.Pattern
    role: str
    units_axis: int
    decisive: bool


@dataclass(frozen=True)
class ModuleMap:
    family: str
    priority: int
    rules: tuple[_Rule, ...]


def _compile(path: Path, where: str, text: str, lines: dict, error=ModuleMapError) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as exc:
        raise error(str(path), f"bad regular expression {text!r}: {exc}", line=lines.get(tuple(where.split("/")))) from None


def load_map(path: Path) -> ModuleMap:
    data, lines = load_yaml(path, ModuleMapError)
    validate(data, "module-map.schema.json", path, lines, ModuleMapError)
    rules = []
    for i, r in enumerate(data["rules"]):
        pat = _compile(path, f"rules/{i}/pattern", r["pattern"], {("rules", i, "pattern"): lines.get(("rules", i, "pattern"))})
        if r.get("module") is None and "module" not in pat.groupindex:
            raise ModuleMapError(str(path), "rule needs a 'module' group or a 'module' template", line=lines.get(("rules", i)))
        rules.append(_Rule(pat, r.get("module"), r["kind"], r.get("layout", data.get("layout", "linear"))))
    return ModuleMap(data["family"], data["priority"], tuple(rules))


@lru_cache(maxsize=4)
def _load_all(folder: str) -> tuple[tuple[ModuleMap, ...], tuple[_RoleRule, ...]]:
    root = Path(folder)
    maps = [load_map(p) for p in sorted(root.glob("*.yaml")) if p.name != "roles.yaml"]
    maps.sort(key=lambda m: (m.priority, m.family))
    role_path = root / "roles.yaml"
    data, lines = load_yaml(role_path, ModuleMapError)
    validate(data, "roles.schema.json", role_path, lines, ModuleMapError)
    roles = tuple(
        _RoleRule(_compile(role_path, f"roles/{i}/pattern", r["pattern"], {}), r["role"], r["units_axis"], r.get("decisive", True))
        for i, r in enumerate(data["roles"])
    )
    return tuple(maps), roles


def module_maps(folder: Path | None = None) -> tuple[tuple[ModuleMap, ...], tuple[_RoleRule, ...]]:
    return _load_all(str(folder or rules_dir() / "modules"))


_GENERIC_LAYER = re.compile(r"^(?P<module>.+?)\.(?P<layer>\d+)\.(?P<rest>.+)$")


#: The largest layer number a tensor name may carry (the evidence stores layers as 32-bit integers;
#: the deepest real models have a few hundred layers).
MAX_LAYER = 2**20


def _layer_number(digits: str) -> int | None:
    """The layer number, or None above MAX_LAYER (checked by length first: int() refuses more
    than 4,300 digits)."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(MAX_LAYER)) or int(significant) > MAX_LAYER:
        return None
    return int(significant)


def _layer(name: str, digits: str) -> int:
    """A module map's layer number: one out of range is refused in one line."""
    layer = _layer_number(digits)
    if layer is None:
        shown = digits if len(digits) <= 24 else f"{digits[:12]}...({len(digits)} digits)"
        raise WeightsError(name[:200], f"layer number {shown} is out of range (at most {MAX_LAYER:,})")
    return layer


def classify(info: TensorInfo, folder: Path | None = None) -> tuple[TensorRole, str]:
    """Classify one tensor; returns its role and the family of the map that claimed it."""
    maps, roles = module_maps(folder)
    for mm in maps:
        for rule in mm.rules:
            m = rule.pattern.match(info.name)
            if m is None:
                continue
            groups = {k: (v or "") for k, v in m.groupdict().items()}
            module = rule.module.format(**groups) if rule.module else groups["module"]
            layer = _layer(info.name, groups["layer"]) if groups.get("layer") else None
            return _with_role(info, module, rule.kind, layer, rule.layout, roles), mm.family
    m = _GENERIC_LAYER.match(info.name)
    # no module map names it: a number past MAX_LAYER is no layer (a date, an id), and the tensor is
    # classified as layer-less below rather than refused
    if m and _layer_number(m["layer"]) is not None:
        return _with_role(info, m["module"], "generic", _layer_number(m["layer"]), "linear", roles), "generic"
    module = info.name.split(".")[0] if "." in info.name else info.name
    return _with_role(info, module, "other", None, "linear", roles), "generic"


def _with_role(info: TensorInfo, module: str, kind: str, layer: int | None, layout: str, roles) -> TensorRole:
    role, axis, decisive = "other", 0, False
    for rr in roles:
        if rr.pattern.search(info.name):
            role, axis, decisive = rr.role, rr.units_axis, rr.decisive
            break
    if len(info.shape) < 2 and role not in ("norm", "bias"):
        decisive = False  # 1-D tensors never decide provenance
    if layout == "conv1d" and len(info.shape) == 2:
        axis = 1 - axis
    return TensorRole(info.name, info.shape, module, kind, layer, role, axis, decisive)


def split_modules(infos: Iterable[TensorInfo], folder: Path | None = None) -> tuple[Module, ...]:
    """Group tensors into modules, in order of first appearance by name."""
    groups: dict[str, list[TensorRole]] = {}
    meta: dict[str, tuple[str, str]] = {}
    for info in infos:
        tr, family = classify(info, folder)
        groups.setdefault(tr.module, []).append(tr)
        # a module map's kind wins over the fallback's "other" (a stray `model.embed_positions` must
        # not turn a decoder named `model` into an uncomparable module)
        if tr.module not in meta or (meta[tr.module][0] == "other" and tr.kind != "other"):
            meta[tr.module] = (tr.kind, family)
    return tuple(Module(name, meta[name][0], meta[name][1], tuple(ts)) for name, ts in sorted(groups.items()))


def compatible(a: str, b: str) -> bool:
    """Whether modules of kinds ``a`` and ``b`` are compared with each other."""
    if a in STACK_KINDS and b in STACK_KINDS:
        return True
    if a in TOKEN_KINDS and b in TOKEN_KINDS:
        return True
    return a == b and a != "other"
