"""Charts drawn on the server as SVG (no script, no inline style: the console's CSP allows neither).

``bars`` draws a horizontal bar chart (one row per label: reads well on a phone, however many rows); colours
and sizes are SVG presentation attributes, which a CSP without ``'unsafe-inline'`` still allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

ROW_HEIGHT = 22
LABEL_WIDTH = 150
BAR_WIDTH = 220
VALUE_WIDTH = 70
MAX_ROWS = 40


def bars(rows: Sequence[tuple[str, float]], *, title: str) -> str:
    """An accessible SVG bar chart of (label, value) rows (the first ``MAX_ROWS``)."""
    rows = list(rows)[:MAX_ROWS]
    top = max((value for _, value in rows), default=0) or 1
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    height = ROW_HEIGHT * max(len(rows), 1) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for index, (label, value) in enumerate(rows):
        y = index * ROW_HEIGHT + 2
        length = max(BAR_WIDTH * value / top, 1 if value else 0)
        text = str(label)
        short = text if len(text) <= 22 else text[:21] + "…"
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end" font-size="12" '
                     f'fill="#333">{escape(short)}</text>')
        parts.append(f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length:.1f}" height="{ROW_HEIGHT - 6}" '
                     f'fill="#2a7ab0"/>')
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + 15}" font-size="12" '
                     f'fill="#333">{escape(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)
