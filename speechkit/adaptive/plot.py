"""A line plot drawn with PIL (no plotting library needed): several named curves of ``(x, y)`` points."""

from __future__ import annotations

import os

__all__ = ["line_plot"]

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def line_plot(curves: dict[str, list[tuple[float, float]]], path: str | os.PathLike, *, title: str = "",
              xlabel: str = "", ylabel: str = "", size: tuple[int, int] = (640, 420)) -> None:
    """Writes a PNG with one coloured polyline (points marked) per curve, axes with min/max ticks and a legend."""
    from PIL import Image, ImageDraw

    w, h = size
    left, right, top, bottom = 60, 20, 30, 50
    pts = [p for c in curves.values() for p in c]
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-3)

    def xy(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        return px, h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)

    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    d.rectangle([left, top, w - right, h - bottom], outline="black")
    for i in range(5):
        fx, fy = x0 + (x1 - x0) * i / 4, y0 + (y1 - y0) * i / 4
        px, _ = xy(fx, y0)
        _, py = xy(x0, fy)
        d.line([px, h - bottom, px, h - bottom + 4], fill="black")
        d.text((px - 10, h - bottom + 6), f"{fx:.3g}", fill="black")
        d.line([left - 4, py, left, py], fill="black")
        d.text((5, py - 5), f"{fy:.3g}", fill="black")
    d.text((w // 2 - 5 * len(xlabel) // 2, h - 18), xlabel, fill="black")
    d.text((5, 8), ylabel, fill="black")
    d.text((w // 2 - 3 * len(title), 8), title, fill="black")
    for k, (name, c) in enumerate(curves.items()):
        color = COLORS[k % len(COLORS)]
        line = [xy(x, y) for x, y in sorted(c)]
        if len(line) > 1:
            d.line(line, fill=color, width=2)
        for px, py in line:
            d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=color)
        d.text((left + 10, top + 8 + 14 * k), name, fill=color)
    img.save(path)
