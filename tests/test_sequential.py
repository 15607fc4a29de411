"""`mirdata build --category sequential`: valid, deterministic records whose answers a viewer re-derives from the
saved frames (colour masks -> boxes, speeds and moves; piece edges -> arrangement; matching against the recipe's
states -> order), from the procedural default and from real videos (Debian's opencv-doc), with a corrupt file
among them."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.builders.base import task_class
from mirdata.builders.options import Slot, answer_position
from mirdata.cli import app
from mirdata.generators.video import (
    COLORS,
    INGREDIENTS,
    RECIPES,
    ProcessScene,
    open_clip,
)
from mirdata.registry import task_spec
from mirdata.schema.record import LETTERS, option_text

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
NUM = 8  # every question family of the four tasks appears (they are dealt out in runs of 3 or 4)
SIZE = (224, 168)
RATIOS = (1.5, 2.5, 3.5, 4.5)
DIRECTIONS = {0: "right", 45: "down and to the right", 90: "down", 135: "down and to the left", 180: "left",
              225: "up and to the left", 270: "up", 315: "up and to the right"}
runner = CliRunner()


def build(out: Path, *args: str, num: int = NUM, seed: int = 1) -> None:
    result = runner.invoke(app, ["build", "--num", str(num), "--out", str(out), "--seed", str(seed),
                                 "--image-size", f"{SIZE[0]}x{SIZE[1]}", "--format", "png", *args])
    assert result.exit_code == 0, result.output
    check = runner.invoke(app, ["validate", str(out)])
    assert check.exit_code == 0, check.output


def records(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "records.jsonl").read_text().splitlines()]


def answer_text(r: dict) -> str:
    return option_text(r["options"][LETTERS.index(r["answer"])])


def option_texts(r: dict) -> list[str]:
    return [option_text(o) for o in r["options"]]


def pixels(root: Path, r: dict) -> list[np.ndarray]:
    return [np.asarray(Image.open(root / p).convert("RGB"), dtype=np.int16) for p in r["images"]]


def digest(root: Path) -> dict[str, str]:
    files = [root / "records.jsonl", *sorted((root / "images").rglob("*"))]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def color_mask(image: np.ndarray, rgb: tuple[int, int, int], tol: int = 36) -> np.ndarray:
    return np.abs(image - np.array(rgb)).max(axis=2) < tol


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    return None if len(xs) == 0 else (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def shape_color(label: str) -> tuple[int, int, int] | None:
    """The colour of the shape a region label names ('red star', 'part of the red star')."""
    words = label.removeprefix("part of the ").split()
    return COLORS.get(words[0]) if len(words) == 2 else None


@pytest.fixture(scope="module")
def procedural(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seq") / "mir"
    build(out, "--category", "sequential")
    return out


def by_task(root: Path, task: str) -> list[dict]:
    found = [r for r in records(root) if r["task"] == task]
    assert len(found) == NUM
    return found


def test_same_seed_same_bytes_letters_frames_and_families(procedural: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build(again, "--category", "sequential")
    assert digest(again) == digest(procedural)
    for r in records(procedural):
        # The correct option sits where the shared placement puts it: even over a build.
        assert LETTERS.index(r["answer"]) == answer_position(Slot(r["task"], r["meta"]["seed"], r["meta"]["index"]),
                                                                 len(r["options"]))
        assert r["category"] == "sequential" and r["meta"]["facts"]["answer_text"] == answer_text(r)
        assert len(r["images"]) >= 4
        if r["task"] != "image_puzzle":
            with Image.open(procedural / r["images"][0]) as image:
                assert image.size == SIZE  # frames at the image size, not scaled up
    families = {(r["task"], r["meta"]["facts"]["variant"]) for r in records(procedural)}
    assert len(families) == 13  # so the answer checks below see every family
    assert np.mean([len(r["images"]) for r in records(procedural)]) >= 5.5
    # No image shared between records (two frames of one record may be equal: nothing moved in between).
    per_record = [{hashlib.sha256((procedural / p).read_bytes()).hexdigest() for p in r["images"]}
                  for r in records(procedural)]
    assert sum(map(len, per_record)) == len(set().union(*per_record))


def test_the_spec_families_answer_from_stored_facts_and_reject_shortcut_draws(procedural: Path) -> None:
    """Each task's question families come from its spec file: the family named in a stored record's facts
    answers it from those facts alone (as read back from JSON), and its constraints reject facts where the
    boxes would tell a viewer something else."""
    seen = set()
    for r in records(procedural):
        spec = task_spec(r["task"])
        families = task_class(r["task"]).question_families(spec)
        f = copy.deepcopy(r["meta"]["facts"])
        family = f[spec.family_key]
        assert family in spec.families and spec.families[family].texts
        assert families.degenerate(family, f) is None
        assert families.solve(family, f) == answer_text(r)
        if r["task"] == "speed_comparison" and family != "ratio":
            f["ranking"] = f["ranking"][::-1]  # boxes that put the slowest shape first
            assert families.degenerate(family, f) == "boxes_give_the_true_ranking"
            seen.add("ranking")
        elif r["task"] == "speed_comparison":
            fast, slow = f["ratio_pair"]
            for o in f["objects"]:
                if o["name"] == fast:  # boxes that put the pair between two options
                    o["speed_px_s"] = next(x["speed_px_s"] for x in f["objects"] if x["name"] == slow) * (
                        f["nominal_ratio"] + 0.5)
            assert families.degenerate(family, f) == "boxes_give_the_nominal_ratio"
            seen.add("ratio")
        elif r["task"] == "motion_detection" and family == "which_moved":
            f["movers"] = list(f["listed"])  # every listed shape moves: no single answer
            assert families.degenerate(family, f) == "at_most_one_listed_mover"
            seen.add("which_moved")
    assert seen == {"ranking", "ratio", "which_moved"}


def numbers_in(value: object) -> set[float]:
    if isinstance(value, dict):
        return set().union(*(numbers_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(numbers_in(v) for v in value)) if value else set()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {round(float(value), 6), round(abs(float(value)), 6)}
    if isinstance(value, str):
        return {round(float(n), 6) for n in re.findall(r"\d+(?:\.\d+)?", value)}
    return set()


def assert_numbers_are_facts(r: dict) -> None:
    """Every number the five stages state is in the facts or a region box (or their box centres), or a small
    count or ordinal."""
    boxes = [reg["box"] for reg in r["regions"]]
    centres = [[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in boxes]
    known = numbers_in(r["meta"]["facts"]) | numbers_in(boxes) | numbers_in(centres)
    text = " ".join([r["summary"], *r["caption"], r["text2region"], r["region2region"], r["conclusion"]])
    text = re.sub(r"\[r\d+\]", "", text)  # region ids are names, not numbers
    for n in re.findall(r"\d+(?:\.\d+)?", text):
        value = round(float(n), 6)
        assert value in known or (value.is_integer() and value <= 12), (r["id"], n, text)


def test_every_number_in_the_reasoning_is_a_fact_and_no_times_in_captions(procedural: Path) -> None:
    for r in records(procedural):
        assert_numbers_are_facts(r)
        assert not any(re.search(r"\d s\b|step \d", c) for c in r["caption"]), r["id"]
        assert not any(re.search(r"\d s\b|step \d", reg["label"]) for reg in r["regions"]), r["id"]


def test_every_shape_box_is_the_box_of_its_visible_pixels(procedural: Path) -> None:
    """Independent of the facts: in the saved images, the pixels of a region's named colour lie inside its box
    and fill it out to within a few pixels (the outline is darker), and a post's box holds its black bands."""
    checked = 0
    for task in ("speed_comparison", "motion_detection", "image_puzzle"):
        for r in by_task(procedural, task):
            images = pixels(procedural, r)
            for reg in r["regions"]:
                x0, y0, x1, y1 = reg["box"]
                image = images[reg["image"]]
                if reg["label"] == "striped post":
                    black = color_mask(image, (20, 20, 20))
                    assert black[y0:y1, x0:x1].sum() > 0.2 * (x1 - x0) * (y1 - y0), (r["id"], reg)
                    continue
                rgb = shape_color(reg["label"])
                assert rgb is not None, reg
                mask = color_mask(image, rgb)
                inside = int(mask[y0:y1, x0:x1].sum())
                assert inside > 0, (r["id"], reg)  # the box shows its shape's colour
                assert inside >= 0.9 * mask.sum() or task == "image_puzzle", (r["id"], reg)
                if inside < 40:
                    continue  # a sliver, mostly outline: too few pixels for the checks below
                assert inside >= 0.12 * (x1 - x0) * (y1 - y0), (r["id"], reg)  # a box holds its shape
                fill = bbox(mask[max(0, y0 - 4): y1 + 4, max(0, x0 - 4): x1 + 4])
                ox, oy = max(0, x0 - 4), max(0, y0 - 4)
                assert fill[0] + ox >= x0 - 1 and fill[1] + oy >= y0 - 1, (r["id"], reg)  # no colour outside
                assert fill[2] + ox <= x1 + 1 and fill[3] + oy <= y1 + 1, (r["id"], reg)
                outline = color_mask(image, tuple(int(c * 0.55) for c in rgb), 24)  # shapes' darker rims
                tx0, ty0, tx1, ty1 = bbox((mask | outline)[y0:y1, x0:x1])
                assert max(tx0, ty0, x1 - x0 - tx1, y1 - y0 - ty1) <= 3, (r["id"], reg)  # and the box is tight
                checked += 1
    assert checked > 200


def post_shifts(images: list[np.ndarray]) -> list[float]:
    """The camera's shift since frame 1, from the posts' black bands: post centres found column-wise in each
    frame and matched to the nearest post of the frame before (posts stand far apart, frames close in time)."""
    centres = []
    for image in images:
        columns = np.flatnonzero(color_mask(image, (20, 20, 20)).sum(axis=0) > 0.1 * image.shape[0])
        runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
        centres.append([float(run.mean()) for run in runs if len(run)])
    shifts = [0.0]
    for before, after in itertools.pairwise(centres):
        moves = [min(after, key=lambda x: abs(x - b)) - b for b in before]
        shifts.append(shifts[-1] - float(np.median(moves)))
    return shifts


def test_speed_answers_follow_from_tracked_masks(procedural: Path) -> None:
    for r in by_task(procedural, "speed_comparison"):
        f = r["meta"]["facts"]
        images = pixels(procedural, r)
        shifts = post_shifts(images)
        if "pans" not in r["question"]:
            assert max(abs(s) for s in shifts) <= 1  # a still camera is a still camera
        speeds = {}
        for o in f["objects"]:
            masks = [color_mask(image, COLORS[o["name"].split()[0]]) for image in images]
            counts = [int(m.sum()) for m in masks]
            whole = [j for j, c in enumerate(counts) if c >= 0.85 * np.median(counts)]  # not behind the pillar
            a, b = whole[0], whole[-1]
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = bbox(masks[a]), bbox(masks[b])
            dx = (bx0 + bx1) / 2 - (ax0 + ax1) / 2 + shifts[b] - shifts[a]
            dy = (by0 + by1) / 2 - (ay0 + ay1) / 2
            speeds[o["name"]] = math.hypot(dx, dy) / (f["times_s"][b] - f["times_s"][a])
        ranking = sorted(speeds, key=speeds.get, reverse=True)
        if f["variant"] == "ratio":
            fast, slow = f["ratio_pair"]
            assert set(re.findall(r"the (\w+ \w+)", r["question"])) >= {fast, slow}
            nearest = min(RATIOS, key=lambda x: abs(x - speeds[fast] / speeds[slow]))
            assert answer_text(r) == f"about {nearest:g} times as fast", r["id"]
            continue
        want = {"fastest": ranking[0], "slowest": ranking[-1], "ranking": ", ".join(ranking)}[f["variant"]]
        assert answer_text(r) == want, (r["id"], speeds)
        for a, b in itertools.pairwise(ranking):
            assert speeds[a] > 1.1 * speeds[b]


def test_motion_answers_follow_from_tracked_masks(procedural: Path) -> None:
    for r in by_task(procedural, "motion_detection"):
        f = r["meta"]["facts"]
        images = pixels(procedural, r)
        moves = {}  # shape -> (interval, dx, dy)
        for o in f["objects"]:
            centres = [bbox(color_mask(image, COLORS[o["name"].split()[0]])) for image in images]
            centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in centres]
            steps = [(j, b[0] - a[0], b[1] - a[1]) for j, (a, b) in enumerate(itertools.pairwise(centres))
                     if math.dist(a, b) > 2]
            assert len(steps) <= 1, (r["id"], o["name"], steps)
            if steps:
                moves[o["name"]] = steps[0]
        texts = option_texts(r)
        if f["variant"] == "which_moved":
            listed = [t for t in texts if t != "none of these moves"]
            moved = [t for t in listed if t in moves]
            assert len(moved) <= 1
            assert answer_text(r) == (moved[0] if moved else "none of these moves"), r["id"]
            continue
        target = re.search(r"the (\w+ \w+) (?:move|change|go)", r["question"]).group(1)
        if f["variant"] == "which_interval":
            want = (f"between frame {moves[target][0] + 1} and frame {moves[target][0] + 2}" if target in moves
                    else "it never moves")
        else:
            _, dx, dy = moves[target]
            want = DIRECTIONS[int(round(math.degrees(math.atan2(dy, dx)) % 360 / 45)) % 8 * 45]
        assert answer_text(r) == want, r["id"]


def test_cooking_answers_follow_from_matching_the_recipe_states(procedural: Path) -> None:
    """Each image is matched to the recipe's states (the counter before any step and after each), rendered
    afresh; the order of the matched states answers the question."""
    for r in by_task(procedural, "cooking_process"):
        f = r["meta"]["facts"]
        scene = ProcessScene.make(f["recipe"], RECIPES[f["recipe"]], f["step_seconds"], SIZE, 10, f["scene_seed"])
        times = [0.0] + [round(s.start + 0.85 * f["step_seconds"], 1) for s in scene.steps]
        with open_clip(scene) as sampler:
            states = sampler.read(sampler.at_times(times)).images[:, :SIZE[1], :SIZE[0]].astype(np.int16)
        images = pixels(procedural, r)
        state_of = []
        for image in images:
            errors = [float(np.abs(image - s).mean()) for s in states]
            best = int(np.argmin(errors))
            assert sorted(errors)[1] > errors[best] + 0.3, r["id"]  # one state fits clearly best
            state_of.append(best)
        order = [j + 1 for j in sorted(range(len(images)), key=lambda j: state_of[j])]
        if f["variant"] == "order":
            assert answer_text(r) == ", ".join(f"image {k}" for k in order)
        elif f["variant"] == "next":
            ref = int(re.search(r"after image (\d)", r["question"]).group(1))
            assert answer_text(r) == f"image {order[order.index(ref) + 1]}"
        else:
            a, b = (int(k) for k in re.findall(r"image (\d)", r["question"].split("\n")[-1]))
            assert state_of[b - 1] == state_of[a - 1] + 1
            assert answer_text(r) == scene.steps[state_of[a - 1]].text
            assert set(option_texts(r)) <= {s.text for s in scene.steps}  # wrong steps from the same recipe
        for reg in r["regions"]:  # a box of an item holds that item's colours
            name = reg["label"].removeprefix("the sliced ").removeprefix("the ").removesuffix(" in the bowl")
            if name in INGREDIENTS:
                x0, y0, x1, y1 = reg["box"]
                patch = images[reg["image"]][y0:y1, x0:x1]
                ing = INGREDIENTS[name]
                hit = color_mask(patch, ing.color, 30) | color_mask(patch, ing.inside, 30)
                assert hit.mean() > 0.15, (r["id"], reg)


def seam_cost(tiles: list[np.ndarray], grid: list[list[int]]) -> float:
    cost = 0.0
    for r, row in enumerate(grid):
        for c, piece in enumerate(row):
            a = tiles[piece - 1]
            if c + 1 < len(row):
                b = tiles[row[c + 1] - 1]
                if a.shape[0] != b.shape[0]:
                    return math.inf
                cost += float(np.abs(a[:, -1] - b[:, 0]).mean())
            if r + 1 < len(grid):
                b = tiles[grid[r + 1][c] - 1]
                if a.shape[1] != b.shape[1]:
                    return math.inf
                cost += float(np.abs(a[-1, :] - b[0, :]).mean())
    return cost


def parse_grid(text: str) -> list[list[int]]:
    return [[int(v) for v in part.split(":")[1].split(",")] for part in text.split(";")]


def test_puzzle_answer_reassembles_the_frame_from_piece_edges(procedural: Path) -> None:
    for r in by_task(procedural, "image_puzzle"):
        tiles = [t.astype(np.float32) for t in pixels(procedural, r)]
        rows = int(re.search(r"(\d) (?:rows )?×", r["question"]).group(1))
        cols = len(tiles) // rows
        # The arrangement with the least break across the cuts, searched over every order (small grids) or
        # over the options (3 x 3).
        candidates = ([[list(p[k * cols:(k + 1) * cols]) for k in range(rows)]
                       for p in itertools.permutations(range(1, len(tiles) + 1))] if len(tiles) <= 6 else
                      [parse_grid(t) for t in option_texts(r)] if r["meta"]["facts"]["variant"] == "arrangement"
                      else [r["meta"]["facts"]["grid"]])
        grid = min(candidates, key=lambda g: seam_cost(tiles, g))
        variant = r["meta"]["facts"]["variant"]
        if variant == "arrangement":
            assert parse_grid(answer_text(r)) == grid, r["id"]
        elif variant == "corner":
            corner = re.search(r"(top|bottom)-(left|right)", r["question"])
            want = grid[0 if corner.group(1) == "top" else -1][0 if corner.group(2) == "left" else -1]
            assert answer_text(r) == f"piece {want}", r["id"]
        else:
            ref = int(re.search(r"piece (\d)", r["question"].split("\n")[-1]).group(1))
            row = next(row for row in grid if ref in row)
            assert answer_text(r) == f"piece {row[row.index(ref) + 1]}", r["id"]


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (DATA / "tree.avi").is_file():
        pytest.skip("needs Debian's opencv-doc package (real test videos)")
    folder = tmp_path_factory.mktemp("videos")
    shutil.copy(DATA / "tree.avi", folder / "tree.avi")
    (folder / "clips").mkdir()
    shutil.copy(DATA / "Megamind.avi", folder / "clips" / "megamind.avi")
    (folder / "clips" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return folder


def test_real_videos_with_a_corrupt_file(video_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "real"
    build(out, "--task", "image_puzzle", "--source", str(video_folder), num=6)
    info = json.loads((out / "build.json").read_text())
    skipped = info["builds"][-1]["skipped_sources"]
    assert [s["file"] for s in skipped] == [str(video_folder / "clips" / "broken.mp4")]
    assert skipped[0]["reason"] == "not a readable video (no video stream that ffmpeg can open)"
    videos = set()
    for r in records(out):
        assert_numbers_are_facts(r)
        f = r["meta"]["facts"]
        assert f["source"] == "video"
        videos.add(f["video"])
        tiles = [t.astype(np.float32) for t in pixels(out, r)]
        if f["variant"] == "arrangement":  # the answer breaks least across the cuts among the options
            grid = min((parse_grid(t) for t in option_texts(r)), key=lambda g: seam_cost(tiles, g))
            assert parse_grid(answer_text(r)) == grid
    assert videos == {"tree.avi", "megamind.avi"}

    failed = runner.invoke(app, ["build", "--task", "image_puzzle", "--num", "2", "--out", str(tmp_path / "strict"),
                                 "--source", str(video_folder), "--on-error", "fail"])
    assert failed.exit_code == 1
    assert "broken.mp4" in failed.output and "not a readable video" in failed.output
    # Frames of an unannotated video are no process whose order they show: refused in one line.
    refused = runner.invoke(app, ["build", "--task", "cooking_process", "--num", "2", "--out", str(tmp_path / "c"),
                                  "--source", str(video_folder)])
    assert refused.exit_code == 1 and "needs --steps-csv" in refused.output
    assert len([line for line in refused.output.splitlines() if "error" in line]) == 1
    assert "Traceback" not in refused.output


def test_steps_csv_builds_cooking_process_from_annotated_video(tmp_path: Path) -> None:
    if not (DATA / "vtest.avi").is_file():
        pytest.skip("needs Debian's opencv-doc package (real test videos)")
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(DATA / "vtest.avi", folder / "vtest.avi")
    shutil.copy(DATA / "tree.avi", folder / "tree.avi")
    steps = tmp_path / "steps.csv"
    steps.write_text("video,start_s,end_s,step\n"
                     "vtest,2,14,people enter from the left\n"
                     "vtest,20,31,a couple crosses the square\n"
                     "vtest,40,52,two walkers pass each other\n"
                     "vtest,60,75,the square empties\n"
                     "tree,0,1,the camera looks at a tree\n"
                     "tree,1,2,the camera still looks at a tree\n"
                     "other_video,0,5,not in the folder\n")
    out = tmp_path / "steps"
    build(out, "--task", "cooking_process", "--source", str(folder), "--steps-csv", str(steps), num=6)
    skipped = json.loads((out / "build.json").read_text())["builds"][-1]["skipped_sources"]
    assert [Path(s["file"]).name for s in skipped] == ["tree.avi"] and "4 are needed" in skipped[0]["reason"]
    texts = ["people enter from the left", "a couple crosses the square", "two walkers pass each other",
             "the square empties"]
    for r in records(out):
        assert_numbers_are_facts(r)
        assert len(r["images"]) == 4
        f = r["meta"]["facts"]
        assert f["source"] == "annotated video"
        for m in f["images"]:
            start, end = next((s["start_s"], s["end_s"]) for s in f["steps"] if s["text"] == m["step_text"])
            assert start <= m["time_s"] <= end
        order = [m["image"] + 1 for m in sorted(f["images"], key=lambda m: texts.index(m["step_text"]))]
        if f["variant"] == "order":
            assert answer_text(r) == ", ".join(f"image {k}" for k in order)
        elif f["variant"] == "next":
            assert answer_text(r) == f"image {order[order.index(f['ref_image']) + 1]}"
        else:
            assert answer_text(r) == f["images"][f["ref_image"] - 1]["step_text"]
        assert any(m["step_text"] in r["caption"][m["image"]] for m in f["images"])
        assert not any(re.search(r"\d s\b", c) for c in r["caption"])

    bad = tmp_path / "bad.csv"
    bad.write_text("video,begin,end,step\nvtest,1,2,x\n")
    result = runner.invoke(app, ["build", "--task", "cooking_process", "--num", "1", "--out", str(tmp_path / "x"),
                                 "--source", str(folder), "--steps-csv", str(bad)])
    assert result.exit_code == 1 and "bad.csv: missing column(s) end_s, start_s" in result.output
    result = runner.invoke(app, ["build", "--task", "cooking_process", "--num", "1", "--out", str(tmp_path / "y"),
                                 "--steps-csv", str(steps)])
    assert result.exit_code == 1 and "--steps-csv needs --source" in result.output
