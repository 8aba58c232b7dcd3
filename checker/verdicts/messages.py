"""The tool's sentences as data: a catalogue key with typed arguments, beside the English text.

Every criterion finding, module reason and evidence line carries a ``Msg`` so that
a report can be written in any language of the catalogue (checker/report/messages/);
the English sentence stays in the result too, because the JSON report keeps it and
people grep for it. The English template of each key reproduces that sentence
exactly (tests/test_verdict_messages.py formats every key and compares).

Arguments are typed, never pre-formatted numbers:

- ``str``: a name or text from the submission, the registry or the rule pack, shown as it is;
- ``int``: a count, written in full;
- ``float``: a figure; how it is written is the template's format spec (``{share:pct1}``,
  ``{p:p}`` for a log10 p-value), resolved by checker/report/fmt.py, so every language
  writes the same figure the same way;
- ``Msg``: a nested sentence (a module's reason inside an evidence line);
- a tuple of ``Msg`` or ``str``: a list, joined as the template's spec says (``{items:semicolons}``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

Arg = Union[str, int, float, "Msg", tuple[Union[str, "Msg"], ...]]


@dataclass(frozen=True)
class Msg:
    """One sentence of the tool: its catalogue key and its arguments, in order."""

    key: str
    args: tuple[tuple[str, Arg], ...] = ()

    def as_json(self) -> dict:
        """``{"key": ..., "args": {name: value}}``; nested sentences nest the same way."""
        return {"key": self.key, "args": {name: _json_arg(v) for name, v in self.args}}


def msg(key: str, /, **args: Arg) -> Msg:
    """``msg("v.tok.reused", references="gpt2")``: a sentence with its arguments."""
    return Msg(key, tuple(args.items()))


def _json_arg(v: Arg):
    if isinstance(v, Msg):
        return v.as_json()
    if isinstance(v, tuple):
        return [_json_arg(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        # JSON has no infinities; 1e300 reads the same through every formatter used here
        return None if math.isnan(v) else math.copysign(1e300, v)
    return v


def format_p(log10_p: float) -> str:
    """The one way a p-value is written for people (messages, HTML, Markdown, terminal):
    3 significant digits, scientific notation when small, and below float range an
    upper bound (p = 10^-381.2 is "< 1e-381", never "< 1e-382" and never 0).

    log10 p is first rounded to the 3 decimals the JSON report keeps, so a figure
    formatted from the engine's exact value and from the report read the same."""
    log10_p = round(log10_p, 3)
    if log10_p >= -3:
        return f"{10 ** log10_p:.3g}"
    if log10_p >= -300:
        return f"{10 ** log10_p:.1e}"
    return f"< 1e{math.ceil(log10_p)}" if log10_p > -1e6 else "< 1e-999999"
