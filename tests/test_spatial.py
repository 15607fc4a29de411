"""The spatial category end to end: build, validate, determinism, and answers re-derived from fresh renders.

Every check re-renders the views from the scene and cameras kept in the facts and measures them here, with its
own code: ground distances by casting the depth map's pixels back into the world, left/right by mask centroids,
heights by mask rows; then compares with the option the record marks as its answer. Boxes must be the boxes of
the objects' visible pixels, and every number in the reasoning must be one a shown image measures.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.builders.base import BuildOptions, run_build
from mirdata.cli import app
from mirdata.generators.render.raster import RasterRenderer
from mirdata.generators.scene import Camera, Scene, SceneObject
from mirdata.registry import tasks_of
from mirdata.schema.record import Record
from mirdata.validate import validate_dir

NUM = 3
SIZE = (256, 192)


def _build(out: Path, workers: int = 1) -> None:
    options = BuildOptions(out=out, seed=11, num=NUM, workers=workers, image_size=SIZE, image_format="png")
    run = run_build(options, list(tasks_of("spatial")), show_progress=False)
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


def _mirrored(scene: Scene) -> Scene:
    cx = float(np.mean([o.position[0] for o in scene.objects]))
    return Scene([SceneObject(o.id, o.kind, o.colour, o.material, o.size, (round(2 * cx - o.position[0], 3),
                                                                          o.position[1]), round(np.pi - o.yaw, 4))
                  for o in scene.objects], scene.light, scene.ground, scene.sky_colour)


class Measured:
    """A fresh render of one view, measured here: per object id its mask, box, centroid x, ground distance."""

    def __init__(self, renderer: RasterRenderer, scene: Scene, camera_facts: dict):
        self.camera = camera = Camera.from_facts(camera_facts)
        self.result = renderer.render(scene, camera)
        inst, depth = self.result.instance, self.result.depth
        self.box, self.x, self.distance, self.pixels = {}, {}, {}, {}
        rot = camera.view_matrix()[:3, :3]
        for oid in (int(v) for v in np.unique(inst) if v):
            ys, xs = np.nonzero(inst == oid)
            self.pixels[oid] = len(xs)
            self.box[oid] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            self.x[oid] = xs.mean() + 0.5
            d = depth[ys, xs]
            rays = np.stack([(xs + 0.5 - camera.width / 2) / camera.focal,
                             -(ys + 0.5 - camera.height / 2) / camera.focal, -np.ones_like(d)], axis=1) * d[:, None]
            world = rays @ rot  # offsets from the camera in world axes
            self.distance[oid] = float(np.percentile(np.hypot(world[:, 0], world[:, 1]), 1))

    def base(self, oid: int) -> int:
        return int(self.box[oid][3])

    def nearer(self, a: int, b: int) -> bool:
        """Clearly nearer: 0.8 m / 15 % on the ground distance and 3 % of the height on the bases."""
        da, db = self.distance[a], self.distance[b]
        return db - da >= max(0.8, 0.15 * da) and self.base(a) - self.base(b) >= 0.03 * self.camera.height


def _views(renderer, r: Record) -> list[Measured]:
    f = r.meta["facts"]
    scene = Scene.from_facts(f["scene"])
    decoy = f["answer"].get("decoy_image")
    return [Measured(renderer, _mirrored(scene) if k == decoy else scene, v["camera"]) for k, v in enumerate(f["views"])]


@pytest.fixture(scope="module")
def measured(records, renderer) -> dict[str, list[Measured]]:
    return {r.id: _views(renderer, r) for recs in records.values() for r in recs}


def _ids(r: Record) -> dict[str, int]:
    return {o["name"]: o["id"] for o in r.meta["facts"]["scene"]["objects"]}


def test_all_four_tasks_build_validate_and_share_no_image(built: Path, records):
    report = validate_dir(built)
    assert report.ok, [f.to_dict() for f in report.failures]
    assert sorted(records) == sorted(tasks_of("spatial"))
    hashes = [hashlib.sha256((built / p).read_bytes()).hexdigest() for recs in records.values() for r in recs
              for p in r.images]
    assert len(hashes) == len(set(hashes))
    for recs in records.values():
        assert len(recs) == NUM
        for r in recs:
            assert len(r.images) == 6 and r.question.count("<image>") == 6
            assert r.conclusion.endswith(f"the answer is {r.answer}.")
            assert all(f"[{reg.id}]" in r.text2region for reg in r.regions)


def test_same_seed_gives_identical_bytes_with_any_worker_count(built: Path, tmp_path: Path):
    again = tmp_path / "again"
    _build(again, workers=2)
    assert _digest(again) == _digest(built)


def test_images_are_the_renders_of_their_facts_and_boxes_hold_the_visible_pixels(built, records, measured):
    for recs in records.values():
        for r in recs:
            ids = _ids(r)
            for k, m in enumerate(measured[r.id]):
                assert np.array_equal(np.array(Image.open(built / r.images[k]).convert("RGB")), m.result.color)
            for reg in r.regions:
                assert reg.box == [float(v) for v in measured[r.id][reg.image].box[ids[f"the {reg.label}"]]]


def test_captions_name_every_noticeable_object_and_say_which_are_cut_off(records, measured):
    for recs in records.values():
        for r in recs:
            names = {o["id"]: o["name"] for o in r.meta["facts"]["scene"]["objects"]}
            for caption, m in zip(r.caption, measured[r.id]):
                w, h = m.camera.width, m.camera.height
                for oid, count in m.pixels.items():
                    if count >= 0.0003 * w * h:
                        assert names[oid] in caption, (r.id, names[oid], caption)
                        x0, y0, x1, y1 = m.box[oid]
                        if x0 == 0 or y0 == 0 or x1 == w or y1 == h:
                            assert f"{names[oid]} (partly visible" in caption


def _numbers(text: str) -> list[str]:
    text = re.sub(r"\[r\d+\]", "", text)
    return re.findall(r"\d+(?:\.\d+)?", text)


def test_every_number_in_the_reasoning_is_measured_in_a_shown_image_or_stated(records, measured):
    for recs in records.values():
        for r in recs:
            ids = _ids(r)
            allowed = set(_numbers(r.question + " ".join(r.option_texts))) | {str(k) for k in range(1, len(r.images) + 1)}
            for reg in r.regions:
                m = measured[r.id][reg.image]
                oid = ids[f"the {reg.label}"]
                x0, y0, x1, y1 = (int(v) for v in m.box[oid])
                allowed |= {str(v) for v in (x0, y0, x1, y1, y1 - y0)} | {f"{round(m.x[oid], 1):.1f}"}
            f = r.meta["facts"]
            if r.task == "forced_perspective":  # readings against the person: heights from the shown boxes
                for i, k in zip((1, 2, 3), f["check_images"]):
                    m = measured[r.id][k]
                    tall = lambda o: int(m.box[o][3] - m.box[o][1])
                    allowed.add(f"{f['person']['height_m'] * tall(i) / tall(4):.1f}")
                allowed |= {f"{f['person']['height_m']:.2f}"}
            for text in (r.region2region, r.conclusion, *r.caption, r.summary):
                for number in _numbers(text):
                    assert number in allowed, (r.id, number, text)


def test_depth_answers_follow_from_ground_distances_in_the_depth_maps(records, measured):
    for r in records["depth_relationship"]:
        f, views, ids = r.meta["facts"], measured[r.id], _ids(r)
        photos = [int(t.split()[-1]) - 1 for t in r.option_texts if t.startswith("Photo")]
        ans = f["answer"]
        if ans["family"] == "which_image":
            a = ans["object"]
            best = min(photos, key=lambda k: views[k].distance[a])
            assert r.answer_text == f"Photo {best + 1}"
            assert all(views[k].distance[a] - views[best].distance[a] >= 0.8 for k in photos if k != best)
        elif ans["family"] == "swap":
            a, b = ans["a"], ans["b"]
            assert views[ans["premise_image"]].nearer(a, b)
            flipped = [k for k in photos if views[k].nearer(b, a)]
            assert [r.answer_text] == [f"Photo {k + 1}" for k in flipped]
            assert all(views[k].nearer(a, b) for k in photos if k not in flipped)
        else:
            texts = []
            for k in ans["images"]:
                order = sorted(ans["candidates"], key=lambda o: views[k].distance[o])
                assert all(views[k].nearer(p, q) for p, q in zip(order, order[1:]))
                texts.append(f"photo {k + 1}: " + ", ".join(next(n for n, i in ids.items() if i == o) for o in order))
            assert r.answer_text == "; ".join(texts)


def test_location_answers_match_the_asked_spot_and_both_neighbouring_photos(records, measured, renderer):
    for r in records["location_relationship"]:
        f, ids = r.meta["facts"], _ids(r)
        scene = Scene.from_facts(f["scene"])
        hidden = Measured(renderer, scene, f["query_view"]["camera"])
        judges = [hidden, *(measured[r.id][k] for k in f["neighbours"])]
        ans = f["answer"]
        for m in judges:
            if ans["family"] == "pair":
                a, b = ans["a"], ans["b"]
                side = "left" if m.x[a] < m.x[b] else "right"
                near = "closer to" if m.nearer(a, b) else "farther from" if m.nearer(b, a) else None
                assert r.answer_text == f"to the {side} of {scene.by_id(b).name} and {near} you"
            elif ans["family"] == "extreme":
                cands = [ids[t] for t in r.option_texts]
                key = {"leftmost": lambda o: m.x[o], "rightmost": lambda o: -m.x[o],
                       "nearest": lambda o: m.distance[o], "farthest": lambda o: -m.distance[o]}[ans["extreme"]]
                assert ids[r.answer_text] == min(cands, key=key)
            else:
                order = sorted(ans["candidates"], key=lambda o: m.x[o])
                assert r.answer_text == ", ".join(scene.by_id(o).name for o in order)
        # The asked spot lies between the neighbours, none of the photos is taken there.
        walks = f["walks_deg"]
        before, after = (walks[k] % 360 for k in f["neighbours"])
        arc = (after - before) % 360
        assert 0 < (f["query_walk_deg"] - before) % 360 < arc <= 100
        assert not any(0 < (w - before) % 360 < arc for w in walks)
        assert all(v["camera"] != f["query_view"]["camera"] for v in f["views"])


def _walk_of(camera_facts: dict, first_facts: dict, centre: np.ndarray) -> float:
    """Degrees walked to the right from the first camera to this one, around the scene centre."""
    def azimuth(c):
        p = np.array(c["position_m"]) - centre
        return np.degrees(np.arctan2(p[0], -p[1]))
    return (azimuth(camera_facts) - azimuth(first_facts) + 180) % 360 - 180


def test_view_3d_answers_are_the_stated_walks(records):
    for r in records["view_3d"]:
        f = r.meta["facts"]
        scene = Scene.from_facts(f["scene"])
        centre = scene.centre()
        walk = [_walk_of(v["camera"], f["views"][0]["camera"], centre) for v in f["views"]]
        ans = f["answer"]
        if ans["family"] in ("pick_image", "name_view"):
            k = int(r.answer_text.split()[-1]) - 1 if ans["family"] == "pick_image" else ans["image"]
            stated = int(re.search(r"about (\d+) degrees", r.question if ans["family"] == "pick_image"
                                   else r.answer_text).group(1))
            side = "right" if "right" in (r.question if ans["family"] == "pick_image" else r.answer_text) else "left"
            assert walk[k] == pytest.approx(stated if side == "right" else -stated, abs=0.5)
            if ans["family"] == "pick_image":
                others = [int(t.split()[-1]) - 1 for t in r.option_texts if int(t.split()[-1]) - 1 != k]
                assert all(abs((walk[j] - walk[k] + 180) % 360 - 180) >= 40 or j == ans["decoy_image"] for j in others)
        else:
            expected = sorted(range(1, len(walk)), key=lambda j: walk[j] % 360)
            assert r.answer_text == ", ".join(f"photo {j + 1}" for j in expected)


def test_forced_perspective_answers_follow_from_true_sizes_and_read_against_the_person(records, measured):
    for r in records["forced_perspective"]:
        f, views = r.meta["facts"], measured[r.id]
        scene = Scene.from_facts(f["scene"])
        true = [scene.by_id(i).size[2] for i in (1, 2, 3)]
        names = [scene.by_id(i).name for i in (1, 2, 3)]
        person = scene.by_id(4)
        assert person.kind == "figure" and f"{person.size[2]:.2f} m tall" in r.question
        for i, k in zip((1, 2, 3), f["check_images"]):
            m = views[k]
            assert abs(m.base(i) - m.base(4)) <= 0.02 * SIZE[1]
            reading = person.size[2] * (m.box[i][3] - m.box[i][1]) / (m.box[4][3] - m.box[4][1])
            assert reading == pytest.approx(true[i - 1], rel=0.1)
        ans = f["answer"]
        if ans["family"] == "tallest":
            top = int(np.argmax(true))
            if max(true) <= 1.03 * min(true):
                assert r.answer_text == "they are all about the same height"
            else:
                assert r.answer_text == names[top] and all(true[top] >= 1.35 * t for j, t in enumerate(true) if j != top)
        elif ans["family"] == "compare":
            ratio = true[0] / true[1]
            expected = (f"{names[0]} is taller" if ratio >= 1.35 else f"{names[1]} is taller" if ratio <= 1 / 1.35
                        else "they are about the same height" if abs(ratio - 1) <= 0.03 else None)
            assert r.answer_text == expected
        else:
            values = [float(re.search(r"[\d.]+", t).group()) for t in r.option_texts]
            assert r.answer_text == f"about {round(true[0], 1):.1f} m"
            assert min(values, key=lambda v: abs(v - true[0])) == round(true[0], 1)


def test_cli_builds_spatial_and_names_bad_options(tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "cli"
    ok = runner.invoke(app, ["build", "--task", "view_3d", "--num", "1", "--out", str(out),
                             "--image-size", "160x120", "--views", "4"])
    assert ok.exit_code == 0, ok.output
    assert all(len(json.loads(line)["images"]) == 4 for line in (out / "records.jsonl").read_text().splitlines())
    few = runner.invoke(app, ["build", "--task", "depth_relationship", "--num", "1", "--out", str(tmp_path / "few"),
                              "--views", "3"])
    assert few.exit_code == 1 and "takes 5 to 12 views" in few.output
    bad = runner.invoke(app, ["build", "--category", "spatial", "--num", "1", "--out", str(tmp_path / "bad"),
                              "--renderer", "povray"])
    assert bad.exit_code == 1 and "unknown renderer 'povray'" in bad.output
