"""A task from another package: examples/plugin-task installed for real, then built, checked and released by
the `mirdata` command, and its answers counted again from the saved pictures' pixels."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy import ndimage

from mirdata.store import MIRStore

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "plugin-task"
SPEC_FILE = EXAMPLE / "src" / "mirdata_object_count" / "object_count.yaml"
# 36 records: 12 of each question family, and more than the 30 below which the audit reports too little power.
NUM = 36

# A shape's colour, as a viewer names it, by its hue (PIL's HSV: 0-255 around the circle).
HUES = {"red": [(0, 12), (243, 256)], "yellow": [(25, 50)], "green": [(65, 110)], "blue": [(135, 180)]}
KIND_WORDS = {"circles": "circle", "squares": "square", "triangles": "triangle"}
STAGES = ("summary", "caption", "text2region", "region2region", "conclusion")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mirdata", *args], env=env, capture_output=True, text=True)


def plugin_env(*paths: Path) -> dict[str, str]:
    """The environment of a `mirdata` subprocess that sees `paths` (installed plugins) before the repository; a
    wide terminal, so that rich does not wrap a one-line message or the help's choices over several lines."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(REPO)]), "HF_HUB_OFFLINE": "1",
            "COLUMNS": "400"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example installed by pip into a target folder of its own (the shared environment is left as it is);
    it is installed from a copy, so that its build files stay out of the repository."""
    base = tmp_path_factory.mktemp("plugin")
    source = base / "plugin-task"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = base / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    return {**plugin_env(target), "HF_DATASETS_CACHE": str(base / "hf-cache")}


@pytest.fixture(scope="module")
def built(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("object_count") / "mir"
    done = run(env, "build", "--task", "object_count", "--num", str(NUM), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def records(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "records.jsonl").read_text().splitlines()]


def components(path: Path) -> list[tuple[str, str, list[int]]]:
    """(colour, kind, box) of every solid coloured shape in a saved picture: connected pieces of one hue,
    the kind told by how much of its box a piece fills (square 1, circle pi/4, triangle 1/2)."""
    with Image.open(path) as im:
        hsv = np.asarray(im.convert("RGB").convert("HSV")).astype(int)
    hue, vivid = hsv[..., 0], (hsv[..., 1] > 128) & (hsv[..., 2] > 100)
    found = []
    for colour, ranges in HUES.items():
        mask = vivid & np.any([(hue >= lo) & (hue < hi) for lo, hi in ranges], axis=0)
        labels, _ = ndimage.label(mask)
        for piece in ndimage.find_objects(labels):
            area = int((labels[piece] > 0).sum())
            h, w = piece[0].stop - piece[0].start, piece[1].stop - piece[1].start
            if area < 300:  # JPEG specks along edges, never a shape
                continue
            fill = area / (h * w)
            kind = "square" if fill > 0.9 else "circle" if fill > 0.65 else "triangle"
            found.append((colour, kind, [piece[1].start, piece[0].start, piece[1].stop, piece[0].stop]))
    return found


def asked(question: str) -> tuple[str, str | None, str | None, list[int]]:
    """The family, the asked colour and kind (None: any), and the compared images (1-based), from the text."""
    text = question.split("<image>")[-1]
    colours = [c for c in HUES if re.search(rf"\b{c}\b", text)]
    kinds = [k for word, k in KIND_WORDS.items() if re.search(rf"\b{word}\b", text)]
    assert len(colours) + len(kinds) in (1, 2) and len(colours) <= 1 and len(kinds) <= 1, text
    pair = [int(n) - 1 for n in re.findall(r"\bimage (\d)\b", text)][:2]
    family = "difference" if pair else "most" if "which" in text.lower() else "total"
    return family, colours[0] if colours else None, kinds[0] if kinds else None, pair


def test_the_task_builds_from_its_own_package_and_passes_validate_and_audit(env, built):
    rows = records(built)
    assert len(rows) == NUM and {r["task"] for r in rows} == {"object_count"}
    assert {r["category"] for r in rows} == {"analytical"}
    assert all(4 <= len(r["images"]) <= 6 for r in rows)
    validated = run(env, "validate", str(built))
    assert validated.returncode == 0 and "valid" in validated.stdout, validated.stdout + validated.stderr
    audited = run(env, "audit", str(built))
    assert audited.returncode == 0 and "passed" in audited.stdout, audited.stdout + audited.stderr
    assert "little power" not in audited.stdout


def test_answers_and_regions_agree_with_the_shapes_in_the_saved_pixels(built):
    families = set()
    for r in records(built):
        family, colour, kind, pair = asked(r["question"])
        families.add(family)
        shapes = [components(built / p) for p in r["images"]]
        assert all(3 <= len(found) <= 8 for found in shapes), r["id"]
        counted = [[box for c, k, box in found if colour in (None, c) and kind in (None, k)] for found in shapes]
        counts = [len(boxes) for boxes in counted]
        if family == "total":
            expected = str(sum(counts))
        elif family == "most":
            assert counts.count(max(counts)) == 1, r["id"]
            expected = f"Image {counts.index(max(counts)) + 1}"
        else:
            expected = str(counts[pair[0]] - counts[pair[1]])
        answer = r["options"][ord(r["answer"]) - ord("A")]
        assert answer == f"{r['answer']}. {expected}", (r["id"], counts, r["options"])
        # The regions are exactly the counted shapes of the images the question is about.
        wanted = sorted((k, box) for k in (pair or range(len(shapes))) for box in counted[k])
        got = sorted((reg["image"], reg["box"]) for reg in r["regions"])
        assert len(got) == len(wanted), r["id"]
        for (k, box), (image, region) in zip(wanted, got):
            assert image == k and max(abs(a - b) for a, b in zip(box, region)) <= 3, (r["id"], box, region)
        assert all(f"[{reg['id']}]" in r["text2region"] for reg in r["regions"])
        assert str(expected.split()[-1]) in r["conclusion"] and r["conclusion"].endswith(f"answer is {r['answer']}.")
    assert families == {"total", "most", "difference"}


def test_template_annotation_writes_the_same_stages_again_from_the_stored_facts(env, built, tmp_path):
    """reason() needs only the facts and regions: annotating the built folder again gives the same stages, and
    the stage checker finds every number and box they state backed by the facts."""
    root = tmp_path / "again"
    shutil.copytree(built, root)
    done = run(env, "annotate", str(root), "--annotator", "template")
    assert done.returncode == 0, done.stdout + done.stderr
    for before, after in zip(records(built), records(root)):
        assert {s: after[s] for s in STAGES} == {s: before[s] for s in STAGES}, before["id"]
        problems = {s: v["problems"] for s, v in after["meta"]["annotation"]["stages"].items() if v["problems"]}
        assert not problems, (after["id"], problems)


def test_build_help_and_the_task_list_name_the_plugin_task(env):
    shown = run(env, "build", "--help")
    assert shown.returncode == 0 and "object_count" in shown.stdout, shown.stdout
    listed = run(env, "tasks")
    row = [line for line in listed.stdout.splitlines() if "object_count" in line]
    assert listed.returncode == 0 and len(row) == 1, listed.stdout
    assert "analytical" in row[0] and "mirdata-object-count" in row[0] and "total, most, difference" in row[0]


def test_release_card_lists_the_task_with_its_spec_definition(env, built, tmp_path):
    root = tmp_path / "rated"
    shutil.copytree(built, root)
    store = MIRStore(root)  # rated as `mirdata difficulty` would: every third record hard
    raw = store.read_raw()
    for i, r in enumerate(raw):
        r["difficulty"], r["pass_rate"] = ("hard", 0.2) if i % 3 == 0 else ("easy", 0.9)
    store.write(raw)
    released = run(env, "release", str(root), "--out", str(tmp_path / "repo"))
    assert released.returncode == 0, released.stdout + released.stderr
    card = (tmp_path / "repo" / "README.md").read_text()
    definition = " ".join(yaml.safe_load(SPEC_FILE.read_text())["definition"].split())
    lines = [line for line in card.splitlines() if line.startswith("- `object_count` (analytical)")]
    assert len(lines) == 1 and definition in lines[0], lines
    assert "config_name: object_count" in card


def test_a_config_field_of_the_plugin_is_set_from_the_command_line(env, tmp_path):
    out = tmp_path / "few"
    done = run(env, "build", "--task", "object_count", "--num", "3", "--out", str(out), "--set", "max_objects=5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(3 <= len(components(out / p)) <= 5 for r in records(out) for p in r["images"])
    bad = run(env, "build", "--task", "object_count", "--num", "1", "--out", str(tmp_path / "bad"),
              "--set", "max_objects=50")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "max_objects=50" in bad.stdout + bad.stderr


def test_a_broken_plugin_is_reported_in_one_line_and_the_builtin_tasks_still_build(tmp_path):
    site = tmp_path / "site"
    dist = site / "broken_tasks-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-tasks\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mirdata.tasks]\nghost_task = mirdata_no_such_module:SPEC\n")
    out = tmp_path / "mir"
    done = run(plugin_env(site), "build", "--task", "weight_comparison", "--num", "1", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["task"] for r in records(out)] == ["weight_comparison"]
    said = [line for line in (done.stdout + done.stderr).splitlines() if "ghost_task" in line]
    assert len(said) == 1 and "mirdata_no_such_module" in said[0], done.stdout + done.stderr
    assert "Traceback" not in done.stderr
