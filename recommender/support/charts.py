"""Server-side SVG for the support console (no JavaScript, no CDN: plain inline SVG, like
experiments/charts.py). Pure: numbers and labels in, an SVG string out; every label is escaped.

* `waterfall_svg`: one item's explanation, SHAP-waterfall style. Bars start at the base value and walk,
  contribution by contribution (largest |value| first), to the final score; red pushes up, blue down.
* `bars_svg`: mean |contribution| per feature (global importance of a model version).
* `beeswarm_svg`: every contribution of each feature as a dot along x, rows stacked as in SHAP's summary
  plot; the dot's colour is the feature value (blue low .. red high, grey unknown) within that feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

UP, DOWN, NEUTRAL = "#d62728", "#1f77b4", "#999"


def _fmt(v: float) -> str:
    return f"{v:+.3g}" if abs(v) < 1000 else f"{v:+,.0f}"


def _clip(label: str, n: int = 36) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def waterfall_svg(
    *,
    base_value: float,
    contributions: Sequence[tuple[str, float]],
    score: float | None = None,
    max_rows: int = 10,
    width: int = 620,
    title: str = "",
) -> str:
    """Rows: "base value", up to `max_rows` contributions (largest |value| first), "other N" (their sum)
    when there are more, and the final value base + sum(all). `score` (when given and different by more
    than rounding) is noted, so a non-additive explanation shows its gap instead of hiding it."""
    items = [(str(n), float(v)) for n, v in contributions if math.isfinite(float(v))]
    items.sort(key=lambda p: -abs(p[1]))
    shown, rest = items[:max_rows], items[max_rows:]
    if rest:
        shown.append((f"other {len(rest)} signals", sum(v for _, v in rest)))
    total = base_value + sum(v for _, v in items)
    # running positions
    xs = [base_value]
    for _, v in shown:
        xs.append(xs[-1] + v)
    lo, hi = min(xs + [total]), max(xs + [total])
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    label_w, value_w, row_h, top = 230, 70, 22, 24
    plot_w = width - label_w - value_w - 10
    height = top + row_h * (len(shown) + 2) + 26

    def x(v: float) -> float:
        return label_w + plot_w * (v - lo) / (hi - lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rs-waterfall" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title or "explanation waterfall")}" style="font:11px sans-serif;background:#fff;max-width:{width}px;height:auto">'
    ]
    if title:
        out.append(f'<text x="4" y="14" font-weight="bold">{escape(_clip(title, 90))}</text>')
    # base line
    y = top
    out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">base value</text>')
    out.append(
        f'<line x1="{x(base_value):.1f}" x2="{x(base_value):.1f}" y1="{y + 2}" y2="{y + row_h - 2}" stroke="#333"/>'
    )
    out.append(f'<text x="{width - value_w + 4}" y="{y + 15}">{escape(f"{base_value:.4g}")}</text>')
    running = base_value
    for i, (name, v) in enumerate(shown):
        y = top + row_h * (i + 1)
        a, b = x(running), x(running + v)
        colour = UP if v > 0 else DOWN if v < 0 else NEUTRAL
        out.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end"><title>{escape(name)}</title>{escape(_clip(name))}</text>'
        )
        out.append(
            f'<rect class="rs-bar" x="{min(a, b):.1f}" y="{y + 3}" width="{max(abs(b - a), 1):.1f}" height="{row_h - 6}" '
            f'fill="{colour}"><title>{escape(name)}: {escape(_fmt(v))}</title></rect>'
        )
        out.append(f'<text x="{width - value_w + 4}" y="{y + 15}" fill="{colour}">{escape(_fmt(v))}</text>')
        running += v
    y = top + row_h * (len(shown) + 1)
    out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-weight="bold">= score</text>')
    out.append(
        f'<line x1="{x(total):.1f}" x2="{x(total):.1f}" y1="{y + 2}" y2="{y + row_h - 2}" stroke="#000" stroke-width="2"/>'
    )
    out.append(
        f'<text x="{width - value_w + 4}" y="{y + 15}" font-weight="bold">{escape(f"{total:.4g}")}</text>'
    )
    # axis
    ay = top + row_h * (len(shown) + 2) + 4
    out.append(f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{ay}" y2="{ay}" stroke="#ccc"/>')
    out.append(f'<text x="{label_w}" y="{ay + 14}">{escape(f"{lo:.3g}")}</text>')
    out.append(f'<text x="{label_w + plot_w}" y="{ay + 14}" text-anchor="end">{escape(f"{hi:.3g}")}</text>')
    if score is not None and abs(score - total) > 1e-6 * max(1.0, abs(score)):
        out.append(
            f'<text x="{label_w + plot_w / 2:.0f}" y="{ay + 14}" text-anchor="middle" fill="#9a6700">'
            f"{escape(f'(ranking score {score:.4g}: the contributions are approximate)')}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def bars_svg(
    rows: Sequence[tuple[str, float]], *, width: int = 560, title: str = "", max_rows: int = 15
) -> str:
    """Horizontal bars, one per (label, value >= 0), largest first."""
    rows = [(str(n), float(v)) for n, v in rows if math.isfinite(float(v))][:max_rows]
    if not rows:
        return '<p class="help">No attributions to plot.</p>'
    label_w, value_w, row_h, top = 230, 70, 20, 22 if title else 6
    plot_w = width - label_w - value_w
    hi = max(v for _, v in rows) or 1.0
    height = top + row_h * len(rows) + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rs-bars" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title or "mean absolute contribution")}" style="font:11px sans-serif;background:#fff;max-width:{width}px;height:auto">'
    ]
    if title:
        out.append(f'<text x="4" y="14" font-weight="bold">{escape(_clip(title, 90))}</text>')
    for i, (name, v) in enumerate(rows):
        y = top + row_h * i
        w = plot_w * max(v, 0.0) / hi
        out.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end"><title>{escape(name)}</title>{escape(_clip(name))}</text>'
        )
        out.append(
            f'<rect class="rs-bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 6}" fill="{DOWN}"/>'
        )
        out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}">{escape(f"{v:.3g}")}</text>')
    out.append("</svg>")
    return "".join(out)


def _colour(t: float | None) -> str:
    if t is None:
        return NEUTRAL
    t = min(1.0, max(0.0, t))
    r, g, b = int(31 + (214 - 31) * t), int(119 + (39 - 119) * t), int(180 + (40 - 180) * t)
    return f"#{r:02x}{g:02x}{b:02x}"


def beeswarm_svg(
    rows: Sequence[tuple[str, Sequence[tuple[float, float | None]]]],
    *,
    width: int = 620,
    title: str = "",
    max_rows: int = 12,
    max_points: int = 400,
) -> str:
    """rows: (feature, [(contribution, feature value or None)]) in display order. Each row's dots are
    spread vertically where they pile up (a simple bin-and-stack, deterministic), like SHAP's summary."""
    rows = [(n, [p for p in pts if math.isfinite(p[0])]) for n, pts in rows[:max_rows]]
    rows = [(n, pts) for n, pts in rows if pts]
    if not rows:
        return '<p class="help">No attributions to plot.</p>'
    values = [v for _, pts in rows for v, _ in pts]
    lo, hi = min(values + [0.0]), max(values + [0.0])
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    label_w, row_h, top = 230, 30, 22 if title else 6
    plot_w = width - label_w - 20
    height = top + row_h * len(rows) + 40

    def x(v: float) -> float:
        return label_w + plot_w * (v - lo) / (hi - lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rs-beeswarm" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title or "summary plot")}" style="font:11px sans-serif;background:#fff;max-width:{width}px;height:auto">'
    ]
    if title:
        out.append(f'<text x="4" y="14" font-weight="bold">{escape(_clip(title, 90))}</text>')
    zero = x(0.0)
    out.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{top}" y2="{top + row_h * len(rows)}" stroke="#ccc"/>'
    )
    for i, (name, pts) in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        out.append(
            f'<text x="{label_w - 6}" y="{cy + 4:.1f}" text-anchor="end"><title>{escape(name)}</title>{escape(_clip(name))}</text>'
        )
        if len(pts) > max_points:  # an even, deterministic thinning
            step = len(pts) / max_points
            pts = [pts[int(k * step)] for k in range(max_points)]
        known = [fv for _, fv in pts if fv is not None]
        flo, fhi = (min(known), max(known)) if known else (0.0, 0.0)
        stacks: dict[int, int] = {}
        for v, fv in sorted(pts, key=lambda p: p[0]):
            px = x(v)
            bin_ = int(px // 3)
            k = stacks.get(bin_, 0)
            stacks[bin_] = k + 1
            offset = ((k + 1) // 2) * 3 * (1 if k % 2 else -1)
            offset = max(-row_h / 2 + 3, min(row_h / 2 - 3, offset))
            t = None if fv is None else (0.5 if fhi == flo else (fv - flo) / (fhi - flo))
            out.append(
                f'<circle cx="{px:.1f}" cy="{cy + offset:.1f}" r="2.2" fill="{_colour(t)}" fill-opacity="0.8"/>'
            )
    ay = top + row_h * len(rows) + 4
    out.append(f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{ay}" y2="{ay}" stroke="#999"/>')
    out.append(f'<text x="{label_w}" y="{ay + 14}">{escape(f"{lo:.3g}")}</text>')
    out.append(f'<text x="{zero:.1f}" y="{ay + 14}" text-anchor="middle">0</text>')
    out.append(f'<text x="{label_w + plot_w}" y="{ay + 14}" text-anchor="end">{escape(f"{hi:.3g}")}</text>')
    out.append(
        f'<text x="{label_w + plot_w}" y="{ay + 26}" text-anchor="end" fill="#666">contribution to the score; '
        "colour: feature value, blue low, red high, grey unknown</text>"
    )
    out.append("</svg>")
    return "".join(out)
