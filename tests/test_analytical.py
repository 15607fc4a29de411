"""Analytical builders: build → validate, determinism, and every answer re-derived independently from the data
behind each image (chart tables, balance weights, edit masks and pixels, zoom factors and real sizes)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.builders.analytical import CLAIMS, PHOTOS, photo_subject_mask
from mirdata.cli import app
from mirdata.generators.drawings import COLOURS
from mirdata.schema.checks import stated_letters
from mirdata.schema.record import LETTERS, option_text

TASKS = ("chart_analysis", "yes_but_satire", "weight_comparison", "scale_blur")
NUM = 16
SIZE = "224x168"
runner = CliRunner()


def build(out: Path, num: int = NUM, seed: int = 5, *extra: str) -> None:
    result = runner.invoke(app, ["build", "--category", "analytical", "--num", str(num), "--out", str(out),
                                 "--seed", str(seed), "--image-size", SIZE, *extra])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analytical")
    build(out, NUM, 5, "--format", "png")  # lossless, so pixel differences between panels are exact
    return out


def records(root: Path, task: str | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (root / "records.jsonl").read_text().splitlines()]
    return [r for r in rows if task is None or r["task"] == task]


def answer_text(r: dict[str, Any]) -> str:
    return option_text(r["options"][LETTERS.index(r["answer"])])


def texts(r: dict[str, Any]) -> list[str]:
    return [option_text(o) for o in r["options"]]


def pixels(root: Path, r: dict[str, Any], k: int) -> np.ndarray:
    with Image.open(root / r["images"][k]) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_build_then_validate_passes_for_all_four_tasks(dataset: Path) -> None:
    result = runner.invoke(app, ["validate", str(dataset), "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"], report["failures"][:5]
    assert report["records"] == 4 * NUM and not report["warnings"]
    assert Counter(r["task"] for r in records(dataset)) == {t: NUM for t in TASKS}
    for r in records(dataset):
        assert stated_letters(r["conclusion"]) == {r["answer"]}
        assert [g["id"] for g in r["regions"]] == [f"r{k}" for k in range(len(r["regions"]))]
        assert all(f"[{g['id']}]" in r["text2region"] for g in r["regions"])
        assert len(r["caption"]) == len(r["images"]) >= 2
        assert r["meta"]["facts"]["answer_text"] == answer_text(r)
        with Image.open(dataset / r["images"][0]) as im:
            assert im.size == (224, 168)


def test_about_six_images_per_question_and_no_image_shared(dataset: Path) -> None:
    rows = records(dataset)
    assert sum(len(r["images"]) for r in rows) / len(rows) >= 5.5
    digests = Counter(hashlib.sha256((dataset / p).read_bytes()).hexdigest() for r in rows for p in r["images"])
    assert max(digests.values()) == 1  # no byte-identical image in two places


def test_answer_letters_are_spread(dataset: Path) -> None:
    for task in TASKS:  # four options each: every letter used equally
        assert Counter(r["answer"] for r in records(dataset, task)) == {"A": 4, "B": 4, "C": 4, "D": 4}, task


def digest(root: Path) -> dict[str, str]:
    files = [root / "records.jsonl", *sorted((root / "images").rglob("*"))]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    build(tmp_path / "a", 3, 1)
    build(tmp_path / "b", 3, 1, "--workers", "2")
    build(tmp_path / "c", 3, 2)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    questions = lambda root: [r["question"] + "".join(r["options"]) for r in records(root)]  # noqa: E731
    assert questions(tmp_path / "a") != questions(tmp_path / "c")


# -- chart_analysis: recompute every answer from the data tables --------------------------------------------

def table(chart: dict[str, Any], series: str | None = None) -> dict[str, float]:
    values = chart["series"][series] if series else next(iter(chart["series"].values()))
    return dict(zip(chart["categories"], values))


def by_title(charts: list[dict[str, Any]], word: str) -> dict[str, Any]:
    (chart,) = [c for c in charts if word in c["title"]]
    return chart


def recompute_chart(f: dict[str, Any], question: str) -> tuple[str, dict[str, float], str]:
    """(answer text, the combined figure per candidate, "max" / "min" / "number") from the tables alone."""
    charts, family = f["charts"], f["family"]
    if family in ("top_revenue", "lowest_revenue", "profit"):
        units, price = table(by_title(charts, "Units sold")), table(by_title(charts, "Price"))
        margin = table(by_title(charts, "margin")) if family == "profit" else {p: 100 for p in units}
        value = {p: units[p] * price[p] * margin[p] / 100 for p in units}
        direction = "min" if family == "lowest_revenue" else "max"
    elif family == "projection":
        sales, rate = table(by_title(charts, "Sales")), table(by_title(charts, "growth"))
        value, direction = {a: sales[a] * (1 + rate[a] / 100) for a in sales}, "max"
    elif family == "revenue_change":
        grouped = by_title(charts, "Units sold")
        y0, y1 = sorted(grouped["series"])
        before, after, price = table(grouped, y0), table(grouped, y1), table(by_title(charts, "Price"))
        value, direction = {p: (after[p] - before[p]) * price[p] for p in price}, "max"
    elif family == "stacked_revenue":
        stacked, price = by_title(charts, "by product line"), table(by_title(charts, "by line"))
        value = {r: sum(stacked["series"][line][k] * price[line] for line in stacked["series"])
                 for k, r in enumerate(stacked["categories"])}
        direction = "max"
    elif family == "filter_max":
        scatter = next(c for c in charts if c["kind"] == "scatter")
        threshold = int(re.search(r"rating of (\d+)|rated at least (\d+)", question).group(0).split()[-1])
        units = table(by_title(charts, "Units sold"))
        value = {p: units[p] for p, y in table(scatter, "y").items() if y >= threshold}
        direction = "max"
    elif family == "loss_total":
        per, stores = table(by_title(charts, "per store")), table(by_title(charts, "Number of stores"))
        value, direction = {c: per[c] * stores[c] for c in per}, "min"
    elif family == "budget_gap":
        budget, spend = table(by_title(charts, "Budget")), table(by_title(charts, "Actual"))
        value, direction = {d: spend[d] - budget[d] for d in budget}, "max"
    elif family == "per_capita":
        residents, visits = table(by_title(charts, "Residents")), table(by_title(charts, "Library"))
        value, direction = {t: visits[t] / residents[t] for t in residents}, "max"
    else:  # share_units / share_change: the company and years are named in the question
        pies = {c["title"].rsplit(" ", 1)[1]: table(c) for c in charts if c["kind"] == "pie"}
        totals = table(by_title(charts, "Whole market"))
        company = next(c for c in next(iter(pies.values())) if c in question)
        units = {y: pies[y][company] * totals[y] / 100 for y in pies}
        if family == "share_units":
            (year,) = pies
            return f"{units[year]:,.1f} thousand units", {company: units[year]}, "number"
        y0, y1 = sorted(pies)
        return f"{units[y1] - units[y0]:+,.1f} thousand units", {company: units[y1] - units[y0]}, "number"
    ranked = sorted(value, key=value.get, reverse=direction == "max")
    return ranked[0], value, direction


def chart_value_lists(chart: dict[str, Any]) -> list[dict[str, float]]:
    """The figures one chart shows by itself: each series, or a stacked bar's totals."""
    if chart["kind"] == "stacked_bar":
        return [dict(zip(chart["categories"], np.sum(list(chart["series"].values()), axis=0).tolist()))]
    return [dict(zip(chart["categories"], v)) for v in chart["series"].values()]


def chart_readings(chart: dict[str, Any]) -> list[float]:
    """Every value read off a chart: its series and, for a stacked bar, the top of each stack."""
    values = [v for s in chart["series"].values() for v in s]
    if chart["kind"] == "stacked_bar":
        values += np.sum(list(chart["series"].values()), axis=0).tolist()
    return values


def test_chart_answers_recomputed_from_the_tables(dataset: Path) -> None:
    families = Counter()
    for r in records(dataset, "chart_analysis"):
        f = r["meta"]["facts"]
        families[f["family"]] += 1
        expected, values, direction = recompute_chart(f, r["question"])
        assert answer_text(r) == expected, r["id"]
        assert len(r["images"]) == len(f["charts"]) and 4 <= len(f["charts"]) <= 6
        if direction == "number":
            value = next(iter(values.values()))
            options = [float(t.split()[0].replace(",", "")) for t in texts(r)]
            totals = [v for c in f["charts"] if "Whole market" in c["title"] for v in table(c).values()]
            # No complement pair: no two options add up to a market total (or 100).
            assert not any(abs(a + b - t) < 0.01 for a, b in itertools.combinations(options, 2)
                           for t in [*totals, 100.0]), r["id"]
            # No chart shows the answer itself.
            assert all(abs(v - value) > 1e-6 for c in f["charts"] for v in chart_readings(c)), r["id"]
            continue
        ranked = sorted(values.values(), reverse=direction == "max")
        assert ranked[0] != ranked[1]  # a clear winner
        # No single chart gives it: the answer is no chart's extreme in the asked direction, ties included.
        for chart in f["charts"]:
            for series in chart_value_lists(chart):
                if expected in series:
                    best = (max if direction == "max" else min)(series.values())
                    assert series[expected] != best, (r["id"], chart["title"])
    assert len(families) == 12, families


def test_no_chart_value_is_cut_off_the_axes(dataset: Path) -> None:
    negatives = unprinted = 0
    for r in records(dataset, "chart_analysis"):
        f = r["meta"]["facts"]
        for k, (chart, axes) in enumerate(zip(f["charts"], f["axes"])):
            if chart["kind"] == "pie":
                continue
            lo, hi = axes["value_range"]
            values = chart_readings(chart)
            if chart["kind"] == "scatter":
                values = chart["series"]["y"]
            assert lo <= min(0.0, *values) if chart["kind"] != "scatter" else lo <= min(values)
            assert max(values) <= hi, (r["id"], chart["title"])
            negatives += min(values) < 0
            if not chart["show_values"]:  # read at the gridlines: every value on one
                unprinted += 1
                assert all(abs(v / chart["tick"] - round(v / chart["tick"])) < 1e-9 for v in values)
            x0, y0, x1, y1 = axes["axes_box"]
            for g in r["regions"]:  # every quoted element lies inside the plotting area
                if g["image"] == k:
                    bx0, by0, bx1, by1 = g["box"]
                    assert x0 - 6 <= bx0 < bx1 <= x1 + 6 and y0 - 6 <= by0 < by1 <= y1 + 6, (r["id"], g)
        # Each region names a value that the table behind its chart holds.
        for g in r["regions"]:
            chart = f["charts"][g["image"]]
            assert g["label"].split(":")[0].split()[0] in chart["categories"]
    assert negatives and unprinted


def test_chart_regions_sit_on_the_drawn_bars(dataset: Path) -> None:
    """A bar's region is filled with one colour that is not the chart background."""
    checked = 0
    for r in records(dataset, "chart_analysis"):
        f = r["meta"]["facts"]
        for g in r["regions"]:
            chart = f["charts"][g["image"]]
            if chart["kind"] != "bar":
                continue
            x0, y0, x1, y1 = (int(round(v)) for v in g["box"])
            if x1 - x0 < 6 or y1 - y0 < 6:
                continue
            inner = pixels(dataset, r, g["image"])[y0 + 2:y1 - 2, x0 + 2:x1 - 2].reshape(-1, 3)
            face = np.array([int(f["chart_styles"][g["image"]]["face"][i:i + 2], 16) for i in (1, 3, 5)])
            assert np.abs(inner - face).max(axis=1).mean() > 20, (r["id"], g)
            assert np.std(inner, axis=0).max() < 40  # one fill colour (a few text pixels aside)
            checked += 1
    assert checked


# -- weight_comparison: brute force over every order -----------------------------------------------------------

def test_weight_answers_by_brute_force(dataset: Path) -> None:
    undetermined = 0
    for r in records(dataset, "weight_comparison"):
        f = r["meta"]["facts"]
        names, weights = f["objects"], f["weights_g"]
        # A real balance: every tilted beam rests at the same angle, so only the side that is down counts.
        assert len({abs(s["angle"]) for s in f["scales"]}) == 1
        seen = [(s["left"], s["right"]) if s["angle"] > 0 else (s["right"], s["left"]) for s in f["scales"]]
        assert all(weights[heavy] > weights[light] for heavy, light in seen)
        for s in f["scales"]:  # the heavier object's region really sits lower in its image
            left, right = (r["regions"][int(rid[1:])]["box"] for rid in s["regions"])
            assert (left[3] > right[3]) == (s["heavier"] == s["left"])
        fits = [o for o in itertools.permutations(names)
                if all(o.index(heavy) < o.index(light) for heavy, light in seen)]
        if f["kind"] == "order":
            expected = " > ".join(fits[0]) if len(fits) == 1 else "Cannot be determined"
        else:
            ends = {o[0] if f["kind"] == "heaviest" else o[-1] for o in fits}
            expected = ends.pop() if len(ends) == 1 else "Cannot be determined"
        assert answer_text(r) == expected, r["id"]
        assert "Cannot be determined" in texts(r)
        undetermined += expected == "Cannot be determined"
        # The number of balances follows the number of objects alone.
        assert len(r["images"]) == len(f["scales"]) == len(names) + 3 and len(r["regions"]) == 2 * len(f["scales"])
    assert undetermined == NUM // 4  # right at its fair share


def test_weight_boxes_hold_their_objects(dataset: Path) -> None:
    """Every pixel of an object's own colour lies inside that object's box."""
    for r in records(dataset, "weight_comparison")[:6]:
        f = r["meta"]["facts"]
        for s in f["scales"]:
            image = pixels(dataset, r, int(r["regions"][int(s["regions"][0][1:])]["image"]))
            for side, rid in zip(("left", "right"), s["regions"]):
                colour = f["colours"][s[side]]
                if colour == "grey":  # the balance itself is grey metal
                    continue
                ys, xs = np.nonzero((np.abs(image - COLOURS[colour]).max(axis=2) <= 3))
                x0, y0, x1, y1 = r["regions"][int(rid[1:])]["box"]
                assert len(xs) > 50
                assert xs.min() >= x0 - 1 and xs.max() < x1 + 1 and ys.min() >= y0 - 1 and ys.max() < y1 + 1


# -- scale_blur: the zoom and the real sizes decide, never the blur --------------------------------------------

def test_scale_blur_answers_follow_zoom_and_true_size(dataset: Path) -> None:
    kinds = Counter()
    for r in records(dataset, "scale_blur"):
        f = r["meta"]["facts"]
        kinds[f["kind"]] += 1
        key = f["zooms"] if f["family"] == "zoom" else f["widths_m"]
        n = len(key)
        assert n == len(r["images"]) >= 6
        ranked = sorted(range(n), key=lambda k: key[k])
        expected = {
            "most_zoomed": f"Image {ranked[-1] + 1}", "widest": f"Image {ranked[0] + 1}",
            "largest": f"Image {ranked[-1] + 1}", "smallest": f"Image {ranked[0] + 1}",
            "zoom_order": ", ".join(f"Image {k + 1}" for k in ranked),
            "size_order": ", ".join(f"Image {k + 1}" for k in ranked),
        }[f["kind"]]
        assert answer_text(r) == expected, r["id"]
        if f["kind"].endswith("order"):  # the reversed order is no give-away
            assert ", ".join(f"Image {k + 1}" for k in reversed(ranked)) not in texts(r)
        if f["family"] == "zoom":
            # The same scene patch is drawn in proportion to the zoom: the grounding is real.
            widths = [g["box"][2] - g["box"][0] for g in r["regions"]]
            ratios = np.array(widths) / np.array(f["zooms"])
            assert np.allclose(ratios, ratios.mean(), rtol=0.05)
            assert len(set(f["blur_sigmas"])) == n
        else:
            w = sorted(f["widths_m"])
            assert all(b >= 3 * a for a, b in zip(w, w[1:]))
    assert set(kinds) == {"most_zoomed", "widest", "zoom_order", "largest", "smallest", "size_order"}


def test_photo_subject_boxes_come_from_their_masks(dataset: Path) -> None:
    checked = 0
    for r in records(dataset, "scale_blur"):
        f = r["meta"]["facts"]
        if f["family"] != "true_scale":
            continue
        for k, (key, crop) in enumerate(zip(f["pictures"], f["crops"])):
            if key not in PHOTOS:
                continue
            x0, y0, x1, y1 = crop
            inside = photo_subject_mask(key)[y0:y1, x0:x1]
            ys, xs = np.nonzero(inside)
            sx, sy = 224 / (x1 - x0), 168 / (y1 - y0)
            box = r["regions"][k]["box"]
            assert abs(box[0] - xs.min() * sx) <= sx + 1 and abs(box[2] - (xs.max() + 1) * sx) <= sx + 1
            assert abs(box[1] - ys.min() * sy) <= sy + 1 and abs(box[3] - (ys.max() + 1) * sy) <= sy + 1
            checked += 1
    assert checked


@pytest.mark.parametrize("kind", ["street", "tabletop", "town"])
def test_drawn_scene_masks_lie_on_the_drawn_things(kind: str) -> None:
    """The subject mask of a drawn scale scene covers drawn things, not the ground: its pixels stand out from
    the typical colour of their row, and the town's mask holds every roof pixel."""
    from mirdata.generators.drawings import SCALE_SCENES

    for seed in range(3):
        scene = SCALE_SCENES[kind]((224, 168), np.random.default_rng(seed))
        image = np.asarray(scene.image).astype(int)
        mask = scene.subject
        assert mask.any() and scene.width_m > 0
        row_typical = np.median(image, axis=1, keepdims=True)  # the ground / sky / table of each row
        stands_out = np.abs(image - row_typical).max(axis=2) > 20
        assert stands_out[mask].mean() > 0.7, (kind, seed)
        if kind == "town":
            roofs = [COLOURS["red"], COLOURS["brown"], COLOURS["grey"], (200, 120, 90)]
            roof = np.any([np.all(image == c, axis=2) for c in roofs], axis=0)
            assert roof.any() and not (roof & ~mask).any()


def sharpness(grey: np.ndarray) -> float:
    return float(np.abs(np.diff(grey, axis=1)).mean() + np.abs(np.diff(grey, axis=0)).mean())


def test_tilt_shift_keeps_the_subject_sharp(dataset: Path) -> None:
    found = 0
    for r in records(dataset, "scale_blur"):
        f = r["meta"]["facts"]
        if f["family"] != "true_scale":
            continue
        for k, tilted in enumerate(f["tilt_shift"]):
            box = [int(round(v)) for v in r["regions"][k]["box"]]
            if not tilted or box[3] - box[1] > 0.5 * 168 or box[1] < 30:
                continue  # a subject filling the picture keeps only a band sharp; and we need rows above it
            grey = pixels(dataset, r, k).mean(axis=2)
            assert sharpness(grey[box[1]:box[3], box[0]:box[2]]) > sharpness(grey[:box[1] - 15, box[0]:box[2]])
            found += 1
    assert found


# -- yes_but_satire: exactly one real change contradicts the sign, and the masks say where ----------------------

def grow(box: list[float], dx: float, dy: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box
    return (slice(max(0, int(y0 - dy)), min(shape[0], int(np.ceil(y1 + dy)))),
            slice(max(0, int(x0 - dx)), min(shape[1], int(np.ceil(x1 + dx)))))


def test_satire_needs_the_sign_and_every_option_is_a_real_change(dataset: Path) -> None:
    claims, answers = set(), Counter()
    for r in records(dataset, "yes_but_satire"):
        f = r["meta"]["facts"]
        claims.add(f["claim"])
        changes = {c["text"]: c for c in f["changes"]}
        assert set(texts(r)) == set(changes)  # every option is a change that happened
        contradicting = [t for t, c in changes.items() if c["key"] in CLAIMS[f["claim"]].contradicted_by]
        assert contradicting == [answer_text(r)], r["id"]
        assert f["sign_text"] in CLAIMS[f["claim"]].signs
        answers[answer_text(r)] += 1
        lengths = [len(t) for t in texts(r)]
        assert max(lengths) <= 1.5 * min(lengths)
        first, second = pixels(dataset, r, 0), pixels(dataset, r, 1)
        diff = np.abs(first - second).max(axis=2) > 12
        explained = np.zeros(diff.shape, dtype=bool)
        for c in f["changes"]:
            dx = 3 * c.get("sigma", 0) + 4 if c["op"] == "blur" else 4
            hit = np.zeros(diff.shape, dtype=bool)
            for box in (c["before_box"], c["after_box"]):
                if box is not None:
                    hit[grow(box, dx, 4, diff.shape)] = True
            # The change is visible where its boxes say, and its boxes are tight around what changed.
            ys, xs = np.nonzero(diff & hit)
            assert len(xs) > 40, (r["id"], c["key"])
            union = np.array([min(b[0] for b in (c["before_box"], c["after_box"]) if b),
                              min(b[1] for b in (c["before_box"], c["after_box"]) if b),
                              max(b[2] for b in (c["before_box"], c["after_box"]) if b),
                              max(b[3] for b in (c["before_box"], c["after_box"]) if b)])
            tight = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            assert np.all(np.abs(tight - union)[[1, 3]] <= 6), (r["id"], c["key"], tight, union)
            explained |= hit
        assert not (diff & ~explained).any(), r["id"]  # nothing else changed
        sign0, sign1 = r["regions"][0], r["regions"][1]
        assert sign0["box"] == sign1["box"] and f["sign_text"] in sign0["label"]
    assert len(claims) >= 10 and len(answers) >= 10


def test_removed_things_leave_textured_ground_not_a_smear(dataset: Path) -> None:
    checked = 0
    for r in records(dataset, "yes_but_satire"):
        for c in r["meta"]["facts"]["changes"]:
            if c["op"] != "remove":
                continue
            x0, y0, x1, y1 = (int(v) for v in c["before_box"])
            grey = pixels(dataset, r, 1).mean(axis=2)
            rows = grey[y1 - 10:y1 - 2]  # ground level, where the thing stood
            # The fill has the ground's grain (pixel-to-pixel variation), not a flat blur: as much as the median
            # over the whole width of those rows (the median is the bare ground's, whatever else stands there).
            grain = np.abs(np.diff(rows[:, x0 + 3:x1 - 3], axis=1)).mean()
            ground = np.median(np.abs(np.diff(rows, axis=1)))
            assert grain > 0.6 * ground > 1, (r["id"], grain, ground)
            checked += 1
    assert checked


def test_unknown_editor_is_one_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "--task", "yes_but_satire", "--num", "1", "--out", str(tmp_path / "x"),
                                 "--editor", "photoshop"])
    assert result.exit_code == 1
    assert "--editor must be one of classical, diffusers" in result.output


NUMBER = re.compile(r"(?<![\w\[.])-?\d[\d,]*(?:\.\d+)?")


def numbers_in(value: Any) -> set[float]:
    if isinstance(value, dict):
        return set().union(*(numbers_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(numbers_in(v) for v in value)) if value else set()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {round(float(value), 2)}
    if isinstance(value, str):
        return {round(float(m.replace(",", "")), 2) for m in NUMBER.findall(value)}
    return set()


def test_reasoning_states_only_numbers_from_the_facts(dataset: Path) -> None:
    for r in records(dataset):
        # Image numbers and region boxes are the record's own; every other number must be a fact.
        facts = dict(r["meta"]["facts"])
        facts.pop("steps", None)  # the computation is checked against the tables, not against itself
        known = numbers_in(facts) | {float(round(v)) for g in r["regions"] for v in g["box"]}
        known |= {float(k) for k in range(1, len(r["images"]) + 1)}
        if r["task"] == "chart_analysis":  # products, sums and ratios of the tables' values
            _, values, _ = recompute_chart(r["meta"]["facts"], r["question"])
            known |= {round(v, 2) for v in values.values()} | numbers_in(r["options"])
            known |= products_of_table_values(r["meta"]["facts"])
        stages = [r["summary"], r["caption"], r["text2region"], r["region2region"], r["conclusion"]]
        stated = numbers_in(stages)
        assert stated <= known, (r["id"], stated - known)


def products_of_table_values(f: dict[str, Any]) -> set[float]:
    """Intermediate figures the chart reasoning may quote: a share of a market, a stacked line's revenue."""
    values = [v for c in f["charts"] for s in c["series"].values() for v in s]
    return {round(a * b / 100, 2) for a in values for b in values} | {round(a * b, 2) for a in values for b in values}
