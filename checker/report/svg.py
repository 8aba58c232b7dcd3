"""Inline SVG figures for the report: the layer x layer heatmap and the null distribution.

Plain strings built here (no plotting library, no external request); every
text that ends up inside comes from ``fmt`` or the catalogue and is escaped.
"""

from __future__ import annotations

import math
from html import escape

from markupsafe import Markup

from checker.report.fmt import fmt_z

#: z at which the heatmap colour saturates (the tests decide at far larger |z| after correction).
Z_SATURATE = 10.0


def _colour(z: float | None) -> str:
    if z is None:
        return "#f4f4f4"
    t = max(0.0, min(1.0, z / Z_SATURATE))
    g = int(round(255 - t * (255 - 60)))
    return f"rgb(255,{g},{g})" if z > 0 else "#ffffff"


def heatmap(grid: dict, layer_map: dict, title: str, sub_label: str, ref_label: str) -> Markup:
    """z per (submission layer row, reference layer column); mapped cells are outlined."""
    subs, refs, z = grid["sub_layers"], grid["ref_layers"], grid["z"]
    if not subs or not refs:
        return Markup("")
    cell = max(14, min(34, 520 // max(len(refs), 1)))
    left, top = 46, 34
    width, height = left + cell * len(refs) + 10, top + cell * len(subs) + 28
    show_text = cell >= 26
    mapped = {(int(k), v) for k, v in (layer_map or {}).items()}
    parts = [f'<svg class="heatmap" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<text x="{left}" y="12" font-size="9">{escape(ref_label)} →</text>',
             f'<text x="4" y="{top - 4}" font-size="9">{escape(sub_label)} ↓</text>']
    for j, r in enumerate(refs):
        parts.append(f'<text x="{left + j * cell + cell / 2:.1f}" y="{top - 4}" font-size="8" text-anchor="middle">{r}</text>')
    for i, s in enumerate(subs):
        y = top + i * cell
        parts.append(f'<text x="{left - 4}" y="{y + cell / 2 + 3:.1f}" font-size="8" text-anchor="end">{s}</text>')
        for j, r in enumerate(refs):
            v = z[i][j]
            x = left + j * cell
            stroke = ' stroke="#111" stroke-width="2"' if (s, r) in mapped else ' stroke="#ddd" stroke-width="0.5"'
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_colour(v)}"{stroke}>'
                         f'<title>{s}→{r}: z {escape(fmt_z(v))}</title></rect>')
            if show_text and v is not None:
                parts.append(f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 3:.1f}" font-size="7.5" text-anchor="middle">{escape(fmt_z(v))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def null_curve(observed_z: float | None, baseline_z: float | None, labels: dict[str, str]) -> Markup:
    """The null distribution of the z-score (standard normal under independent training) with the
    observed z and, when there is one, the best z against unrelated references marked."""
    if observed_z is None:
        return Markup("")
    lo = -4.0
    hi = max(4.0, observed_z + 2.0, (baseline_z or 0.0) + 2.0)
    w, h, pad, base = 520, 120, 12, 92

    def x(v: float) -> float:
        return pad + (v - lo) / (hi - lo) * (w - 2 * pad)

    pts = []
    n = 160
    for i in range(n + 1):
        v = lo + (min(hi, 4.5) - lo) * i / n
        dens = math.exp(-v * v / 2) / math.sqrt(2 * math.pi)
        pts.append(f"{x(v):.1f},{base - dens / 0.3989 * 70:.1f}")
    parts = [f'<svg class="nullcurve" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'role="img" aria-label="{escape(labels["title"])}"><title>{escape(labels["title"])}</title>',
             f'<line x1="{pad}" y1="{base}" x2="{w - pad}" y2="{base}" stroke="#555" stroke-width="1"/>',
             f'<polyline fill="#dbe7f5" stroke="#2b5c9e" stroke-width="1.2" points="{x(lo):.1f},{base} {" ".join(pts)} {x(min(hi, 4.5)):.1f},{base}"/>',
             f'<text x="{x(0):.1f}" y="{base + 12}" font-size="8" text-anchor="middle">0</text>',
             f'<text x="{pad}" y="12" font-size="8.5" fill="#2b5c9e">{escape(labels["null"])}</text>']
    if baseline_z is not None:
        bx = x(baseline_z)
        parts.append(f'<line x1="{bx:.1f}" y1="{base}" x2="{bx:.1f}" y2="34" stroke="#8a6d00" stroke-dasharray="3,2" stroke-width="1.2"/>'
                     f'<text x="{bx:.1f}" y="{base + 22}" font-size="8" text-anchor="middle" fill="#8a6d00">'
                     f'{escape(labels["baseline"])} {escape(fmt_z(baseline_z))}</text>')
    ox = x(observed_z)
    parts.append(f'<line x1="{ox:.1f}" y1="{base}" x2="{ox:.1f}" y2="22" stroke="#b00020" stroke-width="2"/>'
                 f'<text x="{min(max(ox, 60), w - 70):.1f}" y="30" font-size="8.5" text-anchor="middle" fill="#b00020">'
                 f'{escape(labels["observed"])} z = {escape(fmt_z(observed_z))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
