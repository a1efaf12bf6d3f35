"""Server-side SVG charts for the results page (no JavaScript, no CDN: plain inline SVG).

`line_chart(series)` draws the cumulative metric per variant over time; `ci_chart(rows)` draws each
comparison's relative effect with its confidence interval around a zero line. Both return an SVG string
built only from numbers and escaped labels.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _fmt_pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def line_chart(
    series: dict[str, list[tuple[object, float]]],
    *,
    width: int = 640,
    height: int = 240,
    percent: bool = True,
    title: str = "",
) -> str:
    """Cumulative value per day per variant; x = day index, labels for the first and last day."""
    points = [(d, v) for s in series.values() for d, v in s if v is not None and math.isfinite(v)]
    if not points:
        return '<p class="help">No data over time yet.</p>'
    days = sorted({d for d, _ in points}, key=str)
    index = {d: i for i, d in enumerate(days)}
    lo = min(v for _, v in points)
    hi = max(v for _, v in points)
    if hi == lo:
        hi, lo = hi + (abs(hi) * 0.1 or 0.01), max(0.0, lo - (abs(lo) * 0.1 or 0.01))
    left, right, top, bottom = 60, 120, 20, 30
    pw, ph = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (pw * i / (len(days) - 1) if len(days) > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - (v - lo) / (hi - lo))

    fmt = _fmt_pct if percent else (lambda v: f"{v:,.2f}")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" style="font:11px sans-serif;background:#fff">'
    ]
    for frac in (0, 0.5, 1):
        v = lo + (hi - lo) * frac
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text>')
    out.append(f'<text x="{left}" y="{height - 8}">{escape(str(days[0]))}</text>')
    if len(days) > 1:
        out.append(f'<text x="{left + pw}" y="{height - 8}" text-anchor="end">{escape(str(days[-1]))}</text>')
    for n, (name, s) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        pts = [(x(index[d]), y(v)) for d, v in s if v is not None and math.isfinite(v)]
        if not pts:
            continue
        if len(pts) == 1:
            out.append(f'<circle cx="{pts[0][0]:.1f}" cy="{pts[0][1]:.1f}" r="3" fill="{color}"/>')
        else:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        ly = top + 14 * n + 8
        out.append(f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{left + pw + 24}" y="{ly + 1}">{escape(name)} {escape(fmt(s[-1][1]))}</text>')
    out.append("</svg>")
    return "".join(out)


def ci_chart(rows: list[tuple[str, float, float, float, bool]], *, width: int = 640) -> str:
    """Rows of (label, relative effect, CI low, CI high, significant); a dot per effect, a bar per CI."""
    rows = [r for r in rows if all(math.isfinite(v) for v in r[1:4])]
    if not rows:
        return '<p class="help">No comparisons with enough data yet.</p>'
    height = 30 + 22 * len(rows)
    left, right = 220, 40
    pw = width - left - right
    lo = min(min(r[2] for r in rows), 0.0)
    hi = max(max(r[3] for r in rows), 0.0)
    span = max(hi - lo, 1e-9)
    lo, hi = lo - span * 0.05, hi + span * 0.05

    def x(v: float) -> float:
        return left + pw * (v - lo) / (hi - lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="Relative effect with confidence interval" style="font:11px sans-serif;background:#fff">',
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="8" y2="{height - 18}" stroke="#888" stroke-dasharray="4 3"/>',
        f'<text x="{x(lo):.1f}" y="{height - 4}">{escape(_fmt_pct(lo))}</text>',
        f'<text x="{x(hi):.1f}" y="{height - 4}" text-anchor="end">{escape(_fmt_pct(hi))}</text>',
    ]
    for i, (label, eff, a, b, sig) in enumerate(rows):
        cy = 20 + 22 * i
        color = ("#2ca02c" if eff > 0 else "#d62728") if sig else "#555"
        out.append(f'<text x="{left - 8}" y="{cy + 4}" text-anchor="end">{escape(label)}</text>')
        out.append(
            f'<line x1="{x(a):.1f}" x2="{x(b):.1f}" y1="{cy}" y2="{cy}" stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<circle cx="{x(eff):.1f}" cy="{cy}" r="4" fill="{color}"/>')
        out.append(f'<text x="{min(x(b) + 6, width - 2):.1f}" y="{cy + 4}">{escape(_fmt_pct(eff))}</text>')
    out.append("</svg>")
    return "".join(out)
