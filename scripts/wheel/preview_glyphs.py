"""Preview the chart-wheel glyph set as an SVG contact sheet.

Reads shared/charts/data/wheel/glyphs.json (the path outlines the SVG wheel renderer
draws instead of using fonts) and writes an SVG grid showing every glyph,
stroked the same way the renderer strokes it, with its name underneath, on a
light background. Use it to eyeball the set after editing the JSON.

Run from anywhere (standard library only, Python 3.11+):

    python3 scripts/wheel/preview_glyphs.py /tmp/g.svg && rsvg-convert /tmp/g.svg -o /tmp/g.png

Arguments:
    output         SVG file to write (default: glyphs-preview.svg)
    --size N       glyph size in px (default: 96; try 20 to check legibility)
    --json PATH    glyph file to read (default: shared/charts/data/wheel/glyphs.json
                   in this repository)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_JSON = REPO_ROOT / "shared" / "charts" / "data" / "wheel" / "glyphs.json"

STROKE_WIDTH = 1.6  # in glyph units, matches the wheel renderer
COLUMNS = 8


def build_svg(view_box: float, glyphs: dict[str, str], size: int) -> str:
    pad = max(8, size // 6)
    label = max(9, min(14, size // 7))
    cell_w = max(size + 2 * pad, 7 * label + pad)
    cell_h = size + 2 * pad + label + 4
    cols = min(COLUMNS, max(1, len(glyphs)))
    rows = math.ceil(len(glyphs) / cols)
    width, height = cols * cell_w, rows * cell_h
    scale = size / view_box

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="#f7f5ef"/>',
    ]
    for i, (name, d) in enumerate(glyphs.items()):
        cx = (i % cols) * cell_w
        cy = (i // cols) * cell_h
        gx = cx + (cell_w - size) / 2
        gy = cy + pad
        out.append(
            f'<rect x="{gx}" y="{gy}" width="{size}" height="{size}" '
            'fill="#ffffff" stroke="#e0dccf" stroke-width="1"/>'
        )
        out.append(
            f'<g transform="translate({gx} {gy}) scale({scale})" fill="none" '
            f'stroke="#1d1d2b" stroke-width="{STROKE_WIDTH}" '
            'stroke-linecap="round" stroke-linejoin="round">'
            f"<path d={quoteattr(d)}/></g>"
        )
        out.append(
            f'<text x="{cx + cell_w / 2}" y="{gy + size + pad / 2 + label}" '
            f'font-family="sans-serif" font-size="{label}" fill="#444" '
            f'text-anchor="middle">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="glyphs-preview.svg")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    data = json.loads(args.json.read_text(encoding="utf-8"))
    svg = build_svg(float(data["view_box"]), data["glyphs"], args.size)
    Path(args.output).write_text(svg, encoding="utf-8")
    print(f"wrote {args.output} ({len(data['glyphs'])} glyphs at {args.size}px)")


if __name__ == "__main__":
    main()
