"""Small bar charts as inline SVG, drawn on the server.

No script and no `style=` attribute (the CSP forbids both): only presentation attributes
such as fill=. Each chart is an image with a title and a description for screen
readers; the tables next to it carry the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

BAR = "#1d4ed8"
GRID = "#d1d5db"
INK = "#1f2937"
MUTED = "#4b5563"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the value as the reader sees it ("63%", "12.5 h")


def _svg(chart_id: str, title: str, desc: str, width: int, height: int, body: list[str]) -> Markup:
    # every piece of text is escaped above; numbers and ids are ours
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" class="staff-chart" role="img" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'font-family="system-ui, sans-serif" font-size="14">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>' + "".join(body) + "</svg>"
    )


def column_chart(chart_id: str, title: str, bars: Sequence[Bar], *, maximum: float | None = None) -> Markup:
    """Vertical bars (one per week, say), scaled to `maximum` (1.0 for a percentage)."""
    width, height, left, bottom, top = 480, 220, 44, 36, 18
    plot_h = height - bottom - top
    top_value = maximum or max((b.value for b in bars), default=0) or 1
    n = max(len(bars), 1)
    slot = (width - left - 8) / n
    bar_w = max(min(slot * 0.7, 48), 2)
    body: list[str] = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        label = f"{fraction * 100:.0f}%" if maximum == 1 else f"{top_value * fraction:.0f}"
        body.append(f'<line x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{label}</text>')
    # a label under every bar while they fit, else every few
    every = max(1, round(n / 6))
    for index, bar in enumerate(bars):
        value = max(min(bar.value / top_value, 1.0), 0.0)
        h = plot_h * value
        x = left + slot * index + (slot - bar_w) / 2
        y = top + plot_h - h
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0.5):.1f}" fill="{BAR}">'
            f"<title>{escape(bar.label)}: {escape(bar.text)}</title></rect>"
        )
        if n <= 8:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" fill="{INK}">'
                f"{escape(bar.text)}</text>"
            )
        if index % every == 0:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="{MUTED}">'
                f"{escape(bar.label)}</text>"
            )
    desc = "; ".join(f"{b.label}: {b.text}" for b in bars)
    return _svg(chart_id, title, desc, width, height, body)


def bar_chart(chart_id: str, title: str, bars: Sequence[Bar], *, limit: int = 12) -> Markup:
    """Horizontal bars, largest first (hours per member unit, say); the rest are in the table."""
    shown = list(bars)[:limit]
    row_h, label_w, width = 28, 170, 480
    height = max(row_h * len(shown) + 12, 40)
    top_value = max((b.value for b in shown), default=0) or 1
    plot_w = width - label_w - 64
    body: list[str] = []
    for index, bar in enumerate(shown):
        y = 6 + index * row_h
        w = plot_w * max(bar.value, 0) / top_value
        label = bar.label if len(bar.label) <= 10 else bar.label[:9] + "…"
        body.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" fill="{INK}">{escape(label)}'
            f"<title>{escape(bar.label)}</title></text>"
        )
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{row_h - 8}" fill="{BAR}">'
            f"<title>{escape(bar.label)}: {escape(bar.text)}</title></rect>"
        )
        body.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" fill="{INK}">{escape(bar.text)}</text>')
    desc = "; ".join(f"{b.label}: {b.text}" for b in shown)
    return _svg(chart_id, title, desc, width, height, body)
