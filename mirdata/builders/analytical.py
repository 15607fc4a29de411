"""Analytical tasks: reading and combining evidence across images.

* `chart_analysis`: two or three charts of related tables; the answer needs values from one and rates from
  another (revenue = units x price, a company's units = market share x market size, ...).
* `weight_comparison`: balance scales, each comparing two labelled objects; the heaviest, the lightest or the
  full order, or "Cannot be determined" when the scales do not decide it.
* `scale_blur`: the true scale of what a photo shows, against blur cues: zoom levels of one photo under
  unrelated blur, or real scenes of very different sizes where the large ones are made to look like
  miniatures by tilt-shift blur.
* `yes_but_satire`: two panels, the second an edit of the first that contradicts the first's message; which
  change it is. Also built from a folder of real two-panel images and a CSV of their explanations.

Each task's docstring defines it precisely. Question phrasings, scene descriptions and reasoning sentences are
data (the template tables below); the code only fills them from the facts.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from mirdata.builders.base import Reasoning, Sample, Task, cite, conclude, join_and, pick, regions_by_id
from mirdata.builders.options import distinct_distractors, place_answer
from mirdata.errors import MirdataError
from mirdata.generators.charts import ChartSpec, render_chart
from mirdata.generators.drawings import (SCALE_SHAPES, ScaleItem, Sprite, background, draw_balance_scale, draw_sign,
                                         mask_box, paste_sprite, sprite, tilt_angle)
from mirdata.generators.editing import EDITORS, Edit, Editor, make_editor
from mirdata.schema.checks import stated_letters
from mirdata.schema.record import IMAGE_TOKEN, Record, Region

CANNOT = "Cannot be determined"
Facts = dict[str, Any]


# -- shared helpers ---------------------------------------------------------------------------------------------

def num(value: float) -> str:
    """A number as the reasoning writes it: thousands separated, no needless decimals."""
    value = round(float(value), 2)
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


class RegionList:
    """Regions with ids r0, r1, ... in the order they are added."""

    def __init__(self) -> None:
        self.items: list[Region] = []

    def add(self, image: int, box: list[float] | tuple[float, ...], label: str) -> str:
        rid = f"r{len(self.items)}"
        self.items.append(Region(rid, image, [float(v) for v in box], label))
        return rid


def image_intro(rng: np.random.Generator, n: int, noun: str) -> str:
    """The images of a question, each placeholder in order, in one of a few phrasings."""
    style = int(rng.integers(3))
    if style == 0:
        return " ".join(f"{noun.capitalize()} {k + 1}: {IMAGE_TOKEN}" for k in range(n))
    if style == 1:
        return f"Here are {n} {noun}s. " + " ".join(IMAGE_TOKEN for _ in range(n))
    return " ".join(IMAGE_TOKEN for _ in range(n)) + f" (the {noun}s above are numbered 1 to {n} in order)."


# == chart_analysis ============================================================================================

PRODUCTS = ["Alpha", "Bravo", "Comet", "Delta", "Ember", "Falcon", "Garnet", "Helix"]
COMPANIES = ["Acme", "Borealis", "Cobalt", "Dynamo", "Equinox", "Fjord"]
AREAS = ["North", "South", "East", "West", "Central"]

CHART_QUESTIONS = {
    "top_revenue": [
        "Using both charts, which product brought in the most revenue (units sold × price per unit) in {year}?",
        "Revenue is units sold times price per unit. Which product earned the most in {year}?",
    ],
    "profit": [
        "Profit is units sold × price per unit × profit margin. Which product made the largest profit in {year}?",
        "Combine the three charts: which product earned the highest profit (units × price × margin) in {year}?",
    ],
    "share_of_total": [
        "How many units did {company} sell in {year}, in thousands?",
        "Using the market share and the size of the whole market, how many thousand units did {company} sell "
        "in {year}?",
    ],
    "projection": [
        "If each area keeps its growth rate for one more year, which area will have the highest sales in {next}?",
        "Sales in {next} = sales in {year} × (1 + growth rate). Which area comes out on top in {next}?",
    ],
    "revenue_change": [
        "Prices did not change between {year0} and {year}. Which product's revenue grew the most from {year0} "
        "to {year}?",
        "With the same price per unit in both years, which product gained the most revenue from {year0} to "
        "{year}?",
    ],
}

CHART_SUMMARIES = {
    "top_revenue": [
        "The question asks for the product with the highest revenue, which is units sold (image {units}) times "
        "price per unit (image {price}). I read both values for every product, multiply them and compare.",
        "Neither chart alone answers this: image {units} gives units sold and image {price} gives the price per "
        "unit. Revenue is their product, so I compute it for each product and pick the largest.",
    ],
    "profit": [
        "Profit needs all three charts: units sold (image {units}), price per unit (image {price}) and profit "
        "margin (image {margin}). I multiply the three for each product and compare.",
        "I have to combine units (image {units}), price (image {price}) and margin (image {margin}); their "
        "product is the profit of each product, and the largest one is the answer.",
    ],
    "share_of_total": [
        "The pie chart (image {pie}) gives each company's share of the market and image {market} gives the size "
        "of the whole market per year. {company}'s units are its share times the {year} market size.",
        "To get {company}'s units in {year} I take its market share from image {pie} and multiply it by the "
        "{year} market total from image {market}.",
    ],
    "projection": [
        "Next year's sales are this year's sales (image {value}) grown by each area's rate (image {rate}). I "
        "project every area and compare.",
        "Image {value} holds {year} sales and image {rate} the growth rates; sales × (1 + rate) gives {next}, "
        "which I compute for every area.",
    ],
    "revenue_change": [
        "The revenue change of a product is (units in {year} − units in {year0}) × price. Units come from the "
        "grouped bars in image {units}, prices from image {price}.",
        "I need the change in units between {year0} and {year} (image {units}) times the unchanged price "
        "(image {price}) for each product, then the largest gain.",
    ],
}

CHART_KIND_WORDS = {"bar": "bar chart", "grouped_bar": "grouped bar chart", "line": "line chart",
                    "pie": "pie chart", "scatter": "scatter plot"}


@dataclass
class ChartProblem:
    family: str
    specs: list[ChartSpec]
    question: str
    correct: str
    distractors: list[str]
    computed: dict[str, float]  # the derived quantity per item
    cited: list[tuple[int, str, str | None]]  # (chart index, category, series) to ground as regions
    roles: dict[str, int]  # role name -> 1-based image number, for the summary
    params: dict[str, Any] = field(default_factory=dict)


def _money(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)) * 4) / 4  # quarters: readable on a chart label


def _winner(values: dict[str, float], margin: float) -> str | None:
    """The key of the largest value, if it beats the runner-up by `margin` (relative); else None."""
    ranked = sorted(values, key=values.get, reverse=True)
    best, second = values[ranked[0]], values[ranked[1]]
    return ranked[0] if best > 0 and best >= second * (1 + margin) + 1e-9 else None


def _argmax(values: dict[str, float]) -> str:
    return max(values, key=values.get)


def _units_chart(rng: np.random.Generator, year: int, items: list[str], units: dict[str, int]) -> ChartSpec:
    return ChartSpec(pick(rng, ("bar", "line")), f"Units sold in {year}", items, {"units": [units[p] for p in items]},
                     "product", "units sold", "{:.0f}")


def _price_chart(rng: np.random.Generator, items: list[str], price: dict[str, float]) -> ChartSpec:
    return ChartSpec(pick(rng, ("bar", "line")), "Price per unit", items, {"price": [price[p] for p in items]},
                     "product", "price (USD)", "${:.2f}")


def _which_options(rng: np.random.Generator, answer: str, items: list[str], traps: list[str]) -> list[str]:
    """Up to three distractor items, the single-chart traps first."""
    return distinct_distractors(answer, traps + rng.permutation(items).tolist(), 3)


class ChartAnalysis(Task):
    """chart_analysis: two or three charts of related tables; the answer needs them together.

    Families (each drawn with varied chart kinds and styles):
      top_revenue     units sold (bar|line) + price per unit (bar|line): the product with the highest revenue.
      profit          units + price + profit margin (three charts): the product with the highest profit.
      share_of_total  market share of one year (pie) + market size per year (bar|line): a company's units.
      projection      sales this year (bar) + growth rate (line|bar): the area with the highest sales next year.
      revenue_change  units in two years (grouped bar) + price (bar|line): the largest revenue gain.
    A draw is kept only if the winner beats the runner-up by a clear margin and no single chart gives the answer
    by itself (the winner is not the top of the units or the price chart alone); numeric answers have distinct
    distractors made from the usual slips (wrong year, wrong company, the complement share).
    """

    name = "chart_analysis"
    category = "analytical"
    families = ("top_revenue", "profit", "share_of_total", "projection", "revenue_change")

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        family = self.families[index % len(self.families)]
        problem = getattr(self, f"_{family}")(rng)
        if problem is None:
            return None
        size = self.options.image_size
        charts = [render_chart(spec, size, rng=rng) for spec in problem.specs]
        regions = RegionList()
        for chart_index, category, series in problem.cited:
            element = charts[chart_index].element(category, series)
            what = problem.specs[chart_index].y_label or problem.specs[chart_index].title
            label = f"{category} {series}" if problem.specs[chart_index].kind == "grouped_bar" else category
            regions.add(chart_index, element.box, f"{label}: {what}")
        options, answer = place_answer(problem.correct, problem.distractors, self.slot(index), rng)
        question = f"{image_intro(rng, len(charts), 'chart')} {problem.question}"
        facts = {
            "family": problem.family,
            "charts": [spec.to_json() for spec in problem.specs],
            "chart_styles": [c.style for c in charts],
            "computed": {k: round(v, 4) for k, v in problem.computed.items()},
            "answer_text": problem.correct,
            "roles": problem.roles,
            **problem.params,
        }
        return Sample(question, options, answer, [c.image for c in charts], regions.items, facts,
                      generator="matplotlib charts")

    # -- families (None: this draw is not clear enough; the caller draws again) ----------------------------

    def _items(self, rng: np.random.Generator, names: list[str], lo: int = 4, hi: int = 5) -> list[str]:
        n = int(rng.integers(lo, hi + 1))
        return sorted(rng.choice(names, size=n, replace=False).tolist(), key=names.index)

    def _products(self, rng: np.random.Generator) -> tuple[list[str], dict[str, int], dict[str, float]]:
        """Products with units sold and a price per unit each."""
        items = self._items(rng, PRODUCTS)
        units = {p: int(rng.integers(10, 100)) * 5 for p in items}
        price = {p: _money(rng, 2, 40) for p in items}
        return items, units, price

    def _top_revenue(self, rng: np.random.Generator) -> ChartProblem | None:
        year = int(rng.integers(2016, 2025))
        for _ in range(50):
            items, units, price = self._products(rng)
            revenue = {p: units[p] * price[p] for p in items}
            best = _winner(revenue, 0.06)
            if best and best != _argmax(units) and best != _argmax(price):
                break
        else:
            return None
        specs = [_units_chart(rng, year, items, units), _price_chart(rng, items, price)]
        runner = sorted(revenue, key=revenue.get)[-2]
        return ChartProblem(
            "top_revenue", specs, pick(rng, CHART_QUESTIONS["top_revenue"]).format(year=year), best,
            _which_options(rng, best, items, [_argmax(units), _argmax(price)]), revenue,
            [(0, best, None), (1, best, None), (0, runner, None), (1, runner, None)],
            {"units": 1, "price": 2}, {"year": year, "runner_up": runner})

    def _profit(self, rng: np.random.Generator) -> ChartProblem | None:
        year = int(rng.integers(2016, 2025))
        for _ in range(80):
            items, units, price = self._products(rng)
            margin = {p: int(rng.integers(4, 41)) for p in items}
            revenue = {p: units[p] * price[p] for p in items}
            profit = {p: revenue[p] * margin[p] / 100 for p in items}
            best = _winner(profit, 0.06)
            if best and best not in (_argmax(units), _argmax(price), _argmax(revenue)):
                break
        else:
            return None
        order = [int(k) for k in rng.permutation(3)]  # the charts in a shuffled order
        specs_by_role = {
            "units": _units_chart(rng, year, items, units),
            "price": _price_chart(rng, items, price),
            "margin": ChartSpec(pick(rng, ("bar", "line")), "Profit margin", items,
                                {"margin": [margin[p] for p in items]}, "product", "margin (%)", "{:.0f}%"),
        }
        roles = [list(specs_by_role)[k] for k in order]
        specs = [specs_by_role[r] for r in roles]
        runner = sorted(profit, key=profit.get)[-2]
        cited = [(roles.index(r), p, None) for p in (best, runner) for r in ("units", "price", "margin")]
        return ChartProblem(
            "profit", specs, pick(rng, CHART_QUESTIONS["profit"]).format(year=year), best,
            _which_options(rng, best, items, [_argmax(revenue), _argmax(units), _argmax(margin)]), profit, cited,
            {r: roles.index(r) + 1 for r in roles},
            {"year": year, "runner_up": runner, "revenue": {p: round(v, 4) for p, v in revenue.items()}})

    def _share_of_total(self, rng: np.random.Generator) -> ChartProblem | None:
        companies = self._items(rng, COMPANIES)
        raw = rng.dirichlet(np.full(len(companies), 2.0)) * 100
        shares = np.maximum(5, np.round(raw)).astype(int)
        shares[int(np.argmax(shares))] += 100 - int(shares.sum())
        if shares.min() < 5 or len(set(shares.tolist())) != len(shares):
            return None
        share = dict(zip(companies, shares.tolist()))
        first = int(rng.integers(2015, 2021))
        years = [str(first + k) for k in range(int(rng.integers(4, 6)))]
        totals = {y: int(rng.integers(20, 90)) * 10 for y in years}
        if len(set(totals.values())) != len(totals):
            return None
        year, company = pick(rng, years), pick(rng, companies)
        value = share[company] * totals[year] / 100
        other_year = min((y for y in years if y != year), key=lambda y: abs(totals[y] - totals[year]))
        other_company = pick(rng, [c for c in companies if c != company])
        fmt = "{:,.1f} thousand units"
        correct = fmt.format(value)
        slips = [share[company] * totals[other_year] / 100, share[other_company] * totals[year] / 100,
                 (100 - share[company]) * totals[year] / 100, share[company] * totals[year] / 10]
        distractors = distinct_distractors(correct, (fmt.format(v) for v in slips), 3)
        if len(distractors) < 3:
            return None
        pie_first = bool(rng.random() < 0.5)
        pie = ChartSpec("pie", f"Market share by company, {year}", companies, {"share": shares.tolist()},
                        value_format="{:.0f}%")
        total = ChartSpec(pick(rng, ("bar", "line")), "Whole market (thousand units)", years,
                          {"total": [totals[y] for y in years]}, "year", "thousand units", "{:.0f}")
        specs = [pie, total] if pie_first else [total, pie]
        pie_k, total_k = (0, 1) if pie_first else (1, 0)
        return ChartProblem(
            "share_of_total", specs,
            pick(rng, CHART_QUESTIONS["share_of_total"]).format(company=company, year=year), correct,
            distractors, {company: value}, [(pie_k, company, None), (total_k, year, None)],
            {"pie": pie_k + 1, "market": total_k + 1},
            {"year": year, "company": company, "share": share[company], "total": totals[year],
             "slips": {"other_year": other_year, "other_company": other_company}})

    def _projection(self, rng: np.random.Generator) -> ChartProblem | None:
        year = int(rng.integers(2016, 2025))
        for _ in range(50):
            areas = self._items(rng, AREAS)
            sales = {a: int(rng.integers(20, 90)) * 10 for a in areas}
            rate = {a: int(rng.integers(-10, 41)) for a in areas}
            projected = {a: sales[a] * (1 + rate[a] / 100) for a in areas}
            best = _winner(projected, 0.03)
            if best and best != _argmax(sales) and best != _argmax(rate):
                break
        else:
            return None
        specs = [
            ChartSpec("bar", f"Sales in {year} (thousand USD)", areas, {"sales": [sales[a] for a in areas]},
                      "area", "sales (k USD)", "{:.0f}"),
            ChartSpec(pick(rng, ("line", "bar")), "Yearly growth rate", areas, {"growth": [rate[a] for a in areas]},
                      "area", "growth (%)", "{:+.0f}%"),
        ]
        runner = sorted(projected, key=projected.get)[-2]
        return ChartProblem(
            "projection", specs, pick(rng, CHART_QUESTIONS["projection"]).format(year=year, next=year + 1), best,
            _which_options(rng, best, areas, [_argmax(sales), _argmax(rate)]), projected,
            [(0, best, None), (1, best, None), (0, runner, None), (1, runner, None)], {"value": 1, "rate": 2},
            {"year": year, "next": year + 1, "runner_up": runner})

    def _revenue_change(self, rng: np.random.Generator) -> ChartProblem | None:
        year = int(rng.integers(2017, 2025))
        for _ in range(80):
            items = self._items(rng, PRODUCTS)
            before = {p: int(rng.integers(10, 80)) * 5 for p in items}
            after = {p: max(5, before[p] + int(rng.integers(-12, 25)) * 5) for p in items}
            price = {p: _money(rng, 2, 40) for p in items}
            change = {p: (after[p] - before[p]) * price[p] for p in items}
            delta = {p: after[p] - before[p] for p in items}
            best = _winner(change, 0.08)
            if best and best != _argmax(delta) and best != _argmax(price):
                break
        else:
            return None
        y0, y1 = str(year - 1), str(year)
        specs = [
            ChartSpec("grouped_bar", "Units sold", items,
                      {y0: [before[p] for p in items], y1: [after[p] for p in items]},
                      "product", "units sold", "{:.0f}"),
            _price_chart(rng, items, price),
        ]
        runner = sorted(change, key=change.get)[-2]
        cited = [(0, best, y0), (0, best, y1), (1, best, None), (0, runner, y0), (0, runner, y1), (1, runner, None)]
        return ChartProblem(
            "revenue_change", specs,
            pick(rng, CHART_QUESTIONS["revenue_change"]).format(year0=y0, year=y1), best,
            _which_options(rng, best, items, [_argmax(delta), _argmax(price)]), change, cited,
            {"units": 1, "price": 2}, {"year": y1, "year0": y0, "runner_up": runner})

    # -- reasoning -------------------------------------------------------------------------------------------

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        family, charts, computed = f["family"], f["charts"], f["computed"]
        fmt_args = {**f["roles"], **{k: v for k, v in f.items() if isinstance(v, (str, int))}}
        summary = pick(rng, CHART_SUMMARIES[family]).format(**fmt_args)
        captions = [self._caption(c, rng) for c in charts]
        regions = record.regions
        text2region = "; ".join(
            f"'{r.label.split(':')[0]}' ({r.label.split(': ', 1)[1]}) → {cite(r)}" for r in regions) + "."
        steps = getattr(self, f"_steps_{family}")(f, charts, computed)
        region2region = " ".join(steps)
        correct = f["answer_text"]
        if family == "share_of_total":
            body = (f"{f['company']} holds {f['share']}% of a {f['total']} thousand-unit market in {f['year']}, "
                    f"which is {correct}")
        else:
            runner = f["runner_up"]
            body = (f"{correct} comes out on top with {num(computed[correct])}, ahead of {runner} with "
                    f"{num(computed[runner])}")
        return Reasoning(summary, captions, text2region, region2region, conclude(body, record.answer))

    @staticmethod
    def _caption(chart: dict[str, Any], rng: np.random.Generator) -> str:
        kind = CHART_KIND_WORDS[chart["kind"]]
        spec = ChartSpec(**chart)
        parts = []
        for name, values in chart["series"].items():
            listed = ", ".join(f"{c} {spec.fmt(v)}" for c, v in zip(chart["categories"], values))
            parts.append(f"{name}: {listed}" if len(chart["series"]) > 1 else listed)
        lead = pick(rng, ["A {kind} titled '{title}'", "This {kind}, '{title}', shows", "{Kind}: '{title}'"])
        return lead.format(kind=kind, Kind=kind.capitalize(), title=chart["title"]) + " — " + "; ".join(parts) + "."

    @staticmethod
    def _series(chart: dict[str, Any], name: str | None = None) -> dict[str, float]:
        values = chart["series"][name] if name else next(iter(chart["series"].values()))
        return dict(zip(chart["categories"], values))

    def _steps_top_revenue(self, f: Facts, charts: list[Facts], computed: dict[str, float]) -> list[str]:
        units, price = self._series(charts[0]), self._series(charts[1])
        return [f"{p}: {num(units[p])} × ${num(price[p])} = {num(computed[p])}." for p in units]

    def _steps_profit(self, f: Facts, charts: list[Facts], computed: dict[str, float]) -> list[str]:
        roles = f["roles"]
        units, price, margin = (self._series(charts[roles[r] - 1]) for r in ("units", "price", "margin"))
        return [f"{p}: {num(units[p])} × ${num(price[p])} × {num(margin[p])}% = {num(computed[p])}." for p in units]

    def _steps_share_of_total(self, f: Facts, charts: list[Facts], computed: dict[str, float]) -> list[str]:
        return [f"The {f['company']} wedge reads {f['share']}% and the {f['year']} market is {f['total']} thousand "
                f"units: {f['share']}% × {f['total']} = {num(computed[f['company']])} thousand units.",
                f"Reading another year ({f['slips']['other_year']}) or another company's wedge "
                f"({f['slips']['other_company']}) would give a wrong figure."]

    def _steps_projection(self, f: Facts, charts: list[Facts], computed: dict[str, float]) -> list[str]:
        sales, rate = self._series(charts[0]), self._series(charts[1])
        return [f"{a}: {num(sales[a])} changed by {int(rate[a]):+d}% gives {num(computed[a])}." for a in sales]

    def _steps_revenue_change(self, f: Facts, charts: list[Facts], computed: dict[str, float]) -> list[str]:
        before, after = self._series(charts[0], f["year0"]), self._series(charts[0], f["year"])
        price = self._series(charts[1])
        return [f"{p}: ({num(after[p])} − {num(before[p])}) × ${num(price[p])} = {num(computed[p])}." for p in price]


# == weight_comparison =========================================================================================

WEIGHT_LABELS = ["Clay", "Cork", "Iron", "Salt", "Sand", "Wool", "Rice", "Lead", "Soap", "Wax", "Tea", "Nuts"]
WEIGHT_COLOURS = ["red", "blue", "green", "yellow", "orange", "purple", "brown", "grey"]

WEIGHT_QUESTIONS = {
    "heaviest": ["Each balance compares two of these objects: {names}. {images} Which object is the heaviest?",
                 "{images} The scales above weigh pairs of {names}. Which one is the heaviest of all?"],
    "lightest": ["Each balance compares two of these objects: {names}. {images} Which object is the lightest?",
                 "{images} The scales above weigh pairs of {names}. Which one is the lightest of all?"],
    "order": ["Each balance compares two of these objects: {names}. {images} Which list orders them from "
              "heaviest to lightest?",
              "{images} These scales weigh pairs of {names}. What is their order from heaviest to lightest?"],
}
WEIGHT_SUMMARIES = [
    "Each scale tips towards its heavier side. I read which object is heavier on every scale, chain the "
    "comparisons, and check whether they force a single answer.",
    "I turn every scale into one 'heavier than' fact, then look at all orders of the objects that agree with "
    "those facts: if they disagree on the asked object, it cannot be determined.",
]


def consistent_orders(names: list[str], comparisons: list[tuple[str, str]]) -> list[tuple[str, ...]]:
    """Every order (heaviest first) that agrees with all (heavier, lighter) comparisons: brute force."""
    out = []
    for order in itertools.permutations(names):
        rank = {n: k for k, n in enumerate(order)}
        if all(rank[heavy] < rank[light] for heavy, light in comparisons):
            out.append(order)
    return out


def image_order_text(images: list[int]) -> str:
    """0-based image indices as the options list them: "Image 2, Image 1, Image 3"."""
    return ", ".join(f"Image {k + 1}" for k in images)


def order_text(order: tuple[str, ...] | list[str]) -> str:
    return " > ".join(order)


class WeightComparison(Task):
    """weight_comparison: 3-5 labelled objects with hidden distinct weights; 2-5 balance-scale images, each
    comparing two of them (the heavier side down, tilted more for a larger weight ratio).

    The question asks for the heaviest object, the lightest, or the order from heaviest to lightest. The answer
    is decided by brute force over all orders of the objects that agree with every scale: if they all agree
    on the asked thing it is the answer, otherwise the answer is "Cannot be determined" (always among the
    options). About 30% of the draws are made undetermined on purpose. Distractors: the other objects; for
    orders, orders that agree with the scales but are not forced, or that break one comparison.
    """

    name = "weight_comparison"
    category = "analytical"
    kinds = ("heaviest", "lightest", "order")

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        kind = self.kinds[index % len(self.kinds)]
        n = int(rng.integers(3, 6))
        names = rng.choice(WEIGHT_LABELS, size=n, replace=False).tolist()
        weights = dict(zip(names, (rng.choice(np.arange(10, 200), size=n, replace=False) * 10).tolist()))
        want_determined = bool(rng.random() >= 0.3)
        pairs = list(itertools.combinations(names, 2))
        for _ in range(100):
            k = int(rng.integers(max(2, n - 1), min(len(pairs), n + 1, 5) + 1))
            chosen = [pairs[i] for i in rng.choice(len(pairs), size=k, replace=False)]
            comparisons = [(a, b) if weights[a] > weights[b] else (b, a) for a, b in chosen]
            orders = consistent_orders(names, comparisons)
            answer_text = self._decide(kind, orders)
            if (answer_text != CANNOT) == want_determined:
                break
        else:
            return None
        correct, distractors = self._options(kind, names, weights, orders, answer_text, rng)
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        shapes = dict(zip(names, rng.choice(SCALE_SHAPES, size=n).tolist()))
        colours = dict(zip(names, rng.choice(WEIGHT_COLOURS, size=n, replace=False).tolist()))
        items = {m: ScaleItem(m, shapes[m], colours[m]) for m in names}
        style = {"backdrop": pick(rng, ["white", "cream", "sky"]), "metal": "grey",
                 "table": bool(rng.random() < 0.7)}
        images, regions, scales = [], RegionList(), []
        for k, (a, b) in enumerate(chosen):
            left, right = (a, b) if rng.random() < 0.5 else (b, a)
            angle = tilt_angle(weights[left], weights[right])
            drawing = draw_balance_scale(self.options.image_size, items[left], items[right], angle, style)
            images.append(drawing.image)
            rl = regions.add(k, drawing.left_box, f"{left} ({colours[left]} {shapes[left]}) on the left pan")
            rr = regions.add(k, drawing.right_box, f"{right} ({colours[right]} {shapes[right]}) on the right pan")
            scales.append({"left": left, "right": right, "angle": round(angle, 1), "tilt_deg": round(abs(angle), 1),
                           "down": "left" if angle > 0 else "right", "regions": [rl, rr],
                           "heavier": left if angle > 0 else right})
        question = pick(rng, WEIGHT_QUESTIONS[kind]).format(
            names=join_and(names), images=" ".join(IMAGE_TOKEN for _ in images))
        facts = {
            "kind": kind, "objects": names, "weights_g": weights,
            "shapes": shapes, "colours": colours, "scales": scales,
            "comparisons": [list(c) for c in comparisons], "consistent_orders": len(orders), "n_objects": n,
            "true_order": sorted(names, key=lambda m: -weights[m]), "answer_text": correct,
        }
        return Sample(question, options, answer, images, regions.items, facts, generator="balance-scale drawings")

    @staticmethod
    def _decide(kind: str, orders: list[tuple[str, ...]]) -> str:
        if kind == "order":
            return order_text(orders[0]) if len(orders) == 1 else CANNOT
        picks = {o[0] if kind == "heaviest" else o[-1] for o in orders}
        return picks.pop() if len(picks) == 1 else CANNOT

    @staticmethod
    def _options(kind: str, names: list[str], weights: dict[str, int], orders: list[tuple[str, ...]],
                 correct: str, rng: np.random.Generator) -> tuple[str, list[str]]:
        if kind != "order":
            return correct, [t for t in [*names, CANNOT] if t != correct]
        pool = [order_text(o) for o in orders]  # agree with the scales, but not forced when several
        true = sorted(names, key=lambda m: -weights[m])
        for _ in range(30):  # orders that break a comparison: an adjacent swap of the true order, or any shuffle
            k = int(rng.integers(len(true) - 1))
            swapped = true[:k] + [true[k + 1], true[k]] + true[k + 2:]
            pool += [order_text(swapped), order_text(rng.permutation(true).tolist())]
        return correct, distinct_distractors(correct, [CANNOT, *pool], 3)

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        regions = regions_by_id(record)
        captions = []
        for s in f["scales"]:
            captions.append(pick(rng, [
                "A balance scale with {left} ({lc} {ls}) on the left pan and {right} ({rc} {rs}) on the right; "
                "the beam tips down on the {down} by about {deg}°.",
                "{left}, a {lc} {ls}, sits on the left pan and {right}, a {rc} {rs}, on the right; the {down} side "
                "hangs lower (about {deg}°).",
            ]).format(left=s["left"], right=s["right"], lc=f["colours"][s["left"]], ls=f["shapes"][s["left"]],
                      rc=f["colours"][s["right"]], rs=f["shapes"][s["right"]], down=s["down"], deg=num(s["tilt_deg"])))
        text2region = "; ".join(
            f"'{s[side]}' → {cite(regions[rid])}"
            for s in f["scales"] for side, rid in zip(("left", "right"), s["regions"])
        ) + "."
        facts = []
        for s in f["scales"]:
            heavy, light = s["heavier"], s["right"] if s["heavier"] == s["left"] else s["left"]
            rh, rl = (s["regions"][0], s["regions"][1]) if heavy == s["left"] else (s["regions"][1], s["regions"][0])
            facts.append(f"[{rh}] {heavy} hangs lower than [{rl}] {light}, so {heavy} is heavier than {light}.")
        n_orders = f["consistent_orders"]
        kind, correct = f["kind"], f["answer_text"]
        if n_orders == 1:
            chain = f"Together the comparisons allow only one order: {order_text(f['true_order'])}."
        else:
            chain = (f"Together they still allow {n_orders} different orders of the {len(f['objects'])} objects, "
                     f"because some pairs are never compared, directly or through a chain.")
        if correct == CANNOT:
            what = {"heaviest": "the heaviest object", "lightest": "the lightest object",
                    "order": "the full order"}[kind]
            body = f"Those orders disagree on {what}, so no single option is forced; it cannot be determined"
        elif kind == "order":
            body = f"The scales force the order {correct}"
        else:
            body = f"In every order that fits, {correct} is the {kind} object"
        return Reasoning(pick(rng, WEIGHT_SUMMARIES), captions, text2region, " ".join(facts) + " " + chain,
                         conclude(body, record.answer))


# == scale_blur ================================================================================================

@dataclass(frozen=True)
class Photo:
    """A real photo shipped with scikit-image, and what it shows."""

    loader: str  # the skimage.data function
    scene: str  # what the photo shows
    subject: str  # the main thing in it
    box: tuple[float, float, float, float]  # the subject, as fractions of the photo
    width_m: float  # real width of the photographed scene, roughly
    width_text: str


PHOTOS = {
    "tissue": Photo("immunohistochemistry", "a stained tissue section seen through a microscope", "tissue cells",
                    (0.02, 0.02, 0.98, 0.98), 0.0005, "about half a millimetre"),
    "retina": Photo("retina", "the retina at the back of a human eye", "retina", (0.02, 0.02, 0.98, 0.98), 0.012,
                    "about 1 cm"),
    "coins": Photo("coins", "two dozen ancient coins laid out in rows", "coins", (0.03, 0.03, 0.98, 0.97), 0.25,
                   "about 25 cm"),
    "coffee": Photo("coffee", "a cup of coffee on a saucer", "coffee cup", (0.28, 0.03, 0.72, 0.52), 0.4,
                    "about 40 cm"),
    "cat": Photo("chelsea", "the face of a tabby cat", "cat's face", (0.05, 0.0, 0.95, 1.0), 0.3, "about 30 cm"),
    "astronaut": Photo("astronaut", "an astronaut in a spacesuit, upper body", "astronaut", (0.25, 0.02, 0.78, 1.0),
                       1.0, "about 1 m"),
    "motorcycle": Photo("stereo_motorcycle", "a motorcycle parked in a workshop", "motorcycle",
                        (0.15, 0.3, 0.92, 0.9), 4.0, "about 4 m"),
    "rocket": Photo("rocket", "a rocket on its launch pad at dusk", "rocket", (0.45, 0.28, 0.55, 1.0), 150.0,
                    "about 150 m"),
}
ZOOM_PHOTOS = ("coffee", "cat", "astronaut", "motorcycle", "rocket", "coins", "tissue")
ZOOM_LADDER = (1.0, 1.6, 2.6, 4.2)
BLUR_LEVELS = (0.0, 1.2, 2.5, 4.0)

SCALE_QUESTIONS = {
    "most_zoomed": ["{images} These views come from the same photo at different zoom levels and with different "
                    "blur. Which image is zoomed in the most?",
                    "{images} Each image is a crop of one photo, some blurred. Which one shows the scene magnified "
                    "the most?"],
    "widest": ["{images} These views come from the same photo at different zoom levels and with different blur. "
               "Which image shows the widest view (the least zoom)?",
               "{images} Each image is a crop of one photo, some blurred. Which one covers the largest part of the "
               "scene?"],
    "zoom_order": ["{images} These views come from the same photo at different zoom levels and with different "
                   "blur. Order them from the widest view to the closest one.",
                   "{images} Ignoring blur, which list orders the images from least to most zoomed in?"],
    "largest": ["{images} Some of these photos were given a tilt-shift look that makes scenes seem like toys. "
                "Which image shows the physically largest real scene?",
                "{images} Blur can make a big scene look like a miniature. Which photo shows the scene that is "
                "really the widest?"],
    "smallest": ["{images} Some of these photos were given a tilt-shift look that makes scenes seem like toys. "
                 "Which image shows the physically smallest real scene?",
                 "{images} Blur can fool the eye about size. Which photo shows the scene that is really the "
                 "smallest?"],
    "size_order": ["{images} Some photos were given a tilt-shift (miniature) look. Order the images by the real "
                   "size of the scene, smallest first.",
                   "{images} Ignoring the blur, which list orders the photos from the smallest real scene to the "
                   "largest?"],
}
SCALE_SUMMARIES = {
    "zoom": ["Blur only softens detail; it does not change how big things appear. The zoom shows in how large the "
             "same part of the scene is drawn, so I compare the size of one shared patch across the images.",
             "The images are crops of one photo. I track the same scene patch in every image: the larger it is "
             "drawn, the stronger the zoom, whatever the blur."],
    "true_scale": ["Tilt-shift blur (a sharp band, blurred top and bottom, strong colours) mimics a miniature but "
                   "does not change what is photographed. I identify each scene and use its real size.",
                   "I ignore the miniature look and ask what each photo actually shows, then compare the real "
                   "widths of those scenes."],
}


@lru_cache(maxsize=16)
def load_photo(key: str) -> np.ndarray:
    import skimage.data

    data = getattr(skimage.data, PHOTOS[key].loader)()
    if isinstance(data, tuple):  # stereo pairs
        data = data[0]
    data = np.asarray(data)
    if data.dtype != np.uint8:
        data = (data.astype(np.float32) * (255.0 / max(1.0, float(data.max())))).astype(np.uint8)
    if data.ndim == 2:
        data = np.stack([data] * 3, axis=-1)
    return np.ascontiguousarray(data[..., :3])


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


def tilt_shift(image: np.ndarray, band_centre: float, band_half: float, strength: float) -> np.ndarray:
    """The miniature look: sharp horizontal band, blur growing away from it, stronger colour and contrast."""
    h = image.shape[0]
    rgb = image.astype(np.float32)
    blurred = cv2.GaussianBlur(rgb, (0, 0), strength)
    stronger = cv2.GaussianBlur(rgb, (0, 0), strength * 2)
    y = np.arange(h, dtype=np.float32) / h
    distance = np.clip((np.abs(y - band_centre) - band_half) / 0.25, 0, 1)[:, None, None]
    mixed = np.where(distance < 0.5, rgb * (1 - 2 * distance) + blurred * 2 * distance,
                     blurred * (2 - 2 * distance) + stronger * (2 * distance - 1))
    hsv = cv2.cvtColor(np.clip(mixed, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.4, 0, 255)
    hsv[..., 2] = np.clip((hsv[..., 2] - 128) * 1.15 + 128, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


class ScaleBlur(Task):
    """scale_blur: judge scale from content, not from blur. Real photos from scikit-image's data set.

    zoom family (most_zoomed, widest, zoom_order): 3-4 crops of one photo around a shared centre at zoom factors
    from the ladder 1, 1.6, 2.6, 4.2 (each at least 1.6x the next), resized to the same image size, each with an
    independent Gaussian blur (sigma 0-4 px). The zoom of an image is fixed by construction; regions mark the
    same scene patch in every image, whose drawn size is proportional to the zoom.
    true_scale family (largest, smallest, size_order): 3 different photos whose real scene widths (catalogue in
    PHOTOS) differ pairwise by at least 3x; the largest scene is given a tilt-shift miniature look with
    probability 0.75 and any other with 0.3, so blur suggests the wrong scale. Regions mark each photo's subject.
    """

    name = "scale_blur"
    category = "analytical"
    kinds = ("most_zoomed", "largest", "zoom_order", "smallest", "widest", "size_order")

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        kind = self.kinds[index % len(self.kinds)]
        if kind in ("most_zoomed", "widest", "zoom_order"):
            return self._zoom(kind, index, rng)
        return self._true_scale(kind, index, rng)

    def _zoom(self, kind: str, index: int, rng: np.random.Generator) -> Sample:
        key = pick(rng, ZOOM_PHOTOS)
        photo, pixels = PHOTOS[key], load_photo(key)
        ph, pw = pixels.shape[:2]
        size = self.options.image_size
        n = int(rng.integers(3, 5))
        zooms = sorted(rng.choice(ZOOM_LADDER, size=n, replace=False).tolist())
        zooms = [zooms[k] for k in rng.permutation(n)]
        blurs = [float(b) for b in rng.choice(BLUR_LEVELS, size=n, replace=False)]
        bx = photo.box
        centre = (pw * (bx[0] + bx[2]) / 2 + rng.uniform(-0.03, 0.03) * pw,
                  ph * (bx[1] + bx[3]) / 2 + rng.uniform(-0.03, 0.03) * ph)
        half = min(pw, ph) / 14  # the shared patch: small enough to stay inside the closest crop
        patch = (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
        images, regions, crops, patch_widths = [], RegionList(), [], []
        for k, (z, sigma) in enumerate(zip(zooms, blurs)):
            crop = aspect_crop(pw, ph, size[0] / size[1], centre, z)
            view = cv2.resize(pixels[crop[1]:crop[3], crop[0]:crop[2]], size, interpolation=cv2.INTER_AREA)
            if sigma > 0:
                view = cv2.GaussianBlur(view, (0, 0), sigma)
            images.append(Image.fromarray(view))
            box = map_box(patch, crop, size)
            regions.add(k, box, f"the same patch of the {photo.subject}")
            crops.append(list(crop))
            patch_widths.append(round(box[2] - box[0], 1))
        by_zoom = sorted(range(n), key=lambda k: zooms[k])
        if kind == "zoom_order":
            correct = image_order_text(by_zoom)
            blur_order = sorted(range(n), key=lambda k: blurs[k])  # the trap: sharpest first
            pool = [blur_order, list(reversed(by_zoom))] + [rng.permutation(n).tolist() for _ in range(20)]
            distractors = distinct_distractors(correct, map(image_order_text, pool), 3)
        else:
            target = by_zoom[-1] if kind == "most_zoomed" else by_zoom[0]
            correct = f"Image {target + 1}"
            distractors = [f"Image {k + 1}" for k in range(n) if k != target]
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        question = pick(rng, SCALE_QUESTIONS[kind]).format(images=" ".join(IMAGE_TOKEN for _ in images))
        facts = {"family": "zoom", "kind": kind, "photo": key, "scene": photo.scene, "subject": photo.subject,
                 "zooms": zooms, "blur_sigmas": blurs, "crops": crops, "patch_widths_px": patch_widths,
                 "answer_text": correct}
        return Sample(question, options, answer, images, regions.items, facts,
                      generator="scikit-image photos, zoom+blur")

    def _true_scale(self, kind: str, index: int, rng: np.random.Generator) -> Sample | None:
        keys = rng.choice(list(PHOTOS), size=3, replace=False).tolist()
        widths = sorted(PHOTOS[k].width_m for k in keys)
        if any(b < 3 * a for a, b in zip(widths, widths[1:])):
            return None  # sizes too close to be sure of their order
        size = self.options.image_size
        largest = max(keys, key=lambda k: PHOTOS[k].width_m)
        images, regions, tilted = [], RegionList(), []
        for k, key in enumerate(keys):
            photo, pixels = PHOTOS[key], load_photo(key)
            ph, pw = pixels.shape[:2]
            b = photo.box
            crop = aspect_crop(pw, ph, size[0] / size[1], (pw * (b[0] + b[2]) / 2, ph * (b[1] + b[3]) / 2))
            view = cv2.resize(pixels[crop[1]:crop[3], crop[0]:crop[2]], size, interpolation=cv2.INTER_AREA)
            subject = map_box((b[0] * pw, b[1] * ph, b[2] * pw, b[3] * ph), crop, size)
            tilt = bool(rng.random() < (0.75 if key == largest else 0.3))
            if tilt:
                centre = ((subject[1] + subject[3]) / 2) / size[1]
                view = tilt_shift(view, centre, 0.08, 2.5 * min(size) / 336)
            tilted.append(tilt)
            images.append(Image.fromarray(view))
            regions.add(k, subject, photo.subject)
        by_size = sorted(range(3), key=lambda k: PHOTOS[keys[k]].width_m)
        if kind == "size_order":
            correct = image_order_text(by_size)
            blurred_first = [k for k in range(3) if tilted[k]] + [k for k in range(3) if not tilted[k]]
            pool = [list(reversed(by_size)), blurred_first] + [rng.permutation(3).tolist() for _ in range(20)]
            distractors = distinct_distractors(correct, map(image_order_text, pool), 3)
        else:
            target = by_size[-1] if kind == "largest" else by_size[0]
            correct = f"Image {target + 1}"
            distractors = [f"Image {k + 1}" for k in range(3) if k != target]
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        question = pick(rng, SCALE_QUESTIONS[kind]).format(images=" ".join(IMAGE_TOKEN for _ in images))
        facts = {"family": "true_scale", "kind": kind, "photos": keys,
                 "scenes": [PHOTOS[k].scene for k in keys], "subjects": [PHOTOS[k].subject for k in keys],
                 "widths_m": [PHOTOS[k].width_m for k in keys], "widths_text": [PHOTOS[k].width_text for k in keys],
                 "tilt_shift": tilted, "answer_text": correct}
        return Sample(question, options, answer, images, regions.items, facts,
                      generator="scikit-image photos, tilt-shift")

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        regions = regions_by_id(record)
        summary = pick(rng, SCALE_SUMMARIES[f["family"]])
        if f["family"] == "zoom":
            captions = [
                f"{f['scene'].capitalize()}, {self._zoom_word(z, f['zooms'])}; "
                f"{self._blur_word(s)}." for z, s in zip(f["zooms"], f["blur_sigmas"])]
            text2region = "; ".join(
                f"'the same patch of the {f['subject']}' → {cite(r)}" for r in regions.values()) + "."
            steps = [f"[r{k}] is {num(w)} px wide, a zoom of {num(z)}× on the whole photo, under blur sigma "
                     f"{num(s)} px." for k, (w, z, s) in enumerate(zip(f["patch_widths_px"], f["zooms"],
                                                                        f["blur_sigmas"]))]
            ranked = sorted(range(len(f["zooms"])), key=lambda k: f["zooms"][k])
            steps.append("By patch size, from widest view to closest: "
                         + ", ".join(f"image {k + 1}" for k in ranked) + "; the blur order is unrelated.")
            body = {"most_zoomed": f"Image {ranked[-1] + 1} draws the patch largest and is the most zoomed in",
                    "widest": f"Image {ranked[0] + 1} draws the patch smallest and shows the widest view",
                    "zoom_order": f"The order by zoom is {f['answer_text']}"}[f["kind"]]
        else:
            captions = []
            for scene, tilt in zip(f["scenes"], f["tilt_shift"]):
                look = (" with a tilt-shift look: a sharp band, blurred top and bottom, boosted colours" if tilt
                        else ", photographed normally")
                captions.append(f"{scene.capitalize()}{look}.")
            text2region = "; ".join(f"'{r.label}' → {cite(r)}" for r in regions.values()) + "."
            steps = [f"[r{k}] shows the {subj}: that scene is {wt} across in reality"
                     f"{' despite its toy-like blur' if tilt else ''}."
                     for k, (subj, wt, tilt) in enumerate(zip(f["subjects"], f["widths_text"], f["tilt_shift"]))]
            ranked = sorted(range(3), key=lambda k: f["widths_m"][k])
            steps.append("From smallest to largest real scene: " + ", ".join(f"image {k + 1}" for k in ranked) + ".")
            body = {"largest": f"Image {ranked[-1] + 1}, the {f['subjects'][ranked[-1]]}, is the largest real scene",
                    "smallest": f"Image {ranked[0] + 1}, the {f['subjects'][ranked[0]]}, is the smallest real scene",
                    "size_order": f"The order by real size is {f['answer_text']}"}[f["kind"]]
        return Reasoning(summary, captions, text2region, " ".join(steps), conclude(body, record.answer))

    @staticmethod
    def _zoom_word(z: float, zooms: list[float]) -> str:
        rank = sorted(zooms).index(z)
        if rank == 0:
            return "the widest of the views"
        if rank == len(zooms) - 1:
            return "a tight close-up"
        return "a medium close-up"

    @staticmethod
    def _blur_word(sigma: float) -> str:
        if sigma == 0:
            return "sharp"
        return f"{'slightly' if sigma < 2 else 'strongly'} blurred (sigma {num(sigma)} px)"


# == yes_but_satire ============================================================================================

@dataclass(frozen=True)
class Satire:
    """One 'Yes, but' scenario: a sign's message, a scene, and the edit that contradicts the message."""

    signs: tuple[str, ...]
    grounds: tuple[str, ...]
    op: str  # the edit: paste, remove, recolour, resize, move, blur
    target: str  # the sprite kind edited (or pasted)
    change: str  # the correct option: what changed
    contradiction: str  # why that contradicts the sign
    prompt: str  # the instruction for a model editor
    distractors: tuple[str, ...]  # plausible changes that did not happen
    props: tuple[str, ...] = ()  # sprite kinds standing around, untouched
    by_sign: bool = False  # the edited thing stands right by the sign's post
    count: int = 1  # how many targets (apples, trees)


SATIRES = {
    "no_parking": Satire(
        ("NO PARKING", "NO PARKING AT ANY TIME"), ("asphalt", "pavement"), "paste", "car",
        "a {colour} car is now parked right under the sign",
        "the sign forbids parking, yet a car is parked right below it", "a {colour} car parked under the sign",
        ("the sign has been taken down", "the tree next to the sign has been cut down",
         "a person is now standing under the sign", "the bin has been moved away"), props=("tree", "bin"),
        by_sign=True),
    "keep_off_grass": Satire(
        ("KEEP OFF THE GRASS", "PLEASE KEEP OFF THE LAWN"), ("grass",), "paste", "person",
        "a person in {colour} is now standing in the middle of the lawn",
        "the sign asks people to keep off the grass, yet someone stands right on it",
        "a person in {colour} standing on the lawn",
        ("a car has been parked on the lawn", "the tree has been cut down", "the sign has been taken down",
         "the bench has been painted red"), props=("tree", "bench")),
    "fresh_fruit": Satire(
        ("FRESH FRUIT", "FRESH APPLES DAILY"), ("pavement", "sand"), "recolour", "apple",
        "the apples under the sign have turned brown and rotten",
        "the sign promises fresh fruit, but the fruit on sale is rotten", "make the apples brown and rotten",
        ("the apples have been taken away", "more apples have been added", "the sign has been taken down",
         "a person is now standing by the stall"), count=3),
    "protect_trees": Satire(
        ("PROTECT OUR TREES", "SAVE THE TREES"), ("grass",), "remove", "tree",
        "the trees next to the sign have been cut down",
        "the sign asks to protect the trees, yet the trees beside it are gone", "remove the trees, leave bare grass",
        ("the trees have turned brown", "a car has been parked by the trees", "the sign has been taken down",
         "a bench has been placed under the trees"), count=2),
    "clean_city": Satire(
        ("KEEP OUR CITY CLEAN", "NO LITTERING"), ("pavement",), "paste", "litter",
        "rubbish bags have been dumped on the pavement right below the sign",
        "the sign asks for a clean city, yet rubbish is dumped right beside it", "black rubbish bags on the ground",
        ("the bin has been taken away", "the bin has been painted blue", "the sign has been taken down",
         "a car has been parked by the bin"), props=("bin",), by_sign=True),
    "xxl_burger": Satire(
        ("XXL BURGER", "OUR GIANT BURGER"), ("pavement", "sand"), "resize", "burger",
        "the burger on the bench has shrunk to a fraction of its size",
        "the sign promises a giant burger, but the one you get is tiny", "make the burger much smaller",
        ("the burger has been taken away", "a second burger has been added", "the burger has changed colour",
         "the bench has been moved away")),
    "slow_down": Satire(
        ("SLOW DOWN", "SCHOOL ZONE SLOW DOWN"), ("asphalt",), "blur", "car",
        "the car in front of the sign is now a motion blur, speeding past",
        "the sign asks drivers to slow down, yet the car races past it", "motion blur, a car speeding past",
        ("the car has been taken away", "the car has been repainted", "the sign has been taken down",
         "a person is now crossing in front of the car")),
    "stay_on_path": Satire(
        ("PLEASE STAY ON THE PATH", "STAY ON THE PATH"), ("grass",), "move", "person",
        "the person has stepped off the path onto the grass",
        "the sign asks walkers to stay on the path, yet the walker is on the grass", "the person walking on the grass",
        ("the person has been taken away", "a second person has joined on the path", "the sign has been taken down",
         "the tree has been cut down"), props=("tree",)),
}

SATIRE_QUESTIONS = [
    "{img1} {img2} The two panels form a 'Yes, but' picture: the first sets up a message, the second undercuts "
    "it. What changed in the second panel that contradicts the first?",
    "Yes: {img1} But: {img2} What is the change that turns the second panel against the first one's message?",
    "{img1} {img2} The second panel is the same scene as the first after one change. Which change contradicts "
    "what the first panel says?",
]
SOURCE_QUESTIONS = [
    "{img1} {img2} These two panels form a 'Yes, but' satire: the second panel undercuts the first. What is the "
    "contradiction?",
    "Yes: {img1} But: {img2} Which explanation captures the irony between the two panels?",
]
SATIRE_SUMMARIES = [
    "The first panel states a message on its sign; the second is the same scene after one change. I compare the "
    "panels region by region to find the change, then check that it contradicts the message.",
    "A 'Yes, but' pair: I read the sign in the first panel, find what differs in the second, and keep the option "
    "that describes that difference.",
]

# Sprite heights or widths as fractions of the image height (see drawings.SPRITES for which dimension).
SPRITE_DIMENSION = {"car": 0.42, "person": 0.34, "tree": 0.4, "apple": 0.09, "litter": 0.14, "burger": 0.26,
                    "bench": 0.4, "bin": 0.2}
CLOTHES = ("red", "blue", "green", "yellow", "orange", "purple")


class YesButSatire(Task):
    """yes_but_satire: a two-panel 'Yes, but' picture; which change in the second panel contradicts the first.

    Procedural (default): a street scene whose sign states a message (SATIRES: NO PARKING, KEEP OFF THE GRASS,
    FRESH FRUIT, ...). The second panel is the first edited by the image editor (--editor classical|diffusers)
    with one edit that contradicts the message: a car pasted under NO PARKING, the apples under FRESH FRUIT
    recoloured brown, the trees next to PROTECT OUR TREES removed, the XXL burger resized, the car at SLOW DOWN
    motion-blurred, the walker moved off the path. The options are that change and three changes that did not
    happen, all about things in the scene. Regions: the sign in both panels, the edited thing before and after.
    From --source (a folder of real two-panel images with explanations.csv, columns image,explanation; or the
    CSV itself): each image is split at its gutter into the two panels, the answer is its explanation and the
    distractors are other images' explanations.
    """

    name = "yes_but_satire"
    category = "analytical"

    def __init__(self, options: Any):
        super().__init__(options)
        if options.editor not in EDITORS:
            raise MirdataError(f"--editor must be one of {', '.join(EDITORS)}, not {options.editor!r}")
        # Checks the model folder now; a diffusers pipeline itself loads on the first edit.
        self.editor: Editor = make_editor(options.editor, options.editor_model, options.device)
        self._rows: list[dict[str, str]] | None = None

    def close(self) -> None:
        self.editor.close()

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        if self.options.source is not None:
            return self._from_source(index, rng)
        keys = list(SATIRES)
        key = keys[index % len(keys)]
        return self._procedural(key, index, rng)

    # -- procedural --------------------------------------------------------------------------------------------

    def _procedural(self, key: str, index: int, rng: np.random.Generator) -> Sample:
        s = SATIRES[key]
        w, h = size = self.options.image_size
        ground = pick(rng, s.grounds)
        horizon = float(rng.uniform(0.38, 0.48))
        ground_y = int(h * rng.uniform(0.78, 0.86))
        panel = background(size, ground, horizon, rng)
        if key == "stay_on_path":
            ImageDraw.Draw(panel).rectangle([0, int(h * 0.8), w, int(h * 0.93)], fill=(180, 170, 150))
            ground_y = int(h * 0.9)
        # The sign stands near one edge, the edited thing in the middle (or by the sign's post when the
        # scenario says so), the untouched props side by side towards the other edge, further back.
        on_left = bool(rng.random() < 0.5)
        toward = 1 if on_left else -1
        sign_x = int(w * (0.5 - 0.32 * toward))
        jitter = int(rng.integers(-w // 25, w // 25 + 1))
        target_x = sign_x + toward * int(w * 0.1) if s.by_sign else int(w * 0.5) + jitter
        sign_text = pick(rng, s.signs)
        sign_box = draw_sign(panel, sign_text, sign_x, int(h * horizon + h * 0.12), int(h * 0.45))
        edge = int(w * (0.5 + 0.44 * toward))
        props = []
        for kind in s.props:
            item = sprite(kind, "green" if kind == "tree" else pick(rng, ("green", "grey", "brown", "blue")),
                          int(h * SPRITE_DIMENSION[kind] * 0.7))
            left = edge - item.size[0] if on_left else edge
            paste_sprite(panel, item, (left, int(h * horizon + h * 0.22) - item.size[1]))
            edge = left - int(w * 0.02) if on_left else left + item.size[0] + int(w * 0.02)
            props.append(item.name)
        colour = pick(rng, CLOTHES)
        target_mask = np.zeros((h, w), dtype=bool)
        new_sprite = None
        if s.op == "paste":
            new_sprite = self._pasted(s, colour, h, rng)
            at = (target_x - new_sprite.size[0] // 2, ground_y - new_sprite.size[1])
        else:
            target_mask, at = self._place_targets(panel, s, target_x, ground_y, h, rng, colour)
        before_box = mask_box(target_mask) if target_mask.any() else None
        params: dict[str, Any] = {
            "paste": lambda: {"sprite": new_sprite.image, "at": at},  # type: ignore[union-attr]
            "remove": lambda: {},
            "recolour": lambda: {"colour": (110, 70, 35)},
            "resize": lambda: {"scale": float(rng.uniform(0.3, 0.4))},
            "move": lambda: {"offset": (int(rng.choice([-1, 1]) * w * 0.12), -int(h * 0.2))},
            "blur": lambda: {"sigma": float(rng.uniform(5, 8)), "motion": True},
        }[s.op]()
        e = Edit(prompt=s.prompt.format(colour=colour), op=s.op, seed=int(rng.integers(2**31 - 1)), **params)
        mask = None if s.op == "paste" else target_mask
        after_box = self._after_box(e, before_box, size)
        edited = self.editor.edit([panel], [e], None if mask is None else [mask])[0]
        regions = RegionList()
        regions.add(0, sign_box, f"the sign reading '{sign_text}'")
        regions.add(1, sign_box, f"the same sign reading '{sign_text}'")
        target_name = self._target_name(s)
        if before_box is not None:
            regions.add(0, before_box, f"{target_name} before the change")
        regions.add(1, after_box, self._after_label(s, target_name))
        change = s.change.format(colour=colour)
        distractors = [d for d in rng.permutation(list(s.distractors)).tolist()][:3]
        options, answer = place_answer(change, distractors, self.slot(index), rng)
        question = pick(rng, SATIRE_QUESTIONS).format(img1=IMAGE_TOKEN, img2=IMAGE_TOKEN)
        facts = {"source": "procedural", "scenario": key, "sign_text": sign_text, "ground": ground, "props": props,
                 "edit": {"op": s.op, "target": s.target, "prompt": e.prompt, "editor": self.options.editor,
                          "seed": e.seed, **self._edit_params(e)},
                 "target_name": target_name, "change": change, "contradiction": s.contradiction,
                 "distractors": distractors, "answer_text": change}
        return Sample(question, options, answer, [panel, edited], regions.items, facts,
                      generator=f"procedural scenes + {self.options.editor} editor")

    @staticmethod
    def _pasted(s: Satire, colour: str, h: int, rng: np.random.Generator) -> Sprite:
        if s.target == "litter":
            # A few bags in one sprite, so one paste dumps them all.
            bags = [sprite("litter", pick(rng, ("black", "grey", "green")), int(h * SPRITE_DIMENSION["litter"]))
                    for _ in range(3)]
            bw, bh = bags[0].size
            canvas = Image.new("RGBA", (int(bw * 2.6), bh), (0, 0, 0, 0))
            for k, bag in enumerate(bags):
                canvas.paste(bag.image, (int(k * bw * 0.8), 0), bag.image)
            return Sprite(canvas, "rubbish bags")
        return sprite(s.target, colour, int(h * SPRITE_DIMENSION[s.target]))

    def _place_targets(self, panel: Image.Image, s: Satire, x: int, ground_y: int, h: int, rng: np.random.Generator,
                       colour: str) -> tuple[np.ndarray, tuple[int, int]]:
        """Draw the thing the edit will change; returns its mask and top-left corner."""
        mask = np.zeros((panel.height, panel.width), dtype=bool)
        surface_y = ground_y
        if s.target in ("apple", "burger"):  # on a bench that serves as the stall
            bench = sprite("bench", "brown", int(h * SPRITE_DIMENSION["bench"]))
            paste_sprite(panel, bench, (x - bench.size[0] // 2, ground_y - bench.size[1]))
            surface_y = ground_y - int(bench.size[1] * 0.88)
        target_colour = {"apple": pick(rng, ("red", "green")), "car": pick(rng, ("red", "blue", "yellow")),
                         "tree": "green", "burger": "brown", "person": colour}[s.target]
        item = sprite(s.target, target_colour, int(h * SPRITE_DIMENSION[s.target]))
        spacing = item.size[0] * (1.1 if s.target == "apple" else 1.25)
        first = None
        for k in range(s.count):
            tx = int(x - item.size[0] / 2 + (k - (s.count - 1) / 2) * spacing)
            at = (tx, surface_y - item.size[1])
            _, m = paste_sprite(panel, item, at)
            mask |= m
            first = first or at
        return mask, first  # type: ignore[return-value]

    @staticmethod
    def _after_box(e: Edit, before: tuple[int, int, int, int] | None, size: tuple[int, int]) -> list[float]:
        w, h = size
        if e.op == "paste":
            assert e.sprite is not None
            box = mask_box(e.footprint(size))
        elif e.op == "resize":
            x0, y0, x1, y1 = before  # type: ignore[misc]
            nw, nh = (x1 - x0) * e.scale, (y1 - y0) * e.scale
            box = ((x0 + x1) / 2 - nw / 2, y1 - nh, (x0 + x1) / 2 + nw / 2, y1)
        elif e.op == "move":
            x0, y0, x1, y1 = before  # type: ignore[misc]
            box = (x0 + e.offset[0], y0 + e.offset[1], x1 + e.offset[0], y1 + e.offset[1])
        else:
            box = before  # type: ignore[assignment]
        x0, y0, x1, y1 = box  # type: ignore[misc]
        return [max(0.0, float(x0)), max(0.0, float(y0)), min(float(w), float(x1)), min(float(h), float(y1))]

    @staticmethod
    def _target_name(s: Satire) -> str:
        return {"car": "the car", "person": "the person", "apple": "the apples", "tree": "the trees",
                "litter": "the rubbish bags", "burger": "the burger"}[s.target]

    @staticmethod
    def _after_label(s: Satire, target: str) -> str:
        return {"paste": f"{target}, newly added", "remove": f"where {target} stood, now empty",
                "recolour": f"{target}, recoloured", "resize": f"{target}, resized", "move": f"{target}, moved",
                "blur": f"{target}, motion-blurred"}[s.op]

    @staticmethod
    def _edit_params(e: Edit) -> dict[str, Any]:
        return {"paste": {"at": list(e.at)}, "remove": {}, "recolour": {"colour": list(e.colour)},
                "resize": {"scale": round(e.scale, 3)}, "move": {"offset": list(e.offset)},
                "blur": {"sigma": round(e.sigma, 2), "motion": e.motion}}[e.op or "remove"]

    # -- from a folder of real two-panel images ------------------------------------------------------------------

    def _csv_path(self) -> Path:
        source = Path(self.options.source)  # type: ignore[arg-type]
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
                if self.options.on_error == "fail":
                    raise MirdataError(f"{file}: {problem}")
                self.skipped.append({"file": file, "reason": problem})
                continue
            seen.add(explanation.casefold())
            rows.append({"image": image, "explanation": explanation, "path": str(path.parent / image)})
        if len(rows) < 2:
            raise MirdataError(f"{path}: needs at least 2 usable rows to make options, has {len(rows)}")
        self._rows = rows
        return rows

    def _from_source(self, index: int, rng: np.random.Generator) -> Sample:
        rows = self._load_rows()
        if index >= len(rows):
            raise MirdataError(f"{self._csv_path()}: has {len(rows)} usable rows; record {index} would repeat one")
        row = rows[index]
        with Image.open(row["path"]) as im:
            full = im.convert("RGB")
        gutter = find_gutter(np.asarray(full))
        panels = [full.crop((0, 0, gutter, full.height)), full.crop((gutter, 0, full.width, full.height))]
        others = [r["explanation"] for r in rows if r is not row]
        distractors = [others[k] for k in rng.permutation(len(others))[:3]]
        options, answer = place_answer(row["explanation"], distractors, self.slot(index), rng)
        regions = RegionList()
        regions.add(0, [0, 0, panels[0].width, panels[0].height], "the whole 'yes' panel")
        regions.add(1, [0, 0, panels[1].width, panels[1].height], "the whole 'but' panel")
        question = pick(rng, SOURCE_QUESTIONS).format(img1=IMAGE_TOKEN, img2=IMAGE_TOKEN)
        facts = {"source": "folder", "file": row["image"], "gutter_x": gutter,
                 "panel_sizes": [list(p.size) for p in panels],
                 "explanation": row["explanation"], "distractors": distractors, "answer_text": row["explanation"]}
        return Sample(question, options, answer, panels, regions.items, facts,
                      generator="two-panel images from --source")

    # -- reasoning -------------------------------------------------------------------------------------------------

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        regions = regions_by_id(record)
        if f["source"] == "folder":
            return self._reason_source(record, f, regions)
        ids = list(regions)
        around = [f"{f['target_name']} in the middle"] if len(ids) == 4 else []
        around += [f"a {p} further back" for p in f["props"]]
        captions = [
            f"{'An' if f['ground'][0] in 'aeiou' else 'A'} {f['ground']} scene with a sign reading '{f['sign_text']}'"
            + (f", {join_and(around)}." if around else "."),
            f"The same scene with the same sign, but {f['change']}.",
        ]
        text2region = (f"'the sign' → {cite(regions[ids[0]])} and {cite(regions[ids[1]])}; "
                       + (f"'{f['target_name']}' → {cite(regions[ids[2]])}; " if len(ids) == 4 else "")
                       + f"'{regions[ids[-1]].label}' → {cite(regions[ids[-1]])}.")
        diff = (f"[{ids[0]}] and [{ids[1]}] are the same sign, so the message '{f['sign_text']}' holds in both "
                f"panels. Comparing "
                + (f"[{ids[2]}] with [{ids[-1]}]" if len(ids) == 4 else f"the area at [{ids[-1]}]")
                + f": {f['change']}. That is the contradiction: {f['contradiction']}. ")
        ruled_out = " ".join(f"'{d.capitalize()}' does not happen: the rest of the scene is unchanged."
                             for d in f["distractors"])
        body = f"The change is that {f['change']}, which {pick(rng, ['contradicts', 'undercuts'])} '{f['sign_text']}'"
        return Reasoning(pick(rng, SATIRE_SUMMARIES), captions, text2region, diff + ruled_out,
                         conclude(body, record.answer))

    @staticmethod
    def _reason_source(record: Record, f: dict[str, Any], regions: dict[str, Region]) -> Reasoning:
        explanation = f["explanation"]
        quoted = explanation if not stated_letters(explanation) else "the explanation that matches both panels"
        summary = ("A 'Yes, but' satire: the left panel sets up an expectation and the right panel reveals what "
                   "undercuts it. I compare the panels and pick the explanation that fits both.")
        captions = [f"The left ('yes') panel of {f['file']}, {f['panel_sizes'][0][0]}x{f['panel_sizes'][0][1]} px.",
                    f"The right ('but') panel of {f['file']}, {f['panel_sizes'][1][0]}x{f['panel_sizes'][1][1]} px."]
        text2region = (f"'the first panel' → {cite(regions['r0'])}; 'the second panel' → {cite(regions['r1'])}.")
        region2region = (f"[r0] sets up the situation and [r1] contradicts it; the explanation that ties them "
                         f"together is: {explanation} The other options describe other pictures.")
        if stated_letters(region2region):
            region2region = ("[r0] sets up the situation and [r1] contradicts it; only one explanation ties the "
                             "two together, the others describe other pictures.")
        return Reasoning(summary, captions, text2region, region2region,
                         conclude(f"The irony is: {quoted}", record.answer))


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


TASKS = [ChartAnalysis, YesButSatire, WeightComparison, ScaleBlur]
