"""The spatial category: questions about positions, depth and size that need several rendered views of a scene.

Every scene is a scene graph (mirdata.generators.scene) on paved ground (square slabs of 1 m), rendered by the
chosen renderer. Every fact a question rests on is measured on the rendered depth maps and instance masks, with
margins, and must agree with the 3D geometry; a draw whose relation is too close to call is dropped and drawn
again. About six views per question; cameras sit at continuous azimuths and elevations around the scene.

Conventions shared by the four tasks:

* **Walks.** Photo 1 is taken from the start; every other photo's spot is stated as a walk around the objects,
  "about N degrees to the right/left", facing them again (N a multiple of 5, exactly the camera's turn).
  Walking to the right moves the camera counter-clockwise seen from above, so the objects on the right of
  photo 1 come nearer. Photos are numbered in random order, not in walking order.
* **Distance.** How far an object is from a camera is the distance along the ground from the camera to the
  object's nearest visible surface: every pixel of the object's mask is cast back into the world with the depth
  map, and the 1st percentile of their horizontal distances is taken. A viewer reads it from where the object
  meets the ground (lower in the picture is nearer) and from what hides what. Two objects are in a near/far
  order only when their distances differ by at least max(0.8 m, 15 %) and their bases (mask bottoms) are at
  least 3 % of the image height apart the same way round, neither cut off by the frame.
* **Left/right.** By mask centroids at least 6 % of the image width apart; the projected 3D centres must agree.
* **Reasoning.** Captions name every object a viewer would notice (0.03 % of the image), left to right with
  that margin (objects closer across the picture are said to be at the same place), and say when one is cut off
  by the frame or partly hidden behind another. The other stages quote only what a shown image measures:
  pixel positions and heights of the region boxes, and figures derived from them and from sizes the question
  states.
* **The task contract.** Each task's definition, question families and phrase tables are its spec file
  (mirdata/tasks/<task>.yaml). `from_layout` draws the facts; they are measured on renders, so drawing them calls
  the renderer, and a search that needs the pixels of every view stays in the draw. The spec's constraints then
  reject degenerate draws, the family's answer rule solves the answer from the facts (the views' measurements,
  the stated walks, the true sizes), and the options and question texts are made from the solved facts.
  `reason` is a classmethod of the facts and regions alone; the renderer is made lazily, in the process that
  renders, never to write reasoning.
"""

from __future__ import annotations

import itertools
import math
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

import numpy as np
from PIL import Image

from mirdata.builders.base import (BuildOptions, Reasoning, Regions, Sample, Task, TaskConfig, cite, conclude, join_and,
                                   pick)
from mirdata.builders.families import AnswerRule, Constraint
from mirdata.builders.options import Slot, balanced_index, ordering_distractors, place_answer, special_is_answer
from mirdata.errors import MirdataError
from mirdata.generators.render import Renderer, RenderResult, check_renderer_name, create_renderer
from mirdata.generators.scene import (PRIMITIVES, Camera, Scene, SceneObject, orbit_camera, sample_backdrop,
                                      sample_identities, sample_layout, sample_light, view_facts)
from mirdata.registry import Family, TaskSpec
from mirdata.schema.record import Region

LAYOUT_TRIES = 4  # layouts drawn per attempt before the runner is asked for a fresh RNG
MIN_GAP_X = 0.06  # left/right needs the mask centroids this share of the image width apart
MIN_GAP_M, MIN_GAP_SHARE = 0.8, 0.15  # near/far needs ground distances this far apart (metres, share)
MIN_GAP_BASE = 0.03  # ... and the bases this share of the image height apart
MAX_VIEWS = 12

SceneFacts = dict[str, Any]  # Scene.to_facts(): every number the renderers use
ViewFacts = dict[str, Any]  # view_facts(): the camera, and what the view's pixels say about each object


@dataclass(frozen=True)
class SpatialConfig(TaskConfig):
    """The build options the spatial tasks read."""

    renderer: str | None = None  # the renderer's name (None: the default)
    views: int | None = None  # photos per question (None: the task's default)
    device: str = "cpu"


def _short(name: str) -> str:
    """'the red cube' -> 'red cube' (region labels)."""
    return name.removeprefix("the ")


def walk_text(walk: int) -> str:
    """A signed walk in degrees (right positive) as the questions state it."""
    if walk == 0:
        return "from the starting spot"
    return f"after walking about {abs(walk)} degrees to the {_side(walk)} around the objects"


def _side(walk: int) -> str:
    return "right" if walk > 0 else "left"


@dataclass
class View:
    """One rendered view and what its pixels say about each object."""

    camera: Camera
    result: RenderResult | None
    facts: dict[str, Any]

    @classmethod
    def of(cls, facts: ViewFacts) -> View:
        """A view as its stored facts describe it, with no render: what answer rules and reason() read."""
        return cls(Camera.from_facts(facts["camera"]), None, facts)

    def obj(self, oid: int) -> dict[str, Any]:
        return self.facts["objects"][str(oid)]

    def visible(self, oid: int) -> bool:
        return bool(self.obj(oid)["visible"])

    def seen(self, oid: int) -> bool:
        return bool(self.obj(oid)["seen"])

    def whole(self, oid: int) -> bool:
        """Visible, not cut off by the frame and hidden by nothing: its size and base can be read."""
        o = self.obj(oid)
        return bool(o["visible"]) and not o["cut_off"] and not o["hidden_by"]

    def box(self, oid: int) -> list[int]:
        return self.obj(oid)["box"]

    def base(self, oid: int) -> int:
        return self.box(oid)[3]

    def height_px(self, oid: int) -> int:
        return self.box(oid)[3] - self.box(oid)[1]

    def distance(self, oid: int) -> float:
        return self.obj(oid)["ground_distance_m"]

    def x(self, oid: int) -> float:
        return self.obj(oid)["mask_centroid_x"]

    def image(self) -> Image.Image:
        return Image.fromarray(self.result.color)

    @property
    def width(self) -> int:
        return self.camera.width

    @property
    def height(self) -> int:
        return self.camera.height

    def left_of(self, a: int, b: int) -> bool:
        """a lies clearly left of b (pixels and projected centres agree)."""
        if not (self.visible(a) and self.visible(b)):
            return False
        dx = self.x(b) - self.x(a)
        dc = self.obj(b)["centre_px"][0] - self.obj(a)["centre_px"][0]
        return dx >= MIN_GAP_X * self.width and dc > 0

    def nearer(self, a: int, b: int) -> bool:
        """a is clearly nearer than b: ground distances and bases agree, with margins (module docstring)."""
        oa, ob = self.obj(a), self.obj(b)
        if not (oa["visible"] and ob["visible"]) or oa["cut_off"] or ob["cut_off"]:
            return False
        da, db = oa["ground_distance_m"], ob["ground_distance_m"]
        return (db - da >= max(MIN_GAP_M, MIN_GAP_SHARE * da)
                and self.base(a) - self.base(b) >= MIN_GAP_BASE * self.height)

    def left_to_right(self) -> list[int]:
        """Visible objects by mask centroid."""
        return sorted((int(k) for k, v in self.facts["objects"].items() if v["visible"]), key=self.x)

    def clear_order(self, ids: list[int], relation: str) -> bool:
        """Whether `ids` are in clear 'left' or 'near' order, each neighbour pair with its margin."""
        test = self.left_of if relation == "left" else self.nearer
        return all(test(a, b) for a, b in zip(ids, ids[1:]))


def _ground_words(ground: str) -> str:
    return f"{ground} paving"


def caption_text(view: dict[str, Any], objects: dict[str, dict[str, Any]], where: str, ground: str) -> str:
    """One image's caption from its facts: every object a viewer would notice, left to right with a margin,
    the cut-off and partly hidden ones said so, and the nearest one when it is clearly nearest."""
    width, height = view["camera"]["size_px"]
    seen = sorted((k for k, o in view["objects"].items() if o["seen"]),
                  key=lambda k: view["objects"][k]["mask_centroid_x"])
    if not seen:
        return f"A photo taken {where}: only the {_ground_words(ground)} ground shows."

    def named(k: str) -> str:
        o = view["objects"][k]
        name = objects[k]["name"]
        if o["cut_off"]:
            return f"{name} (partly visible, cut off by the edge of the picture)"
        behind = [objects[str(i)]["name"] for i in o["hidden_by"] if view["objects"][str(i)]["seen"]]
        if behind:
            return f"{name} (partly visible behind {join_and(behind)})"
        return name

    groups: list[list[str]] = [[seen[0]]]
    for prev, k in zip(seen, seen[1:]):
        gap = view["objects"][k]["mask_centroid_x"] - view["objects"][prev]["mask_centroid_x"]
        if gap < MIN_GAP_X * width:
            groups[-1].append(k)
        else:
            groups.append([k])
    parts = [named(g[0]) if len(g) == 1 else f"{join_and([named(k) for k in g])} at about the same place across "
             "the picture" for g in groups]
    if len(seen) == 1:
        text = f"A photo taken {where}: {parts[0]} stands on {_ground_words(ground)}."
    else:
        text = f"A photo taken {where}, on {_ground_words(ground)}; from left to right: {'; then '.join(parts)}."
    facts = {int(k): view["objects"][k] for k in seen}
    probe = View.of(view)
    nearest = [a for a in facts if all(probe.nearer(a, b) for b in facts if b != a)]
    if len(facts) >= 2 and nearest:
        text += f" {objects[str(nearest[0])]['name'].capitalize()} is the nearest to the camera."
    return text


def sample_walks(rng: np.random.Generator, n: int, min_gap: int = 30, max_gap: int = 110) -> list[int] | None:
    """Signed walks (degrees, multiples of 5, right positive) for n photos, the first at 0, their spots around
    the circle no closer than `min_gap` and no gap wider than `max_gap`; photo order random after the first."""
    for _ in range(40):
        spots = sorted([0, *(5 * int(v) for v in rng.choice(np.arange(1, 72), size=n - 1, replace=False))])
        gaps = np.diff([*spots, 360])
        if gaps.min() >= min_gap and gaps.max() <= max_gap:
            others = [spots[i] for i in 1 + rng.permutation(n - 1)]
            return [0, *(s if s <= 180 else s - 360 for s in others)]
    return None


class SpatialTask(Task):
    """Shared by the four spatial tasks: the lazily made renderer, scene sampling, rendering views, captions."""

    Config: ClassVar[type[TaskConfig]] = SpatialConfig
    config: SpatialConfig
    default_views: ClassVar[int] = 6
    min_views: ClassVar[int] = 3

    def __init__(self, spec: TaskSpec, options: BuildOptions):
        super().__init__(spec, options)
        check_renderer_name(self.config.renderer)
        views = self.config.views
        if views is not None and not self.min_views <= views <= MAX_VIEWS:
            raise MirdataError(f"{self.name} takes {self.min_views} to {MAX_VIEWS} views, not {views}")
        self._renderer: Renderer | None = None

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:  # made in the worker process that uses it, never by reason()
            self._renderer = create_renderer(self.config.renderer, self.config.device)
        return self._renderer

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    @property
    def views(self) -> int:
        return self.config.views or self.default_views

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.config.image_size)  # type: ignore[return-value]

    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        """Up to LAYOUT_TRIES fresh layouts from this RNG; most refusals are cheap (before much rendering).

        Every run of len(families) records asks each family once. Answer positions and a family's own balanced
        choices are keyed on the record's slot among that family's records, so they are balanced within each
        family, not only over the build."""
        family = self.families.choose(slot, "family")
        within = Slot(f"{self.name}/{family.name}", slot.seed, slot.index // len(self.families.names))
        for _ in range(LAYOUT_TRIES):
            sample = self.from_layout(family, within, rng)
            if sample is not None:
                return sample
        return None

    @abstractmethod
    def from_layout(self, family: Family, slot: Slot, rng: np.random.Generator) -> Sample | None:
        """One sample of `family` from one freshly drawn scene, or None when that scene cannot give a provable
        question. The facts are measured on renders, so drawing them calls the renderer."""

    @classmethod
    def phrases(cls) -> Mapping[str, Any]:
        """The phrase tables of the task's spec, for reason(): a classmethod, it has no spec of its own."""
        return cls.registered_spec().phrases

    def shoot(self, scene: Scene, camera: Camera) -> View:
        result = self.renderer.render(scene, camera)
        return View(camera, result, view_facts(scene, camera, result.depth, result.instance))

    def sample_scene(self, rng: np.random.Generator, low: int = 4, high: int = 6) -> Scene | None:
        """A yard of primitives (0.7-1.6 m: crates, drums, boulders) and a real-sized car, tree or person."""
        n = int(rng.integers(low, high + 1))
        pool = list(PRIMITIVES) * 3 + ["car", "tree", "figure"]
        kinds = [pick(rng, pool) for _ in range(n)]
        scene = sample_layout(rng, kinds, area=2.6 + 0.7 * n + 1.5 * ("car" in kinds), gap=0.6)
        if scene is not None:
            scene.light = sample_light(rng)
            scene.ground, scene.sky_colour = sample_backdrop(rng)
        return scene

    def walk_cameras(self, scene: Scene, rng: np.random.Generator, walks: list[int], base: float,
                     distance: float) -> list[Camera]:
        """One camera per walk, each at its own elevation (18-40 degrees) and distance (0.95-1.15 x)."""
        cameras = []
        for walk in walks:
            elevation = round(float(rng.uniform(18, 40)), 1)
            cameras.append(orbit_camera(scene, base + walk, elevation,
                                        round(distance * float(rng.uniform(0.95, 1.15)), 2), self.size))
        return cameras

    def walk_views(self, scene: Scene, rng: np.random.Generator, walks: list[int], base: float,
                   distance: float) -> list[View]:
        return [self.shoot(scene, camera) for camera in self.walk_cameras(scene, rng, walks, base, distance)]

    @staticmethod
    def frame(scene: Scene, rng: np.random.Generator) -> tuple[float, float]:
        """(base azimuth, distance) that keep the whole scene in a 45-degree view."""
        return round(float(rng.uniform(0, 360)), 1), round(2.3 * scene.radius() + 3.0, 2)

    @staticmethod
    def regions_for(views: list[View], names: dict[int, str]) -> list[Region]:
        """A region (its mask box) for each named object in each view where it is seen, view by view."""
        regions = Regions()
        for k, view in enumerate(views):
            for oid, name in names.items():
                if view.seen(oid):
                    regions.add(k, view.box(oid), _short(name))
        return regions.items

    def generator_name(self) -> str:
        return f"scene/{self.renderer.name}"


# -- reasoning helpers: they read the facts and the regions only ---------------------------------------------

def grounding(regions: list[Region], names: dict[str, str]) -> str:
    """text2region: each named phrase tied to its boxes, image by image."""
    lines = []
    for label, phrase in names.items():
        hits = [r for r in regions if r.label == label]
        if hits:
            lines.append(f"'{phrase}' → {'; '.join(cite(r) for r in hits)}.")
    return " ".join(lines)


def captions(facts: Mapping[str, Any], places: list[str]) -> list[str]:
    objects = {str(o["id"]): o for o in facts["scene"]["objects"]}
    return [caption_text(v, objects, p, facts["scene"]["ground"]) for v, p in zip(facts["views"], places)]


def object_names(facts: Mapping[str, Any]) -> dict[int, str]:
    """Object id -> 'the red cube', from the scene facts."""
    return {int(o["id"]): o["name"] for o in facts["scene"]["objects"]}


def region_of(regions: list[Region], image: int, label: str) -> Region:
    return next(r for r in regions if r.image == image and r.label == label)


def where_text(regions: list[Region], facts_view: ViewFacts, image: int, oid: int, label: str) -> str:
    """'[r3] (centre x ≈ 120.5 px, base at y = 231 px, 88 px tall)': what image `image` measures of an object."""
    o = facts_view["objects"][str(oid)]
    x0, y0, x1, y1 = o["box"]
    return (f"[{region_of(regions, image, label).id}] (centre x ≈ {o['mask_centroid_x']:.1f} px, "
            f"base at y = {y1} px, {y1 - y0} px tall)")


# -- location_relationship --------------------------------------------------------------------------------

MAX_FLANK_GAP = 100  # degrees: the walk meets any line through two objects at spots more than this apart
QUERY_CLEARANCE = 15  # degrees between the asked spot and the photos on either side of it


class LocationAnswer(TypedDict, total=False):
    family: str
    a: int  # pair: where is a relative to b
    b: int
    left_right: str  # "left" / "right" of b
    near_far: str  # "near" / "far": closer to or farther from the camera than b
    extreme: str  # extreme: leftmost, rightmost, nearest or farthest
    candidates: list[int]  # extreme, order: the objects the question lists, in its order
    winner: int
    order: list[int]  # order: left to right


class LocationFacts(TypedDict):
    scene: SceneFacts
    views: list[ViewFacts]
    walks_deg: list[int]
    query_walk_deg: int
    neighbours: list[int]  # the photos whose spots flank the asked one
    query_view: ViewFacts  # rendered from the asked spot, never shown
    answer: LocationAnswer
    base_azimuth_deg: float
    distance_m: float


def _beats(view: View, a: int, b: int, extreme: str) -> bool:
    """a is clearly more `extreme` than b in the view."""
    return {"leftmost": lambda: view.left_of(a, b), "rightmost": lambda: view.left_of(b, a),
            "nearest": lambda: view.nearer(a, b), "farthest": lambda: view.nearer(b, a)}[extreme]()


def _relation(judges: list[View], a: int, b: int) -> tuple[str | None, str | None]:
    """(left/right, near/far) of a seen against b, each where every judging view shows it with its margin."""
    lr = "left" if all(v.left_of(a, b) for v in judges) else \
        "right" if all(v.left_of(b, a) for v in judges) else None
    fb = "near" if all(v.nearer(a, b) for v in judges) else \
        "far" if all(v.nearer(b, a) for v in judges) else None
    return lr, fb


def _judges(facts: LocationFacts) -> list[View]:
    """The views an answer must hold in: the asked spot's and its two neighbouring photos'."""
    return [View.of(facts["query_view"]), *(View.of(facts["views"][k]) for k in facts["neighbours"])]


def _extreme_winners(facts: LocationFacts) -> list[int]:
    answer, judges = facts["answer"], _judges(facts)
    chosen = answer["candidates"]
    return [a for a in chosen if all(_beats(v, a, b, answer["extreme"]) for v in judges for b in chosen if b != a)]


def _one_clear_winner(facts: LocationFacts) -> bool:
    """One of the listed objects is clearly the most extreme of them from the asked spot and both neighbours."""
    return bool(_extreme_winners(facts))


def _pair_relation(facts: LocationFacts) -> LocationAnswer:
    lr, fb = _relation(_judges(facts), facts["answer"]["a"], facts["answer"]["b"])
    return {"left_right": lr, "near_far": fb}


def _extreme_winner(facts: LocationFacts) -> LocationAnswer:
    return {"winner": _extreme_winners(facts)[0]}


def _left_to_right(facts: LocationFacts) -> LocationAnswer:
    return {"order": sorted(facts["answer"]["candidates"], key=View.of(facts["query_view"]).x)}


def _asked_objects(answer: LocationAnswer) -> list[int]:
    return [answer["a"], answer["b"]] if answer["family"] == "pair" else answer["candidates"]


class LocationRelationship(SpatialTask):
    """location_relationship (definition: mirdata/tasks/location_relationship.yaml). Answer rules read the
    relation in the view from the asked spot and in both neighbouring photos."""

    Facts = LocationFacts
    min_views = 4
    answer_rules: ClassVar[dict[str, AnswerRule]] = {
        "pair_relation": _pair_relation, "extreme_winner": _extreme_winner, "left_to_right": _left_to_right}
    constraints: ClassVar[dict[str, Constraint]] = {"one_clear_winner": _one_clear_winner}

    def from_layout(self, family: Family, slot: Slot, rng: np.random.Generator) -> Sample | None:
        drawn = self._draw_spots(rng)
        if drawn is None:
            return None
        scene, cameras, judges, named, facts = drawn
        answer = self._draw_question(family.name, judges, named, rng)
        if answer is None:
            return None
        facts["answer"] = answer
        if self.families.degenerate(family, facts):
            return None
        answer.update(self.families.solve(family, facts))
        names = {o.id: o.name for o in scene.objects}
        correct, distractors, wording = self._options(family.name, answer, names, rng)
        options, letter = place_answer(correct, distractors, slot, rng)
        shot = dict(zip(facts["neighbours"], judges[1:]))
        views = [shot[k] if k in shot else self.shoot(scene, camera) for k, camera in enumerate(cameras)]
        facts["views"] = [v.facts for v in views]
        walks, query_walk = facts["walks_deg"], facts["query_walk_deg"]
        parts = [self.families.phrase("intro", rng, image="<image>")]
        for k, walk in enumerate(walks[1:], start=2):
            parts.append(self.families.phrase("shown", rng, image="<image>", k=k, deg=abs(walk), side=_side(walk)))
        parts.append(self.families.phrase("query", rng, deg=abs(query_walk), side=_side(query_walk)))
        parts.append(self.families.text(family, rng, **wording))
        regions = self.regions_for(views, {o: names[o] for o in _asked_objects(answer)})
        return Sample(" ".join(parts), options, letter, [v.image() for v in views], regions, facts,
                      self.generator_name())

    def _draw_spots(self, rng: np.random.Generator
                    ) -> tuple[Scene, list[Camera], list[View], list[int], LocationFacts] | None:
        """The scene, the photos' walks and cameras, and the asked spot between two of them; the views from the
        asked spot and its two neighbours rendered (the judges), and the objects whole in all three."""
        scene = self.sample_scene(rng)
        walks = sample_walks(rng, self.views, max_gap=MAX_FLANK_GAP) if scene is not None else None
        if walks is None:
            return None
        base, distance = self.frame(scene, rng)
        spots = sorted((w % 360, k) for k, w in enumerate(walks))
        gaps = [(spots[i][0], (spots[(i + 1) % len(spots)][0] - spots[i][0]) % 360 or 360, spots[i][1],
                 spots[(i + 1) % len(spots)][1]) for i in range(len(spots))]
        wide = [g for g in gaps if g[1] >= 2 * QUERY_CLEARANCE + 5]
        if not wide:
            return None
        start, gap, before, after = pick(rng, wide)
        query_spot = (start + 5 * int(rng.integers(QUERY_CLEARANCE // 5, (gap - QUERY_CLEARANCE) // 5 + 1))) % 360
        query_walk = query_spot if query_spot <= 180 else query_spot - 360
        cameras = self.walk_cameras(scene, rng, walks, base, distance)
        elevation = round(float(np.mean([_elevation(cameras[i], scene) for i in (before, after)])), 1)
        query_camera = orbit_camera(scene, base + query_walk, elevation, distance, self.size)
        # A first look at the projected geometry, before any rendering: most layouts fail here, cheaply.
        if not _may_hold(scene, [query_camera, cameras[before], cameras[after]]):
            return None
        judges = [self.shoot(scene, camera) for camera in (query_camera, cameras[before], cameras[after])]
        named = [o.id for o in scene.objects if all(v.visible(o.id) and not v.obj(o.id)["cut_off"] for v in judges)]
        if len(named) < 3:
            return None
        views: list[ViewFacts] = [{} for _ in walks]  # the neighbours' now, the others once the question holds
        views[before], views[after] = judges[1].facts, judges[2].facts
        facts: LocationFacts = {
            "scene": scene.to_facts(), "views": views, "walks_deg": walks, "query_walk_deg": query_walk,
            "neighbours": [before, after], "query_view": judges[0].facts, "answer": {},
            "base_azimuth_deg": base, "distance_m": distance,
        }
        return scene, cameras, judges, named, facts

    def _draw_question(self, family: str, judges: list[View], named: list[int], rng: np.random.Generator
                       ) -> LocationAnswer | None:
        """What the question asks about (None when no objects of these views can be asked about)."""
        if family == "pair":  # the pairs whose left/right and near/far both hold in every judging view
            pairs = [(a, b) for a, b in itertools.permutations(named, 2) if None not in _relation(judges, a, b)]
            if not pairs:
                return None
            a, b = pick(rng, pairs)
            return {"family": family, "a": a, "b": b}
        if family == "extreme":
            extreme = pick(rng, list(self.families.phrase("extremes")))
            return {"family": family, "extreme": extreme,
                    "candidates": [named[i] for i in rng.permutation(len(named))[:4]]}
        triples = [t for t in itertools.permutations(named, 3) if all(v.clear_order(list(t), "left") for v in judges)]
        if not triples:
            return None
        order = list(pick(rng, triples))
        return {"family": family, "candidates": [order[i] for i in rng.permutation(3)], "order": order}

    def _options(self, family: str, answer: LocationAnswer, names: dict[int, str], rng: np.random.Generator
                 ) -> tuple[str, list[str], dict[str, str]]:
        """(correct option, distractors, the question's wording) of the solved answer."""
        if family == "pair":
            b = names[answer["b"]]
            texts = {(lr, fb): text.format(b=b) for lr, row in self.families.phrase("relations").items()
                     for fb, text in row.items()}
            key = (answer["left_right"], answer["near_far"])
            return texts[key], [t for k, t in texts.items() if k != key], {"a": names[answer["a"]], "b": b}
        if family == "extreme":
            winner = answer["winner"]
            return names[winner], [names[o] for o in answer["candidates"] if o != winner], {
                "extreme": self.families.phrase("extremes")[answer["extreme"]]}
        order = answer["order"]
        return (", ".join(names[o] for o in order),
                [", ".join(names[o] for o in p) for p in ordering_distractors(order, rng, 3)],
                {"listing": join_and([names[o] for o in answer["candidates"]])})

    @classmethod
    def reason(cls, facts: LocationFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        phrases = cls.phrases()
        nm = object_names(facts).__getitem__
        ans, walks, q = facts["answer"], facts["walks_deg"], facts["query_walk_deg"]
        before, after = facts["neighbours"]
        stages_captions = captions(facts, [walk_text(w) for w in walks])
        ids = _asked_objects(ans)
        places = " and ".join(f"image {i + 1} ({walk_text(walks[i]).removeprefix('after ')})" for i in (before, after))
        summary = pick(rng, phrases["summaries"]).format(q=walk_text(q).removeprefix("after "), places=places)
        lines = []
        for i in (before, after):
            view = facts["views"][i]
            measured = "; ".join(f"{nm(o)} {where_text(regions, view, i, o, _short(nm(o)))}" for o in ids)
            lines.append(f"In image {i + 1}: {measured}.")
        if ans["family"] == "pair":
            a, b = nm(ans["a"]), nm(ans["b"])
            relation = phrases["relations"][ans["left_right"]][ans["near_far"]].format(b=b)
            lines.append(f"In both, {a} is {ans['left_right']} of {b} and its base is "
                         f"{'lower' if ans['near_far'] == 'near' else 'higher'} in the picture, so it is "
                         f"{'nearer' if ans['near_far'] == 'near' else 'farther'}.")
            end = f"Seen from the asked spot, {a} is {relation}"
        elif ans["family"] == "extreme":
            winner = nm(ans["winner"])
            lines.append(f"In both, {winner} has {phrases['extreme_cues'][ans['extreme']]} of the listed objects, "
                         "by a clear margin.")
            end = f"Seen from the asked spot, {winner} would look {phrases['extremes'][ans['extreme']]}"
        else:
            order = ", ".join(nm(o) for o in ans["order"])
            lines.append(f"In both, their centres run left to right as {order}, well apart.")
            end = f"Seen from the asked spot, they line up as {order}"
        lines.append(phrases["crossing"])
        names = {_short(nm(i)): nm(i) for i in ids}
        return Reasoning(summary, stages_captions, grounding(regions, names), " ".join(lines), conclude(end, answer))


def approximate_view(scene: Scene, camera: Camera) -> View:
    """What a view would show, from projected size boxes and centres alone (no occlusion): a cheap first test
    of a layout before it is rendered."""
    w, h = camera.width, camera.height
    centres = camera.project(np.array([o.centre for o in scene.objects]))
    eye = camera.position[:2]
    objects = {}
    for o, (x, y, z) in zip(scene.objects, centres):
        box = projected_box(o, camera)
        shows = z > 0 and box[2] > 0 and box[0] < w and box[3] > 0 and box[1] < h
        objects[str(o.id)] = {"box": box, "visible": shows, "seen": shows, "cut_off": not _inside(box, w, h),
                              "hidden_by": [], "ground_distance_m": math.dist(eye, o.position) - o.footprint_radius,
                              "mask_centroid_x": float(x), "centre_px": [float(x), float(y)],
                              "centre_depth_m": float(z)}
    return View(camera, None, {"camera": camera.to_facts(), "objects": objects})


def _may_hold(scene: Scene, cameras: list[Camera]) -> bool:
    """Whether some pair of objects could keep both its left/right and its near/far relation in all these views,
    judged on projected centres and centre distances with half the margins (the renders decide)."""
    relations = []
    for camera in cameras:
        points = camera.project(np.array([o.centre for o in scene.objects]))
        eye = np.array(camera.position[:2])
        reach = np.array([math.dist(eye, o.position) - o.footprint_radius for o in scene.objects])
        relations.append((points[:, 0], reach, camera.width))
    n = len(scene.objects)
    for a, b in itertools.permutations(range(n), 2):
        sides = {np.sign(x[b] - x[a]) if abs(x[b] - x[a]) >= 0.5 * MIN_GAP_X * w else 0 for x, _, w in relations}
        depths = {np.sign(d[b] - d[a]) if abs(d[b] - d[a]) >= 0.5 * MIN_GAP_M else 0 for _, d, _ in relations}
        if len(sides) == 1 and 0 not in sides and len(depths) == 1 and 0 not in depths:
            return True
    return False


def _elevation(camera: Camera, scene: Scene) -> float:
    """The camera's elevation in degrees above the scene centre, as orbit_camera set it."""
    offset = np.array(camera.position) - scene.centre()
    return math.degrees(math.atan2(offset[2], math.hypot(offset[0], offset[1])))


# -- depth_relationship ---------------------------------------------------------------------------------

class DepthAnswer(TypedDict, total=False):
    family: str
    object: int  # which_image: the object followed through the photos
    a: int  # swap: photo premise_image shows a nearer than b
    b: int
    premise_image: int
    image: int  # which_image, swap: the answer photo
    options: list[int]  # which_image, swap: the photos offered, in order
    candidates: list[int]  # order_change: the three objects
    images: list[int]  # order_change: the two photos asked about
    orders: list[list[int]]  # order_change: near to far in each of them
    shown_in: list[int]  # the photos the question turns on


class DepthFacts(TypedDict):
    scene: SceneFacts
    views: list[ViewFacts]
    walks_deg: list[int]
    answer: DepthAnswer
    base_azimuth_deg: float
    distance_m: float


def _near_order(view: View, ids: list[int] | tuple[int, ...]) -> list[int] | None:
    """The objects from nearest to farthest when the view shows that order clearly (each neighbour pair with
    its margins), else None."""
    return next((list(p) for p in itertools.permutations(ids) if view.clear_order(list(p), "near")), None)


def _depth_questions(family: str, views: list[View], ids: list[int]) -> list[tuple]:
    """Every question of the family these views settle: (object, answer photo, other photos) for which_image,
    (a, b, photos with a nearer, photos with b nearer) for swap, (objects, photo i, photo j, order in i, order in
    j) for order_change."""
    n = len(views)
    found: list[tuple] = []
    if family == "which_image":
        for a in ids:
            shows = [k for k in range(n) if views[k].visible(a) and not views[k].obj(a)["cut_off"]]
            for k in shows:
                beaten = [j for j in shows if j != k and views[j].distance(a) - views[k].distance(a) >= max(
                    MIN_GAP_M, MIN_GAP_SHARE * views[k].distance(a))
                    and views[k].height_px(a) >= 1.12 * views[j].height_px(a)]
                if len(beaten) >= 3:
                    found.append((a, k, beaten))
    elif family == "swap":
        for a, b in itertools.permutations(ids, 2):
            a_first = [k for k in range(n) if views[k].nearer(a, b)]
            b_first = [k for k in range(n) if views[k].nearer(b, a)]
            if len(a_first) >= 4 and b_first:
                found.append((a, b, a_first, b_first))
    else:
        for triple in itertools.combinations(ids, 3):
            orders = {}
            for k in range(n):
                order = _near_order(views[k], triple)
                if order:
                    orders[k] = order
            for i, j in itertools.combinations(sorted(orders), 2):
                if orders[i] != orders[j]:
                    found.append((triple, i, j, orders[i], orders[j]))
    return found


def _closest_photo(facts: DepthFacts) -> DepthAnswer:
    answer = facts["answer"]
    return {"image": min(answer["options"], key=lambda k: View.of(facts["views"][k]).distance(answer["object"]))}


def _swapped_photo(facts: DepthFacts) -> DepthAnswer:
    answer = facts["answer"]
    return {"image": next(k for k in answer["options"]
                          if View.of(facts["views"][k]).nearer(answer["b"], answer["a"]))}


def _near_to_far_orders(facts: DepthFacts) -> DepthAnswer:
    answer = facts["answer"]
    return {"orders": [_near_order(View.of(facts["views"][k]), answer["candidates"]) for k in answer["images"]]}


def _depth_asked(answer: DepthAnswer) -> tuple[list[int], list[int]]:
    """(the objects the question turns on, the photos it turns on)."""
    if answer["family"] == "which_image":
        return [answer["object"]], list(answer["options"])
    if answer["family"] == "swap":
        return [answer["a"], answer["b"]], [answer["premise_image"], *answer["options"]]
    return list(answer["candidates"]), list(answer["images"])


class DepthRelationship(SpatialTask):
    """depth_relationship (definition: mirdata/tasks/depth_relationship.yaml). Answer rules read the ground
    distances and bases of the views in the facts."""

    Facts = DepthFacts
    min_views = 5
    answer_rules: ClassVar[dict[str, AnswerRule]] = {
        "closest_photo": _closest_photo, "swapped_photo": _swapped_photo, "near_to_far_orders": _near_to_far_orders}

    def from_layout(self, family: Family, slot: Slot, rng: np.random.Generator) -> Sample | None:
        scene = self.sample_scene(rng)
        walks = sample_walks(rng, self.views) if scene is not None else None
        if walks is None:
            return None
        base, distance = self.frame(scene, rng)
        cameras = self.walk_cameras(scene, rng, walks, base, distance)
        ids = [o.id for o in scene.objects]
        # What the views can ask is only known from their pixels, so this search stays here: first on the
        # projected geometry, which refuses most layouts before any rendering, then on the renders.
        if not _depth_questions(family.name, [approximate_view(scene, c) for c in cameras], ids):
            return None
        views = [self.shoot(scene, c) for c in cameras]
        found = _depth_questions(family.name, views, ids)
        if not found:
            return None
        answer, others = self._draw_question(family.name, found, rng)
        facts: DepthFacts = {"scene": scene.to_facts(), "views": [v.facts for v in views], "walks_deg": walks,
                             "answer": answer, "base_azimuth_deg": base, "distance_m": distance}
        answer.update(self.families.solve(family, facts))
        names = {o.id: o.name for o in scene.objects}
        correct, distractors, wording = self._options(family.name, answer, others, names, rng)
        options, letter = place_answer(correct, distractors, slot, rng)
        parts = [self.families.phrase("intro", rng, image="<image>")]
        for k, walk in enumerate(walks[1:], start=2):
            parts.append(self.families.phrase("shown", rng, image="<image>", k=k, walk=walk_text(walk)))
        parts.append(self.families.text(family, rng, **wording))
        chosen, answer["shown_in"] = _depth_asked(answer)
        regions = self.regions_for(views, {o: names[o] for o in chosen})
        return Sample(" ".join(parts), options, letter, [v.image() for v in views], regions, facts,
                      self.generator_name())

    @staticmethod
    def _draw_question(family: str, found: list[tuple], rng: np.random.Generator) -> tuple[DepthAnswer, list[int]]:
        """One of the questions the views settle, and the other option photos in the order they were drawn."""
        if family == "which_image":
            a, k, beaten = pick(rng, found)
            others = [beaten[i] for i in rng.permutation(len(beaten))[:3]]
            return {"family": family, "object": a, "image": k, "options": sorted([k, *others])}, others
        if family == "swap":
            a, b, a_first, b_first = pick(rng, found)
            i, *rest = [a_first[t] for t in rng.permutation(len(a_first))]
            j = pick(rng, b_first)
            others = rest[:3]
            return {"family": family, "a": a, "b": b, "premise_image": i, "image": j,
                    "options": sorted([j, *others])}, others
        triple, i, j, order_i, order_j = pick(rng, found)
        if rng.uniform() < 0.5:
            i, j, order_i, order_j = j, i, order_j, order_i
        return {"family": family, "candidates": list(triple), "images": [i, j], "orders": [order_i, order_j]}, []

    @staticmethod
    def _options(family: str, answer: DepthAnswer, others: list[int], names: dict[int, str],
                 rng: np.random.Generator) -> tuple[str, list[str], dict[str, Any]]:
        """(correct option, distractors, the question's wording) of the solved answer."""
        if family in ("which_image", "swap"):
            listing = join_and([str(t + 1) for t in answer["options"]])
            wording = {"a": names[answer["object"]], "listing": listing} if family == "which_image" else {
                "a": names[answer["a"]], "b": names[answer["b"]], "i": answer["premise_image"] + 1, "listing": listing}
            return f"Photo {answer['image'] + 1}", [f"Photo {t + 1}" for t in others], wording
        (i, j), (order_i, order_j) = answer["images"], answer["orders"]
        wrong_i = ordering_distractors(order_i, rng, 1)[0]
        wrong_j = ordering_distractors(order_j, rng, 1)[0]
        text = lambda oi, oj: (f"photo {i + 1}: {', '.join(names[o] for o in oi)}; "
                               f"photo {j + 1}: {', '.join(names[o] for o in oj)}")
        triple = answer["candidates"]
        listing = [triple[t] for t in rng.permutation(3)]
        return (text(order_i, order_j), [text(order_i, wrong_j), text(wrong_i, order_j), text(wrong_i, wrong_j)],
                {"listing": join_and([names[o] for o in listing]), "i": i + 1, "j": j + 1})

    @classmethod
    def reason(cls, facts: DepthFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        phrases = cls.phrases()
        nm = object_names(facts).__getitem__
        ans = facts["answer"]
        stages_captions = captions(facts, [walk_text(w) for w in facts["walks_deg"]])
        measure = lambda k, o: f"{nm(o)} {where_text(regions, facts['views'][k], k, o, _short(nm(o)))}"
        cue = phrases["cue"]
        if ans["family"] == "which_image":
            a = ans["object"]
            summary = (f"The question follows {nm(a)} through photos {join_and([str(k + 1) for k in ans['options']])} "
                       "and asks where the camera stood closest to it; I compare how big it looks and how low it "
                       "meets the ground in each.")
            lines = [f"Image {k + 1}: {measure(k, a)}." for k in ans["options"]]
            lines.append(f"{cue} It is tallest and lowest in image {ans['image'] + 1}.")
            end = f"The camera was closest to {nm(a)} in photo {ans['image'] + 1}"
            ids = [a]
        elif ans["family"] == "swap":
            a, b, i = ans["a"], ans["b"], ans["premise_image"]
            summary = (f"Photo {i + 1} has {nm(a)} in front of {nm(b)}; I look for the option photo taken from "
                       "the other side, where the two have changed places.")
            lines = [f"Image {k + 1}: {measure(k, a)}; {measure(k, b)}." for k in [i, *ans["options"]]]
            lines.append(f"{cue} Only in image {ans['image'] + 1} does {nm(b)} sit lower than {nm(a)}, by a clear "
                         "margin; in the other option photos it is the other way round.")
            end = f"Photo {ans['image'] + 1} shows {nm(b)} nearer than {nm(a)}"
            ids = [a, b]
        else:
            ids = ans["candidates"]
            summary = pick(rng, phrases["order_summaries"])
            lines = []
            for k, order in zip(ans["images"], ans["orders"]):
                lines.append(f"Image {k + 1}: " + "; ".join(measure(k, o) for o in order) +
                             f". Bases from lowest to highest: {', '.join(nm(o) for o in order)}.")
            lines.insert(0, cue)
            i, j = ans["images"]
            end = (f"Photo {i + 1} runs {', '.join(nm(o) for o in ans['orders'][0])} from nearest to farthest, and "
                   f"photo {j + 1} runs {', '.join(nm(o) for o in ans['orders'][1])}")
        names = {_short(nm(i)): nm(i) for i in ids}
        return Reasoning(summary, stages_captions, grounding(regions, names), " ".join(lines), conclude(end, answer))


# -- view_3d -------------------------------------------------------------------------------------------

MIN_VIEW_GAP = 40  # degrees between any two photos' spots


class View3DAnswer(TypedDict, total=False):
    family: str
    image: int  # pick_image: the photo taken after the stated walk; name_view: the photo asked about
    walk_deg: int  # pick_image: the stated walk; name_view: the answer walk
    decoy_image: int | None  # pick_image: the photo replaced by a mirrored render (None: no decoy)
    option_images: list[int]  # name_view: the photos whose walks are the other options
    order: list[int]  # walk_order: the photos in the order a walk to the right passes their spots


class View3DFacts(TypedDict):
    scene: SceneFacts
    views: list[ViewFacts]
    walks_deg: list[int | None]  # the decoy's is None: no walk gives it
    answer: View3DAnswer
    base_azimuth_deg: float
    distance_m: float


def side_of_walk(walk: int) -> str | None:
    """Which side of the group a walk from the start ends on, when it clearly ends on one."""
    if 50 <= abs(walk) <= 130:
        return "right" if walk > 0 else "left"
    return "back" if abs(walk) >= 150 else None


def _photos_tell_spots_apart(facts: View3DFacts) -> bool:
    """Every photo shows at least three objects, and no two show them in the same left-to-right order."""
    orders = [tuple(View.of(v).left_to_right()) for v in facts["views"]]
    return min(len(o) for o in orders) >= 3 and len(set(orders)) == len(orders)


def _walked_photo(facts: View3DFacts) -> View3DAnswer:
    return {"image": facts["walks_deg"].index(facts["answer"]["walk_deg"])}


def _walk_of_photo(facts: View3DFacts) -> View3DAnswer:
    return {"walk_deg": facts["walks_deg"][facts["answer"]["image"]]}


def _passing_order(facts: View3DFacts) -> View3DAnswer:
    walks = facts["walks_deg"]
    return {"order": sorted(range(1, len(walks)), key=lambda j: walks[j] % 360)}


class View3D(SpatialTask):
    """view_3d (definition: mirdata/tasks/view_3d.yaml). Answer rules read the photos' stated walks."""

    Facts = View3DFacts
    min_views = 4
    answer_rules: ClassVar[dict[str, AnswerRule]] = {
        "walked_photo": _walked_photo, "walk_of_photo": _walk_of_photo, "passing_order": _passing_order}
    constraints: ClassVar[dict[str, Constraint]] = {"photos_tell_spots_apart": _photos_tell_spots_apart}

    def from_layout(self, family: Family, slot: Slot, rng: np.random.Generator) -> Sample | None:
        scene = self.sample_scene(rng, 4, 5)
        walks = sample_walks(rng, self.views, min_gap=MIN_VIEW_GAP, max_gap=150) if scene is not None else None
        if walks is None:
            return None
        base, distance = self.frame(scene, rng)
        views = self.walk_views(scene, rng, walks, base, distance)
        facts: View3DFacts = {"scene": scene.to_facts(), "views": [v.facts for v in views], "walks_deg": walks,
                              "answer": {"family": family.name}, "base_azimuth_deg": base, "distance_m": distance}
        if self.families.degenerate(family, facts):
            return None
        answer = self._draw_question(family.name, scene, views, walks, base, slot, rng)
        if answer is None:
            return None
        facts["answer"], facts["views"] = answer, [v.facts for v in views]
        answer.update(self.families.solve(family, facts))
        correct, distractors, ask = self._options(family.name, answer, walks, rng)
        options, letter = place_answer(correct, distractors, slot, rng)
        others_text = " ".join("<image>" for _ in views[1:])
        question = (self.families.phrase("intro", rng, image="<image>", others=others_text) + " " +
                    self.families.text(family, rng, **ask))
        regions = self.regions_for(views, {o.id: o.name for o in scene.objects})
        return Sample(question, options, letter, [v.image() for v in views], regions, facts, self.generator_name())

    def _draw_question(self, family: str, scene: Scene, views: list[View], walks: list[int | None], base: float,
                       slot: Slot, rng: np.random.Generator) -> View3DAnswer | None:
        """What the question asks about. For pick_image, half the records (balanced) replace a photo other than
        the answer by a decoy, in `views` and `walks`; None when the decoy would not stand apart."""
        n = len(views)
        if family == "pick_image":
            k = int(rng.integers(1, n))
            replaced = None
            if balanced_index(slot, 2, "view_3d decoy"):
                orders = [tuple(v.left_to_right()) for v in views]
                mirrored = mirror(scene)
                decoy_camera = views[k].camera
                decoy = self.shoot(mirrored, orbit_camera(mirrored, base + walks[k], _elevation(decoy_camera, scene),
                                                          _orbit_distance(decoy_camera, scene), self.size))
                if len(decoy.left_to_right()) < 3 or tuple(decoy.left_to_right()) in orders:
                    return None
                # The decoy replaces a photo other than the answer; its stated walk goes with it.
                replaced = pick(rng, [j for j in range(1, n) if j != k])
                views[replaced] = decoy
                walks[replaced] = None
            return {"family": family, "image": k, "walk_deg": walks[k], "decoy_image": replaced}
        if family == "name_view":
            k = int(rng.integers(1, n))
            others = [j for j in rng.permutation(range(1, n)).tolist() if j != k][:3]
            return {"family": family, "image": k, "walk_deg": walks[k], "option_images": others}
        return {"family": family}

    @staticmethod
    def _options(family: str, answer: View3DAnswer, walks: list[int | None], rng: np.random.Generator
                 ) -> tuple[str, list[str], dict[str, Any]]:
        """(correct option, distractors, the question's wording) of the solved answer. Photos are in random order
        already: options that list them need no shuffling of their own."""
        n = len(walks)
        if family == "pick_image":
            k = answer["image"]
            return f"Photo {k + 1}", [f"Photo {j + 1}" for j in range(1, n) if j != k], {
                "n": n, "deg": abs(answer["walk_deg"]), "side": _side(answer["walk_deg"])}
        if family == "name_view":
            spot = lambda walk: walk_text(walk).removeprefix("after ")
            return spot(answer["walk_deg"]), [spot(walks[j]) for j in answer["option_images"]], {
                "k": answer["image"] + 1}
        label = lambda seq: ", ".join(f"photo {j + 1}" for j in seq)
        return label(answer["order"]), [label(p) for p in ordering_distractors(answer["order"], rng, 3)], {"n": n}

    @classmethod
    def reason(cls, facts: View3DFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        phrases = cls.phrases()
        nm = object_names(facts).__getitem__
        ans, walks = facts["answer"], facts["walks_deg"]
        places = ["from the starting spot"] + ["from a spot to be worked out"] * (len(walks) - 1)
        stages_captions = captions(facts, places)
        first = View.of(facts["views"][0])
        summary = pick(rng, phrases["summaries"])
        lines = []
        for k in range(1, len(walks)):
            view = View.of(facts["views"][k])
            ids = view.left_to_right()
            nearest = [a for a in ids if all(view.nearer(a, b) for b in ids if b != a)]
            shown = sorted((int(i) for i, o in view.facts["objects"].items() if o["seen"]), key=view.x)
            text = f"Image {k + 1} shows {join_and([nm(i) for i in shown])}"  # all a viewer notices, as captions do
            if nearest:
                a = nearest[0]
                text += f"; {nm(a)} is nearest ({where_text(regions, facts['views'][k], k, a, _short(nm(a)))})"
                side = side_of_walk(walks[k]) if walks[k] is not None else None
                if side and first.visible(a) and cls._stands(first, a, side):
                    text += (f", and in image 1 it stands {phrases['sides'][side]} of the group, so this photo was "
                             f"taken from the {'far side' if side == 'back' else side + ' side'}")
            lines.append(text + ".")
        if ans["family"] == "pick_image":
            if ans["decoy_image"]:
                lines.append(f"Image {ans['decoy_image'] + 1} cannot come from any spot: it shows the objects "
                             "mirrored, with neighbours on the wrong sides of each other compared with the other "
                             "photos.")
            end = f"Photo {ans['image'] + 1} was taken {walk_text(ans['walk_deg'])}"
        elif ans["family"] == "name_view":
            end = f"Photo {ans['image'] + 1} was taken {walk_text(ans['walk_deg'])}"
        else:
            steps = ", ".join(f"photo {j + 1}" for j in ans["order"])
            end = f"Walking to the right from the start passes the spots of {steps}, in that order"
        names = {_short(name): name for name in object_names(facts).values()}
        return Reasoning(summary, stages_captions, grounding(regions, names), " ".join(lines), conclude(end, answer))

    @staticmethod
    def _stands(first: View, oid: int, side: str) -> bool:
        """Whether photo 1 shows the object clearly on that side of the group (left/right third, or at the back:
        its base in the upper part of the objects' span)."""
        if side in ("left", "right"):
            share = first.x(oid) / first.width
            return share < 0.4 if side == "left" else share > 0.6
        bases = [first.base(i) for i in first.left_to_right()]
        return first.base(oid) <= min(bases) + 0.25 * (max(bases) - min(bases))


def _orbit_distance(camera: Camera, scene: Scene) -> float:
    """The camera's straight-line distance from the scene centre, as orbit_camera set it."""
    return float(np.linalg.norm(np.array(camera.position) - scene.centre()))


def mirror(scene: Scene) -> Scene:
    """The scene reflected across the vertical plane x = centre x (objects keep their ids)."""
    cx = float(scene.centre()[0])
    objs = [SceneObject(o.id, o.kind, o.colour, o.material, o.size, (round(2 * cx - o.position[0], 3), o.position[1]),
                        round(math.pi - o.yaw, 4)) for o in scene.objects]
    return Scene(objs, scene.light, scene.ground, scene.sky_colour)


# -- forced_perspective --------------------------------------------------------------------------------

FORCED_KINDS = ("cube", "cylinder", "cone")  # they meet the ground along their whole base: its front is their base row
FORCED_HEIGHTS = (0.5, 4.5)  # metres, one range for every kind
TALLER = 1.35  # "taller" needs this true ratio; the estimate from the pixels must show at least ESTIMATE_TALLER
ESTIMATE_TALLER = 1.15
SAME = 0.03  # "about the same height": true heights within 3 %, estimates within SAME_ESTIMATE
SAME_ESTIMATE = 0.1
ESTIMATE_ERROR = 0.1  # a reading against the person must land within 10 % of the true height
ALIKE = 0.15  # objects that "look alike" in photo 1: pixel heights within 15 %


class ForcedAnswer(TypedDict, total=False):
    family: str
    tallest: int | None  # tallest: index 0-2 of the tallest object; None when all are about the same height
    case: str  # compare: "a" taller, "b" taller, or "same"
    value_m: float  # height: the correct option's height


class ForcedPlan(TypedDict, total=False):
    alike: list[int]  # which objects look alike in photo 1 (indices 0-2)
    case: str  # same, alike, far_small; a, b, same; height
    tallest: int
    far_small: int  # a small object set farther away than the tallest one
    options_m: list[float]  # height: the four option heights
    rank: int  # height: the asked object's option


class ForcedFacts(TypedDict):
    scene: SceneFacts
    views: list[ViewFacts]
    person: dict[str, Any]  # id, name, height_m
    heights_m: list[float]  # true heights of objects 1-3
    check_images: list[int]  # per object, the photo where it stands level with the person
    readings_m: list[float]  # per object, its height read against the person there
    answer: ForcedAnswer
    plan: ForcedPlan


def _tall(o: Mapping[str, Any]) -> int:
    """An object's height in pixels in a view (its box)."""
    return o["box"][3] - o["box"][1]


def _readings(facts: ForcedFacts) -> list[float]:
    """Each object's height read against the person in its check photo: person x pixel height / person's."""
    ph = facts["person"]["height_m"]
    seen = [facts["views"][k]["objects"] for k in facts["check_images"]]
    return [ph * _tall(objects[str(i)]) / _tall(objects["4"]) for i, objects in zip((1, 2, 3), seen)]


def _readings_settle_tallest(facts: ForcedFacts) -> bool:
    """The readings show what the heights are: all within SAME_ESTIMATE, or the tallest ESTIMATE_TALLER above."""
    readings, plan = _readings(facts), facts["plan"]
    if plan["case"] == "same":
        return max(readings) <= (1 + SAME_ESTIMATE) * min(readings)
    t = plan["tallest"]
    return all(readings[t] >= ESTIMATE_TALLER * readings[i] for i in range(3) if i != t)


def _readings_settle_compare(facts: ForcedFacts) -> bool:
    readings = _readings(facts)
    ratio = readings[0] / readings[1]
    return {"same": abs(ratio - 1) <= SAME_ESTIMATE, "a": ratio >= ESTIMATE_TALLER,
            "b": 1 / ratio >= ESTIMATE_TALLER}[facts["plan"]["case"]]


def _tallest_object(facts: ForcedFacts) -> ForcedAnswer:
    """The tallest by true height; None where the three were drawn alike (within 3 %)."""
    same = facts["plan"]["case"] == "same"
    return {"tallest": None if same else int(np.argmax(facts["heights_m"]))}


def _taller_of_two(facts: ForcedFacts) -> ForcedAnswer:
    a, b = facts["heights_m"][:2]
    case = "a" if a >= TALLER * b else "b" if b >= TALLER * a else "same" if abs(a / b - 1) <= SAME else None
    return {"case": case}


def _nearest_height_option(facts: ForcedFacts) -> ForcedAnswer:
    true = facts["heights_m"][0]
    return {"value_m": min(facts["plan"]["options_m"], key=lambda v: abs(v - true))}


def _height_text(value: float) -> str:
    return f"about {value:.1f} m"


class ForcedPerspective(SpatialTask):
    """forced_perspective (definition: mirdata/tasks/forced_perspective.yaml). Answer rules read the true
    heights; constraints check that the readings against the person show them."""

    Facts = ForcedFacts
    min_views = 4
    answer_rules: ClassVar[dict[str, AnswerRule]] = {
        "tallest_object": _tallest_object, "taller_of_two": _taller_of_two,
        "nearest_height_option": _nearest_height_option}
    constraints: ClassVar[dict[str, Constraint]] = {
        "readings_settle_tallest": _readings_settle_tallest, "readings_settle_compare": _readings_settle_compare}

    def from_layout(self, family: Family, slot: Slot, rng: np.random.Generator) -> Sample | None:
        w, h = self.size
        eye = round(float(rng.uniform(1.5, 1.8)), 2)
        pitch = math.radians(float(rng.uniform(2, 6)))
        first = Camera((0.0, 0.0, eye), (0.0, 50.0, round(eye - 50.0 * math.tan(pitch), 4)), w, h)
        heights, plan = self._heights(family.name, slot, rng)
        if heights is None:
            return None
        # Distances in photo 1 from planned pixel heights: the objects of `plan["alike"]` look alike.
        near, far = 5.0, 30.0
        alike = [heights[i] for i in plan["alike"]]
        low = max(0.12 * h, first.focal * max(alike) / (0.9 * far))
        high = min(0.35 * h, first.focal * min(alike) / (1.1 * near))
        if low > high:
            return None
        look = float(rng.uniform(low, high))
        distances = []
        for i, height in enumerate(heights):
            if i in plan["alike"]:
                distances.append(first.focal * height / (look * float(rng.uniform(0.92, 1.08))))
            else:
                lo_d = max(near, first.focal * height / (1.2 * look))
                hi_d = min(far, first.focal * height / (0.55 * look))
                distances.append(float(rng.uniform(lo_d, hi_d)) if lo_d < hi_d else -1.0)
        if plan.get("far_small") is not None:  # a small object set behind the tallest one
            distances[plan["far_small"]] = distances[plan["tallest"]] * float(rng.uniform(1.2, 1.7))
        if not all(near <= d <= far for d in distances):
            return None
        identities = sample_identities(rng, [pick(rng, FORCED_KINDS) for _ in heights] + ["figure"])
        columns = np.array([0.2, 0.5, 0.8]) + rng.uniform(-0.06, 0.06, 3)
        columns = columns[rng.permutation(3)]
        objects = []
        for i, (height, d) in enumerate(zip(heights, distances)):
            colour, kind = identities[i]
            width = height if kind == "cube" else height * float(rng.uniform(0.45, 0.9))
            lateral = (columns[i] - 0.5) * w * d / first.focal
            objects.append(SceneObject(i + 1, kind, colour, pick(rng, ["rubber", "metal"]),
                                       (round(width, 3), round(width, 3), round(height, 3)),
                                       (round(lateral, 3), round(d, 3)), round(float(rng.uniform(0, 2 * math.pi)), 4)))
        person_height = round(float(rng.uniform(1.6, 1.9)) * 20) / 20
        if any(_too_close(a, b) for a, b in itertools.combinations(objects, 2)):
            return None
        boxes = [projected_box(o, first) for o in objects]
        if any(_boxes_overlap(a, b) for a, b in itertools.combinations(boxes, 2)) or not all(
                _inside(b, w, h) for b in boxes):
            return None
        centroid = np.mean([o.position for o in objects], axis=0)
        for _ in range(12):  # the person somewhere among the objects, hiding none of them in photo 1
            angle = float(rng.uniform(0, 2 * math.pi))
            spot = centroid + float(rng.uniform(1.5, 5.0)) * np.array([math.cos(angle), math.sin(angle)])
            person = SceneObject(4, "figure", identities[3][0], "rubber", (0.5, 0.3, person_height),
                                 (round(float(spot[0]), 3), round(float(spot[1]), 3)),
                                 round(float(rng.uniform(0, 2 * math.pi)), 4))
            if spot[1] > 4.0 and not any(_too_close(person, o) for o in objects) and not any(
                    _boxes_overlap(projected_box(person, first), b) for b in boxes):
                break
        else:
            return None
        objects.append(person)
        scene = Scene(objects, sample_light(rng), *sample_backdrop(rng))
        view1 = self.shoot(scene, first)
        if not all(view1.whole(i) for i in (1, 2, 3)):
            return None
        px = [view1.height_px(i) for i in (1, 2, 3)]
        if any(abs(px[a] - px[b]) > ALIKE * max(px[a], px[b]) for a, b in itertools.combinations(plan["alike"], 2)):
            return None
        checks = []
        for i in (1, 2, 3):
            check = self._beside_person(scene, scene.by_id(i), person, rng)
            if check is None:
                return None
            checks.append(check)
        readings = [person_height * v.height_px(i) / v.height_px(4) for i, v in zip((1, 2, 3), checks)]
        if any(abs(r / t - 1) > ESTIMATE_ERROR for r, t in zip(readings, heights)):
            return None
        overviews = []
        for _ in range(self.views - 4):
            camera = self._overview(scene, rng)
            overviews.append(self.shoot(scene, camera))
        names = [scene.by_id(i).name for i in (1, 2, 3)]
        rest = [*checks, *overviews]
        # The photos in this order (each object's check photo k + 1 for object k + 1) until the question holds;
        # then shuffled, which draws from the RNG after the options do.
        facts: ForcedFacts = {
            "scene": scene.to_facts(), "views": [v.facts for v in (view1, *rest)],
            "person": {"id": 4, "name": person.name, "height_m": person_height}, "heights_m": heights,
            "check_images": [1, 2, 3], "readings_m": [round(r, 3) for r in readings],
            "answer": {"family": family.name}, "plan": plan,
        }
        if self.families.degenerate(family, facts):
            return None
        facts["answer"].update(self.families.solve(family, facts))
        correct, distractors, wording = self._options(family.name, facts, names)
        options, letter = place_answer(correct, distractors, slot, rng)
        order = rng.permutation(len(rest))
        views = [view1, *(rest[t] for t in order)]
        facts["views"] = [v.facts for v in views]
        facts["check_images"] = [1 + int(np.flatnonzero(order == i)[0]) for i in range(3)]
        listing = join_and(names)
        intro = self.families.phrase("intro", rng, first="<image>", rest=" ".join("<image>" for _ in rest),
                                     listing=listing, ph=person_height, person=person.name.capitalize(),
                                     person_l=person.name)
        question = f"{intro} {self.families.text(family, rng, listing=listing, **wording)}"
        regions = self.regions_for(views, {o.id: o.name for o in objects})
        return Sample(question, options, letter, [v.image() for v in views], regions, facts, self.generator_name())

    @staticmethod
    def _heights(family: str, slot: Slot, rng: np.random.Generator) -> tuple[list[float] | None, dict[str, Any]]:
        """True heights of the three objects and the plan of photo 1: which of them look alike there."""
        lo, hi = FORCED_HEIGHTS
        if family == "tallest":
            if special_is_answer(slot, 4, "forced same"):
                h0 = float(rng.uniform(0.8, 3.5))
                # All three alike at one distance, or two of them alike and the third elsewhere, looking bigger
                # or smaller: photo 1 alone does not tell which.
                alike = [0, 1, 2] if rng.uniform() < 0.5 else [0, 1]
                return [round(h0 * float(rng.uniform(0.985, 1.015)), 3) for _ in range(3)], {
                    "alike": alike, "case": "same"}
            top = float(rng.uniform(lo * TALLER * 1.1, hi))
            heights = [top, *(float(rng.uniform(lo, top / (TALLER * 1.05))) for _ in range(2))]
            order = rng.permutation(3).tolist()
            heights = [round(heights[order.index(i)], 3) for i in range(3)]
            t = int(np.argmax(heights))
            others = [i for i in range(3) if i != t]
            if balanced_index(slot, 2, "forced far small"):
                return heights, {"alike": [t, others[0]], "tallest": t, "far_small": others[1], "case": "far_small"}
            return heights, {"alike": [0, 1, 2], "tallest": t, "case": "alike"}
        if family == "compare":
            case = ("a", "b", "same")[balanced_index(slot, 3, "forced compare")]
            small = float(rng.uniform(lo, hi / (TALLER * 1.05)))
            big = float(rng.uniform(small * TALLER * 1.05, min(hi, small * 4)))
            a, b = {"a": (big, small), "b": (small, big), "same": (small, small * float(rng.uniform(0.985, 1.015)))}[case]
            return [round(a, 3), round(b, 3), round(float(rng.uniform(lo, hi)), 3)], {"alike": [0, 1], "case": case}
        # The four options first, on a log scale (neighbours 1.3-1.7 times apart, anywhere in the range), then
        # the asked object's height is the option at a balanced rank: no value or spacing marks the answer.
        gaps = rng.uniform(math.log(1.3), math.log(1.7), 3)
        start = float(rng.uniform(math.log(lo), math.log(hi) - gaps.sum()))
        options = [round(math.exp(v), 1) for v in start + np.concatenate([[0.0], np.cumsum(gaps)])]
        rank = balanced_index(slot, 4, "forced height rank")
        heights = [options[rank], *(round(float(rng.uniform(lo, hi)), 3) for _ in range(2))]
        return heights, {"alike": [0, 1], "case": "height", "options_m": options, "rank": rank}

    def _options(self, family: str, facts: ForcedFacts, names: list[str]) -> tuple[str, list[str], dict[str, str]]:
        """(correct option, distractors, the question's wording) of the solved answer."""
        answer = facts["answer"]
        if family == "tallest":
            same, t = self.families.phrase("same_height"), answer["tallest"]
            if t is None:
                return same, names, {}
            return names[t], [n for i, n in enumerate(names) if i != t] + [same], {}
        if family == "compare":
            texts = {case: text.format(a=names[0], b=names[1])
                     for case, text in self.families.phrase("compare_options").items()}
            return texts[answer["case"]], [t for case, t in texts.items() if case != answer["case"]], {
                "a": names[0], "b": names[1]}
        correct = _height_text(answer["value_m"])
        return correct, [t for t in map(_height_text, facts["plan"]["options_m"]) if t != correct], {"a": names[0]}


    def _beside_person(self, scene: Scene, obj: SceneObject, person: SceneObject, rng: np.random.Generator
                       ) -> View | None:
        """A photo square on to the line from the object to the person, their fronts at one distance from the
        camera, both whole in the picture and hiding nothing of each other; None when no such spot works."""
        c, p = np.array(obj.position), np.array(person.position)
        along = (p - c) / np.linalg.norm(p - c)
        length = float(np.linalg.norm(p - c))
        for _ in range(4):
            side = 1 if rng.uniform() < 0.5 else -1
            perpendicular = side * np.array([-along[1], along[0]])
            reach = _front_extent(obj, perpendicular) - _front_extent(person, perpendicular)
            tilt = math.asin(max(-0.9, min(0.9, reach / length)))
            normal = math.cos(tilt) * perpendicular + math.sin(tilt) * along
            # normal . (p - c) = sin(tilt) * length = reach: the person's front is as far as the object's.
            tallest = max(obj.size[2], person.size[2])
            distance = max(1.15 * length + 2.5, 2.2 * tallest + 3.0) * float(rng.uniform(1.0, 1.15))
            middle = (c + p) / 2
            position = middle + normal * distance
            height = round(float(rng.uniform(1.6, 3.5)), 2)
            target = (round(float(middle[0]), 4), round(float(middle[1]), 4), round(0.4 * tallest, 4))
            camera = Camera((round(float(position[0]), 4), round(float(position[1]), 4), height), target, *self.size)
            if not all(np.dot(np.array(o.position) - position, -normal) > o.footprint_radius + 1.0
                       for o in scene.objects):
                continue
            view = self.shoot(scene, camera)
            if not all(view.seen(i) and not view.obj(i)["cut_off"] and not view.obj(i)["hidden_by"]
                       and view.height_px(i) >= 0.06 * self.size[1] for i in (obj.id, person.id)):
                continue
            if abs(view.base(obj.id) - view.base(person.id)) > 0.02 * self.size[1]:
                continue
            a, b = view.box(obj.id), view.box(person.id)
            if a[0] < b[2] and b[0] < a[2]:  # side by side, not one above the other
                continue
            return view
        return None

    def _overview(self, scene: Scene, rng: np.random.Generator) -> Camera:
        """A camera high above one side of the place, looking over all of it."""
        centre = scene.centre()
        spread = max(math.dist(centre[:2], o.position) + o.footprint_radius for o in scene.objects)
        azimuth = float(rng.uniform(0, 360))
        elevation = round(float(rng.uniform(30, 55)), 1)
        return orbit_camera(scene, azimuth, elevation, round(2.4 * spread + 6.0, 2), self.size)


    @classmethod
    def reason(cls, facts: ForcedFacts, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        nm = object_names(facts).__getitem__
        person, ans = facts["person"], facts["answer"]
        ph, pl = person["height_m"], _short(person["name"])
        places = ["at eye level"] + ["from another spot"] * (len(facts["views"]) - 1)
        stages_captions = captions(facts, places)
        checks = facts["check_images"]
        summary = pick(rng, cls.phrases()["summaries"]).format(person=person["name"], ph=ph,
                                                               checks=join_and([str(k + 1) for k in checks]))
        first = facts["views"][0]
        lines = ["In image 1: " + "; ".join(f"{nm(i)} {where_text(regions, first, 0, i, _short(nm(i)))}"
                                            for i in (1, 2, 3)) + "."]
        view1 = View.of(first)
        farther = [(a, b) for a, b in itertools.permutations((1, 2, 3), 2) if view1.nearer(b, a)]
        if farther:
            a, b = farther[0]
            lines.append(f"The base of {nm(a)} is higher in the picture than that of {nm(b)}, so it stands farther "
                         "away and is bigger than it looks next to it.")
        estimate = dict(zip((1, 2, 3), _readings(facts)))
        for i, k in zip((1, 2, 3), checks):
            view = facts["views"][k]["objects"]
            o, p = view[str(i)], view["4"]
            oh, phx = _tall(o), _tall(p)
            lines.append(f"In image {k + 1}, {nm(i)} [{region_of(regions, k, _short(nm(i))).id}] and the {pl} "
                         f"[{region_of(regions, k, pl).id}] have their bases at y = {o['box'][3]} and "
                         f"{p['box'][3]} px, "
                         f"so they stand at the same distance: {nm(i)} is {oh} px tall and the person {phx} px, "
                         f"so {nm(i)} is about {ph:.2f} m × {oh} / {phx} ≈ {estimate[i]:.1f} m tall.")
        if ans["family"] == "tallest":
            if ans["tallest"] is None:
                end = "The three readings agree closely: they are all about the same height"
            else:
                t = ans["tallest"] + 1
                end = f"{nm(t).capitalize()}, at about {estimate[t]:.1f} m, is clearly the tallest"
        elif ans["family"] == "compare":
            end = {"a": f"{nm(1).capitalize()} ({estimate[1]:.1f} m) is taller than {nm(2)} ({estimate[2]:.1f} m)",
                   "b": f"{nm(2).capitalize()} ({estimate[2]:.1f} m) is taller than {nm(1)} ({estimate[1]:.1f} m)",
                   "same": f"{nm(1).capitalize()} ({estimate[1]:.1f} m) and {nm(2)} ({estimate[2]:.1f} m) are about "
                           "the same height"}[ans["case"]]
        else:
            end = (f"{nm(1).capitalize()} is about {estimate[1]:.1f} m tall; the nearest option is "
                   f"{_height_text(ans['value_m'])}")
        names = {_short(name): name for name in object_names(facts).values()}
        return Reasoning(summary, stages_captions, grounding(regions, names), " ".join(lines), conclude(end, answer))


def _too_close(a: SceneObject, b: SceneObject) -> bool:
    return math.dist(a.position, b.position) < a.footprint_radius + b.footprint_radius + 0.8


def projected_box(obj: SceneObject, camera: Camera) -> list[int]:
    """The image box of an object's projected size box (it holds the object's silhouette)."""
    points = camera.project(obj.corners())
    return [int(np.floor(points[:, 0].min())), int(np.floor(points[:, 1].min())),
            int(np.ceil(points[:, 0].max())), int(np.ceil(points[:, 1].max()))]


def _inside(box: list[int], w: int, h: int) -> bool:
    """The box does not touch the image border (the whole object is in frame)."""
    return box[0] > 0 and box[1] > 0 and box[2] < w and box[3] < h


def _boxes_overlap(a: list[int], b: list[int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _front_extent(obj: SceneObject, direction: np.ndarray) -> float:
    """How far the object's footprint reaches from its centre towards `direction` (a unit ground vector)."""
    if obj.kind in ("cube", "figure"):
        corners = obj.corners()[:, :2] - np.array(obj.position)
        return float((corners @ direction).max())
    return 0.5 * obj.size[0]
