"""Analytical tasks: reading and combining evidence across images.

* `chart_analysis`: a dashboard of 4-6 charts; the answer needs values from two or three of them combined
  (revenue = units x price, a company's units = market share x market size, ...), never one chart alone.
* `weight_comparison`: 8-9 equal-arm balances, each weighing two of 5-6 neutrally named objects and resting on
  its stop on the heavier side; the heaviest, the lightest or the full order, or "Cannot be determined".
* `scale_blur`: the true scale of what a picture shows, against blur cues: zoom levels of one picture under
  unrelated blur, or real scenes of very different sizes where some are made to look like miniatures by
  tilt-shift blur.
* `yes_but_satire`: two panels, a sign's claim and the same place after four changes; which change contradicts
  the claim. Also built from a folder of real two-panel images and a CSV of their explanations.

Each task's spec (mirdata/tasks/<task>.yaml) defines it precisely and holds its question families (texts, the
answer rule, the constraints) and its phrase tables; this module draws the facts, registers the answer rules and
constraints the specs name, makes the images and regions, and writes the reasoning from the facts alone. Scene
data (the claims and changes of yes_but_satire, the photos of scale_blur, the chart metrics) stays here, beside
the code that draws it.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, TypedDict

import cv2
import numpy as np
from PIL import Image

from mirdata.builders.base import (BuildOptions, Reasoning, Regions, Sample, Task, TaskConfig, cite, conclude, join_and,
                                   pick)
from mirdata.builders.options import (Slot, comparable_lengths, distinct_distractors, number_options,
                                      ordering_distractors, pick_balanced, place_answer, special_is_answer)
from mirdata.errors import MirdataError
from mirdata.generators.charts import SCATTER_X, SCATTER_Y, ChartSpec, render_chart
from mirdata.generators.drawings import (SCALE_SCENES, SCALE_SHAPES, ScaleItem, Sprite, background, balance_angle,
                                         draw_balance_scale, draw_sign, mask_box, paste_sprite, sprite)
from mirdata.generators.editing import EDITORS, Edit, Editor, make_editor
from mirdata.registry import Family, TaskSpec, task_spec
from mirdata.schema.checks import stated_letters
from mirdata.schema.record import IMAGE_TOKEN, Region

CANNOT = "Cannot be determined"


# -- shared helpers ---------------------------------------------------------------------------------------------

def num(value: float) -> str:
    """A number as the reasoning writes it: thousands separated, no needless decimals."""
    value = round(float(value), 2)
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# == chart_analysis ============================================================================================

PRODUCTS = ["Alpha", "Bravo", "Comet", "Delta", "Ember", "Falcon", "Garnet", "Helix"]
COMPANIES = ["Acme", "Borealis", "Cobalt", "Dynamo", "Equinox", "Fjord"]
AREAS = ["North", "South", "East", "West", "Central", "Coast"]
CHAINS = ["Avenue", "Beacon", "Corner", "Dockside", "Elm", "Forum"]
DEPARTMENTS = ["Sales", "Support", "Research", "Legal", "Design", "Finance"]
TOWNS = ["Ashby", "Brook", "Carlow", "Dunmore", "Easton", "Fairview"]

# Charts a dashboard shows beside the needed ones: (title, axis label, low, high, step, value format).
FILLER_METRICS = [("Customer rating", "rating (1-10)", 1, 10, 1, "{:.0f}"),
                  ("Returns", "returns (%)", 1, 14, 1, "{:.0f}%"),
                  ("Advertising spend", "k USD", 5, 60, 5, "{:.0f}"),
                  ("Staff", "employees", 10, 120, 10, "{:.0f}"),
                  ("Support tickets", "tickets", 20, 240, 20, "{:.0f}"),
                  ("Delivery time", "days", 1, 12, 1, "{:.0f}"),
                  ("Website visits", "thousand visits", 5, 60, 5, "{:.0f}"),
                  ("Energy use", "MWh", 10, 90, 10, "{:.0f}")]
DASHBOARD_SIZES = (4, 5, 6, 6, 6, 6)  # charts per question: 4-6, mostly 6
# Constraints checked once the question is phrased and its distractors drawn (where the draw checked them
# before the families were data: checking them earlier would change every later draw of the record's RNG).
CHECKED_WHEN_PHRASED = frozenset({"best_seller_filtered_out"})
CHECKED_ON_DASHBOARD = frozenset({"no_single_chart"})  # needs the filler charts too


@dataclass
class NumberAnswer:
    """How a numeric answer's options are made: its format, its precision, and the totals no two may add to."""

    fmt: str
    quantum: float
    totals: list[float]
    low: float | None


@dataclass
class ChartDraw:
    """One draw of a chart family: the needed charts and the values they show, before the answer is solved."""

    specs: list[ChartSpec]  # the charts the answer needs
    items: list[str]  # the candidates a "which" question asks among
    values: dict[str, Any]  # the drawn tables the answer rule reads: {"units": {item: value}, ...}
    params: dict[str, Any]  # the question's fields (year, company ...), kept in the facts
    cite: list[tuple[int, str | None]] = field(default_factory=list)  # (needed chart, series) per candidate
    cited: list[tuple[int, str, str | None]] = field(default_factory=list)  # numbers: (chart, category, series)
    number: NumberAnswer | None = None
    solved: ChartAnswer | None = None  # the answer rule's result
    charts: list[ChartSpec] = field(default_factory=list)  # the whole dashboard, fillers included


@dataclass
class ChartAnswer:
    """What an answer rule finds: the derived figure per candidate, the worked steps, and the answer."""

    direction: str  # max / min: the asked extreme; "number" for numeric answers
    computed: dict[str, float]
    steps: list[str]
    answer: str  # the winning candidate, or the company whose figure is asked

    @property
    def ranked(self) -> list[str]:
        return sorted(self.computed, key=self.computed.get, reverse=self.direction == "max")


class ChartFacts(TypedDict, total=False):
    family: str
    direction: str
    charts: list[dict[str, Any]]  # every chart as shown, in image order
    needed_charts: list[int]  # 1-based
    axes: list[dict[str, Any]]
    chart_styles: list[dict[str, Any]]
    computed: dict[str, float]
    steps: list[str]
    answer_text: str
    # the question's fields, by family
    year: int | str
    year0: str
    next: int
    company: str
    share: int
    total: float
    threshold: int
    runner_up: str


def _grid_values(rng: np.random.Generator, items: list[str], lo: float, hi: float, step: float) -> dict[str, float]:
    """A value per item, a multiple of `step` in [lo, hi]."""
    k = rng.integers(int(np.ceil(lo / step)), int(np.floor(hi / step)) + 1, size=len(items))
    return {p: round(float(v) * step, 2) for p, v in zip(items, k)}


def _axis(rng: np.random.Generator, printed_step: float, axis_step: float) -> tuple[bool, float]:
    """Whether a chart writes its values (else the axis is read at gridlines) and the step its values take."""
    printed = bool(rng.random() < 0.6)
    return printed, printed_step if printed else axis_step


def _bar_or_line(rng: np.random.Generator, title: str, items: list[str], values: dict[str, float], x_label: str,
                 y_label: str, fmt: str, printed: bool, step: float, kinds: tuple[str, ...] = ("bar", "line")
                 ) -> ChartSpec:
    return ChartSpec(pick(rng, kinds), title, items, {y_label: [values[p] for p in items]}, x_label, y_label, fmt,
                     show_values=printed, tick=None if printed else step)


def _clear_extreme(values: dict[str, float], direction: str, margin: float) -> str | None:
    """The key of the max (or min) value if it leads the runner-up by `margin` of the values' spread; else None."""
    ranked = sorted(values, key=values.get, reverse=direction == "max")
    spread = max(values.values()) - min(values.values())
    gap = abs(values[ranked[0]] - values[ranked[1]])
    return ranked[0] if spread > 0 and gap >= margin * spread and gap >= 0.04 * abs(values[ranked[0]]) else None


def tied_extremes(values: dict[str, float], direction: str) -> list[str]:
    """Every key tied at the max (or min): the items a single chart alone would point to."""
    best = max(values.values()) if direction == "max" else min(values.values())
    return [k for k, v in values.items() if abs(v - best) < 1e-9]


def chart_series(spec: ChartSpec) -> list[dict[str, float]]:
    """What a chart alone tells about its items, as {category: value}: each series, or a stacked bar's totals
    (its segments are parts of one figure, not figures of their own)."""
    if spec.kind == "stacked_bar":
        return [dict(zip(spec.categories, np.sum(list(spec.series.values()), axis=0).tolist()))]
    return [dict(zip(spec.categories, vals)) for vals in spec.series.values()]


def single_chart_gives(solved: ChartAnswer, specs: list[ChartSpec]) -> bool:
    """Whether one chart alone points to the answer: the answer is among a series' tied extremes in the asked
    direction, or (for numbers) the answer's value is one a chart shows."""
    if solved.direction == "number":
        value = solved.computed[solved.answer]
        return any(abs(v - value) < 1e-6 for s in specs for series in chart_series(s) for v in series.values())
    return any(solved.answer in tied_extremes(series, solved.direction)
               for s in specs for series in chart_series(s) if solved.answer in series)


def _which_distractors(rng: np.random.Generator, problem_specs: list[ChartSpec], answer: str, items: list[str],
                       direction: str) -> list[str]:
    """Three other items: first every single-chart extreme (all of a tie), then the rest in random order."""
    traps = [k for s in problem_specs for series in chart_series(s) if answer in series
             for k in tied_extremes(series, direction)]
    return distinct_distractors(answer, traps + rng.permutation(items).tolist(), 3)


def _items(rng: np.random.Generator, names: list[str], lo: int = 4, hi: int = 6) -> list[str]:
    n = int(rng.integers(lo, hi + 1))
    return sorted(rng.choice(names, size=n, replace=False).tolist(), key=names.index)


def _years(rng: np.random.Generator) -> list[str]:
    first = int(rng.integers(2015, 2021))
    return [str(first + k) for k in range(int(rng.integers(4, 7)))]


def _shares(rng: np.random.Generator, companies: list[str]) -> dict[str, int] | None:
    raw = rng.dirichlet(np.full(len(companies), 2.0)) * 100
    shares = np.maximum(5, np.round(raw)).astype(int)
    shares[int(np.argmax(shares))] += 100 - int(shares.sum())
    if shares.min() < 5 or len(set(shares.tolist())) != len(shares):
        return None
    return dict(zip(companies, shares.tolist()))


def _market(rng: np.random.Generator, years: list[str]) -> tuple[ChartSpec, dict[str, float], float]:
    """The market size per year, and the precision a whole-percent share of it has (its step / 100)."""
    printed, step = _axis(rng, 10, 50)
    totals = _grid_values(rng, years, 200, 900, step)
    spec = _bar_or_line(rng, "Whole market (thousand units)", years, totals, "year", "thousand units", "{:.0f}",
                        printed, step)
    return spec, totals, step / 100


# -- the families' draws (None: this draw cannot make the question; the caller draws again) ----------------

def draw_revenue(rng: np.random.Generator) -> ChartDraw:
    year = int(rng.integers(2016, 2025))
    items = _items(rng, PRODUCTS)
    units_printed, units_step = _axis(rng, 5, 25)
    price_printed, price_step = _axis(rng, 0.25, 2)
    units = _grid_values(rng, items, 25, 300, units_step)
    price = _grid_values(rng, items, 2, 24, price_step)
    specs = [_bar_or_line(rng, f"Units sold in {year}", items, units, "product", "units sold", "{:.0f}",
                          units_printed, units_step),
             _bar_or_line(rng, "Price per unit", items, price, "product", "price (USD)", "${:.2f}",
                          price_printed, price_step)]
    return ChartDraw(specs, items, {"units": units, "price": price}, {"year": year}, [(0, None), (1, None)])


def draw_profit(rng: np.random.Generator) -> ChartDraw:
    year = int(rng.integers(2016, 2025))
    items = _items(rng, PRODUCTS)
    units_printed, units_step = _axis(rng, 5, 25)
    margin_printed, margin_step = _axis(rng, 1, 5)
    units = _grid_values(rng, items, 25, 300, units_step)
    price = _grid_values(rng, items, 2, 30, 0.25)
    margin = _grid_values(rng, items, 5, 40, margin_step)
    specs = [_bar_or_line(rng, f"Units sold in {year}", items, units, "product", "units sold", "{:.0f}",
                          units_printed, units_step),
             _bar_or_line(rng, "Price per unit", items, price, "product", "price (USD)", "${:.2f}", True, 0.25),
             _bar_or_line(rng, "Profit margin", items, margin, "product", "margin (%)", "{:.0f}%",
                          margin_printed, margin_step)]
    return ChartDraw(specs, items, {"units": units, "price": price, "margin": margin}, {"year": year},
                     [(0, None), (1, None), (2, None)])


def draw_share_units(rng: np.random.Generator) -> ChartDraw | None:
    companies = _items(rng, COMPANIES)
    share = _shares(rng, companies)
    if share is None:
        return None
    years = _years(rng)
    market, totals, quantum = _market(rng, years)
    year, company = pick(rng, years), pick(rng, companies)
    pie = ChartSpec("pie", f"Market share by company, {year}", companies, {"share": list(share.values())},
                    value_format="{:.0f}%")
    return ChartDraw([pie, market], companies, {"share": share, "totals": totals},
                     {"company": company, "year": year, "share": share[company], "total": totals[year]},
                     cited=[(0, company, None), (1, year, None)],
                     number=NumberAnswer("{:,.1f} thousand units", quantum, list(totals.values()) + [100.0], 0.0))


def draw_share_change(rng: np.random.Generator) -> ChartDraw | None:
    companies = _items(rng, COMPANIES)
    before, after = _shares(rng, companies), _shares(rng, companies)
    if before is None or after is None:
        return None
    years = _years(rng)
    market, totals, quantum = _market(rng, years)
    y0, y1 = sorted(rng.choice(years, size=2, replace=False).tolist())
    company = pick(rng, companies)
    pies = [ChartSpec("pie", f"Market share by company, {y}", companies, {"share": list(s.values())},
                      value_format="{:.0f}%") for y, s in ((y0, before), (y1, after))]
    return ChartDraw([*pies, market], companies, {"before": before, "after": after, "totals": totals},
                     {"company": company, "year": y1, "year0": y0},
                     cited=[(0, company, None), (1, company, None), (2, y0, None), (2, y1, None)],
                     number=NumberAnswer("{:+,.1f} thousand units", quantum, [0.0], None))


def draw_projection(rng: np.random.Generator) -> ChartDraw:
    year = int(rng.integers(2016, 2025))
    areas = _items(rng, AREAS)
    printed, step = _axis(rng, 10, 50)
    sales = _grid_values(rng, areas, 100, 600, step)
    rate_printed, rate_step = _axis(rng, 1, 5)
    rate = _grid_values(rng, areas, -20, 40, rate_step)
    specs = [_bar_or_line(rng, f"Sales in {year} (thousand USD)", areas, sales, "area", "sales (k USD)",
                          "{:.0f}", printed, step, ("bar",)),
             _bar_or_line(rng, "Yearly growth rate", areas, rate, "area", "growth (%)", "{:+.0f}%",
                          rate_printed, rate_step)]
    return ChartDraw(specs, areas, {"sales": sales, "rate": rate}, {"year": year, "next": year + 1},
                     [(0, None), (1, None)])


def draw_revenue_change(rng: np.random.Generator) -> ChartDraw:
    year = int(rng.integers(2017, 2025))
    items = _items(rng, PRODUCTS, 4, 5)
    printed, step = _axis(rng, 5, 25)
    before = _grid_values(rng, items, 25, 300, step)
    after = {p: min(325.0, max(step, before[p] + float(rng.integers(-3, 5)) * 25)) for p in items}
    price = _grid_values(rng, items, 2, 30, 0.25)
    y0, y1 = str(year - 1), str(year)
    specs = [ChartSpec("grouped_bar", "Units sold", items, {y0: [before[p] for p in items],
                                                            y1: [after[p] for p in items]},
                       "product", "units sold", "{:.0f}", show_values=printed, tick=None if printed else step),
             _bar_or_line(rng, "Price per unit", items, price, "product", "price (USD)", "${:.2f}", True, 0.25)]
    return ChartDraw(specs, items, {"before": before, "after": after, "price": price}, {"year": y1, "year0": y0},
                     [(0, y0), (0, y1), (1, None)])


def draw_stacked_revenue(rng: np.random.Generator) -> ChartDraw:
    regions = _items(rng, AREAS, 4, 5)
    lines = sorted(rng.choice(["Basic", "Plus", "Pro"], size=int(rng.integers(2, 4)), replace=False).tolist())
    printed, step = _axis(rng, 5, 10)
    units = {line: _grid_values(rng, regions, step, 60, step) for line in lines}
    price = _grid_values(rng, lines, 2, 20, 1)
    specs = [ChartSpec("stacked_bar", "Units sold by product line (thousands)", regions,
                       {line: [units[line][r] for r in regions] for line in lines}, "region", "thousand units",
                       "{:.0f}", show_values=printed, tick=None if printed else step),
             _bar_or_line(rng, "Price per unit by line", lines, price, "product line", "price (USD)", "${:.0f}",
                          True, 1)]
    return ChartDraw(specs, regions, {"units": units, "price": price, "lines": lines}, {},
                     [(0, line) for line in lines])


def draw_filter_max(rng: np.random.Generator) -> ChartDraw | None:
    items = _items(rng, PRODUCTS, 5, 6)
    printed = bool(rng.random() < 0.5)
    rating = _grid_values(rng, items, 1, 9, 1)
    price = _grid_values(rng, items, 2, 20, 2)
    threshold = int(rng.integers(4, 7))
    kept = [p for p in items if rating[p] >= threshold]
    # Checked mid-draw (the units are drawn after it): at least two products on each side of the threshold.
    if not 2 <= len(kept) <= len(items) - 2:
        return None
    units_printed, units_step = _axis(rng, 5, 25)
    units = _grid_values(rng, items, 25, 300, units_step)
    specs = [ChartSpec("scatter", "Price and customer rating", items,
                       {SCATTER_X: [price[p] for p in items], SCATTER_Y: [rating[p] for p in items]},
                       "price (USD)", "rating (1-10)", "{:.0f}", "${:.0f}", show_values=printed,
                       tick=None if printed else 1, x_tick=None if printed else 2),
             _bar_or_line(rng, "Units sold", items, units, "product", "units sold", "{:.0f}", units_printed,
                          units_step)]
    return ChartDraw(specs, items, {"rating": rating, "units": units, "kept": kept}, {"threshold": threshold},
                     [(0, SCATTER_Y), (1, None)])


def draw_loss_total(rng: np.random.Generator) -> ChartDraw | None:
    chains = _items(rng, CHAINS)
    printed, step = _axis(rng, 1, 5)
    per_store = _grid_values(rng, chains, -30, 40, step)
    if sum(v < 0 for v in per_store.values()) < 2:  # checked mid-draw: at least two chains lose money per store
        return None
    stores_printed, stores_step = _axis(rng, 1, 5)
    stores = _grid_values(rng, chains, 5, 60, stores_step)
    specs = [_bar_or_line(rng, "Profit per store (k USD)", chains, per_store, "chain", "k USD per store",
                          "{:+.0f}", printed, step, ("bar",)),
             _bar_or_line(rng, "Number of stores", chains, stores, "chain", "stores", "{:.0f}", stores_printed,
                          stores_step)]
    return ChartDraw(specs, chains, {"per_store": per_store, "stores": stores}, {}, [(0, None), (1, None)])


def draw_budget_gap(rng: np.random.Generator) -> ChartDraw:
    departments = _items(rng, DEPARTMENTS)
    printed, step = _axis(rng, 5, 20)
    budget = _grid_values(rng, departments, 40, 240, step)
    spend = {d: max(step, budget[d] + float(rng.integers(-3, 5)) * step) for d in departments}
    specs = [_bar_or_line(rng, "Budget (k USD)", departments, budget, "department", "k USD", "{:.0f}", printed,
                          step, ("bar",)),
             _bar_or_line(rng, "Actual spending (k USD)", departments, spend, "department", "k USD", "{:.0f}",
                          printed, step)]
    return ChartDraw(specs, departments, {"budget": budget, "spend": spend}, {}, [(0, None), (1, None)])


def draw_per_capita(rng: np.random.Generator) -> ChartDraw:
    towns = _items(rng, TOWNS)
    printed, step = _axis(rng, 1, 5)
    residents = _grid_values(rng, towns, 5, 60, step)
    visits_printed, visits_step = _axis(rng, 5, 20)
    visits = _grid_values(rng, towns, 20, 240, visits_step)
    specs = [_bar_or_line(rng, "Residents (thousands)", towns, residents, "town", "thousand residents",
                          "{:.0f}", printed, step),
             _bar_or_line(rng, "Library visits (thousands)", towns, visits, "town", "thousand visits", "{:.0f}",
                          visits_printed, visits_step)]
    return ChartDraw(specs, towns, {"residents": residents, "visits": visits}, {}, [(1, None), (0, None)])


# -- the families' answer rules: the figure each candidate gets, worked out step by step -----------------------

Figures = tuple[dict[str, float], list[str]]  # the derived figure per candidate, and one step per candidate


def revenue(d: ChartDraw) -> Figures:
    units, price = d.values["units"], d.values["price"]
    computed = {p: units[p] * price[p] for p in d.items}
    return computed, [f"{p}: {num(units[p])} × ${num(price[p])} = {num(computed[p])}." for p in d.items]


def profit(d: ChartDraw) -> Figures:
    units, price, margin = d.values["units"], d.values["price"], d.values["margin"]
    computed = {p: units[p] * price[p] * margin[p] / 100 for p in d.items}
    return computed, [f"{p}: {num(units[p])} × ${num(price[p])} × {num(margin[p])}% = {num(computed[p])}."
                      for p in d.items]


def projected_sales(d: ChartDraw) -> Figures:
    sales, rate = d.values["sales"], d.values["rate"]
    computed = {a: sales[a] * (1 + rate[a] / 100) for a in d.items}
    return computed, [f"{a}: {num(sales[a])} changed by {int(rate[a]):+d}% gives {num(computed[a])}."
                      for a in d.items]


def revenue_gain(d: ChartDraw) -> Figures:
    before, after, price = d.values["before"], d.values["after"], d.values["price"]
    computed = {p: (after[p] - before[p]) * price[p] for p in d.items}
    return computed, [f"{p}: ({num(after[p])} − {num(before[p])}) × ${num(price[p])} = {num(computed[p])}."
                      for p in d.items]


def region_revenue(d: ChartDraw) -> Figures:
    units, price, lines = d.values["units"], d.values["price"], d.values["lines"]
    computed = {r: sum(units[line][r] * price[line] for line in lines) for r in d.items}
    return computed, [f"{r}: " + " + ".join(f"{num(units[line][r])} × ${num(price[line])}" for line in lines)
                      + f" = {num(computed[r])} thousand USD." for r in d.items]


def rated_units(d: ChartDraw) -> Figures:
    rating, units, kept = d.values["rating"], d.values["units"], d.values["kept"]
    threshold = d.params["threshold"]
    dropped = [p for p in d.items if p not in kept]
    return {p: units[p] for p in kept}, [
        f"Rated {threshold} or more: {join_and([f'{p} ({num(rating[p])})' for p in kept])}; "
        f"below: {join_and([f'{p} ({num(rating[p])})' for p in dropped])}.",
        *[f"{p} sold {num(units[p])} units." for p in kept]]


def total_profit(d: ChartDraw) -> Figures:
    per_store, stores = d.values["per_store"], d.values["stores"]
    computed = {c: per_store[c] * stores[c] for c in d.items}
    return computed, [f"{c}: {num(per_store[c])} × {num(stores[c])} = {num(computed[c])} k USD." for c in d.items]


def overspend(d: ChartDraw) -> Figures:
    budget, spend = d.values["budget"], d.values["spend"]
    computed = {x: spend[x] - budget[x] for x in d.items}
    return computed, [f"{x}: {num(spend[x])} − {num(budget[x])} = {num(computed[x])} k USD." for x in d.items]


def visits_per_resident(d: ChartDraw) -> Figures:
    residents, visits = d.values["residents"], d.values["visits"]
    computed = {t: visits[t] / residents[t] for t in d.items}
    return computed, [f"{t}: {num(visits[t])} / {num(residents[t])} = {num(computed[t])} visits per resident."
                      for t in d.items]


def company_units(d: ChartDraw) -> Figures:
    company, year = d.params["company"], d.params["year"]
    share, total = d.values["share"][company], d.values["totals"][year]
    value = share * total / 100
    return {company: value}, [f"The {company} wedge reads {share}% and the {year} market is {num(total)} thousand "
                              f"units: {share}% × {num(total)} = {num(value)} thousand units."]


def company_unit_change(d: ChartDraw) -> Figures:
    company, y0, y1 = d.params["company"], d.params["year0"], d.params["year"]
    before, after, totals = d.values["before"], d.values["after"], d.values["totals"]
    units0, units1 = before[company] * totals[y0] / 100, after[company] * totals[y1] / 100
    value = units1 - units0
    return {company: value}, [f"In {y0}: {before[company]}% × {num(totals[y0])} = {num(units0)} thousand units.",
                              f"In {y1}: {after[company]}% × {num(totals[y1])} = {num(units1)} thousand units.",
                              f"The change is {num(units1)} − {num(units0)} = {num(value)} thousand units."]


def _extreme(direction: str, figures: Callable[[ChartDraw], Figures]) -> Callable[[ChartDraw], ChartAnswer]:
    """The answer rule "the candidate whose figure is highest (max) / lowest (min)"."""
    def rule(d: ChartDraw) -> ChartAnswer:
        computed, steps = figures(d)
        return ChartAnswer(direction, computed, steps, sorted(computed, key=computed.get,
                                                              reverse=direction == "max")[0])
    return rule


def _figure(figures: Callable[[ChartDraw], Figures]) -> Callable[[ChartDraw], ChartAnswer]:
    """The answer rule "the asked company's figure" (a number)."""
    def rule(d: ChartDraw) -> ChartAnswer:
        computed, steps = figures(d)
        return ChartAnswer("number", computed, steps, d.params["company"])
    return rule


def _leads_by(margin: float) -> Callable[[ChartDraw], bool]:
    """The constraint "the winner leads the runner-up by `margin` of the figures' spread (and by 4% of itself)"."""
    return lambda d: _clear_extreme(d.solved.computed, d.solved.direction, margin) is not None


class ChartAnalysis(Task):
    """chart_analysis (its definition: mirdata/tasks/chart_analysis.yaml): a dashboard of 4-6 charts whose answer
    needs values from two or three of them combined. Each family is a draw (`draws`), an answer rule and its
    constraints (the spec names them)."""

    Facts = ChartFacts
    draws: ClassVar[dict[str, Callable[[np.random.Generator], ChartDraw | None]]] = {
        "top_revenue": draw_revenue, "lowest_revenue": draw_revenue, "profit": draw_profit,
        "share_units": draw_share_units, "share_change": draw_share_change, "projection": draw_projection,
        "revenue_change": draw_revenue_change, "stacked_revenue": draw_stacked_revenue,
        "filter_max": draw_filter_max, "loss_total": draw_loss_total, "budget_gap": draw_budget_gap,
        "per_capita": draw_per_capita}
    answer_rules = {
        "most_revenue": _extreme("max", revenue),
        "least_revenue": _extreme("min", revenue),
        "most_profit": _extreme("max", profit),
        "company_units": _figure(company_units),
        "company_unit_change": _figure(company_unit_change),
        "top_projected_sales": _extreme("max", projected_sales),
        "largest_revenue_gain": _extreme("max", revenue_gain),
        "top_region_revenue": _extreme("max", region_revenue),
        "best_seller_rated": _extreme("max", rated_units),
        "lowest_total_profit": _extreme("min", total_profit),
        "largest_overspend": _extreme("max", overspend),
        "most_visits_per_resident": _extreme("max", visits_per_resident),
    }
    constraints = {
        "leads_by_4pct": _leads_by(0.04), "leads_by_6pct": _leads_by(0.06), "leads_by_8pct": _leads_by(0.08),
        # The best seller overall must be filtered out, or the units chart alone would answer.
        "best_seller_filtered_out": lambda d: max(d.values["units"], key=d.values["units"].get)
        not in d.values["kept"],
        # No chart on the dashboard (fillers included) gives the answer alone.
        "no_single_chart": lambda d: not single_chart_gives(d.solved, d.charts),
    }

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        family = self.families.cycle(slot)
        drawn = self._draw(family, rng)
        if drawn is None:
            return None
        draw, question, distractors = drawn
        solved = draw.solved
        shown_at = [int(k) for k in rng.permutation(len(draw.charts))]  # needed charts anywhere on the dashboard
        shown = [draw.charts[k] for k in shown_at]
        charts = [render_chart(spec, self.config.image_size, rng=rng) for spec in shown]
        regions = Regions()
        for needed, category, series in self._cited(draw):
            k = shown_at.index(needed)
            element = charts[k].element(category, series)
            label = f"{category} {series}" if shown[k].kind in ("grouped_bar", "stacked_bar") else category
            regions.add(k, element.box, f"{label}: {shown[k].title}")
        correct = self._answer_text(draw)
        options, answer = place_answer(correct, distractors, slot, rng)
        intro = self.families.phrase("intro", rng, n=len(charts), images=" ".join(IMAGE_TOKEN for _ in charts),
                                     numbered=" ".join(f"Chart {k + 1}: {IMAGE_TOKEN}" for k in range(len(charts))))
        facts = ChartFacts(
            family=family.name, direction=solved.direction, charts=[spec.to_json() for spec in shown],
            needed_charts=sorted(shown_at.index(k) + 1 for k in range(len(draw.specs))),
            axes=[{"axes_box": c.axes_box, "value_range": c.value_range} for c in charts],
            chart_styles=[c.style for c in charts], computed={k: round(v, 4) for k, v in solved.computed.items()},
            steps=solved.steps, answer_text=correct, **draw.params)
        if solved.direction != "number":
            facts["runner_up"] = solved.ranked[1]
        return Sample(f"{intro} {question}", options, answer, [c.image for c in charts], regions.items, facts,
                      generator="matplotlib charts")

    def _draw(self, family: Family, rng: np.random.Generator) -> tuple[ChartDraw, str, list[str]] | None:
        """A draw of `family` that meets its constraints, with the question and distractors; a dashboard of
        unrelated filler charts around the needed ones. Up to 60 draws; None if none fits."""
        before_phrasing = [c for c in family.constraints if c not in CHECKED_WHEN_PHRASED | CHECKED_ON_DASHBOARD]
        for _ in range(60):
            draw = self.draws[family.name](rng)
            if draw is None:
                continue
            draw.solved = self.families.solve(family, draw)
            if self.families.degenerate(family, draw, among=before_phrasing):
                continue
            if draw.number is not None:  # a number's distractors are drawn before its question, a "which"'s after
                distractors = self._number_distractors(draw, rng)
                if distractors is None:
                    continue
            question = self.families.text(family, rng, **draw.params)
            if draw.number is None:
                distractors = _which_distractors(rng, draw.specs, draw.solved.answer, draw.items,
                                                 draw.solved.direction)
            if self.families.degenerate(family, draw, among=CHECKED_WHEN_PHRASED):
                continue
            draw.charts = draw.specs + self._fillers(rng, draw, pick(rng, DASHBOARD_SIZES) - len(draw.specs))
            if not self.families.degenerate(family, draw, among=CHECKED_ON_DASHBOARD):
                return draw, question, distractors
        return None

    @staticmethod
    def _number_distractors(draw: ChartDraw, rng: np.random.Generator) -> list[str] | None:
        """A numeric answer's distractors share its precision (`quantum`), so no last digit gives it away; None
        when the option engine finds no room for them."""
        value, number = draw.solved.computed[draw.solved.answer], draw.number
        step = max(1.0, round(abs(value) * 0.12, 1))
        try:
            return number_options(value, rng, 3, step, number.fmt.format, quantum=number.quantum, low=number.low,
                                  avoid_totals=number.totals)
        except ValueError:
            return None

    @staticmethod
    def _answer_text(draw: ChartDraw) -> str:
        solved = draw.solved
        if draw.number is not None:
            return draw.number.fmt.format(solved.computed[solved.answer])
        return solved.answer

    @staticmethod
    def _cited(draw: ChartDraw) -> list[tuple[int, str, str | None]]:
        """The chart elements the regions ground: a number's inputs, or the winner's and the runner-up's."""
        if draw.number is not None:
            return draw.cited
        return [(k, p, series) for p in draw.solved.ranked[:2] for k, series in draw.cite]

    @staticmethod
    def _fillers(rng: np.random.Generator, draw: ChartDraw, count: int) -> list[ChartSpec]:
        """Charts of unrelated metrics over the items of the first needed chart."""
        items = draw.specs[0].categories
        # Named like a needed chart over the same items (a scatter's x axis is a quantity, not the items; the
        # share families' pies are over companies and name no axis).
        x_label = next((s.x_label for s in draw.specs if s.categories == items and s.kind not in ("scatter", "pie")),
                       "company")
        out = []
        for k in rng.choice(len(FILLER_METRICS), size=max(0, count), replace=False):
            title, y_label, lo, hi, step, fmt = FILLER_METRICS[int(k)]
            printed = bool(rng.random() < 0.6)
            values = _grid_values(rng, items, lo, hi, step)
            out.append(_bar_or_line(rng, title, items, values, x_label, y_label, fmt, printed, step))
        return out

    # -- reasoning -------------------------------------------------------------------------------------------

    @classmethod
    def reason(cls, facts: ChartFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        f, phrases = facts, task_spec("chart_analysis").phrases
        asks = "number" if f["direction"] == "number" else "which"
        summary = pick(rng, phrases["summary"][asks]).format(n=len(f["charts"]), used=len(f["needed_charts"]))
        captions = [cls._caption(c, rng, phrases) for c in f["charts"]]
        text2region = "; ".join(
            f"'{r.label.split(':')[0]}' ({r.label.split(': ', 1)[1]}) → {cite(r)}" for r in regions) + "."
        needed = join_and([f"image {k}" for k in f["needed_charts"]])
        region2region = f"The figures come from {needed}; the other charts do not enter the computation. " + " ".join(
            f["steps"])
        correct, computed = f["answer_text"], f["computed"]
        if asks == "number":
            body = f"So {f['company']}'s figure is {correct}"
        else:
            runner = f["runner_up"]
            word = "highest" if f["direction"] == "max" else "lowest"
            body = (f"{correct} has the {word} figure, {num(computed[correct])}, against {num(computed[runner])} for "
                    f"the runner-up {runner}")
        return Reasoning(summary, captions, text2region, region2region, conclude(body, answer))

    @staticmethod
    def _caption(chart: dict[str, Any], rng: np.random.Generator, phrases: dict[str, Any]) -> str:
        kind = phrases["chart_kinds"][chart["kind"]]
        spec = ChartSpec(**chart)
        parts = []
        if chart["kind"] == "scatter":
            parts.append(", ".join(f"{c} at ({spec.x_format.format(x)}, {spec.fmt(y)})" for c, x, y in
                                   zip(chart["categories"], chart["series"]["x"], chart["series"]["y"])))
        else:
            for name, values in chart["series"].items():
                listed = ", ".join(f"{c} {spec.fmt(v)}" for c, v in zip(chart["categories"], values))
                parts.append(f"{name}: {listed}" if len(chart["series"]) > 1 else listed)
        lead = pick(rng, phrases["caption"])
        how = "" if chart["show_values"] else phrases["unlabelled"]
        return (lead.format(kind=kind, Kind=kind.capitalize(), title=chart["title"]) + how + " — "
                + "; ".join(parts) + ".")


# == weight_comparison =========================================================================================

# Neutral names: nothing in a name hints at a weight (no "Lead" or "Wool").
WEIGHT_LABELS = ["Brin", "Dax", "Fenn", "Holt", "Jory", "Kest", "Lune", "Mott", "Orra", "Pim", "Quill", "Rook",
                 "Sorb", "Tave", "Vell", "Wisp"]
WEIGHT_COLOURS = ["red", "blue", "green", "yellow", "orange", "purple", "brown", "grey"]

def consistent_orders(names: list[str], comparisons: list[tuple[str, str]]) -> list[tuple[str, ...]]:
    """Every order (heaviest first) that agrees with all (heavier, lighter) comparisons: brute force."""
    out = []
    for order in itertools.permutations(names):
        rank = {n: k for k, n in enumerate(order)}
        if all(rank[heavy] < rank[light] for heavy, light in comparisons):
            out.append(order)
    return out


def image_order_text(images: list[int] | tuple[int, ...]) -> str:
    """0-based image indices as the options list them: "Image 2, Image 1, Image 3"."""
    return ", ".join(f"Image {k + 1}" for k in images)


def order_text(order: tuple[str, ...] | list[str]) -> str:
    return " > ".join(order)


def decide_weights(family: str, orders: list[tuple[str, ...]]) -> str:
    """The answer the consistent orders force for `family`, or CANNOT when they disagree."""
    if family == "order":
        return order_text(orders[0]) if len(orders) == 1 else CANNOT
    picks = {o[0] if family == "heaviest" else o[-1] for o in orders}
    return picks.pop() if len(picks) == 1 else CANNOT


class WeightDraw(TypedDict):
    """A drawn weighing, before anything is rendered: what the answer rule and the constraint read."""

    family: str
    objects: list[str]
    weights_g: dict[str, int]
    comparisons: list[tuple[str, str]]  # (heavier, lighter) per balance, in image order
    orders: list[tuple[str, ...]]  # every order, heaviest first, that agrees with all the balances
    undetermined: bool  # whether this record is the one in 4 whose answer is "Cannot be determined"


class WeightFacts(TypedDict):
    kind: str  # the family
    objects: list[str]
    weights_g: dict[str, int]
    shapes: dict[str, str]
    colours: dict[str, str]
    sizes: dict[str, float]
    scales: list[dict[str, Any]]  # per image: left, right, angle, down, regions, heavier
    comparisons: list[list[str]]
    consistent_orders: int
    n_objects: int
    true_order: list[str]
    answer_text: str


def _forced(family: str) -> Callable[[WeightDraw], str]:
    return lambda draw: decide_weights(family, draw["orders"])


class WeightComparison(Task):
    """weight_comparison (its definition: mirdata/tasks/weight_comparison.yaml): balances weighing pairs of
    neutrally named objects; the answer is decided by brute force over all orders that fit them."""

    Facts = WeightFacts
    answer_rules = {"forced_heaviest": _forced("heaviest"), "forced_lightest": _forced("lightest"),
                    "forced_order": _forced("order")}
    constraints = {
        # "Cannot be determined" is right exactly when the slot asks for it, so it keeps its fair share.
        "determined_as_asked": lambda draw: (decide_weights(draw["family"], draw["orders"]) == CANNOT)
        == draw["undetermined"],
    }

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        family = self.families.cycle(slot)
        draw = self._draw(family.name, special_is_answer(slot, 4, "cannot be determined"), rng)
        if draw is None:
            return None
        correct = self.families.solve(family, draw)
        distractors = self._distractors(family.name, draw["objects"], draw["orders"], correct, rng)
        options, answer = place_answer(correct, distractors, slot, rng)
        facts = self._looks(draw, rng)
        images, regions = self._render(facts, draw, rng)
        names = draw["objects"]
        listed = [names[k] for k in rng.permutation(len(names))]
        question = self.families.text(family, rng, names=join_and(listed),
                                      images=" ".join(IMAGE_TOKEN for _ in images))
        facts.update(comparisons=[list(c) for c in draw["comparisons"]], consistent_orders=len(draw["orders"]),
                     n_objects=len(names), true_order=sorted(names, key=lambda m: -draw["weights_g"][m]),
                     answer_text=correct)
        return Sample(question, options, answer, images, regions.items, facts, generator="balance-scale drawings")

    def _draw(self, family: str, undetermined: bool, rng: np.random.Generator) -> WeightDraw | None:
        """Objects with hidden weights, and the pairs to weigh (objects + 3 of them) such that the answer is
        determined, or not, as the slot asks."""
        n = int(rng.integers(5, 7))
        names = rng.choice(WEIGHT_LABELS, size=n, replace=False).tolist()
        grams = (rng.choice(np.arange(10, 200), size=n, replace=False) * 10).tolist()
        weights = dict(zip(names, grams))
        true = sorted(names, key=lambda m: -weights[m])
        chain = [(true[k], true[k + 1]) for k in range(len(true) - 1)]
        pairs = [tuple(p) for p in itertools.combinations(true, 2)]
        k = len(names) + 3
        for _ in range(200):
            if not undetermined and rng.random() < 0.5:  # the whole chain of neighbours forces every answer
                rest = [p for p in pairs if p not in chain]
                picked = chain + [rest[i] for i in rng.choice(len(rest), size=k - len(chain), replace=False)]
            else:
                picked = [pairs[i] for i in rng.choice(len(pairs), size=k, replace=False)]
            draw = WeightDraw(family=family, objects=names, weights_g=weights, comparisons=picked,
                              orders=consistent_orders(names, picked),  # pairs are (heavier, lighter) already
                              undetermined=undetermined)
            if self.families.degenerate(family, draw) is None:
                draw["comparisons"] = [picked[i] for i in rng.permutation(k)]
                return draw
        return None

    @staticmethod
    def _distractors(family: str, names: list[str], orders: list[tuple[str, ...]], correct: str,
                     rng: np.random.Generator) -> list[str]:
        if family != "order":
            others = [names[i] for i in rng.permutation(len(names)) if names[i] != correct]
            return others[:3] if correct == CANNOT else [*others[:2], CANNOT]
        anchor = orders[int(rng.integers(len(orders)))]  # the answer, or one order that fits when undetermined
        drawn = [order_text(o) for o in ordering_distractors(anchor, rng, 3)]
        if correct == CANNOT:
            return [order_text(anchor), *drawn[:2]] if rng.random() < 0.5 else drawn
        return [*drawn[:2], CANNOT]

    @staticmethod
    def _looks(draw: WeightDraw, rng: np.random.Generator) -> WeightFacts:
        """The objects' drawn looks, chosen apart from their weights, and which pan each goes on."""
        names, n = draw["objects"], len(draw["objects"])
        shapes = dict(zip(names, rng.choice(SCALE_SHAPES, size=n).tolist()))
        colours = dict(zip(names, rng.choice(WEIGHT_COLOURS, size=n, replace=False).tolist()))
        sizes = {m: round(float(rng.uniform(0.75, 1.15)), 2) for m in names}
        return WeightFacts(kind=draw["family"], objects=names, weights_g=draw["weights_g"], shapes=shapes,
                           colours=colours, sizes=sizes, scales=[])

    def _render(self, facts: WeightFacts, draw: WeightDraw, rng: np.random.Generator
                ) -> tuple[list[Image.Image], Regions]:
        shapes, colours, weights = facts["shapes"], facts["colours"], facts["weights_g"]
        items = {m: ScaleItem(m, shapes[m], colours[m], facts["sizes"][m]) for m in facts["objects"]}
        style = {"backdrop": pick(rng, ["white", "cream", "sky"]), "metal": "grey",
                 "table": bool(rng.random() < 0.7)}
        images, regions = [], Regions()
        for k, (a, b) in enumerate(draw["comparisons"]):
            left, right = (a, b) if rng.random() < 0.5 else (b, a)
            angle = balance_angle(weights[left], weights[right])
            drawing = draw_balance_scale(self.config.image_size, items[left], items[right], angle, style)
            images.append(drawing.image)
            rl = regions.add(k, drawing.left_box, f"{left} ({colours[left]} {shapes[left]}) on the left pan")
            rr = regions.add(k, drawing.right_box, f"{right} ({colours[right]} {shapes[right]}) on the right pan")
            facts["scales"].append({"left": left, "right": right, "angle": angle,
                                    "down": "left" if angle > 0 else "right", "regions": [rl, rr],
                                    "heavier": left if angle > 0 else right})
        return images, regions

    @classmethod
    def reason(cls, facts: WeightFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        f, by_id = facts, {r.id: r for r in regions}
        phrases = task_spec("weight_comparison").phrases
        captions = []
        for s in f["scales"]:
            captions.append(pick(rng, phrases["caption"]).format(
                left=s["left"], right=s["right"], lc=f["colours"][s["left"]], ls=f["shapes"][s["left"]],
                la=article(f["colours"][s["left"]]), ra=article(f["colours"][s["right"]]),
                rc=f["colours"][s["right"]], rs=f["shapes"][s["right"]], down=s["down"]))
        text2region = "; ".join(
            f"'{s[side]}' → {cite(by_id[rid])}"
            for s in f["scales"] for side, rid in zip(("left", "right"), s["regions"])
        ) + "."
        steps = []
        for s in f["scales"]:
            heavy, light = s["heavier"], s["right"] if s["heavier"] == s["left"] else s["left"]
            rh, rl = (s["regions"][0], s["regions"][1]) if heavy == s["left"] else (s["regions"][1], s["regions"][0])
            steps.append(f"[{rh}] {heavy} hangs lower than [{rl}] {light}, so {heavy} is heavier than {light}.")
        n_orders = f["consistent_orders"]
        family, correct = f["kind"], f["answer_text"]
        if n_orders == 1:
            chain = f"Together the comparisons allow only one order: {order_text(f['true_order'])}."
        else:
            chain = (f"Together they still allow {n_orders} different orders of the {len(f['objects'])} objects, "
                     f"because some pairs are never compared, directly or through a chain.")
        if correct == CANNOT:
            body = (f"Those orders disagree on {phrases['undetermined'][family]}, so no single option is forced; it "
                    f"cannot be determined")
        elif family == "order":
            body = f"The balances force the order {correct}"
        else:
            body = f"In every order that fits, {correct} is the {family} object"
        return Reasoning(pick(rng, phrases["summary"]), captions, text2region, " ".join(steps) + " " + chain,
                         conclude(body, answer))


# == scale_blur ================================================================================================

@dataclass(frozen=True)
class Photo:
    """A photo shipped with scikit-image, what it shows, and how to find its subject's mask.

    `mask` is how the subject is segmented: "frame" (the subject fills the picture: a texture, a surface),
    "bright" / "dark" (Otsu's threshold; the largest components), or "grabcut" inside `rect` (fractions).
    """

    loader: str  # the skimage.data function
    scene: str  # what the photo shows
    subject: str  # the main thing in it
    width_m: float  # real width of the photographed scene, roughly
    width_text: str
    mask: str = "frame"
    rect: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)


# Every photo scikit-image ships with its own data (no download); its synthetic images are not photos.
PHOTOS = {
    "cell": Photo("cell", "a single cell floating in saline, under a microscope", "cell", 0.0001,
                  "about a tenth of a millimetre", "bright"),
    "tissue": Photo("immunohistochemistry", "a stained tissue section seen through a microscope", "tissue", 0.0005,
                    "about half a millimetre"),
    "microaneurysms": Photo("microaneurysms", "a tiny patch of a retina with small blood vessels", "blood vessels",
                            0.0015, "about 1.5 mm"),
    "retina": Photo("retina", "the retina at the back of a human eye", "retina", 0.012, "about 1 cm", "bright"),
    "page": Photo("page", "part of a printed page", "printed text", 0.15, "about 15 cm"),
    "cat": Photo("chelsea", "the face of a tabby cat", "cat's face", 0.2, "about 20 cm"),
    "coins": Photo("coins", "two dozen ancient coins laid out in rows", "coins", 0.25, "about 25 cm", "bright"),
    "text": Photo("text", "handwritten formulas on a sheet of paper", "handwriting", 0.3, "about 30 cm"),
    "gravel": Photo("gravel", "gravel on the ground, seen from above", "gravel", 0.3, "about 30 cm"),
    "grass": Photo("grass", "blades of grass, seen from close by", "grass", 0.3, "about 30 cm"),
    "clock": Photo("clock", "a wall clock blurred by motion", "clock", 0.4, "about 40 cm", "bright"),
    "coffee": Photo("coffee", "a cup of coffee on a saucer", "cup and saucer", 0.4, "about 40 cm",
                    "grabcut", (0.1, 0.0, 0.9, 0.9)),
    "astronaut": Photo("astronaut", "an astronaut in a spacesuit, upper body", "astronaut", 1.0, "about 1 m",
                       "grabcut", (0.0, 0.1, 0.75, 1.0)),
    "brick": Photo("brick", "a brick wall", "bricks", 1.5, "about 1.5 m"),
    "horse": Photo("horse", "the silhouette of a horse", "horse", 2.5, "about 2.5 m", "dark"),
    "camera": Photo("camera", "a man with a camera on a tripod in a field", "cameraman", 3.0, "about 3 m", "grabcut",
                    (0.05, 0.0, 0.75, 1.0)),
    "motorcycle": Photo("stereo_motorcycle", "a motorcycle parked in a workshop", "motorcycle", 4.0, "about 4 m",
                        "grabcut", (0.02, 0.2, 0.98, 0.98)),
    "rocket": Photo("rocket", "a rocket on its launch pad at dusk", "rocket and launch pad", 150.0, "about 150 m",
                    "grabcut", (0.4, 0.25, 0.6, 1.0)),
    "moon": Photo("moon", "craters on the surface of the moon", "craters", 100_000.0, "about 100 km"),
    "deep_field": Photo("hubble_deep_field", "distant galaxies in the Hubble Deep Field", "galaxies", 2e22,
                        "about two million light-years"),
}
# Photos a viewer cannot place at the image size: microaneurysms is 102 px across, a grey blur once shown.
TOO_SMALL = frozenset({"microaneurysms"})
# Photos through a microscope: side by side, nothing in them says which shows the wider field.
MICROSCOPE = frozenset({"cell", "tissue"})
ZOOM_LADDER = (1.0, 1.4, 1.96, 2.74, 3.84, 5.38, 7.5)
BLUR_LEVELS = (0.0, 0.8, 1.5, 2.2, 3.0, 3.8, 4.6)
SCENE_RESOLUTION = 4  # drawn scenes are drawn this many times larger, so close zooms stay sharp

@lru_cache(maxsize=32)
def load_photo(key: str) -> np.ndarray:
    import skimage.data

    data = getattr(skimage.data, PHOTOS[key].loader)()
    if isinstance(data, tuple):  # stereo pairs
        data = data[0]
    data = np.asarray(data)
    if data.dtype == bool:
        data = np.where(data, 255, 0).astype(np.uint8)  # the horse: black on white
    elif data.dtype != np.uint8:
        data = (data.astype(np.float32) * (255.0 / max(1.0, float(data.max())))).astype(np.uint8)
    if data.ndim == 2:
        data = np.stack([data] * 3, axis=-1)
    return np.ascontiguousarray(data[..., :3])


@lru_cache(maxsize=32)
def photo_subject_mask(key: str) -> np.ndarray:
    """The subject's mask in photo pixels (see `Photo.mask`)."""
    photo, pixels = PHOTOS[key], load_photo(key)
    h, w = pixels.shape[:2]
    if photo.mask == "frame":
        return np.ones((h, w), dtype=bool)
    if photo.mask == "grabcut":
        # GrabCut on a small copy (it is slow at full size), the mask scaled back up.
        scale = 240 / max(h, w)
        small = cv2.resize(pixels, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        x0, y0, x1, y1 = photo.rect
        rect = (int(x0 * sw), int(y0 * sh), int((x1 - x0) * sw) - 1, int((y1 - y0) * sh) - 1)
        labels = np.zeros((sh, sw), np.uint8)
        cv2.setRNGSeed(0)  # grabCut's k-means start: the same mask every run
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), labels, rect, np.zeros((1, 65)), np.zeros((1, 65)), 5,
                    cv2.GC_INIT_WITH_RECT)
        fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
        mask = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    else:
        grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        flag = cv2.THRESH_BINARY if photo.mask == "bright" else cv2.THRESH_BINARY_INV
        _, binary = cv2.threshold(cv2.GaussianBlur(grey, (5, 5), 0), 0, 1, flag + cv2.THRESH_OTSU)
        mask = binary.astype(bool)
    # Keep the components that matter (noise specks out): those of at least 1% of the largest one's area.
    count, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return np.isin(comp, 1 + np.nonzero(areas >= 0.01 * areas.max())[0]) if count > 1 else mask


def resample(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to `size`: area averaging when shrinking, Lanczos when enlarging (never nearest neighbour)."""
    shrinking = size[0] <= pixels.shape[1] and size[1] <= pixels.shape[0]
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)


def aspect_crop(width: int, height: int, aspect: float, centre: tuple[float, float],
                scale: float = 1.0) -> tuple[int, int, int, int]:
    """The largest box of `aspect` (w/h) inside the photo, shrunk by `scale`, centred near `centre`."""
    cw = min(width, height * aspect) / scale
    ch = cw / aspect
    x0 = min(max(0.0, centre[0] - cw / 2), width - cw)
    y0 = min(max(0.0, centre[1] - ch / 2), height - ch)
    return int(round(x0)), int(round(y0)), int(round(x0 + cw)), int(round(y0 + ch))


def map_box(box: tuple[float, float, float, float], crop: tuple[int, int, int, int],
            size: tuple[int, int]) -> list[float]:
    """A box in photo pixels to output pixels, for a crop resized to `size`; clipped to the image."""
    sx, sy = size[0] / (crop[2] - crop[0]), size[1] / (crop[3] - crop[1])
    x0, y0 = (box[0] - crop[0]) * sx, (box[1] - crop[1]) * sy
    x1, y1 = (box[2] - crop[0]) * sx, (box[3] - crop[1]) * sy
    return [round(max(0.0, x0), 1), round(max(0.0, y0), 1), round(min(size[0], x1), 1), round(min(size[1], y1), 1)]


def tilt_shift(image: np.ndarray, band: tuple[float, float], strength: float) -> np.ndarray:
    """The miniature look: rows inside `band` (top, bottom, fractions of the height) stay sharp, blur grows with
    the distance from it, colour and contrast are boosted."""
    h = image.shape[0]
    rgb = image.astype(np.float32)
    blurred = cv2.GaussianBlur(rgb, (0, 0), strength)
    stronger = cv2.GaussianBlur(rgb, (0, 0), strength * 2)
    y = np.arange(h, dtype=np.float32) / h
    outside = np.maximum(band[0] - y, y - band[1])
    distance = np.clip(outside / 0.2, 0, 1)[:, None, None]
    mixed = np.where(distance < 0.5, rgb * (1 - 2 * distance) + blurred * 2 * distance,
                     blurred * (2 - 2 * distance) + stronger * (2 * distance - 1))
    hsv = cv2.cvtColor(np.clip(mixed, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.4, 0, 255)
    hsv[..., 2] = np.clip((hsv[..., 2] - 128) * 1.15 + 128, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


@dataclass
class Picture:
    """A source picture for scale_blur: a photo or a drawn scene, with its subject mask and real width."""

    key: str
    pixels: np.ndarray
    subject: np.ndarray
    scene: str
    subject_name: str
    width_m: float
    width_text: str


def photo_picture(key: str) -> Picture:
    p = PHOTOS[key]
    return Picture(key, load_photo(key), photo_subject_mask(key), p.scene, p.subject, p.width_m, p.width_text)


def drawn_picture(kind: str, size: tuple[int, int], rng: np.random.Generator) -> Picture:
    drawn = SCALE_SCENES[kind](size, rng)
    return Picture(kind, np.asarray(drawn.image), drawn.subject, drawn.scene, drawn.subject_name, drawn.width_m,
                   f"about {num(drawn.width_m)} m")


def crop_mask_box(mask: np.ndarray, crop: tuple[int, int, int, int], size: tuple[int, int]) -> list[float] | None:
    """The box, in output pixels, of the part of `mask` a crop resized to `size` shows; None if none shows."""
    view = cv2.resize(mask[crop[1]:crop[3], crop[0]:crop[2]].astype(np.uint8), size,
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    return [float(v) for v in mask_box(view)] if view.any() else None


class ScaleFacts(TypedDict, total=False):
    family: str  # the cue group: "zoom" or "true_scale"
    kind: str  # the family
    # zoom: crops of one picture
    picture: str
    scene: str
    subject: str
    zooms: list[float]  # per image
    blur_sigmas: list[float]
    patch: list[float]
    patch_widths_px: list[float]
    # true_scale: different pictures
    pictures: list[str]
    scenes: list[str]
    subjects: list[str]
    widths_m: list[float]  # per image: the real width of its scene
    widths_text: list[str]
    tilt_shift: list[bool]
    # both
    crops: list[list[int]]
    answer_text: str


@dataclass
class TiltPlan:
    """How one true_scale picture is shown: its crop, its subject's box there, and its tilt-shift (if any)."""

    crop: tuple[int, int, int, int]
    subject: list[float]
    band: tuple[float, float] | None = None
    strength: float = 0.0


def _by(key: str, last: bool) -> Callable[[dict[str, Any]], int]:
    """The answer rule "the image whose `key` is largest (last) / smallest": its 0-based index."""
    return lambda facts: sorted(range(len(facts[key])), key=lambda k: facts[key][k])[-1 if last else 0]


def _order_by(key: str) -> Callable[[dict[str, Any]], list[int]]:
    """The answer rule "the images ordered by `key`, smallest first"."""
    return lambda facts: sorted(range(len(facts[key])), key=lambda k: facts[key][k])


def image_options(answer: int | list[int], n: int, rng: np.random.Generator) -> tuple[str, list[str]]:
    """The option texts for an answer that is one of `n` images, or an order of them, and three distractors."""
    if isinstance(answer, list):
        return image_order_text(answer), [image_order_text(o) for o in ordering_distractors(answer, rng, 3)]
    return f"Image {answer + 1}", [f"Image {k + 1}" for k in rng.permutation(n) if k != answer][:3]


class ScaleBlur(Task):
    """scale_blur (its definition: mirdata/tasks/scale_blur.yaml): the true scale of what pictures show, against
    blur cues."""

    Facts = ScaleFacts
    answer_rules = {"most_zoomed": _by("zooms", last=True), "least_zoomed": _by("zooms", last=False),
                    "by_zoom": _order_by("zooms"), "largest_scene": _by("widths_m", last=True),
                    "smallest_scene": _by("widths_m", last=False), "by_scene_width": _order_by("widths_m")}
    ZOOM_FAMILIES = ("most_zoomed", "widest", "zoom_order")

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        family = self.families.cycle(slot)
        if family.name in self.ZOOM_FAMILIES:
            facts, picture, patch = self._draw_zoom(family.name, rng)
            images, regions = self._render_zoom(facts, picture, patch)
            generator = "scikit-image photos and drawn scenes, zoom+blur"
        else:
            drawn = self._draw_true_scale(family.name, rng)
            if drawn is None:
                return None
            facts, pictures, plans = drawn
            images, regions = self._render_true_scale(pictures, plans)
            generator = "scikit-image photos and drawn scenes, tilt-shift"
        correct, distractors = image_options(self.families.solve(family, facts), len(images), rng)
        facts["answer_text"] = correct
        options, answer = place_answer(correct, distractors, slot, rng)
        question = self.families.text(family, rng, images=" ".join(IMAGE_TOKEN for _ in images))
        return Sample(question, options, answer, images, regions.items, facts, generator=generator)

    # -- zoom: crops of one picture at known zooms, under unrelated blur ------------------------------------

    def _draw_zoom(self, family: str, rng: np.random.Generator
                   ) -> tuple[ScaleFacts, Picture, tuple[float, float, float, float]]:
        size = self.config.image_size
        if rng.random() < 0.5:
            picture = photo_picture(pick(rng, [k for k in PHOTOS if k not in TOO_SMALL]))
            n = 6  # photos are ~500 px: the 7.5x crop would be a smear
        else:
            big = (size[0] * SCENE_RESOLUTION, size[1] * SCENE_RESOLUTION)
            picture = drawn_picture(pick(rng, list(SCALE_SCENES)), big, rng)
            n = 7
        ph, pw = picture.pixels.shape[:2]
        # The ladder times a random base, so even the widest view is a fresh crop in every record.
        base = float(rng.uniform(1.05, 1.2))
        zooms = [round(ZOOM_LADDER[k] * base, 3) for k in rng.permutation(n)]
        blurs = [float(BLUR_LEVELS[k]) for k in rng.permutation(len(BLUR_LEVELS))[:n]]
        ys, xs = np.nonzero(picture.subject)
        at = int(rng.integers(len(xs)))  # the shared centre lies on the subject
        centre = (float(xs[at]), float(ys[at]))
        closest = aspect_crop(pw, ph, size[0] / size[1], centre, max(zooms))
        half = (closest[2] - closest[0]) / 6  # the shared patch: a third of the closest view's width
        cx, cy = (closest[0] + closest[2]) / 2, (closest[1] + closest[3]) / 2
        patch = (cx - half, cy - half, cx + half, cy + half)
        crops = [list(aspect_crop(pw, ph, size[0] / size[1], (cx, cy), z)) for z in zooms]
        facts = ScaleFacts(family="zoom", kind=family, picture=picture.key, scene=picture.scene,
                          subject=picture.subject_name, zooms=zooms, blur_sigmas=blurs, crops=crops,
                          patch=[round(v, 1) for v in patch], patch_widths_px=[])
        return facts, picture, patch

    def _render_zoom(self, facts: ScaleFacts, picture: Picture, patch: tuple[float, float, float, float]
                     ) -> tuple[list[Image.Image], Regions]:
        size = self.config.image_size
        images, regions = [], Regions()
        for k, (crop, sigma) in enumerate(zip(facts["crops"], facts["blur_sigmas"])):
            view = resample(picture.pixels[crop[1]:crop[3], crop[0]:crop[2]], size)
            if sigma > 0:
                view = cv2.GaussianBlur(view, (0, 0), sigma)
            images.append(Image.fromarray(view))
            box = map_box(patch, tuple(crop), size)
            regions.add(k, box, f"the same patch of the {picture.subject_name}")
            facts["patch_widths_px"].append(round(box[2] - box[0], 1))
        return images, regions

    # -- true_scale: different scenes, some given a miniature look ----------------------------------------

    def _pictures(self, rng: np.random.Generator, n: int) -> list[Picture] | None:
        """`n` pictures whose real widths are pairwise at least 3x apart, in random order: none too small to
        recognise, and at most one seen through a microscope."""
        candidates = [("photo", k) for k in PHOTOS if k not in TOO_SMALL] + [("drawn", k) for k in SCALE_SCENES]
        picked: list[Picture] = []
        for source, key in (candidates[k] for k in rng.permutation(len(candidates))):
            if key in MICROSCOPE and any(p.key in MICROSCOPE for p in picked):
                continue
            picture = photo_picture(key) if source == "photo" else drawn_picture(key, self.config.image_size, rng)
            if all(max(p.width_m, picture.width_m) >= 3 * min(p.width_m, picture.width_m) for p in picked):
                picked.append(picture)
                if len(picked) == n:
                    # Shuffled: the greedy pass accepts extreme sizes late, which would put them last.
                    return [picked[k] for k in rng.permutation(n)]
        return None

    def _draw_true_scale(self, family: str, rng: np.random.Generator
                         ) -> tuple[ScaleFacts, list[Picture], list[TiltPlan]] | None:
        """The pictures and how each is shown. The tilt-shift band is placed on the subject's rows, measured on
        its mask in the drawn crop (no render is needed for that)."""
        n = int(rng.integers(6, 8))
        pictures = self._pictures(rng, n)
        if pictures is None:
            return None
        size = self.config.image_size
        largest = max(range(n), key=lambda k: pictures[k].width_m)
        plans = []
        for k, picture in enumerate(pictures):
            ph, pw = picture.pixels.shape[:2]
            # Never the whole photo, and placed anywhere the room allows (a centre clamped to a corner would
            # give the same crop again): two records showing one photo then show different bytes.
            full = aspect_crop(pw, ph, size[0] / size[1], (pw / 2, ph / 2), float(rng.uniform(1.08, 1.3)))
            cw, ch = full[2] - full[0], full[3] - full[1]
            x0, y0 = int(rng.integers(pw - cw + 1)), int(rng.integers(ph - ch + 1))
            plan = TiltPlan((x0, y0, x0 + cw, y0 + ch), crop_mask_box(picture.subject, (x0, y0, x0 + cw, y0 + ch),
                                                                      size))
            if plan.subject is None:
                return None
            if rng.random() < (0.75 if k == largest else 0.4):
                top, bottom = plan.subject[1] / size[1], plan.subject[3] / size[1]
                if bottom - top > 0.6:  # a subject filling the picture (a texture): keep a band of it sharp
                    top = float(rng.uniform(top, bottom - 0.3))
                    bottom = top + 0.3
                plan.band = (top - 0.03, bottom + 0.03)
                plan.strength = float(rng.uniform(2.0, 3.0)) * min(size) / 336
            plans.append(plan)
        facts = ScaleFacts(family="true_scale", kind=family, pictures=[p.key for p in pictures],
                               scenes=[p.scene for p in pictures], subjects=[p.subject_name for p in pictures],
                               widths_m=[p.width_m for p in pictures], widths_text=[p.width_text for p in pictures],
                               tilt_shift=[p.band is not None for p in plans], crops=[list(p.crop) for p in plans])
        return facts, pictures, plans

    def _render_true_scale(self, pictures: list[Picture], plans: list[TiltPlan]
                           ) -> tuple[list[Image.Image], Regions]:
        size = self.config.image_size
        images, regions = [], Regions()
        for k, (picture, plan) in enumerate(zip(pictures, plans)):
            x0, y0, x1, y1 = plan.crop
            view = resample(picture.pixels[y0:y1, x0:x1], size)
            if plan.band is not None:
                view = tilt_shift(view, plan.band, plan.strength)
            images.append(Image.fromarray(view))
            regions.add(k, plan.subject, picture.subject_name)
        return images, regions

    # -- reasoning ------------------------------------------------------------------------------------------

    @classmethod
    def reason(cls, facts: ScaleFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        f, phrases = facts, task_spec("scale_blur").phrases
        summary = pick(rng, phrases["summary"][f["family"]])
        conclusion = phrases["conclusion"][f["kind"]]
        if f["family"] == "zoom":
            captions = [
                f"{f['scene'].capitalize()}, {cls._zoom_word(z, f['zooms'], phrases)}; "
                f"{cls._blur_word(s, phrases)}." for z, s in zip(f["zooms"], f["blur_sigmas"])]
            text2region = "; ".join(
                f"'the same patch of the {f['subject']}' → {cite(r)}" for r in regions) + "."
            steps = [f"[r{k}] is {num(w)} px wide, a zoom of {num(z)}× on the whole picture, under blur sigma "
                     f"{num(s)} px." for k, (w, z, s) in enumerate(zip(f["patch_widths_px"], f["zooms"],
                                                                        f["blur_sigmas"]))]
            ranked = sorted(range(len(f["zooms"])), key=lambda k: f["zooms"][k])
            steps.append("By patch size, from widest view to closest: "
                         + ", ".join(f"image {k + 1}" for k in ranked) + "; the blur order is unrelated.")
            body = conclusion.format(first=ranked[0] + 1, last=ranked[-1] + 1, answer=f["answer_text"])
        else:
            captions = []
            for scene, tilt in zip(f["scenes"], f["tilt_shift"]):
                look = phrases["look"]["tilted" if tilt else "plain"]
                captions.append(f"{scene[0].upper()}{scene[1:]}{look}.")
            text2region = "; ".join(f"'{r.label}' → {cite(r)}" for r in regions) + "."
            steps = [f"[r{k}] shows the {subj}: that scene is {wt} across in reality"
                     f"{' despite its toy-like blur' if tilt else ''}."
                     for k, (subj, wt, tilt) in enumerate(zip(f["subjects"], f["widths_text"], f["tilt_shift"]))]
            n = len(f["widths_m"])
            ranked = sorted(range(n), key=lambda k: f["widths_m"][k])
            steps.append("From smallest to largest real scene: " + ", ".join(f"image {k + 1}" for k in ranked) + ".")
            body = conclusion.format(first=ranked[0] + 1, last=ranked[-1] + 1, answer=f["answer_text"],
                                     first_subject=f["subjects"][ranked[0]], last_subject=f["subjects"][ranked[-1]])
        return Reasoning(summary, captions, text2region, " ".join(steps), conclude(body, answer))

    @staticmethod
    def _zoom_word(z: float, zooms: list[float], phrases: dict[str, Any]) -> str:
        rank = sorted(zooms).index(z)
        return phrases["zoom_rank"]["widest" if rank == 0 else "closest" if rank == len(zooms) - 1 else "between"]

    @staticmethod
    def _blur_word(sigma: float, phrases: dict[str, Any]) -> str:
        blur = phrases["blur"]["none" if sigma == 0 else "slight" if sigma < 2 else "strong"]
        return blur.format(sigma=num(sigma))


# == yes_but_satire ============================================================================================

@dataclass(frozen=True)
class Change:
    """One change a 'but' panel can show: the edit, where in the scene it happens, and how an option names it."""

    op: str  # the edit: paste, remove, recolour, resize, move, blur
    zone: str  # where the thing stands: sky, lawn or street (a walker moves from the street onto the lawn)
    kind: str  # the sprite kind edited or pasted
    text: str  # the option: what changed
    thing: str  # the edited thing, as regions name it
    prompt: str  # the instruction for a model editor
    moves_to: str = ""  # a zone it also needs room in, after a move

    def zones(self) -> list[str]:
        return [self.zone, self.moves_to] if self.moves_to else [self.zone]


CHANGES = {
    "car_parked": Change("paste", "street", "car", "a car has been parked in the street in front", "the parked car",
                         "a car parked in the street"),
    "car_speeding": Change("blur", "street", "car", "the car in the street is now racing past in a blur",
                           "the car in the street", "motion blur, the car speeding past"),
    "walker_on_lawn": Change("move", "street", "person", "the walker has left the path and stands on the lawn",
                             "the walker", "the person walking on the grass", moves_to="lawn"),
    "litter": Change("paste", "street", "litter", "bags of rubbish have been dumped on the pavement",
                     "the rubbish bags", "black rubbish bags on the ground"),
    "tree_cut": Change("remove", "lawn", "tree", "one of the two trees on the lawn has been cut down",
                       "the cut-down tree", "remove the tree, leave bare grass"),
    "bench_removed": Change("remove", "lawn", "bench", "the bench that stood on the lawn has been taken away",
                            "the bench", "remove the bench, leave bare grass"),
    "bin_removed": Change("remove", "lawn", "bin", "the rubbish bin on the lawn has been taken away",
                          "the rubbish bin", "remove the bin, leave bare grass"),
    "apples_rotten": Change("recolour", "lawn", "apple", "the apples on the stall have turned brown and rotten",
                            "the apples on the stall", "make the apples brown and rotten"),
    "burger_shrunk": Change("resize", "lawn", "burger", "the burger on the stall has shrunk to a tiny one",
                            "the burger on the stall", "make the burger much smaller"),
    "dog_added": Change("paste", "lawn", "dog", "a dog has appeared and is running about the lawn", "the dog",
                        "a dog running on the lawn"),
    "bike_added": Change("paste", "lawn", "bicycle", "a bicycle has been left standing on the lawn", "the bicycle",
                         "a bicycle standing on the lawn"),
    "flowers_wilted": Change("recolour", "lawn", "flowers", "the flowers in the flower bed have wilted brown",
                             "the flower bed", "make the flowers brown and wilted"),
    "clouds": Change("paste", "sky", "cloud", "dark rain clouds have rolled in across the sky", "the rain cloud",
                     "dark rain clouds in the sky"),
}


@dataclass(frozen=True)
class Claim:
    """What a sign says, the changes that contradict it, and the changes too close to it to be shown beside it."""

    signs: tuple[str, ...]
    contradicted_by: tuple[str, ...]
    why: str  # why the contradicting change undercuts the sign
    ambiguous: tuple[str, ...] = ()  # would arguably contradict it as well: never shown with it


CLAIMS = {
    "no_parking": Claim(("NO PARKING", "NO PARKING AT ANY TIME"), ("car_parked",),
                        "the sign forbids parking, yet a car is parked right there",
                        ("bike_added",)),  # a bicycle left standing is parked too
    "car_free": Claim(("CAR-FREE ZONE", "NO CARS BEYOND THIS POINT"), ("car_parked",),
                      "the sign promises a place without cars, yet a car has been parked right there",
                      ("car_speeding",)),  # a car already in the street would break the claim in panel 1
    "slow_down": Claim(("SLOW DOWN", "SCHOOL ZONE SLOW DOWN"), ("car_speeding",),
                       "the sign asks drivers to slow down, yet the car races past it"),
    "keep_off_grass": Claim(("KEEP OFF THE GRASS", "PLEASE KEEP OFF THE LAWN"), ("walker_on_lawn",),
                            "the sign asks people to keep off the grass, yet someone stands on it",
                            ("dog_added", "bike_added")),
    "stay_on_path": Claim(("PLEASE STAY ON THE PATH", "STAY ON THE PATH"), ("walker_on_lawn",),
                          "the sign asks walkers to stay on the path, yet the walker is on the grass"),
    "no_dogs": Claim(("NO DOGS ALLOWED", "NO DOGS IN THE PARK"), ("dog_added",),
                     "the sign bans dogs, yet a dog runs about the lawn"),
    "no_cycling": Claim(("NO CYCLING", "NO BIKES IN THE PARK"), ("bike_added",),
                        "the sign bans bicycles, yet one stands on the lawn"),
    "clean_city": Claim(("KEEP OUR CITY CLEAN", "NO LITTERING"), ("litter",),
                        "the sign asks for a clean place, yet rubbish is dumped right there", ("bin_removed",)),
    "bins": Claim(("PLEASE USE THE BIN", "BINS PROVIDED"), ("bin_removed",),
                  "the sign points to a bin, yet the bin is gone", ("litter",)),
    "protect_trees": Claim(("PROTECT OUR TREES", "SAVE THE TREES"), ("tree_cut",),
                           "the sign asks to protect the trees, yet one of them is cut down"),
    "rest_area": Claim(("REST AREA", "SEATS FOR VISITORS"), ("bench_removed",),
                       "the sign offers a seat, yet the bench is gone"),
    "fresh_fruit": Claim(("FRESH FRUIT", "FRESH APPLES DAILY"), ("apples_rotten",),
                         "the sign promises fresh fruit, but the fruit on sale is rotten"),
    "xxl_burger": Claim(("XXL BURGER", "OUR GIANT BURGER"), ("burger_shrunk",),
                        "the sign promises a giant burger, but the one on sale is tiny"),
    "flowers": Claim(("ENJOY OUR FLOWERS", "BLOOMING GARDEN"), ("flowers_wilted",),
                     "the sign boasts of flowers, yet they have wilted"),
    "sunshine": Claim(("SUNSHINE ALL DAY", "SUNNY WEATHER AHEAD"), ("clouds",),
                      "the sign promises sunshine, yet rain clouds cover the sky"),
}
ZONE_SLOTS = {"sky": 1, "lawn": 3, "street": 2}  # how many changes each part of the scene has room for
SATIRE_CHANGES = 4  # changes per 'but' panel, and options per question

CLOTHES = ("red", "blue", "green", "yellow", "orange", "purple")
SIGN_STYLES = (("white", "red"), ("yellow", "black"), ("green", "white"), ("blue", "white"), ("white", "black"))


def satire_changes(answer: str, claim: str, rng: np.random.Generator) -> list[str] | None:
    """The answer change and SATIRE_CHANGES - 1 others that neither contradict the claim nor crowd a zone."""
    c = CLAIMS[claim]
    banned = set(c.contradicted_by) | set(c.ambiguous)
    picked = [answer]
    used = Counter(CHANGES[answer].zones())
    for key in (list(CHANGES)[k] for k in rng.permutation(len(CHANGES))):
        zones = CHANGES[key].zones()
        if key in banned or key in picked or any(used[z] >= ZONE_SLOTS[z] for z in zones):
            continue
        if {key, *picked} >= {"car_parked", "car_speeding"}:  # one car in the street at a time reads clearly
            continue
        picked.append(key)
        used.update(zones)
        if len(picked) == SATIRE_CHANGES:
            return picked
    return None


@dataclass(frozen=True)
class SatireConfig(TaskConfig):
    source: Path | None = None  # a folder of real two-panel images with explanations.csv, or that CSV
    editor: str = "classical"  # the backend that makes the 'but' panel: classical or diffusers
    editor_model: Path | None = None  # the diffusers pipeline folder
    device: str = "cpu"


class SatireFacts(TypedDict, total=False):
    source: str  # the family: "procedural" or "folder"
    # procedural
    claim: str
    sign_text: str
    sign_style: list[str]
    contradicting: str  # the CHANGES key that contradicts the claim
    why: str
    changes: list[dict[str, Any]]  # per change: key, op, text, boxes, regions, the edit's parameters
    editor: str
    # folder
    file: str
    gutter_x: int
    panel_sizes: list[list[int]]
    explanation: str
    distractors: list[str]
    # both
    answer_text: str


def contradicting_change(facts: dict[str, Any]) -> str:
    """The answer rule: the one drawn change that goes against the sign's claim."""
    contradicting = CLAIMS[facts["claim"]].contradicted_by
    return next(key for key in facts["changes"] if key in contradicting)


class YesButSatire(Task):
    """yes_but_satire (its definition: mirdata/tasks/yes_but_satire.yaml): which change in the 'but' panel
    contradicts the sign in the 'yes' panel; or, from --source, which explanation fits a real two-panel image."""

    Config = SatireConfig
    Facts = SatireFacts
    answer_rules = {"contradicting_change": contradicting_change,
                    "its_explanation": lambda facts: facts["explanation"]}
    constraints = {
        # A text-only guesser must not find the answer by its length.
        "comparable_option_lengths": lambda facts: comparable_lengths([CHANGES[k].text for k in facts["changes"]]),
    }

    def __init__(self, spec: TaskSpec, options: BuildOptions):
        super().__init__(spec, options)
        if self.config.editor not in EDITORS:
            raise MirdataError(f"--editor must be one of {', '.join(EDITORS)}, not {self.config.editor!r}")
        # Only a task set up to sample has an editor (reason never needs one). Making it checks the model folder
        # now, before any work; a diffusers pipeline itself loads on the first edit.
        self.editor: Editor = make_editor(self.config.editor, self.config.editor_model, self.config.device)
        self._rows: list[dict[str, str]] | None = None

    def close(self) -> None:
        self.editor.close()

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        if self.config.source is not None:
            return self._from_source(slot, rng)
        family = self.families["procedural"]
        # The contradicting change is balanced over a build; the claim is one it contradicts.
        key = pick_balanced(slot, list(CHANGES), "contradicting change")
        claim = pick(rng, [k for k, c in CLAIMS.items() if key in c.contradicted_by])
        changes = satire_changes(key, claim, rng)
        drawn = {"claim": claim, "changes": changes}
        if changes is None or self.families.degenerate(family, drawn):
            return None
        answer_key = self.families.solve(family, drawn)
        panels, regions, (sign_text, sign_style), edits = self._procedural(changes, claim, rng)
        correct = CHANGES[answer_key].text
        distractors = [CHANGES[k].text for k in changes if k != answer_key]
        options, answer = place_answer(correct, distractors, slot, rng)
        question = self.families.text(family, rng, img1=IMAGE_TOKEN, img2=IMAGE_TOKEN)
        facts = SatireFacts(source="procedural", claim=claim, sign_text=sign_text, sign_style=sign_style,
                            contradicting=answer_key, why=CLAIMS[claim].why, changes=edits,
                            editor=self.config.editor, answer_text=correct)
        return Sample(question, options, answer, panels, regions.items, facts,
                      generator=f"procedural scenes + {self.config.editor} editor")

    # -- procedural --------------------------------------------------------------------------------------------

    def _procedural(self, changes: list[str], claim: str, rng: np.random.Generator
                    ) -> tuple[list[Image.Image], Regions, tuple[str, list[str]], list[dict[str, Any]]]:
        """The two panels: a park with the claim's sign, then the same after the changes (the layout is drawn as
        it is painted). Returns the panels, the regions, the sign (text, style) and each change's record."""
        w, h = size = self.config.image_size
        horizon, street_top = int(h * rng.uniform(0.34, 0.4)), int(h * rng.uniform(0.7, 0.74))
        panel = background(size, "grass", horizon / h, rng)
        street = np.asarray(background(size, "pavement", 0.0, rng))
        pixels = np.asarray(panel).copy()
        pixels[street_top:] = street[street_top:]
        panel = Image.fromarray(pixels)
        on_left = bool(rng.random() < 0.5)
        sign_text = pick(rng, CLAIMS[claim].signs)
        board, ink = pick(rng, SIGN_STYLES)
        sign_x = int(w * (0.14 if on_left else 0.86))
        sign_box = draw_sign(panel, sign_text, sign_x, int(street_top - h * 0.03), int(h * 0.5), board, ink)
        # Lawn slots share the width the sign leaves; street slots span the whole width.
        lawn_x0, lawn_x1 = (sign_box[2] + w * 0.02, w * 0.98) if on_left else (w * 0.02, sign_box[0] - w * 0.02)
        slots = {"lawn": self._slots(lawn_x0, lawn_x1, ZONE_SLOTS["lawn"], rng),
                 "street": self._slots(w * 0.03, w * 0.97, ZONE_SLOTS["street"], rng),
                 "sky": self._slots(w * 0.3, w * 0.95 if on_left else w * 0.7, 1, rng)}
        lawn_y, street_y = int(street_top - h * 0.04), int(h * rng.uniform(0.9, 0.96))
        placed = []
        for key in [k for k in changes if CHANGES[k].zone == "street"] + [k for k in changes
                                                                            if CHANGES[k].zone != "street"]:
            zone = CHANGES[key].zone
            x0, x1 = slots[zone].pop(0)
            if key == "walker_on_lawn":  # it will move onto the lawn: keep a lawn slot free above it
                dest = slots["lawn"].pop(0)
                placed.append(self._setup(panel, key, (x0, x1), street_y, h, rng, dest=dest, lawn_y=lawn_y))
            else:
                base = {"lawn": lawn_y, "street": street_y, "sky": int(h * rng.uniform(0.12, 0.2))}[zone]
                placed.append(self._setup(panel, key, (x0, x1), base, h, rng))
        # Visible masks respect occlusion: what a later paste covers is no longer the earlier thing.
        for k, item in enumerate(placed):
            for later in placed[k + 1:]:
                if item["mask"] is not None and later["mask"] is not None:
                    item["mask"] &= ~later["mask"]
        edited = panel
        records = []
        for item in placed:
            e, mask = item["edit"], item["mask"]
            after_box = self._after_box(e, item["mask"], size)
            edited = self.editor.edit([edited], [e], None if e.op == "paste" else [mask])[0]
            records.append({"key": item["key"], "op": e.op, "text": CHANGES[item["key"]].text,
                            "before_box": None if mask is None else list(mask_box(mask)),
                            "after_box": after_box, "prompt": e.prompt, "seed": e.seed, **self._edit_params(e)})
        regions = Regions()
        regions.add(0, sign_box, f"the sign reading '{sign_text}'")
        regions.add(1, sign_box, f"the same sign reading '{sign_text}'")
        for r in records:
            thing = CHANGES[r["key"]].thing
            if r["before_box"] is not None:
                r["before_region"] = regions.add(0, r["before_box"], f"{thing} before the change")
            r["after_region"] = regions.add(1, r["after_box"],
                                            self.families.phrase("after_label")[r["op"]].format(thing=thing))
        return [panel, edited], regions, (sign_text, [board, ink]), records

    @staticmethod
    def _slots(x0: float, x1: float, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        """`n` side-by-side spans of [x0, x1], in random order."""
        edges = np.linspace(x0, x1, n + 1)
        spans = [(int(edges[k]), int(edges[k + 1])) for k in range(n)]
        return [spans[k] for k in rng.permutation(n)]

    def _setup(self, panel: Image.Image, key: str, span: tuple[int, int], base_y: int, h: int,
               rng: np.random.Generator, dest: tuple[int, int] | None = None, lawn_y: int = 0) -> dict[str, Any]:
        """Draw what change `key` will edit into its span (nothing for a paste); returns its edit and mask."""
        c = CHANGES[key]
        width = span[1] - span[0]
        mask = np.zeros((panel.height, panel.width), dtype=bool)
        seed = int(rng.integers(2**31 - 1))

        def put(item: Sprite, cx: float, bottom: int) -> tuple[int, int]:
            at = (int(cx - item.size[0] / 2), bottom - item.size[1])
            _, m = paste_sprite(panel, item, at)
            mask[:] |= m
            return at

        centre = (span[0] + span[1]) / 2 + rng.uniform(-0.08, 0.08) * width
        if c.op == "paste":
            item = self._new_sprite(c.kind, width, h, rng)
            at = (int(centre - item.size[0] / 2), base_y - item.size[1])
            return {"key": key, "mask": None, "edit": Edit(prompt=c.prompt, op="paste", sprite=item.image, at=at,
                                                         seed=seed)}
        if c.kind == "tree":
            tree = sprite("tree", "green", int(min(h * 0.3, width * 0.62)))
            gap = tree.size[0] * 0.55
            first = np.zeros_like(mask)
            put(tree, centre - gap, base_y)
            first[:] = mask
            put(tree, centre + gap, base_y)
            mask[:] = first  # only one of the two trees is cut down
        elif c.kind in ("apple", "burger"):  # on a bench that serves as the stall
            bench = sprite("bench", "brown", int(min(h * 0.34, width * 0.9)))
            put(bench, centre, base_y)
            mask[:] = False
            surface = base_y - int(bench.size[1] * 0.88)
            if c.kind == "apple":
                apple = sprite("apple", pick(rng, ("red", "green")), int(bench.size[0] * 0.24))
                for k in (-1, 0, 1):
                    put(apple, centre + k * apple.size[0] * 1.1, surface)
            else:
                put(sprite("burger", "brown", int(bench.size[0] * 0.5)), centre, surface)
        else:
            colour = {"car": pick(rng, ("red", "blue", "yellow")), "person": pick(rng, CLOTHES),
                      "bench": "brown", "bin": pick(rng, ("green", "grey", "blue")), "flowers": pick(rng, CLOTHES)
                      }[c.kind]
            dimension = {"car": width * 0.7, "person": h * 0.22, "bench": min(h * 0.34, width * 0.85),
                         "bin": h * 0.16, "flowers": width * 0.85}[c.kind]
            put(sprite(c.kind, colour, int(dimension)), centre, base_y)
        params: dict[str, Any] = {
            "remove": {}, "recolour": {"colour": (110, 70, 35)},
            "resize": {"scale": float(rng.uniform(0.3, 0.4))},
            "blur": {"sigma": float(rng.uniform(5, 8)), "motion": True},
        }.get(c.op, {})
        if c.op == "move":
            assert dest is not None
            x0, y0, x1, y1 = mask_box(mask)
            target_cx = (dest[0] + dest[1]) / 2
            params = {"offset": (int(target_cx - (x0 + x1) / 2), int(lawn_y - y1))}
        return {"key": key, "mask": mask, "edit": Edit(prompt=c.prompt, op=c.op, seed=seed, **params)}

    @staticmethod
    def _new_sprite(kind: str, width: int, h: int, rng: np.random.Generator) -> Sprite:
        if kind == "litter":
            # A few bags in one sprite, so one paste dumps them all.
            bags = [sprite("litter", pick(rng, ("black", "grey", "green")), int(min(h * 0.12, width * 0.3)))
                    for _ in range(3)]
            bw, bh = bags[0].size
            canvas = Image.new("RGBA", (int(bw * 2.6), bh), (0, 0, 0, 0))
            for k, bag in enumerate(bags):
                canvas.paste(bag.image, (int(k * bw * 0.8), 0), bag.image)
            return Sprite(canvas, "rubbish bags")
        colour = {"car": pick(rng, ("red", "blue", "yellow", "white")), "dog": pick(rng, ("brown", "black", "grey")),
                  "bicycle": pick(rng, ("red", "blue", "green")), "cloud": pick(rng, ("grey", "black"))}[kind]
        dimension = {"car": width * 0.7, "dog": min(h * 0.16, width * 0.5), "bicycle": min(h * 0.28, width * 0.7),
                     "cloud": width * 0.9}[kind]
        return sprite(kind, colour, int(dimension))

    @staticmethod
    def _after_box(e: Edit, before: np.ndarray | None, size: tuple[int, int]) -> list[float]:
        w, h = size
        if e.op == "paste":
            assert e.sprite is not None
            box = mask_box(e.footprint(size))
        else:
            x0, y0, x1, y1 = mask_box(before)  # type: ignore[arg-type]
            if e.op == "resize":
                nw, nh = (x1 - x0) * e.scale, (y1 - y0) * e.scale
                box = ((x0 + x1) / 2 - nw / 2, y1 - nh, (x0 + x1) / 2 + nw / 2, y1)
            elif e.op == "move":
                box = (x0 + e.offset[0], y0 + e.offset[1], x1 + e.offset[0], y1 + e.offset[1])
            else:
                box = (x0, y0, x1, y1)
        x0, y0, x1, y1 = box
        return [max(0.0, float(x0)), max(0.0, float(y0)), min(float(w), float(x1)), min(float(h), float(y1))]

    @staticmethod
    def _edit_params(e: Edit) -> dict[str, Any]:
        return {"paste": {"at": list(e.at)}, "remove": {}, "recolour": {"colour": list(e.colour)},
                "resize": {"scale": round(e.scale, 3)}, "move": {"offset": list(e.offset)},
                "blur": {"sigma": round(e.sigma, 2), "motion": e.motion}}[e.op or "remove"]


    # -- from a folder of real two-panel images ------------------------------------------------------------------

    def _csv_path(self) -> Path:
        source = Path(self.config.source)  # type: ignore[arg-type]
        if source.is_dir():
            found = source / "explanations.csv"
            if not found.is_file():
                raise MirdataError(f"{source}: no explanations.csv (columns image,explanation) in this folder")
            return found
        if source.suffix.lower() != ".csv" or not source.is_file():
            raise MirdataError(f"{source}: --source for yes_but_satire must be a folder with explanations.csv "
                               f"or that CSV file")
        return source

    def _load_rows(self) -> list[dict[str, str]]:
        """The usable rows of the CSV, in file order; bad ones are skipped (or fail the build)."""
        if self._rows is not None:
            return self._rows
        path = self._csv_path()
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or not {"image", "explanation"} <= set(reader.fieldnames):
                    raise MirdataError(f"{path}: needs the columns image and explanation, found "
                                       f"{', '.join(reader.fieldnames or []) or 'none'}")
                raw = list(reader)
        except (UnicodeDecodeError, csv.Error) as e:
            raise MirdataError(f"{path}: not a readable CSV ({e})") from e
        rows, seen = [], set()
        for line, row in enumerate(raw, start=2):
            image = (row.get("image") or "").strip()
            explanation = " ".join((row.get("explanation") or "").split())
            file = str(path.parent / image) if image else f"{path}:{line}"
            problem = None
            if not image or not explanation:
                problem = "row has an empty image or explanation"
            elif explanation.casefold() in seen:
                problem = "same explanation as an earlier row"
            else:
                problem = _two_panel_problem(path.parent / image)
            if problem:
                if self.config.on_error == "fail":
                    raise MirdataError(f"{file}: {problem}")
                self.skipped.append({"file": file, "reason": problem})
                continue
            seen.add(explanation.casefold())
            rows.append({"image": image, "explanation": explanation, "path": str(path.parent / image)})
        if len(rows) < 2:
            raise MirdataError(f"{path}: needs at least 2 usable rows to make options, has {len(rows)}")
        self._rows = rows
        return rows

    def _from_source(self, slot: Slot, rng: np.random.Generator) -> Sample:
        rows = self._load_rows()
        if slot.index >= len(rows):
            raise MirdataError(f"{self._csv_path()}: has {len(rows)} usable rows; record {slot.index} would repeat "
                               f"one")
        family = self.families["folder"]
        row = rows[slot.index]
        with Image.open(row["path"]) as im:
            full = im.convert("RGB")
        gutter = find_gutter(np.asarray(full))
        panels = [full.crop((0, 0, gutter, full.height)), full.crop((gutter, 0, full.width, full.height))]
        others = [r["explanation"] for r in rows if r is not row]
        distractors = [others[k] for k in rng.permutation(len(others))[:3]]
        facts = SatireFacts(source="folder", file=row["image"], gutter_x=gutter,
                            panel_sizes=[list(p.size) for p in panels], explanation=row["explanation"],
                            distractors=distractors)
        facts["answer_text"] = self.families.solve(family, facts)
        options, answer = place_answer(facts["answer_text"], distractors, slot, rng)
        regions = Regions()
        regions.add(0, [0, 0, panels[0].width, panels[0].height], "the whole 'yes' panel")
        regions.add(1, [0, 0, panels[1].width, panels[1].height], "the whole 'but' panel")
        question = self.families.text(family, rng, img1=IMAGE_TOKEN, img2=IMAGE_TOKEN)
        return Sample(question, options, answer, panels, regions.items, facts,
                      generator="two-panel images from --source")

    # -- reasoning -------------------------------------------------------------------------------------------------

    @classmethod
    def reason(cls, facts: SatireFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        f, by_id, phrases = facts, {r.id: r for r in regions}, task_spec("yes_but_satire").phrases
        if f["source"] == "folder":
            return cls._reason_source(f, by_id, answer, phrases)
        sign = f"'{f['sign_text']}'"
        before = [CHANGES[c["key"]].thing for c in f["changes"] if c["before_box"] is not None]
        captions = [
            f"A park by a street with a sign on the lawn reading {sign}"
            + (f"; also {join_and(before)}." if before else "."),
            "The same place with the same sign, after these changes: "
            + "; ".join(c["text"] for c in f["changes"]) + ".",
        ]
        links = [f"'the sign' → {cite(by_id['r0'])} and {cite(by_id['r1'])}"]
        steps = [f"[r0] and [r1] are the same sign: {sign} holds in both panels."]
        for c in f["changes"]:
            where = (f"[{c['before_region']}] → [{c['after_region']}]" if "before_region" in c
                     else f"[{c['after_region']}]")
            links.append(f"'{CHANGES[c['key']].thing}' → "
                         + (f"{cite(by_id[c['before_region']])} and " if "before_region" in c else "")
                         + cite(by_id[c["after_region"]]))
            verdict = (f"this goes against {sign}: {f['why']}" if c["key"] == f["contradicting"]
                       else f"this has nothing to do with {sign}")
            steps.append(f"{where}: {c['text']}; {verdict}.")
        body = f"Of the changes, only '{f['answer_text']}' {pick(rng, phrases['verb'])} the sign {sign}"
        return Reasoning(pick(rng, phrases["summary"]), captions, "; ".join(links) + ".", " ".join(steps),
                         conclude(body, answer))

    @staticmethod
    def _reason_source(f: SatireFacts, regions: dict[str, Region], answer: str,
                       phrases: dict[str, Any]) -> Reasoning:
        explanation = f["explanation"]
        quoted = explanation if not stated_letters(explanation) else "the explanation that matches both panels"
        captions = [f"The left ('yes') panel of {f['file']}, {f['panel_sizes'][0][0]}x{f['panel_sizes'][0][1]} px.",
                    f"The right ('but') panel of {f['file']}, {f['panel_sizes'][1][0]}x{f['panel_sizes'][1][1]} px."]
        text2region = (f"'the first panel' → {cite(regions['r0'])}; 'the second panel' → {cite(regions['r1'])}.")
        region2region = (f"[r0] sets up the situation and [r1] contradicts it; the explanation that ties them "
                         f"together is: {explanation} The other options describe other pictures.")
        if stated_letters(region2region):
            region2region = ("[r0] sets up the situation and [r1] contradicts it; only one explanation ties the "
                             "two together, the others describe other pictures.")
        return Reasoning(phrases["source_summary"], captions, text2region, region2region,
                         conclude(f"The irony is: {quoted}", answer))


def _two_panel_problem(path: Path) -> str | None:
    """Why an image cannot be a two-panel 'Yes, but' picture, or None."""
    if not path.is_file():
        return "file does not exist"
    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except Exception as e:  # PIL raises many types for undecodable files
        return f"does not decode as an image ({type(e).__name__})"
    if w < 32 or h < 16:
        return f"too small for two panels ({w}x{h})"
    return None


def find_gutter(pixels: np.ndarray) -> int:
    """The x where two side-by-side panels meet: the flattest column in the middle fifth, else the middle."""
    h, w = pixels.shape[:2]
    grey = pixels.astype(np.float32).mean(axis=2) if pixels.ndim == 3 else pixels.astype(np.float32)
    lo, hi = int(w * 0.4), int(w * 0.6)
    if hi - lo < 3:
        return w // 2
    spread = grey[:, lo:hi].std(axis=0)
    best = int(np.argmin(spread))
    # A real gutter is a near-uniform column; otherwise split in the middle.
    return lo + best if spread[best] < 0.5 * float(np.median(spread)) + 1e-6 else w // 2
