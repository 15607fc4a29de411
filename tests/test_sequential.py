"""`mirdata build --category sequential`: valid, deterministic records whose answers follow from the facts,
from the procedural default and from real videos (Debian's opencv-doc), with a corrupt file among them."""

from __future__ import annotations

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

from mirdata.builders.options import Slot, answer_position
from mirdata.cli import app
from mirdata.generators.video import COLORS
from mirdata.schema.record import LETTERS, option_text

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
NUM = 10  # with seed 1, every question variant of the four tasks appears
runner = CliRunner()


def build(out: Path, *args: str, num: int = NUM, seed: int = 1) -> None:
    result = runner.invoke(app, ["build", "--num", str(num), "--out", str(out), "--seed", str(seed),
                                 "--image-size", "224x168", *args])
    assert result.exit_code == 0, result.output
    check = runner.invoke(app, ["validate", str(out)])
    assert check.exit_code == 0, check.output


def records(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "records.jsonl").read_text().splitlines()]


def answer_text(r: dict) -> str:
    return option_text(r["options"][LETTERS.index(r["answer"])])


def digest(root: Path) -> dict[str, str]:
    files = [root / "records.jsonl", *sorted((root / "images").rglob("*"))]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


@pytest.fixture(scope="module")
def procedural(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seq") / "mir"
    build(out, "--category", "sequential")
    return out


def by_task(root: Path, task: str) -> list[dict]:
    found = [r for r in records(root) if r["task"] == task]
    assert len(found) == NUM
    return found


def test_same_seed_same_bytes_and_letters_spread(procedural: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build(again, "--category", "sequential")
    assert digest(again) == digest(procedural)
    other = tmp_path / "other"
    build(other, "--task", "motion_detection", num=2, seed=2)
    assert records(other)[0]["question"] != by_task(procedural, "motion_detection")[0]["question"]
    for r in records(procedural):
        # The correct option sits where the shared placement puts it: even over a build.
        assert LETTERS.index(r["answer"]) == answer_position(Slot(r["task"], r["meta"]["seed"], r["meta"]["index"]),
                                                                 len(r["options"]))
        assert r["category"] == "sequential" and r["meta"]["facts"]["answer_text"] == answer_text(r)
    variants = {(r["task"], r["meta"]["facts"]["variant"]) for r in records(procedural)}
    assert len(variants) == 13  # so the answer checks below see every variant


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
    """Every number the five stages state is in the facts (or a region box), or a small count or ordinal."""
    known = numbers_in(r["meta"]["facts"]) | numbers_in([reg["box"] for reg in r["regions"]])
    text = " ".join([r["summary"], *r["caption"], r["text2region"], r["region2region"], r["conclusion"]])
    text = re.sub(r"\[r\d+\]", "", text)  # region ids are names, not numbers
    for n in re.findall(r"\d+(?:\.\d+)?", text):
        value = round(float(n), 6)
        assert value in known or (value.is_integer() and value <= 12), (r["id"], n, text)


def test_every_number_in_the_reasoning_is_a_fact(procedural: Path) -> None:
    for r in records(procedural):
        assert_numbers_are_facts(r)


def test_speed_answers_follow_from_positions(procedural: Path) -> None:
    for r in by_task(procedural, "speed_comparison"):
        f = r["meta"]["facts"]
        speeds = {}
        for o in f["objects"]:
            seen = [p for p in o["track"] if p["region"] and p["visible"] >= 0.6]
            a, b = seen[0], seen[-1]
            speeds[o["name"]] = math.dist(a["world"], b["world"]) / (b["time_s"] - a["time_s"])
            for p in o["track"]:  # the world position is the frame position plus the camera's offset
                assert p["world"][0] == pytest.approx(p["center"][0] + f["camera"]["offsets_x"][p["image"]], abs=0.15)
        ranking = sorted(speeds, key=speeds.get, reverse=True)
        want = {"fastest": ranking[0], "slowest": ranking[-1], "ranking": ", ".join(ranking)}.get(f["variant"])
        if f["variant"] == "ratio":
            fast, slow = f["ratio_pair"]
            want = f"about {float(answer_text(r).split()[1]):g} times as fast"
            ratio = speeds[fast] / speeds[slow]
            assert abs(ratio - float(answer_text(r).split()[1])) < 0.2 * ratio
        assert answer_text(r) == want, r["id"]
        for a, b in itertools.pairwise(ranking):
            assert speeds[a] > 1.25 * speeds[b]


def test_regions_show_the_named_shapes(procedural: Path) -> None:
    """Independent of the facts: in the saved images, each fully visible shape's box has its colour at the centre."""
    checked = 0
    for task in ("speed_comparison", "motion_detection"):
        for r in by_task(procedural, task):
            images = [np.asarray(Image.open(procedural / p).convert("RGB"), dtype=np.float32) for p in r["images"]]
            visible = {(o["name"], p["image"]): p.get("visible", 1.0)
                       for o in r["meta"]["facts"]["objects"] for p in o["track"]}
            for reg in r["regions"]:
                x0, y0, x1, y1 = reg["box"]
                if visible[(reg["label"], reg["image"])] < 1.0 or x1 - x0 < 20 or y1 - y0 < 20:
                    continue
                cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
                patch = images[reg["image"]][cy - 1: cy + 2, cx - 1: cx + 2].reshape(-1, 3).mean(axis=0)
                assert np.abs(patch - np.array(COLORS[reg["label"].split()[0]])).max() < 45, (r["id"], reg)
                checked += 1
    assert checked > 50


def test_motion_answers_follow_from_boxes(procedural: Path) -> None:
    for r in by_task(procedural, "motion_detection"):
        f = r["meta"]["facts"]
        moved = []
        for o in f["objects"]:
            boxes = [tuple(p["box"]) for p in o["track"]]
            changes = [k for k in range(len(boxes) - 1) if boxes[k] != boxes[k + 1]]
            if changes:
                moved.append((o, changes))
        assert len(moved) == 1 and len(moved[0][1]) == 1, r["id"]
        o, (k,) = moved[0]
        (ax, ay), (bx, by) = o["track"][k]["center"], o["track"][k + 1]["center"]
        angle = math.degrees(math.atan2(by - ay, bx - ax)) % 360
        names = {0: "right", 45: "down and to the right", 90: "down", 135: "down and to the left", 180: "left",
                 225: "up and to the left", 270: "up", 315: "up and to the right"}
        direction = names[int(round(angle / 45)) % 8 * 45]
        want = {"which_moved": o["name"], "direction": direction,
                "which_interval": f"between frame {k + 1} and frame {k + 2}"}[f["variant"]]
        assert answer_text(r) == want, r["id"]


def test_cooking_answers_follow_from_step_order(procedural: Path) -> None:
    for r in by_task(procedural, "cooking_process"):
        f = r["meta"]["facts"]
        order = [m["image"] + 1 for m in sorted(f["images"], key=lambda m: m["step"])]
        if f["variant"] == "order":
            assert answer_text(r) == ", ".join(f"image {k}" for k in order)
            assert order != sorted(order)  # shown shuffled
        elif f["variant"] == "next":
            assert answer_text(r) == f"image {order[order.index(f['ref_image']) + 1]}"
        else:
            first, second = (m["step"] for m in f["images"])
            assert second == first + 1 and answer_text(r) == f["steps"][second]["text"]


def seam_cost(tiles: list[np.ndarray], grid: list[list[int]]) -> float:
    cost = 0.0
    for r, row in enumerate(grid):
        for c, piece in enumerate(row):
            a = tiles[piece - 1]
            if c + 1 < len(row):
                b = tiles[row[c + 1] - 1]
                cost += float(np.abs(a[:, -1] - b[:, 0]).mean())
            if r + 1 < len(grid):
                b = tiles[grid[r + 1][c] - 1]
                cost += float(np.abs(a[-1, :] - b[0, :]).mean())
    return cost


def test_puzzle_answer_reassembles_the_frame(procedural: Path) -> None:
    for r in by_task(procedural, "image_puzzle"):
        f = r["meta"]["facts"]
        tiles = [np.asarray(Image.open(procedural / p).convert("RGB"), dtype=np.float32) for p in r["images"]]
        grid = f["grid"]
        assert sorted(k for row in grid for k in row) == list(range(1, len(tiles) + 1))
        for row_index, row in enumerate(grid):  # pieces of one row share a height, of one column a width
            assert len({tiles[k - 1].shape[0] for k in row}) == 1
        if f["variant"] == "arrangement":
            for option in r["options"]:
                text = option_text(option)
                other = [[int(v) for v in part.split(":")[1].split(",")] for part in text.split(";")]
                if text != answer_text(r):
                    assert seam_cost(tiles, other) > seam_cost(tiles, grid), r["id"]
                else:
                    assert other == grid
        elif f["variant"] == "corner":
            rows = {"top": 0, "bottom": -1}[f["corner"].split("-")[0]]
            cols = {"left": 0, "right": -1}[f["corner"].split("-")[1]]
            assert answer_text(r) == f"piece {grid[rows][cols]}"
        else:
            row = next(row for row in grid if f["ref_piece"] in row)
            assert answer_text(r) == f"piece {row[row.index(f['ref_piece']) + 1]}"


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
    build(out, "--task", "cooking_process", "--task", "image_puzzle", "--source", str(video_folder), num=6)
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
        if r["task"] == "cooking_process":
            order = [m["image"] + 1 for m in sorted(f["images"], key=lambda m: m["time_s"])]
            if f["variant"] == "order":
                assert answer_text(r) == ", ".join(f"image {k}" for k in order)
            else:
                assert answer_text(r) == f"image {order[order.index(f['ref_image']) + 1]}"
            assert not re.search(r"\d s\b", r["question"])  # the question does not give the times away
    assert videos == {"tree.avi", "megamind.avi"}

    failed = runner.invoke(app, ["build", "--task", "image_puzzle", "--num", "2", "--out", str(tmp_path / "strict"),
                                 "--source", str(video_folder), "--on-error", "fail"])
    assert failed.exit_code == 1
    assert "broken.mp4" in failed.output and "not a readable video" in failed.output


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
    assert [Path(s["file"]).name for s in skipped] == ["tree.avi"] and "3 are needed" in skipped[0]["reason"]
    texts = ["people enter from the left", "a couple crosses the square", "two walkers pass each other",
             "the square empties"]
    for r in records(out):
        assert_numbers_are_facts(r)
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

    bad = tmp_path / "bad.csv"
    bad.write_text("video,begin,end,step\nvtest,1,2,x\n")
    result = runner.invoke(app, ["build", "--task", "cooking_process", "--num", "1", "--out", str(tmp_path / "x"),
                                 "--source", str(folder), "--steps-csv", str(bad)])
    assert result.exit_code == 1 and "bad.csv: missing column(s) end_s, start_s" in result.output
    result = runner.invoke(app, ["build", "--task", "cooking_process", "--num", "1", "--out", str(tmp_path / "y"),
                                 "--steps-csv", str(steps)])
    assert result.exit_code == 1 and "--steps-csv needs --source" in result.output
