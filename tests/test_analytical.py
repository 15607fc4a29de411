"""Analytical builders: build → validate, determinism, and every answer re-derived independently from the facts."""

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

from mirdata.cli import app
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
    build(out)
    return out


def records(root: Path, task: str | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (root / "records.jsonl").read_text().splitlines()]
    return [r for r in rows if task is None or r["task"] == task]


def answer_text(r: dict[str, Any]) -> str:
    return option_text(r["options"][LETTERS.index(r["answer"])])


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


def test_answer_letters_are_spread(dataset: Path) -> None:
    for task in ("chart_analysis", "yes_but_satire"):  # four options each: every letter used equally
        assert Counter(r["answer"] for r in records(dataset, task)) == {"A": 4, "B": 4, "C": 4, "D": 4}
    for task in ("weight_comparison", "scale_blur"):
        assert len({r["answer"] for r in records(dataset, task)}) >= 3


def digest(root: Path) -> dict[str, str]:
    files = [root / "records.jsonl", *sorted((root / "images").rglob("*"))]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    build(tmp_path / "a", 5, 1)
    build(tmp_path / "b", 5, 1, "--workers", "2")
    build(tmp_path / "c", 5, 2)
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


def recompute_chart(f: dict[str, Any], question: str) -> tuple[str, dict[str, float]]:
    charts = f["charts"]
    family = f["family"]
    if family in ("top_revenue", "profit"):
        units, price = table(by_title(charts, "Units sold")), table(by_title(charts, "Price"))
        margin = table(by_title(charts, "margin")) if family == "profit" else {p: 100 for p in units}
        value = {p: units[p] * price[p] * margin[p] / 100 for p in units}
    elif family == "projection":
        sales, rate = table(by_title(charts, "Sales")), table(by_title(charts, "growth"))
        value = {a: sales[a] * (1 + rate[a] / 100) for a in sales}
    elif family == "revenue_change":
        grouped = by_title(charts, "Units sold")
        y0, y1 = sorted(grouped["series"])
        before, after, price = table(grouped, y0), table(grouped, y1), table(by_title(charts, "Price"))
        value = {p: (after[p] - before[p]) * price[p] for p in price}
    else:  # share_of_total: the company and year are named in the question
        pie = next(c for c in charts if c["kind"] == "pie")
        totals = table(next(c for c in charts if c["kind"] != "pie"))
        year = pie["title"].rsplit(" ", 1)[1]
        company = next(c for c in pie["categories"] if c in question)
        units = table(pie)[company] * totals[year] / 100
        return f"{units:,.1f} thousand units", {company: units}
    return max(value, key=value.get), value


def test_chart_answers_recomputed_from_the_tables(dataset: Path) -> None:
    families = Counter()
    for r in records(dataset, "chart_analysis"):
        f = r["meta"]["facts"]
        families[f["family"]] += 1
        expected, values = recompute_chart(f, r["question"])
        assert answer_text(r) == expected, r["id"]
        assert len(r["images"]) == len(f["charts"]) >= 2
        if f["family"] != "share_of_total":
            ranked = sorted(values.values(), reverse=True)
            assert ranked[0] > ranked[1]  # a clear winner
            first = f["charts"][0]
            assert max(table(first), key=table(first).get) != expected or len(f["charts"]) > 2 \
                or max(table(f["charts"][1]), key=table(f["charts"][1]).get) != expected
    assert set(families) == {"top_revenue", "profit", "share_of_total", "projection", "revenue_change"}


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
        known = numbers_in(r["meta"]["facts"]) | {float(round(v)) for g in r["regions"] for v in g["box"]}
        known |= {float(k) for k in range(1, len(r["images"]) + 1)}
        stages = [r["summary"], r["caption"], r["text2region"], r["region2region"], r["conclusion"]]
        stated = numbers_in(stages)
        assert stated <= known, (r["id"], stated - known)


# -- weight_comparison: brute force over every order -----------------------------------------------------------

def test_weight_answers_by_brute_force(dataset: Path) -> None:
    undetermined = 0
    for r in records(dataset, "weight_comparison"):
        f = r["meta"]["facts"]
        names, weights = f["objects"], f["weights_g"]
        # Read each scale as a viewer would: the side that is down is heavier.
        seen = [(s["left"], s["right"]) if s["angle"] > 0 else (s["right"], s["left"]) for s in f["scales"]]
        assert all(weights[heavy] > weights[light] for heavy, light in seen)  # tilted by the true weights
        for s in f["scales"]:  # and the heavier object's region really sits lower in its image
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
        assert "Cannot be determined" in [option_text(o) for o in r["options"]]
        undetermined += expected == "Cannot be determined"
        assert len(r["images"]) == len(f["scales"]) and len(r["regions"]) == 2 * len(f["scales"])
    assert 0 < undetermined < NUM


# -- scale_blur: the zoom and the real sizes decide, never the blur --------------------------------------------

def test_scale_blur_answers_follow_zoom_and_true_size(dataset: Path) -> None:
    kinds = Counter()
    for r in records(dataset, "scale_blur"):
        f = r["meta"]["facts"]
        kinds[f["kind"]] += 1
        key = f["zooms"] if f["family"] == "zoom" else f["widths_m"]
        n = len(key)
        ranked = sorted(range(n), key=lambda k: key[k])
        expected = {
            "most_zoomed": f"Image {ranked[-1] + 1}", "widest": f"Image {ranked[0] + 1}",
            "largest": f"Image {ranked[-1] + 1}", "smallest": f"Image {ranked[0] + 1}",
            "zoom_order": ", ".join(f"Image {k + 1}" for k in ranked),
            "size_order": ", ".join(f"Image {k + 1}" for k in ranked),
        }[f["kind"]]
        assert answer_text(r) == expected, r["id"]
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


def test_tilt_shift_blurs_away_from_the_band(dataset: Path) -> None:
    found = False
    for r in records(dataset, "scale_blur"):
        f = r["meta"]["facts"]
        if f["family"] != "true_scale":
            continue
        for k, tilted in enumerate(f["tilt_shift"]):
            if not tilted or f["photos"][k] != "rocket":
                continue
            grey = np.asarray(Image.open(dataset / r["images"][k]).convert("L")).astype(float)
            box = r["regions"][k]["box"]
            centre = int((box[1] + box[3]) / 2)
            sharp = np.abs(np.diff(grey[centre - 8:centre + 8], axis=1)).mean()
            blurred = np.abs(np.diff(grey[:12], axis=1)).mean()
            assert sharp > blurred
            found = True
    assert found


# -- yes_but_satire: the edit is the answer and it is where the regions say -------------------------------------

def test_satire_answer_is_the_real_edit_and_only_it_changed(dataset: Path) -> None:
    scenarios = set()
    for r in records(dataset, "yes_but_satire"):
        f = r["meta"]["facts"]
        scenarios.add(f["scenario"])
        assert answer_text(r) == f["change"]
        assert set(option_text(o) for o in r["options"]) - {f["change"]} == set(f["distractors"])
        first, second = (np.asarray(Image.open(dataset / p).convert("RGB")).astype(int) for p in r["images"])
        diff = np.abs(first - second).max(axis=2) > 40
        changed = np.zeros(diff.shape, dtype=bool)
        for g in r["regions"][2:]:  # the edited thing, before and after
            x0, y0, x1, y1 = (int(round(v)) for v in g["box"])
            changed[max(0, y0 - 12):y1 + 12, max(0, x0 - 24):x1 + 24] = True
        assert diff[changed].sum() > 30, r["id"]  # the edit is visible where the regions point
        assert diff[~changed].mean() < 0.002, r["id"]  # and nothing else moved (JPEG noise aside)
        sign0, sign1 = r["regions"][0], r["regions"][1]
        assert sign0["box"] == sign1["box"] and f["sign_text"] in sign0["label"]
    assert len(scenarios) == 8


def test_unknown_editor_is_one_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "--task", "yes_but_satire", "--num", "1", "--out", str(tmp_path / "x"),
                                 "--editor", "photoshop"])
    assert result.exit_code == 1
    assert "--editor must be one of classical, diffusers" in result.output
