"""The submission's own inventory of third-party components.

Read from ``THIRD_PARTY.yaml`` (or ``.yml``), else from a ``third_party:``
list in the model card's front matter. Its schema ships in
``rules/schema/third-party.schema.json``. A malformed inventory is bad input:
it stops the audit with file, line and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from checker.errors import ScanError
from checker.scanners.model_card import read_model_card
from checker.yamlio import load_yaml, validate

INVENTORY_FILES = ("THIRD_PARTY.yaml", "THIRD_PARTY.yml")
#: Roles whose component contributes pre-trained weights to the submission.
WEIGHT_ROLES = frozenset({"initial_weights", "encoder", "decoder", "adapter"})


class InventoryError(ScanError):
    """A THIRD_PARTY.yaml that does not match its schema."""

    def __init__(self, path: str, reason: str, line: int | None = None, json_path: str = "") -> None:
        subject = f"{path}:{line}" if line is not None else str(path)
        super().__init__(subject, reason + (f" (at {json_path})" if json_path else ""))


@dataclass(frozen=True)
class Component:
    name: str
    role: str
    revision: str | None = None
    license: str | None = None
    source: str | None = None
    modules: tuple[str, ...] = ()

    @property
    def contributes_weights(self) -> bool:
        return self.role in WEIGHT_ROLES


@dataclass(frozen=True)
class Inventory:
    file: str  # where it was read from
    components: tuple[Component, ...]


def read_inventory(folder: Path, files: tuple[str, ...] = INVENTORY_FILES + ("README.md",)) -> Inventory | None:
    """The inventory from the first of ``files`` that holds one, or None when the submission ships none.

    ``README.md`` in ``files`` stands for the ``third_party:`` list of the model card.
    """
    for name in files:
        if name.lower() == "readme.md":
            inv = _from_card(folder)
            if inv is not None:
                return inv
            continue
        path = folder / name
        if path.is_file():
            data, lines = load_yaml(path, InventoryError)
            if data is None:
                raise InventoryError(str(path), "the file is empty (write `components: []` to declare no third-party components)")
            validate(data, "third-party.schema.json", path, lines, InventoryError)
            return Inventory(name, tuple(_component(c) for c in data["components"]))
    return None


def _from_card(folder: Path) -> Inventory | None:
    card = read_model_card(folder)
    if card is not None and "third_party" in card.keys:
        data = {"components": card.third_party if card.third_party is not None else []}
        line = card.line_of("third_party")
        validate(data, "third-party.schema.json", Path(card.file), {(): line, ("components",): line}, InventoryError)
        return Inventory(f"{Path(card.file).name} (third_party)", tuple(_component(c) for c in data["components"]))
    return None


def _component(c: dict) -> Component:
    return Component(c["name"], c["role"], c.get("revision"), c.get("license"), c.get("source"), tuple(c.get("modules", ())))
