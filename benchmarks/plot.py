"""Line and bar charts drawn with Pillow (which Home Assistant already installs), so
the benchmark needs no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
_PANEL = (620, 400)
_MARGIN = (70, 40, 20, 60)  # left, top, right, bottom


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return float(step * exponent)
    return float(10 * exponent)


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def line_panel(
    title: str, x_label: str, y_label: str, series: Sequence[Series], x_ticks: Sequence[float]
) -> Image.Image:
    image = Image.new("RGB", _PANEL, "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    left, top, right, bottom = _MARGIN
    width, height = _PANEL[0] - left - right, _PANEL[1] - top - bottom
    y_max = _nice_max(max((y for s in series for y in s.ys), default=1.0) * 1.1)
    x_max = max(x_ticks)

    def point(x: float, y: float) -> tuple[float, float]:
        return left + width * x / x_max, top + height * (1 - y / y_max)

    draw.text((left, 10), title, fill="black", font=font)
    draw.rectangle((left, top, left + width, top + height), outline="black")
    for i in range(6):
        y = y_max * i / 5
        _, py = point(0, y)
        draw.line((left - 4, py, left, py), fill="black")
        draw.line((left, py, left + width, py), fill="#eeeeee")
        draw.text((5, py - 6), f"{y:.3g}", fill="black", font=font)
    for x in x_ticks:
        px, _ = point(x, 0)
        draw.line((px, top + height, px, top + height + 4), fill="black")
        draw.text((px - 6, top + height + 8), f"{x:g}", fill="black", font=font)
    draw.text((left + width / 2 - 40, top + height + 28), x_label, fill="black", font=font)
    draw.text((5, top - 16), y_label, fill="black", font=font)
    for index, s in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        points = [point(x, y) for x, y in zip(s.xs, s.ys, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
        draw.text((left + 10, top + 8 + 14 * index), s.label, fill=colour, font=font)
    return image


def bar_panel(title: str, y_label: str, bars: Sequence[tuple[str, float]]) -> Image.Image:
    """Horizontal bars on a log scale (the values span two orders of magnitude)."""
    image = Image.new("RGB", _PANEL, "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    left, top = 230, 40
    width = _PANEL[0] - left - 60
    draw.text((10, 10), f"{title} ({y_label}, log scale)", fill="black", font=font)
    positive = [v for _, v in bars if v > 0]
    low = 10 ** math.floor(math.log10(min(positive))) if positive else 1.0
    high = 10 ** math.ceil(math.log10(max(positive))) if positive else 10.0
    span = math.log10(high) - math.log10(low) or 1.0
    row = min(40, (_PANEL[1] - top - 40) // max(1, len(bars)))
    for index, (label, value) in enumerate(bars):
        y = top + index * row
        length = width * (math.log10(value) - math.log10(low)) / span if value > 0 else 0
        colour = COLOURS[index % len(COLOURS)]
        draw.rectangle((left, y + 4, left + max(1, length), y + row - 6), fill=colour)
        draw.text((10, y + row / 2 - 6), label, fill="black", font=font)
        draw.text((left + length + 4, y + row / 2 - 6), f"{value:.0f}", fill="black", font=font)
    return image


def grid(panels: Sequence[Image.Image], columns: int, path: Path) -> None:
    rows = math.ceil(len(panels) / columns)
    sheet = Image.new("RGB", (_PANEL[0] * columns, _PANEL[1] * rows), "white")
    for index, panel in enumerate(panels):
        sheet.paste(panel, ((index % columns) * _PANEL[0], (index // columns) * _PANEL[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
