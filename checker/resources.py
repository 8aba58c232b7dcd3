"""Where the shipped data lives: rule packs, module maps, schemas and templates.

In a source checkout (and an editable install) they are the repository's
``rules/`` and ``templates/``; a wheel carries copies under ``checker/_data``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def data_dir(name: str) -> Path:
    """``rules`` or ``templates``, from the wheel's copy or the source tree."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{name}/ is missing from the installation")


def rules_dir() -> Path:
    return data_dir("rules")


def templates_dir() -> Path:
    return data_dir("templates")


def schema_path(name: str) -> Path:
    return rules_dir() / "schema" / name
