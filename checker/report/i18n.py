"""Every fixed text of the reports and the terminal, from one catalogue per language.

Text that comes from the submission, the registry or the rule pack (model
names, file names, license clauses, criterion titles) is shown as it is; only
the tool's own words are translated. ``Messages.t(key, **values)`` formats a
message; a missing key is a bug and raises, never shows the key.

The verdict stage's sentences (findings, module reasons, evidence) reach the
report as ``{"key": ..., "args": {...}}`` (see checker/verdicts/messages.py);
``Messages.say`` writes one, its numbers through checker/report/fmt.py.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

from checker.errors import ReportError
from checker.report.fmt import SPECS

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

    def say(self, text: Mapping) -> str:
        """A sentence of the verdict stage, ``{"key": ..., "args": {...}}`` as the JSON report holds it."""
        return _Sentence(self).vformat(self.t(text["key"]), (), text.get("args") or {})

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


#: list separators a sentence may ask for (``{items:semicolons}``)
_JOINS = {"commas": ", ", "semicolons": "; "}
#: identifiers a sentence may ask to have written in words (``{status:status}``)
_WORDS = {"stat": lambda m, v: m.label("stat", v), "kind": lambda m, v: m.label("kind", v), "status": lambda m, v: m.status(v)}


class _Sentence(string.Formatter):
    """``str.format`` whose format specs name how an argument is written: a figure through
    checker/report/fmt.py (``{p:p}``, ``{share:pct1}``), an identifier in words (``{statistic:stat}``),
    a list with its separator (``{items:commas}``); a nested sentence is written in the same language."""

    def __init__(self, m: Messages) -> None:
        self.m = m

    def format_field(self, value, spec: str) -> str:
        if isinstance(value, Mapping):
            return self.m.say(value)
        if isinstance(value, list):
            return _JOINS[spec].join(self.format_field(v, "") for v in value)
        if spec in _WORDS:
            return _WORDS[spec](self.m, value)
        if spec in SPECS:
            return SPECS[spec](value)
        if spec:
            raise ValueError(f"unknown format {spec!r} in a message of the {self.m.lang!r} catalogue")
        if isinstance(value, float):
            raise TypeError(f"a figure in a message needs a format spec ({value!r} in the {self.m.lang!r} catalogue)")
        return "" if value is None else str(value)


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
