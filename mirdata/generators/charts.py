"""Charts from data tables with matplotlib: bar, grouped bar, stacked bar, line, pie and scatter.

The table (`ChartSpec`) is the fact: every value is drawn on the chart so a reader can recover it, either
written next to its element or, with `show_values=False`, on a gridline of the value axis (the values are then
multiples of `tick`, and the axis has a labelled gridline at every multiple). Value axes always take in zero and
every value, negative ones included, so no bar or point is cut off. `render_chart` returns the image, the pixel
box of every data element (a bar, a bar segment, a wedge, a point) which the builders use as grounded regions,
and the axes' pixel box and value range. Styles (palette, grid, fonts, markers) are drawn from a seeded RNG, so the
same spec and seed always give the same pixels. Figures are made with the object-oriented API on an Agg
canvas (no pyplot state), which is safe in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MultipleLocator
from PIL import Image

CHART_KINDS = ("bar", "grouped_bar", "stacked_bar", "line", "pie", "scatter")

PALETTES = {
    "tab10": ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"],
    "muted": ["#4878d0", "#ee854a", "#6acc64", "#d65f5f", "#956cb4", "#8c613c", "#dc7ec0"],
    "dark": ["#001c7f", "#b1400d", "#12711c", "#8c0800", "#591e71", "#592f0d", "#a23582"],
    "earth": ["#8c510a", "#bf812d", "#35978f", "#01665e", "#c51b7d", "#4d9221", "#762a83"],
}
# (y x) spelled out: scatter tables hold two named value series.
SCATTER_X, SCATTER_Y = "x", "y"


@dataclass
class ChartSpec:
    """A data table and how to draw it.

    `series` maps a series name to one value per category. bar, line and pie charts have one series; a grouped
    bar chart has two or more (one bar per series in each category group); a stacked bar chart has two or more
    (one segment per series, stacked, all values positive); a scatter chart has the series "x" and "y" and one
    labelled point per category. `value_format` formats a value for the labels ("{:.0f}", "${:.2f}",
    "{:.1f}%"); scatter uses `x_format` for the x values. With `show_values=False` no value is written: the
    value axis gets a labelled gridline every `tick` (scatter: both axes, `tick` and `x_tick`), and every value
    must be a multiple of it, so reading the axis recovers it exactly.
    """

    kind: str
    title: str
    categories: list[str]
    series: dict[str, list[float]]
    x_label: str = ""
    y_label: str = ""
    value_format: str = "{:g}"
    x_format: str = "{:g}"
    show_values: bool = True
    tick: float | None = None
    x_tick: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in CHART_KINDS:
            raise ValueError(f"unknown chart kind {self.kind!r}; kinds are {', '.join(CHART_KINDS)}")
        n = len(self.categories)
        for name, values in self.series.items():
            if len(values) != n:
                raise ValueError(f"series {name!r} has {len(values)} values for {n} categories")
        if self.kind in ("bar", "line", "pie") and len(self.series) != 1:
            raise ValueError(f"a {self.kind} chart has exactly one series, not {len(self.series)}")
        if self.kind in ("grouped_bar", "stacked_bar") and len(self.series) < 2:
            raise ValueError(f"a {self.kind} chart needs two or more series")
        if self.kind == "stacked_bar" and any(v <= 0 for s in self.series.values() for v in s):
            raise ValueError("stacked bar values must be positive")
        if not self.show_values:
            if self.kind == "pie":
                raise ValueError("a pie chart always writes its values")
            if self.kind == "scatter":
                readings = [(self.values(SCATTER_Y), self.tick), (self.values(SCATTER_X), self.x_tick)]
            else:  # a stacked bar is read at the top of each segment
                tops = np.cumsum(list(self.series.values()), axis=0).ravel().tolist()
                readings = [([v for s in self.series.values() for v in s] + tops, self.tick)]
            for values, step in readings:
                if not step or any(abs(v / step - round(v / step)) > 1e-9 for v in values):
                    raise ValueError(f"unprinted values must be multiples of the tick {step}: {values}")
        if self.kind == "scatter" and set(self.series) != {SCATTER_X, SCATTER_Y}:
            raise ValueError('a scatter chart has the series "x" and "y"')
        if self.kind == "pie" and any(v <= 0 for v in self.values()):
            raise ValueError("pie values must be positive")

    def values(self, series: str | None = None) -> list[float]:
        """The values of one series (the only one by default)."""
        return list(self.series[series if series is not None else next(iter(self.series))])

    def fmt(self, value: float) -> str:
        return self.value_format.format(value)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "categories": list(self.categories),
                "series": {k: list(v) for k, v in self.series.items()}, "x_label": self.x_label,
                "y_label": self.y_label, "value_format": self.value_format, "x_format": self.x_format,
                "show_values": self.show_values, "tick": self.tick, "x_tick": self.x_tick}


@dataclass
class ChartElement:
    """One drawn datum: a bar, a pie wedge or a scatter/line point, with its pixel box [x0, y0, x1, y1]."""

    category: str
    series: str
    value: float
    box: list[float]


@dataclass
class Chart:
    image: Image.Image
    spec: ChartSpec
    elements: list[ChartElement] = field(default_factory=list)
    style: dict[str, Any] = field(default_factory=dict)
    axes_box: list[float] = field(default_factory=list)  # the plotting area, pixels
    value_range: list[float] = field(default_factory=list)  # the value (y) axis limits; empty for pies

    def element(self, category: str, series: str | None = None) -> ChartElement:
        for e in self.elements:
            if e.category == category and (series is None or e.series == series):
                return e
        raise KeyError(f"no element for {category!r} / {series!r}")


def chart_style(rng: np.random.Generator) -> dict[str, Any]:
    """A seeded look: palette, grid, face colour, font scale, marker, bar width."""
    return {
        "palette": str(rng.choice(list(PALETTES))),
        "grid": bool(rng.random() < 0.6),
        "face": str(rng.choice(["#ffffff", "#f7f7f7", "#fbf8f0", "#f2f5fa"])),
        "font_scale": float(rng.uniform(0.9, 1.1)),
        "marker": str(rng.choice(["o", "s", "D", "^"])),
        "bar_width": float(rng.uniform(0.55, 0.75)),
        "spines": bool(rng.random() < 0.5),
    }


def render_chart(spec: ChartSpec, size: tuple[int, int], style: dict[str, Any] | None = None,
                 rng: np.random.Generator | None = None) -> Chart:
    """Draw `spec` as a `size` (width, height) image; the style comes from `style`, or is drawn from `rng`."""
    if style is None:
        style = chart_style(rng if rng is not None else np.random.default_rng(0))
    w, h = size
    dpi = 100
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, facecolor=style["face"])
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_facecolor(style["face"])
    base = 8.0 * style["font_scale"] * min(w / 448, h / 336) ** 0.5
    colours = PALETTES[style["palette"]]
    artists = _DRAW[spec.kind](ax, spec, style, colours, base)
    ax.set_title(spec.title, fontsize=base * 1.25, fontweight="bold")
    if spec.kind != "pie":
        ax.set_xlabel(spec.x_label, fontsize=base)
        ax.set_ylabel(spec.y_label, fontsize=base)
        ax.tick_params(labelsize=base * 0.95)
        if not spec.show_values:
            # Reading the axis is the task: a labelled gridline at every multiple of the tick.
            ax.yaxis.set_major_locator(MultipleLocator(spec.tick))
            ax.grid(axis="y", alpha=0.6, linewidth=0.7)
            if spec.kind == "scatter":
                ax.xaxis.set_major_locator(MultipleLocator(spec.x_tick))
                ax.grid(axis="x", alpha=0.6, linewidth=0.7)
            ax.set_axisbelow(True)
        elif style["grid"]:
            ax.grid(axis="y", alpha=0.35, linewidth=0.6)
            ax.set_axisbelow(True)
        if spec.kind != "scatter" and ax.get_ylim()[0] < 0:  # negative values: the zero line is the baseline
            ax.axhline(0, color="#333333", linewidth=0.8)
        if not style["spines"]:
            ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout(pad=0.4)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy(), "RGB")
    renderer = canvas.get_renderer()
    elements = []
    for category, series, value, artist, point in artists:
        if point is None:
            bb = artist.get_window_extent(renderer)
            x0, x1, y0, y1 = bb.x0, bb.x1, h - bb.y1, h - bb.y0
        else:
            px, py = ax.transData.transform(point)
            r = max(4.0, base * 0.6)
            x0, x1, y0, y1 = px - r, px + r, h - py - r, h - py + r
        box = [round(max(0.0, float(x0)), 1), round(max(0.0, float(y0)), 1), round(min(float(w), float(x1)), 1),
               round(min(float(h), float(y1)), 1)]
        if box[2] - box[0] < 1:  # a hairline bar still gets a visible region
            box[0], box[2] = max(0.0, box[0] - 1), min(float(w), box[2] + 1)
        if box[3] - box[1] < 1:
            box[1], box[3] = max(0.0, box[1] - 1), min(float(h), box[3] + 1)
        elements.append(ChartElement(category, series, value, box))
    bb = ax.get_window_extent(renderer)
    axes_box = [round(float(bb.x0), 1), round(float(h - bb.y1), 1), round(float(bb.x1), 1), round(float(h - bb.y0), 1)]
    value_range = [] if spec.kind == "pie" else [round(float(v), 4) for v in ax.get_ylim()]
    fig.clear()
    return Chart(image, spec, elements, style, axes_box, value_range)


# Each drawer returns (category, series, value, artist, data point or None) per datum.

def _bar(ax: Any, spec: ChartSpec, style: dict[str, Any], colours: list[str], base: float) -> list[tuple]:
    name = next(iter(spec.series))
    values = spec.values()
    x = np.arange(len(spec.categories))
    bars = ax.bar(x, values, width=style["bar_width"], color=[colours[i % len(colours)] for i in range(len(x))],
                  edgecolor="#333333", linewidth=0.5)
    if spec.show_values:
        ax.bar_label(bars, labels=[spec.fmt(v) for v in values], fontsize=base * 0.95, padding=2)
    ax.set_xticks(x, spec.categories)
    _value_limits(ax, spec, values)
    return [(c, name, v, b, None) for c, v, b in zip(spec.categories, values, bars)]


def _grouped_bar(ax: Any, spec: ChartSpec, style: dict[str, Any], colours: list[str], base: float) -> list[tuple]:
    x = np.arange(len(spec.categories))
    n = len(spec.series)
    width = style["bar_width"] / n
    out = []
    for k, (name, values) in enumerate(spec.series.items()):
        bars = ax.bar(x + (k - (n - 1) / 2) * width, values, width=width, label=name, color=colours[k % len(colours)],
                      edgecolor="#333333", linewidth=0.5)
        if spec.show_values:
            ax.bar_label(bars, labels=[spec.fmt(v) for v in values], fontsize=base * 0.8, padding=1)
        out += [(c, name, v, b, None) for c, v, b in zip(spec.categories, values, bars)]
    ax.set_xticks(x, spec.categories)
    _value_limits(ax, spec, [v for s in spec.series.values() for v in s], legend_room=0.22)
    ax.legend(fontsize=base * 0.85, loc="upper left", ncols=n, frameon=False)
    return out


def _line(ax: Any, spec: ChartSpec, style: dict[str, Any], colours: list[str], base: float) -> list[tuple]:
    name = next(iter(spec.series))
    values = spec.values()
    x = np.arange(len(spec.categories))
    ax.plot(x, values, color=colours[0], marker=style["marker"], linewidth=1.8, markersize=base * 0.7)
    if spec.show_values:
        for xi, v in zip(x, values):
            ax.annotate(spec.fmt(v), (xi, v), textcoords="offset points", xytext=(0, base * 0.9), ha="center",
                        fontsize=base * 0.95)
    ax.set_xticks(x, spec.categories)
    _value_limits(ax, spec, values)
    ax.set_xlim(-0.5, len(x) - 0.5)
    return [(c, name, v, None, (xi, v)) for c, v, xi in zip(spec.categories, values, x)]


def _pie(ax: Any, spec: ChartSpec, style: dict[str, Any], colours: list[str], base: float) -> list[tuple]:
    name = next(iter(spec.series))
    values = spec.values()
    labels = [f"{c}\n{spec.fmt(v)}" for c, v in zip(spec.categories, values)]
    wedges, _ = ax.pie(values, labels=labels, colors=[colours[i % len(colours)] for i in range(len(values))],
                       startangle=90, counterclock=False, wedgeprops={"edgecolor": "white", "linewidth": 1},
                       textprops={"fontsize": base * 0.95}, labeldistance=1.18)
    ax.set_aspect("equal")
    return [(c, name, v, wdg, None) for c, v, wdg in zip(spec.categories, values, wedges)]


def _scatter(ax: Any, spec: ChartSpec, style: dict[str, Any], colours: list[str], base: float) -> list[tuple]:
    xs, ys = spec.values(SCATTER_X), spec.values(SCATTER_Y)
    ax.scatter(xs, ys, s=(base * 0.9) ** 2, marker=style["marker"],
               c=[colours[i % len(colours)] for i in range(len(xs))], edgecolors="#333333", linewidths=0.5)
    for c, x, y in zip(spec.categories, xs, ys):
        label = f"{c} ({spec.x_format.format(x)}, {spec.fmt(y)})" if spec.show_values else c
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(0, base * 0.9), ha="center",
                    fontsize=base * 0.85)
    xpad = (max(xs) - min(xs)) * 0.2 + (spec.x_tick or 0) * 0.6 + 1e-9
    ypad = (max(ys) - min(ys)) * 0.25 + (spec.tick or 0) * 0.6 + 1e-9
    ax.set_xlim(min(xs) - xpad, max(xs) + xpad)
    ax.set_ylim(min(ys) - ypad, max(ys) + ypad * 1.4)
    # A scatter point's region belongs to the "y" series: the point is the datum (x and y together).
    return [(c, SCATTER_Y, y, None, (x, y)) for c, x, y in zip(spec.categories, xs, ys)]


def _stacked_bar(ax: Any, spec: ChartSpec, style: dict[str, Any], colours: list[str], base: float) -> list[tuple]:
    x = np.arange(len(spec.categories))
    bottom = np.zeros(len(x))
    out = []
    for k, (name, values) in enumerate(spec.series.items()):
        bars = ax.bar(x, values, bottom=bottom, width=style["bar_width"], label=name, color=colours[k % len(colours)],
                      edgecolor="#333333", linewidth=0.5)
        if spec.show_values:
            ax.bar_label(bars, labels=[spec.fmt(v) for v in values], label_type="center", fontsize=base * 0.8,
                         color="white")
        out += [(c, name, v, b, None) for c, v, b in zip(spec.categories, values, bars)]
        bottom = bottom + np.asarray(values, dtype=float)
    ax.set_xticks(x, spec.categories)
    _value_limits(ax, spec, [0.0, *bottom.tolist()], legend_room=0.22)
    ax.legend(fontsize=base * 0.85, loc="upper left", ncols=len(spec.series), frameon=False)
    return out


def _value_limits(ax: Any, spec: ChartSpec, values: list[float], legend_room: float = 0.0) -> None:
    """Value-axis limits that take in zero and every value, with room for the value labels (and a legend)."""
    lo, hi = min(0.0, *values), max(0.0, *values)
    span = (hi - lo) or 1.0
    pad = span * (0.16 if spec.show_values else 0.06) + (spec.tick or 0) * 0.3
    bottom = lo - pad if lo < 0 else 0.0
    ax.set_ylim(bottom, hi + pad + span * legend_room)


_DRAW = {"bar": _bar, "grouped_bar": _grouped_bar, "stacked_bar": _stacked_bar, "line": _line, "pie": _pie,
         "scatter": _scatter}
