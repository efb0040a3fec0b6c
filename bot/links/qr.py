"""QR codes of entry links, as SVG and PNG files.

segno writes both formats itself — PNG without Pillow — and is small, pure Python and maintained; error
correction "M" (15 %) survives a counter sticker's wear, and the 4-module quiet zone is the standard's.
"""

from __future__ import annotations

from pathlib import Path

import segno

SCALE_PNG = 10  # pixels per module: a ~5 cm print at 300 dpi for a typical link
SCALE_SVG = 4  # SVG scales freely; this is only its nominal size


def write(url: str, folder: Path, stem: str) -> tuple[Path, Path]:
    """Write ``<stem>.svg`` and ``<stem>.png`` in ``folder`` (created if needed); returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    code = segno.make(url, error="m", micro=False)
    svg, png = folder / f"{stem}.svg", folder / f"{stem}.png"
    code.save(str(svg), kind="svg", scale=SCALE_SVG, border=4, title=url)
    code.save(str(png), kind="png", scale=SCALE_PNG, border=4)
    return svg, png
