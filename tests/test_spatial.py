"""The spatial category end to end: build, validate, determinism, and answers checked against the pixels.

The pixel checks re-render every view from the scene and cameras kept in the facts, recompute left/right
(mask centroids), depth order (median of the depth map over each mask) and heights (mask boxes) from those
renders, and compare them with the option text the record marks as its answer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.builders.base import BuildOptions, run_build
from mirdata.builders.options import Slot, answer_position
from mirdata.cli import app
from mirdata.generators.render.raster import RasterRenderer
from mirdata.generators.scene import Camera, Scene, object_boxes
from mirdata.schema.record import Record
from mirdata.schema.tasks import CATEGORIES
from mirdata.schema.validate import validate_dir

NUM = 5
SIZE = (192, 144)


def _build(out: Path, workers: int = 1) -> None:
    options = BuildOptions(out=out, seed=11, num=NUM, workers=workers, image_size=SIZE, image_format="png")
    run = run_build(options, list(CATEGORIES["spatial"]), show_progress=False)
    assert run["failed"] == []


def _digest(root: Path) -> dict[str, str]:
    files = [root / "records.jsonl", *sorted((root / "images").rglob("*.png"))]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spatial") / "data"
    _build(out)
    return out


@pytest.fixture(scope="module")
def records(built: Path) -> dict[str, list[Record]]:
    by_task: dict[str, list[Record]] = {}
    for line in (built / "records.jsonl").read_text().splitlines():
        r = Record.from_dict(json.loads(line))
        by_task.setdefault(r.task, []).append(r)
    return by_task


@pytest.fixture(scope="module")
def renderer():
    r = RasterRenderer()
    yield r
    r.close()


class Measured:
    """What a fresh render of one view says: per object id, mask centroid x, median depth, box."""

    def __init__(self, renderer: RasterRenderer, scene: Scene, camera_facts: dict):
        camera = Camera.from_facts(camera_facts)
        self.result = renderer.render(scene, camera)
        inst, depth = self.result.instance, self.result.depth
        self.boxes = {oid: box for oid, (box, _) in object_boxes(inst).items()}
        self.x = {oid: np.nonzero(inst == oid)[1].mean() for oid in self.boxes}
        self.depth = {oid: float(np.median(depth[inst == oid])) for oid in self.boxes}


def test_all_four_tasks_build_and_validate(built: Path, records):
    report = validate_dir(built)
    assert report.ok, [f.to_dict() for f in report.failures]
    assert sorted(records) == sorted(CATEGORIES["spatial"])
    assert all(len(v) == NUM for v in records.values())
    for recs in records.values():
        for r in recs:
            assert r.meta["generator"] == "scene/raster"
            assert len(r.images) >= 2 and r.regions
            assert r.conclusion.endswith(f"the answer is {r.answer}.")
            assert all(f"[{reg.id}]" in r.text2region for reg in r.regions)


def test_answer_letters_are_spread_evenly(records):
    for recs in records.values():
        for r in recs:
            assert r.answer == "ABCDE"[answer_position(Slot(r.task, r.meta["seed"], r.meta["index"]), len(r.options))]
        assert len({r.answer for r in recs}) >= 3


def test_same_seed_gives_identical_bytes_with_any_worker_count(built: Path, tmp_path: Path):
    again = tmp_path / "again"
    _build(again, workers=2)
    assert _digest(again) == _digest(built)


def test_images_and_regions_are_what_the_facts_render(built: Path, records, renderer):
    """Every stored image is exactly the render of the scene and camera in its facts; regions are mask boxes."""
    for r in records["depth_relationship"][:2] + records["location_relationship"][:2]:
        scene = Scene.from_facts(r.meta["facts"]["scene"])
        for k, view in enumerate(r.meta["facts"]["views"]):
            m = Measured(renderer, scene, view["camera"])
            assert np.array_equal(np.array(Image.open(built / r.images[k]).convert("RGB")), m.result.color)
            for reg in (g for g in r.regions if g.image == k):
                oid = next(o["id"] for o in r.meta["facts"]["scene"]["objects"] if o["name"] == f"the {reg.label}")
                assert reg.box == [float(v) for v in m.boxes[oid]]


def _name_to_id(r: Record) -> dict[str, int]:
    return {o["name"]: o["id"] for o in r.meta["facts"]["scene"]["objects"]}


def test_depth_answers_match_the_depth_maps(records, renderer):
    for r in records["depth_relationship"]:
        f = r.meta["facts"]
        scene, ids = Scene.from_facts(f["scene"]), _name_to_id(r)
        views = [Measured(renderer, scene, v["camera"]) for v in f["views"]]
        fam = f["answer"]["family"]
        if fam == "which_image":
            oid = f["answer"]["object"]
            nearest = min(range(len(views)), key=lambda k: views[k].depth[oid])
            assert r.answer_text == f"Image {nearest + 1}"
            continue
        k = f["answer"]["image"]
        assert f"image {k + 1}" in r.question
        candidates = [ids[t] for t in r.option_texts if t in ids] if fam != "order" else f["answer"]["candidates"]
        by_depth = sorted(candidates, key=lambda o: views[k].depth[o])
        if fam == "nearest":
            assert ids[r.answer_text] == by_depth[0]
        elif fam == "farthest":
            assert ids[r.answer_text] == by_depth[-1]
        else:
            assert r.answer_text == ", ".join(scene.by_id(o).name for o in by_depth)


def test_location_answers_match_the_hidden_view(records, renderer):
    for r in records["location_relationship"]:
        f = r.meta["facts"]
        scene, ids = Scene.from_facts(f["scene"]), _name_to_id(r)
        m = Measured(renderer, scene, f["query_view"]["camera"])
        ans = f["answer"]
        if ans["family"] == "pair":
            a, b = ans["a"], ans["b"]
            side = "left" if m.x[a] < m.x[b] else "right"
            near = "closer to" if m.depth[a] < m.depth[b] else "farther from"
            assert r.answer_text == f"to the {side} of {scene.by_id(b).name} and {near} you"
        else:
            cands = [ids[t] for t in r.option_texts]
            score = {"leftmost": m.x, "rightmost": {o: -x for o, x in m.x.items()},
                     "nearest": m.depth, "farthest": {o: -d for o, d in m.depth.items()}}[ans["extreme"]]
            assert ids[r.answer_text] == min(cands, key=score.__getitem__)
        # The hidden view is not one of the photos.
        assert all(v["camera"] != f["query_view"]["camera"] for v in f["views"])


def test_view_3d_answer_image_is_the_asked_viewpoint(built: Path, records, renderer):
    for r in records["view_3d"]:
        f = r.meta["facts"]
        scene = Scene.from_facts(f["scene"])
        asked = f["viewpoints"][f["answer"]["asked"]]
        ref = Camera.from_facts(f["views"][0]["camera"])
        # Turn the reference camera about the scene centre by the asked angle, at the asked elevation.
        c = scene.centre()
        az = np.degrees(np.arctan2(ref.position[0] - c[0], -(ref.position[1] - c[1]))) + asked["turn_deg"]
        dist = f["distance_m"]
        el = np.radians(asked["elevation_deg"])
        expected = c + dist * np.array([np.sin(np.radians(az)) * np.cos(el), -np.cos(np.radians(az)) * np.cos(el),
                                        np.sin(el)])
        if f["answer"]["family"] == "pick_image":
            image = int(r.answer_text.split()[-1]) - 1
        else:
            image = f["answer"]["answer_image"] - 1
            assert r.answer_text == f["answer"]["asked"]
        camera = f["views"][image]["camera"]
        assert np.allclose(camera["position_m"], expected, atol=1e-3)
        m = Measured(renderer, scene, camera)
        assert np.array_equal(np.array(Image.open(built / r.images[image]).convert("RGB")), m.result.color)
        # No other image shows the objects in the same left-to-right order.
        orders = []
        for v in f["views"][1:]:
            vis = [int(k) for k, o in v["objects"].items() if o["visible"]]
            orders.append(tuple(sorted(vis, key=lambda k: v["objects"][str(k)]["mask_centroid_x"])))
        assert len(set(orders)) == len(orders)


def test_forced_perspective_answers_follow_from_the_reference_car(records, renderer):
    for r in records["forced_perspective"]:
        f = r.meta["facts"]
        car_h = f["reference"]["height_m"]
        estimates, looks = [], []
        for im in f["images"]:
            m = Measured(renderer, Scene.from_facts(im["scene"]), im["view"]["camera"])
            h = {oid: box[3] - box[1] for oid, box in m.boxes.items()}
            estimates.append(car_h * h[2] / h[1] * m.depth[2] / m.depth[1])
            looks.append(h[2])
        truth = [im["true_height_m"] for im in f["images"]]
        if f["answer"]["family"] == "tallest":
            top = int(np.argmax(truth))
            assert r.answer_text == f["images"][top]["object"]
            assert int(np.argmax(estimates)) == top
            assert int(np.argmax(looks)) != top or int(np.argmax(np.array(looks) / np.array(
                [im["car_height_px"] for im in f["images"]]))) != top
        else:
            k = f["answer"]["answer_image"] - 1
            ratio = truth[k] / car_h
            low, high = {"less than about half as tall as the car": (0, 0.55), "about as tall as the car": (0.8, 1.25),
                         "roughly two to three times as tall as the car": (1.8, 3.2),
                         "more than four times as tall as the car": (4.0, 99)}[r.answer_text]
            assert low <= ratio < high
            assert low <= estimates[k] / car_h < high
            assert not low <= f["images"][k]["apparent_height_px"] / f["images"][k]["car_height_px"] < high


def test_cli_builds_spatial_and_names_a_bad_renderer(tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "cli"
    ok = runner.invoke(app, ["build", "--category", "spatial", "--num", "1", "--out", str(out),
                             "--image-size", "128x96", "--views", "2"])
    assert ok.exit_code == 0, ok.output
    assert len((out / "records.jsonl").read_text().splitlines()) == 4
    assert all(len(json.loads(line)["images"]) == 2 for line in (out / "records.jsonl").read_text().splitlines())
    too_many = runner.invoke(app, ["build", "--task", "view_3d", "--num", "1", "--out", str(tmp_path / "many"),
                                   "--views", "6"])
    assert too_many.exit_code == 1 and "at most 5 views" in too_many.output
    bad = runner.invoke(app, ["build", "--category", "spatial", "--num", "1", "--out", str(tmp_path / "bad"),
                              "--renderer", "povray"])
    assert bad.exit_code == 1
    assert "unknown renderer 'povray'" in bad.output
