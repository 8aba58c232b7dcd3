"""Every fixed text of the reports and the terminal, from one catalogue per language.

Text that comes from the submission, the registry or the rule pack (model
names, file names, license clauses, criterion titles) is shown as it is; only
the tool's own words are translated. ``Messages.t(key, **values)`` formats a
message; a missing key is a bug and raises, never shows the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

from checker.errors import ReportError

LANGS = ("en", "ko")
DEFAULT_LANG = "en"


@dataclass(frozen=True)
class Messages:
    """One language's catalogue."""

    lang: str
    table: Mapping[str, str]

    def t(self, key: str, **values) -> str:
        try:
            text = self.table[key]
        except KeyError:
            raise KeyError(f"message {key!r} is missing from the {self.lang!r} catalogue") from None
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self.table

    def label(self, group: str, value: str | None) -> str:
        """A readable name for an identifier of the tool (statistic, module kind, tensor role, severity)."""
        if value is None:
            return ""
        key = f"{group}.{value.replace(chr(92), '')}"  # identifiers may arrive Markdown-escaped (vision\\_encoder)
        return self.t(key) if key in self.table else self.t(f"{group}.unknown", name=value)

    def status(self, status: str) -> str:
        """A verdict, criterion or module status in words (``fail`` -> "FAIL" / "불합격")."""
        key = f"status.{status.replace(chr(92), '')}"
        return self.t(key) if self.has(key) else status


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ReportError("--lang", f"unknown language {lang!r} (choose from {', '.join(LANGS)})")
    return lang


@lru_cache(maxsize=None)
def messages(lang: str = DEFAULT_LANG) -> Messages:
    check_lang(lang)
    if lang == "ko":
        from checker.report.messages.ko import MESSAGES
    else:
        from checker.report.messages.en import MESSAGES
    return Messages(lang, MappingProxyType(dict(MESSAGES)))
