"""Every figure of a report, formatted once.

The HTML, the PDF, the Markdown, the terminal tables and ``compare`` all format
numbers through these functions, so one p-value reads the same everywhere
(p-values go through ``verdicts.format_p``, which the criterion messages use too).
"""

from __future__ import annotations

import math

from checker.verdicts import format_p

NA = "n/a"


def fmt_p(p: float | None, log10_p: float | None = None) -> str:
    """A report p-value (floored float, with its exact log10 where the report has one) for people."""
    if p is None and log10_p is None:
        return NA
    if log10_p is None:
        log10_p = math.log10(p) if p > 0 else -300.0
    return format_p(log10_p)


def fmt_num(x: float | None, digits: int = 3) -> str:
    """A score or correlation: fixed decimals."""
    return NA if x is None else f"{x:.{digits}f}"


def fmt_z(x: float | None) -> str:
    """A z-score: one decimal."""
    return NA if x is None else f"{x:.1f}"


def fmt_pct(x: float | None, digits: int = 2) -> str:
    """A share of parameters (0..1) as a percentage."""
    return NA if x is None else f"{x * 100:.{digits}f}%"


def fmt_int(x: int | None) -> str:
    """A count with thousands separators."""
    return NA if x is None else f"{x:,}"


def fmt_scale(x: float | None) -> str:
    """A scale factor (q*3.7 reads 3.7)."""
    return NA if x is None else f"{x:.3g}"


def fmt_layer_map(layer_map: dict | None) -> str:
    """{"0": 0, "1": 2} -> "0→0, 1→2" (submission layer → reference layer)."""
    if not layer_map:
        return "-"
    return ", ".join(f"{k}→{v}" for k, v in layer_map.items())


def fmt_g(x: float | None, digits: int | None = None) -> str:
    """A rule-pack figure (a significance level 0.01, a chance level 3.1e-05): general format, shortest form."""
    return NA if x is None else (f"{x:g}" if digits is None else f"{x:.{digits}g}")


def fmt_raw(x: float | None) -> str:
    """A figure already rounded where it was measured (a tokenizer's merges agreement), as stored."""
    return NA if x is None else str(x)


#: The format specs a catalogue sentence may give a number (``{share:pct1}``); a p-value argument is its log10.
SPECS = {
    "p": lambda x: fmt_p(None, x), "pct0": lambda x: fmt_pct(x, 0), "pct1": lambda x: fmt_pct(x, 1), "pct2": fmt_pct,
    "num2": lambda x: fmt_num(x, 2), "num3": fmt_num, "z": fmt_z, "int": fmt_int, "g": fmt_g, "g2": lambda x: fmt_g(x, 2),
    "raw": fmt_raw,
}

FILTERS = {"p": fmt_p, "num": fmt_num, "z": fmt_z, "pct": fmt_pct, "int": fmt_int, "scale": fmt_scale}
