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
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from mirdata.builders.base import (
    BuildOptions,
    Reasoning,
    Sample,
    Task,
    cite,
    conclude,
    join_and,
    pick,
)
from mirdata.builders.options import (
    Slot,
    balanced_index,
    ordering_distractors,
    pick_balanced,
    place_answer,
    special_is_answer,
)
from mirdata.errors import MirdataError
from mirdata.generators.render import (
    Renderer,
    RenderResult,
    check_renderer_name,
    create_renderer,
)
from mirdata.generators.scene import (
    PRIMITIVES,
    Camera,
    Scene,
    SceneObject,
    orbit_camera,
    sample_backdrop,
    sample_identities,
    sample_layout,
    sample_light,
    view_facts,
)
from mirdata.schema.record import Record, Region

LAYOUT_TRIES = 4  # layouts drawn per attempt before the runner is asked for a fresh RNG
MIN_GAP_X = 0.06  # left/right needs the mask centroids this share of the image width apart
MIN_GAP_M, MIN_GAP_SHARE = 0.8, 0.15  # near/far needs ground distances this far apart (metres, share)
MIN_GAP_BASE = 0.03  # ... and the bases this share of the image height apart
MAX_VIEWS = 12


def _short(name: str) -> str:
    """'the red cube' -> 'red cube' (region labels)."""
    return name.removeprefix("the ")


def walk_text(walk: int) -> str:
    """A signed walk in degrees (right positive) as the questions state it."""
    if walk == 0:
        return "from the starting spot"
    return f"after walking about {abs(walk)} degrees to the {'right' if walk > 0 else 'left'} around the objects"


@dataclass
class View:
    """One rendered view and what its pixels say about each object."""

    camera: Camera
    result: RenderResult | None
    facts: dict[str, Any]

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
    probe = View(Camera.from_facts(view["camera"]), None, view)
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

    category = "spatial"
    default_views: ClassVar[int] = 6
    min_views: ClassVar[int] = 3

    def __init__(self, options: BuildOptions):
        super().__init__(options)
        check_renderer_name(options.renderer)
        if options.views is not None and not self.min_views <= options.views <= MAX_VIEWS:
            raise MirdataError(f"{self.name} takes {self.min_views} to {MAX_VIEWS} views, not {options.views}")
        self._renderer: Renderer | None = None

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:  # made in the worker process that uses it
            self._renderer = create_renderer(self.options.renderer, self.options.device)
        return self._renderer

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    @property
    def views(self) -> int:
        return self.options.views or self.default_views

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.options.image_size)  # type: ignore[return-value]

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        """Up to LAYOUT_TRIES fresh layouts from this RNG; most refusals are cheap (before much rendering)."""
        for _ in range(LAYOUT_TRIES):
            sample = self.build_from_layout(index, rng)
            if sample is not None:
                return sample
        return None

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
        """One sample from one freshly drawn scene, or None when that scene cannot give a provable question."""
        raise NotImplementedError

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
    def regions_for(views: list[View], names: dict[int, str], start: int = 0
                    ) -> tuple[list[Region], dict[int, list[Region]]]:
        """A region (its mask box) for each named object in each view where it is seen: r0, r1, ... in order."""
        regions, by_object = [], {oid: [] for oid in names}
        for k, view in enumerate(views):
            for oid, name in names.items():
                if view.seen(oid):
                    region = Region(f"r{start + len(regions)}", k, [float(v) for v in view.box(oid)], _short(name))
                    regions.append(region)
                    by_object[oid].append(region)
        return regions, by_object

    def generator_name(self) -> str:
        return f"scene/{self.renderer.name}"

    def family_of(self, index: int, families: tuple[str, ...]) -> tuple[str, Slot]:
        """The record's question family, each at its share of a build, and the record's slot among that family's
        records: every run of len(families) indices holds each family once, so run k is the family's k-th record.
        Answer positions and the family's own balanced choices are keyed on that slot, so they are balanced
        within each family, not only over the build."""
        family = pick_balanced(self.slot(index), families, "family")
        return family, Slot(f"{self.name}/{family}", self.options.seed, index // len(families))

    # -- reasoning helpers ---------------------------------------------------------------------------------

    @staticmethod
    def grounding(record: Record, names: dict[str, str]) -> str:
        """text2region: each named phrase tied to its boxes, image by image."""
        lines = []
        for label, phrase in names.items():
            hits = [r for r in record.regions if r.label == label]
            if hits:
                lines.append(f"'{phrase}' → {'; '.join(cite(r) for r in hits)}.")
        return " ".join(lines)

    @staticmethod
    def captions(facts: dict[str, Any], places: list[str]) -> list[str]:
        objects = {str(o["id"]): o for o in facts["scene"]["objects"]}
        return [caption_text(v, objects, p, facts["scene"]["ground"]) for v, p in zip(facts["views"], places)]


def region_of(record: Record, image: int, label: str) -> Region:
    return next(r for r in record.regions if r.image == image and r.label == label)


def where_text(record: Record, facts_view: dict[str, Any], image: int, oid: int, label: str) -> str:
    """'[r3] (centre x ≈ 120.5 px, base at y = 231 px, 88 px tall)': what image `image` measures of an object."""
    o = facts_view["objects"][str(oid)]
    x0, y0, x1, y1 = o["box"]
    return (f"[{region_of(record, image, label).id}] (centre x ≈ {o['mask_centroid_x']:.1f} px, base at y = {y1} px, "
            f"{y1 - y0} px tall)")


# -- location_relationship --------------------------------------------------------------------------------

LOCATION_TEMPLATES = {
    "intro": [
        "{image} Photo 1 is taken where you start, facing a group of objects.",
        "{image} The first photo shows the objects from your starting spot.",
    ],
    "shown": [
        "{image} Photo {k} is taken after walking about {deg} degrees to the {side} around the objects, facing them.",
        "{image} For photo {k} you walked about {deg} degrees around the objects to the {side} and faced them again.",
    ],
    "query": [
        "Now go back to the start, walk about {deg} degrees around the objects to the {side} and face them.",
        "Suppose you return to the starting spot, then walk about {deg} degrees to the {side} around the objects, "
        "looking at them.",
    ],
    "pair": ["Where would {a} be relative to {b}?", "How would {a} appear relative to {b}?"],
    "extreme": ["Which of these objects would look {extreme} to you?", "Which object would appear {extreme}?"],
    "order": ["How would {listing} line up from left to right?", "In what order, from left to right, would you "
              "see {listing}?"],
}
PAIR_OPTIONS = {(lr, fb): f"to the {lr} of {{b}} and {'closer to' if fb == 'near' else 'farther from'} you"
                for lr in ("left", "right") for fb in ("near", "far")}
EXTREMES = {"leftmost": "furthest to the left", "rightmost": "furthest to the right",
            "nearest": "closest", "farthest": "farthest away"}
LOCATION_FAMILIES = ("pair", "extreme", "order")
MAX_FLANK_GAP = 100  # degrees: the walk meets any line through two objects at spots more than this apart
QUERY_CLEARANCE = 15  # degrees between the asked spot and the photos on either side of it


def _beats(view: View, a: int, b: int, extreme: str) -> bool:
    """a is clearly more `extreme` than b in the view."""
    return {"leftmost": lambda: view.left_of(a, b), "rightmost": lambda: view.left_of(b, a),
            "nearest": lambda: view.nearer(a, b), "farthest": lambda: view.nearer(b, a)}[extreme]()


class LocationRelationship(SpatialTask):
    """Left/right and near/far from a spot no photo shows.

    Photo 1 is the start; the other photos (default 5) are taken after stated walks around the objects. The
    question names another walk whose spot lies between the spots of two photos, at least 15 degrees from both
    and less than 100 degrees between them. Families (each at a third of a build): `pair` (where is A relative
    to B: left/right and closer/farther, 4 options), `extreme` (which candidate looks furthest left, right,
    nearest or farthest) and `order` (the left-to-right order of three objects). The answer is measured on a
    render from the asked spot (kept in the facts as the query view) with the margins of the module docstring,
    and the same relation must hold, with those margins, in both neighbouring photos: two objects swap sides
    only when the camera crosses the line through them, and swap near and far only when it crosses the line
    halfway between them; each such line meets the walked circle at two spots more than 100 degrees apart (the
    objects stand well inside it), so what both neighbouring photos show holds from the asked spot too.
    """

    name = "location_relationship"
    min_views = 4

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
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
        hidden = self.shoot(scene, query_camera)
        flank = [self.shoot(scene, cameras[i]) for i in (before, after)]
        judges = [hidden, *flank]
        named = [o.id for o in scene.objects if all(v.visible(o.id) and not v.obj(o.id)["cut_off"] for v in judges)]
        if len(named) < 3:
            return None
        family, slot = self.family_of(index, LOCATION_FAMILIES)
        name = lambda oid: scene.by_id(oid).name
        if family == "pair":
            pairs = []
            for a, b in itertools.permutations(named, 2):
                lr = "left" if all(v.left_of(a, b) for v in judges) else \
                    "right" if all(v.left_of(b, a) for v in judges) else None
                fb = "near" if all(v.nearer(a, b) for v in judges) else \
                    "far" if all(v.nearer(b, a) for v in judges) else None
                if lr and fb:
                    pairs.append((a, b, lr, fb))
            if not pairs:
                return None
            a, b, lr, fb = pick(rng, pairs)
            texts = {k: t.format(b=name(b)) for k, t in PAIR_OPTIONS.items()}
            correct, distractors = texts[(lr, fb)], [t for k, t in texts.items() if k != (lr, fb)]
            chosen, wording = [a, b], {"a": name(a), "b": name(b)}
            answer_facts = {"family": family, "a": a, "b": b, "left_right": lr, "near_far": fb}
        elif family == "extreme":
            extreme = pick(rng, list(EXTREMES))
            chosen = [named[i] for i in rng.permutation(len(named))[:4]]
            winners = [a for a in chosen if all(_beats(v, a, b, extreme) for v in judges for b in chosen if b != a)]
            if not winners:
                return None
            correct, distractors = name(winners[0]), [name(o) for o in chosen if o != winners[0]]
            wording = {"extreme": EXTREMES[extreme]}
            answer_facts = {"family": family, "extreme": extreme, "candidates": chosen, "winner": winners[0]}
        else:
            triples = [t for t in itertools.permutations(named, 3)
                       if all(v.clear_order(list(t), "left") for v in judges)]
            if not triples:
                return None
            order = list(pick(rng, triples))
            chosen = [order[i] for i in rng.permutation(3)]
            correct = ", ".join(name(o) for o in order)
            distractors = [", ".join(name(o) for o in p) for p in ordering_distractors(order, rng, 3)]
            wording = {"listing": join_and([name(o) for o in chosen])}
            answer_facts = {"family": family, "candidates": chosen, "order": order}
        options, answer = place_answer(correct, distractors, slot, rng)
        shot = dict(zip((before, after), flank))
        views = [shot[k] if k in shot else self.shoot(scene, camera) for k, camera in enumerate(cameras)]
        parts = [pick(rng, LOCATION_TEMPLATES["intro"]).format(image="<image>")]
        for k, walk in enumerate(walks[1:], start=2):
            parts.append(pick(rng, LOCATION_TEMPLATES["shown"]).format(
                image="<image>", k=k, deg=abs(walk), side="right" if walk > 0 else "left"))
        parts.append(pick(rng, LOCATION_TEMPLATES["query"]).format(deg=abs(query_walk),
                                                                   side="right" if query_walk > 0 else "left"))
        parts.append(pick(rng, LOCATION_TEMPLATES[family]).format(**wording))
        regions, _ = self.regions_for(views, {o: name(o) for o in chosen})
        facts = {
            "scene": scene.to_facts(),
            "views": [v.facts for v in views],
            "walks_deg": walks,
            "query_walk_deg": query_walk,
            "neighbours": [before, after],
            "query_view": hidden.facts,
            "answer": answer_facts,
            "base_azimuth_deg": base, "distance_m": distance,
        }
        return Sample(" ".join(parts), options, answer, [v.image() for v in views], regions, facts,
                      self.generator_name())

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        objects = {str(o["id"]): o for o in f["scene"]["objects"]}
        nm = lambda i: objects[str(i)]["name"]
        ans, walks, q = f["answer"], f["walks_deg"], f["query_walk_deg"]
        before, after = f["neighbours"]
        captions = self.captions(f, [walk_text(w) for w in walks])
        ids = [ans["a"], ans["b"]] if ans["family"] == "pair" else ans["candidates"]
        places = " and ".join(f"image {i + 1} ({walk_text(walks[i]).removeprefix('after ')})" for i in (before, after))
        summary = pick(rng, [
            "The photos show one group of objects from spots around it. The asked spot, {q}, lies between the "
            "spots of {places}; I read the asked relation in those two photos and check that they agree.",
            "I place the asked spot, {q}, on the walk around the objects: it falls between {places}. What both "
            "of these photos show about the objects also holds from a spot between them.",
        ]).format(q=walk_text(q).removeprefix("after "), places=places)
        lines = []
        for i in (before, after):
            view = f["views"][i]
            measured = "; ".join(f"{nm(o)} {where_text(record, view, i, o, _short(nm(o)))}" for o in ids)
            lines.append(f"In image {i + 1}: {measured}.")
        if ans["family"] == "pair":
            a, b = nm(ans["a"]), nm(ans["b"])
            relation = PAIR_OPTIONS[(ans["left_right"], ans["near_far"])].format(b=b)
            lines.append(f"In both, {a} is {ans['left_right']} of {b} and its base is "
                         f"{'lower' if ans['near_far'] == 'near' else 'higher'} in the picture, so it is "
                         f"{'nearer' if ans['near_far'] == 'near' else 'farther'}.")
            end = f"Seen from the asked spot, {a} is {relation}"
        elif ans["family"] == "extreme":
            winner = nm(ans["winner"])
            cue = {"leftmost": "the smallest centre x", "rightmost": "the largest centre x",
                   "nearest": "the lowest base", "farthest": "the highest base"}[ans["extreme"]]
            lines.append(f"In both, {winner} has {cue} of the listed objects, by a clear margin.")
            end = f"Seen from the asked spot, {winner} would look {EXTREMES[ans['extreme']]}"
        else:
            order = ", ".join(nm(o) for o in ans["order"])
            lines.append(f"In both, their centres run left to right as {order}, well apart.")
            end = f"Seen from the asked spot, they line up as {order}"
        lines.append("Objects swap sides only when the camera crosses the line through them, and swap near and "
                     "far only when it crosses the line halfway between them; the walk meets each such line at two "
                     "spots farther apart than these two neighbouring photos are, so it cannot cross one and back "
                     "between them, and the asked spot sees what both of them show.")
        names = {_short(nm(i)): nm(i) for i in ids}
        return Reasoning(summary, captions, self.grounding(record, names), " ".join(lines),
                         conclude(end, record.answer))


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

DEPTH_TEMPLATES = {
    "intro": [
        "{image} Photo 1 is taken from where you start.",
        "{image} The first photo shows a group of objects from your starting spot.",
    ],
    "shown": [
        "{image} Photo {k} is taken {walk}.",
        "{image} For photo {k} you stood {walk}, facing them.",
    ],
    "which_image": [
        "In which of photos {listing} was the camera closest to {a}?",
        "Of photos {listing}, which one was taken standing nearest to {a}?",
    ],
    "swap": [
        "In photo {i}, {a} is nearer to the camera than {b}. In which of photos {listing} is it the other way round?",
        "Photo {i} shows {a} nearer than {b}. Which of photos {listing} shows {b} nearer than {a}?",
    ],
    "order_change": [
        "Order {listing} from nearest to farthest from the camera, in photo {i} and in photo {j}.",
        "From nearest to farthest, how do {listing} line up in photo {i}, and how in photo {j}?",
    ],
}
DEPTH_FAMILIES = ("which_image", "swap", "order_change")


class DepthRelationship(SpatialTask):
    """How near objects are to the camera, compared across photos of one scene.

    Distance is the ground distance to an object's nearest visible surface (module docstring), with its
    margins. Families (each at a third of a build): `which_image` (in which of four photos the camera stood
    closest to an object: the answer photo is clearly nearer than each other option, and the object is at
    least 12 % taller there), `swap` (photo i shows A nearer than B; in which of four other photos is B nearer:
    exactly the answer shows it, the three others show A clearly nearer) and `order_change` (the near-to-far
    order of three objects in two photos whose orders differ; the four options are the 2 x 2 pairs of a right
    and a wrong order for each photo, so no option text stands out). Each needs at least two photos read
    side by side. Photos are in random order; their spots are stated as walks.
    """

    name = "depth_relationship"
    min_views = 5

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
        scene = self.sample_scene(rng)
        walks = sample_walks(rng, self.views) if scene is not None else None
        if walks is None:
            return None
        base, distance = self.frame(scene, rng)
        cameras = self.walk_cameras(scene, rng, walks, base, distance)
        family, slot = self.family_of(index, DEPTH_FAMILIES)
        ids = [o.id for o in scene.objects]
        # The projected geometry first: most layouts that cannot give this family are refused before rendering.
        if not self._found(family, [approximate_view(scene, c) for c in cameras], ids):
            return None
        views = [self.shoot(scene, c) for c in cameras]
        found = self._found(family, views, ids)
        if not found:
            return None
        name = lambda oid: scene.by_id(oid).name
        wording: dict[str, Any] = {}
        if family == "which_image":
            a, k, beaten = pick(rng, found)
            others = [beaten[i] for i in rng.permutation(len(beaten))[:3]]
            listing = sorted([k, *others])
            correct, distractors = f"Photo {k + 1}", [f"Photo {j + 1}" for j in others]
            chosen, shown_in = [a], listing
            wording = {"a": name(a), "listing": join_and([str(j + 1) for j in listing])}
            answer_facts = {"family": family, "object": a, "image": k, "options": listing}
        elif family == "swap":
            a, b, a_first, b_first = pick(rng, found)
            i, *rest = [a_first[t] for t in rng.permutation(len(a_first))]
            j = pick(rng, b_first)
            others = rest[:3]
            listing = sorted([j, *others])
            correct, distractors = f"Photo {j + 1}", [f"Photo {t + 1}" for t in others]
            chosen, shown_in = [a, b], [i, *listing]
            wording = {"a": name(a), "b": name(b), "i": i + 1, "listing": join_and([str(t + 1) for t in listing])}
            answer_facts = {"family": family, "a": a, "b": b, "premise_image": i, "image": j, "options": listing}
        else:
            triple, i, j, order_i, order_j = pick(rng, found)
            if rng.uniform() < 0.5:
                i, j, order_i, order_j = j, i, order_j, order_i
            wrong_i = ordering_distractors(order_i, rng, 1)[0]
            wrong_j = ordering_distractors(order_j, rng, 1)[0]
            text = lambda oi, oj: (f"photo {i + 1}: {', '.join(name(o) for o in oi)}; "
                                   f"photo {j + 1}: {', '.join(name(o) for o in oj)}")
            correct = text(order_i, order_j)
            distractors = [text(order_i, wrong_j), text(wrong_i, order_j), text(wrong_i, wrong_j)]
            chosen, shown_in = list(triple), [i, j]
            listing = [triple[t] for t in rng.permutation(3)]
            wording = {"listing": join_and([name(o) for o in listing]), "i": i + 1, "j": j + 1}
            answer_facts = {"family": family, "candidates": list(triple), "images": [i, j],
                            "orders": [order_i, order_j]}
        options, answer = place_answer(correct, distractors, slot, rng)
        parts = [pick(rng, DEPTH_TEMPLATES["intro"]).format(image="<image>")]
        for k, walk in enumerate(walks[1:], start=2):
            parts.append(pick(rng, DEPTH_TEMPLATES["shown"]).format(image="<image>", k=k, walk=walk_text(walk)))
        parts.append(pick(rng, DEPTH_TEMPLATES[family]).format(**wording))
        regions, _ = self.regions_for(views, {o: name(o) for o in chosen})
        answer_facts["shown_in"] = shown_in
        facts = {"scene": scene.to_facts(), "views": [v.facts for v in views], "walks_deg": walks,
                 "answer": answer_facts, "base_azimuth_deg": base, "distance_m": distance}
        return Sample(" ".join(parts), options, answer, [v.image() for v in views], regions, facts,
                      self.generator_name())

    @staticmethod
    def _found(family: str, views: list[View], ids: list[int]) -> list[tuple]:
        """Every question of the family these views settle: (object, answer photo, other photos) for
        which_image, (a, b, photos with a nearer, photos with b nearer) for swap, (objects, photo i, photo j,
        order in i, order in j) for order_change."""
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
                    order = next((list(p) for p in itertools.permutations(triple)
                                  if views[k].clear_order(list(p), "near")), None)
                    if order:
                        orders[k] = order
                for i, j in itertools.combinations(sorted(orders), 2):
                    if orders[i] != orders[j]:
                        found.append((triple, i, j, orders[i], orders[j]))
        return found

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        objects = {str(o["id"]): o for o in f["scene"]["objects"]}
        nm = lambda i: objects[str(i)]["name"]
        ans = f["answer"]
        captions = self.captions(f, [walk_text(w) for w in f["walks_deg"]])
        measure = lambda k, o: f"{nm(o)} {where_text(record, f['views'][k], k, o, _short(nm(o)))}"
        cue = ("A lower base in the picture means the object meets the ground nearer the camera; the same object "
               "also looks bigger from nearer.")
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
            summary = pick(rng, [
                "I sort the three objects by where they meet the ground, first in one photo, then in the other.",
                "The question asks for two near-to-far orders; I read each photo on its own, by the bases of the "
                "objects, then pair the answers.",
            ])
            lines = []
            for k, order in zip(ans["images"], ans["orders"]):
                lines.append(f"Image {k + 1}: " + "; ".join(measure(k, o) for o in order) +
                             f". Bases from lowest to highest: {', '.join(nm(o) for o in order)}.")
            lines.insert(0, cue)
            i, j = ans["images"]
            end = (f"Photo {i + 1} runs {', '.join(nm(o) for o in ans['orders'][0])} from nearest to farthest, and "
                   f"photo {j + 1} runs {', '.join(nm(o) for o in ans['orders'][1])}")
        names = {_short(nm(i)): nm(i) for i in ids}
        return Reasoning(summary, captions, self.grounding(record, names), " ".join(lines),
                         conclude(end, record.answer))


# -- view_3d -------------------------------------------------------------------------------------------

VIEW3D_TEMPLATES = {
    "intro": [
        "{image} Photo 1 shows a group of objects from where you start. {others}",
        "{image} This is the group of objects seen from the starting spot. More photos follow: {others}",
    ],
    "pick_image": [
        "Which of photos 2 to {n} was taken after walking about {deg} degrees to the {side} around the objects?",
        "You walk about {deg} degrees around the objects to the {side} and look at them. Which of photos 2 to {n} "
        "shows that view?",
    ],
    "name_view": [
        "Where was photo {k} taken?",
        "From which spot around the objects was photo {k} taken?",
    ],
    "walk_order": [
        "Walking from the start around the objects to the right, in which order do you pass the spots of photos "
        "2 to {n}?",
        "You walk once around the objects, starting at the first photo's spot and going to the right. In which "
        "order do you reach the spots where photos 2 to {n} were taken?",
    ],
}
VIEW3D_FAMILIES = ("pick_image", "name_view", "walk_order")
MIN_VIEW_GAP = 40  # degrees between any two photos' spots


def side_of_walk(walk: int) -> str | None:
    """Which side of the group a walk from the start ends on, when it clearly ends on one."""
    if 50 <= abs(walk) <= 130:
        return "right" if walk > 0 else "left"
    return "back" if abs(walk) >= 150 else None


class View3D(SpatialTask):
    """Matching photos to the spots they were taken from, around one group of objects.

    Photo 1 is the start; the other photos (default 5) come from spots at least 40 degrees apart around the
    group, at their own elevations (18-40 degrees). Families (each at a third of a build): `pick_image` (which
    photo was taken after a stated walk; options photos 2 to n, and in half of these records one photo is a
    decoy: the mirror image of the scene seen from the asked spot, which no walk can give), `name_view` (which
    of four stated walks photo k was taken after; the options are the walks of four of the photos) and
    `walk_order` (the order in which a walk to the right passes the photos' spots). Every photo shows at least
    three objects and no two photos show the visible objects in the same left-to-right order, so each one tells
    its spot apart; the photo taken after a walk to one side shows the objects that stood on that side of
    photo 1 nearest.
    """

    name = "view_3d"
    min_views = 4

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
        scene = self.sample_scene(rng, 4, 5)
        walks = sample_walks(rng, self.views, min_gap=MIN_VIEW_GAP, max_gap=150) if scene is not None else None
        if walks is None:
            return None
        base, distance = self.frame(scene, rng)
        views = self.walk_views(scene, rng, walks, base, distance)
        orders = [tuple(v.left_to_right()) for v in views]
        if min(len(o) for o in orders) < 3 or len(set(orders)) != len(orders):
            return None
        family, slot = self.family_of(index, VIEW3D_FAMILIES)
        n = len(views)
        if family == "pick_image":
            k = int(rng.integers(1, n))
            if balanced_index(slot, 2, "view_3d decoy"):
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
            else:
                replaced = None
            correct = f"Photo {k + 1}"
            distractors = [f"Photo {j + 1}" for j in range(1, n) if j != k]
            options, answer = place_answer(correct, distractors, slot, rng)
            decoy_at = replaced  # photos are in random order already: the options list them shuffled
            ask = {"n": n, "deg": abs(walks[k]), "side": "right" if walks[k] > 0 else "left"}
            answer_facts = {"family": family, "image": k, "walk_deg": walks[k], "decoy_image": decoy_at}
        elif family == "name_view":
            k = int(rng.integers(1, n))
            others = [j for j in rng.permutation(range(1, n)).tolist() if j != k][:3]
            correct = walk_text(walks[k]).removeprefix("after ")
            distractors = [walk_text(walks[j]).removeprefix("after ") for j in others]
            options, answer = place_answer(correct, distractors, slot, rng)
            ask = {"k": k + 1}
            answer_facts = {"family": family, "image": k, "walk_deg": walks[k], "option_images": others}
        else:
            passed = sorted(range(1, n), key=lambda j: walks[j] % 360)
            label = lambda seq: ", ".join(f"photo {j + 1}" for j in seq)
            correct = label(passed)
            distractors = [label(p) for p in ordering_distractors(passed, rng, 3)]
            options, answer = place_answer(correct, distractors, slot, rng)
            ask = {"n": n}
            answer_facts = {"family": family, "order": passed}
        others_text = " ".join("<image>" for _ in views[1:])
        question = (pick(rng, VIEW3D_TEMPLATES["intro"]).format(image="<image>", others=others_text) + " " +
                    pick(rng, VIEW3D_TEMPLATES[family]).format(**ask))
        regions, _ = self.regions_for(views, {o.id: o.name for o in scene.objects})
        facts = {"scene": scene.to_facts(), "views": [v.facts for v in views], "walks_deg": walks,
                 "answer": answer_facts, "base_azimuth_deg": base, "distance_m": distance}
        return Sample(question, options, answer, [v.image() for v in views], regions, facts, self.generator_name())

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        objects = {str(o["id"]): o for o in f["scene"]["objects"]}
        nm = lambda i: objects[str(i)]["name"]
        ans, walks = f["answer"], f["walks_deg"]
        places = ["from the starting spot"] + ["from a spot to be worked out"] * (len(walks) - 1)
        captions = self.captions(f, places)
        first = View(Camera.from_facts(f["views"][0]["camera"]), None, f["views"][0])
        summary = pick(rng, [
            "Photo 1 fixes the start. Walking around to one side brings the objects on that side of photo 1 to "
            "the front, so I look at which objects are nearest in each photo and where they stood in photo 1.",
            "I match each photo to a spot around the group: from a spot on one side of the group, the objects "
            "that photo 1 shows on that side are the nearest ones.",
        ])
        lines = []
        for k in range(1, len(walks)):
            view = View(Camera.from_facts(f["views"][k]["camera"]), None, f["views"][k])
            ids = view.left_to_right()
            nearest = [a for a in ids if all(view.nearer(a, b) for b in ids if b != a)]
            shown = sorted((int(i) for i, o in view.facts["objects"].items() if o["seen"]), key=view.x)
            text = f"Image {k + 1} shows {join_and([nm(i) for i in shown])}"  # all a viewer notices, as captions do
            if nearest:
                a = nearest[0]
                text += f"; {nm(a)} is nearest ({where_text(record, f['views'][k], k, a, _short(nm(a)))})"
                side = side_of_walk(walks[k]) if walks[k] is not None else None
                if side and first.visible(a) and self._stands(first, a, side):
                    word = {"left": "on the left", "right": "on the right", "back": "at the back"}[side]
                    text += (f", and in image 1 it stands {word} of the group, so this photo was taken from the "
                             f"{'far side' if side == 'back' else side + ' side'}")
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
        names = {_short(o["name"]): o["name"] for o in objects.values()}
        return Reasoning(summary, captions, self.grounding(record, names), " ".join(lines),
                         conclude(end, record.answer))

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
FORCED_FAMILIES = ("tallest", "compare", "height")
TALLER = 1.35  # "taller" needs this true ratio; the estimate from the pixels must show at least ESTIMATE_TALLER
ESTIMATE_TALLER = 1.15
SAME = 0.03  # "about the same height": true heights within 3 %, estimates within SAME_ESTIMATE
SAME_ESTIMATE = 0.1
ESTIMATE_ERROR = 0.1  # a reading against the person must land within 10 % of the true height
ALIKE = 0.15  # objects that "look alike" in photo 1: pixel heights within 15 %
SAME_HEIGHT = "they are all about the same height"
FORCED_TEMPLATES = {
    "intro": [
        "{first} Photo 1 is taken at eye level. {rest} The other photos show the same objects from other spots. "
        "{person} in the photos is {ph:.2f} m tall.",
        "{first} In photo 1, taken standing up, {listing} appear side by side. {rest} These photos show the same "
        "place from elsewhere; {person_l} in them is {ph:.2f} m tall.",
    ],
    "tallest": ["Which of {listing} is the tallest in reality?", "In real life, which is the tallest of {listing}?"],
    "compare": ["In reality, how does {a} compare in height with {b}?",
                "Which is taller in real life, {a} or {b}?"],
    "height": ["About how tall is {a} in reality?", "Roughly what is the real height of {a}?"],
}


class ForcedPerspective(SpatialTask):
    """Real heights when apparent sizes mislead.

    Three objects (cube, cylinder or cone; heights 0.5-4.5 m whatever the kind) and a figure of a person of a
    stated height stand on paved ground. Photo 1 is taken at eye level from where objects at different distances
    look alike: the pairs a question turns on are within 15 % of each other in pixel height, a far big one beside
    a near small one. For each object one photo is taken from a spot where it and the person stand at the same
    distance from the camera (the camera faces the line between them square on, their bases on one image row),
    so its height reads against the person's: height ≈ person × (object's pixel height / person's); that
    reading must land within 10 % of the truth. The remaining photos (default 2) look over the whole place
    from above. Families (each at a third of a build): `tallest` (which of the three is tallest; "they are all
    about the same height" is right at 1 in 4: true heights within 3 %), `compare` (A taller, B taller, or
    about the same, each at a third) and `height` (the asked object's height in metres: four options 1.3-1.7
    times apart anywhere in 0.5-4.5 m, the asked height drawn as one of them at a balanced rank).
    "Taller" means a true ratio of at least 1.35 and a reading of at least 1.15; in `tallest` half the records
    place a small object farther away than the tallest one, so the tallest is not always the farthest.
    """

    name = "forced_perspective"
    min_views = 4

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
        family, slot = self.family_of(index, FORCED_FAMILIES)
        w, h = self.size
        eye = round(float(rng.uniform(1.5, 1.8)), 2)
        pitch = math.radians(float(rng.uniform(2, 6)))
        first = Camera((0.0, 0.0, eye), (0.0, 50.0, round(eye - 50.0 * math.tan(pitch), 4)), w, h)
        heights, plan = self._heights(family, slot, rng)
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
        made = self._question(family, plan, heights, readings, names, rng)
        if made is None:
            return None
        correct, distractors, wording, answer_facts = made
        options, answer = place_answer(correct, distractors, slot, rng)
        rest = [*checks, *overviews]
        order = rng.permutation(len(rest))
        views = [view1, *(rest[t] for t in order)]
        check_images = [1 + int(np.flatnonzero(order == i)[0]) for i in range(3)]
        listing = join_and(names)
        intro = pick(rng, FORCED_TEMPLATES["intro"]).format(
            first="<image>", rest=" ".join("<image>" for _ in rest), listing=listing, ph=person_height,
            person=person.name.capitalize(), person_l=person.name)
        question = f"{intro} {pick(rng, FORCED_TEMPLATES[family]).format(listing=listing, **wording)}"
        regions, _ = self.regions_for(views, {o.id: o.name for o in objects})
        facts = {"scene": scene.to_facts(), "views": [v.facts for v in views], "person": {"id": 4, "name": person.name,
                 "height_m": person_height}, "heights_m": heights, "check_images": check_images,
                 "readings_m": [round(r, 3) for r in readings], "answer": answer_facts, "plan": plan}
        return Sample(question, options, answer, [v.image() for v in views], regions, facts, self.generator_name())

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

    @staticmethod
    def _question(family: str, plan: dict[str, Any], heights: list[float], readings: list[float], names: list[str],
                  rng: np.random.Generator) -> tuple[str, list[str], dict[str, Any], dict[str, Any]] | None:
        """(correct option, distractors, wording, answer facts), or None when the readings do not settle it."""
        if family == "tallest":
            if plan["case"] == "same":
                if max(readings) > (1 + SAME_ESTIMATE) * min(readings):
                    return None
                return SAME_HEIGHT, names, {}, {"family": family, "tallest": None}
            t = plan["tallest"]
            if any(readings[t] < ESTIMATE_TALLER * readings[i] for i in range(3) if i != t):
                return None
            return names[t], [n for i, n in enumerate(names) if i != t] + [SAME_HEIGHT], {}, {
                "family": family, "tallest": t}
        if family == "compare":
            ratio = readings[0] / readings[1]
            case = plan["case"]
            if case == "same" and not abs(ratio - 1) <= SAME_ESTIMATE or case == "a" and ratio < ESTIMATE_TALLER \
                    or case == "b" and 1 / ratio < ESTIMATE_TALLER:
                return None
            texts = {"a": f"{names[0]} is taller", "b": f"{names[1]} is taller", "same": "they are about the same height"}
            return texts[case], [t for k, t in texts.items() if k != case], {"a": names[0], "b": names[1]}, {
                "family": family, "case": case}
        texts = [f"about {v:.1f} m" for v in plan["options_m"]]
        correct = texts[plan["rank"]]
        return correct, [t for t in texts if t != correct], {"a": names[0]}, {
            "family": family, "value_m": plan["options_m"][plan["rank"]]}

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

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        objects = {str(o["id"]): o for o in f["scene"]["objects"]}
        nm = lambda i: objects[str(i)]["name"]
        person, ans = f["person"], f["answer"]
        ph, pl = person["height_m"], _short(person["name"])
        places = ["at eye level"] + ["from another spot"] * (len(f["views"]) - 1)
        captions = self.captions(f, places)
        checks = f["check_images"]
        summary = pick(rng, [
            "Near things look big, so how tall the objects look in photo 1 says little about their real heights. "
            "{person} is {ph:.2f} m tall; in photos {checks} each object stands as far from the camera as the "
            "person does (their bases on one row), so there its height can be read against the person's.",
            "Photo 1 is a forced-perspective view: a far object can look as big as a near one. I find, for each "
            "object, the photo where it stands level with {person} ({ph:.2f} m), and compare their pixel heights.",
        ]).format(person=person["name"], ph=ph,
                  checks=join_and([str(k + 1) for k in checks]))
        first = f["views"][0]
        lines = ["In image 1: " + "; ".join(f"{nm(i)} {where_text(record, first, 0, i, _short(nm(i)))}"
                                            for i in (1, 2, 3)) + "."]
        view1 = View(Camera.from_facts(first["camera"]), None, first)
        farther = [(a, b) for a, b in itertools.permutations((1, 2, 3), 2) if view1.nearer(b, a)]
        if farther:
            a, b = farther[0]
            lines.append(f"The base of {nm(a)} is higher in the picture than that of {nm(b)}, so it stands farther "
                         "away and is bigger than it looks next to it.")
        for i, k in zip((1, 2, 3), checks):
            view = f["views"][k]["objects"]
            o, p = view[str(i)], view["4"]
            oh, phx = o["box"][3] - o["box"][1], p["box"][3] - p["box"][1]
            lines.append(f"In image {k + 1}, {nm(i)} [{region_of(record, k, _short(nm(i))).id}] and the {pl} "
                         f"[{region_of(record, k, pl).id}] have their bases at y = {o['box'][3]} and {p['box'][3]} px, "
                         f"so they stand at the same distance: {nm(i)} is {oh} px tall and the person {phx} px, "
                         f"so {nm(i)} is about {ph:.2f} m × {oh} / {phx} ≈ {ph * oh / phx:.1f} m tall.")
        estimate = {i: ph * (f["views"][k]["objects"][str(i)]["box"][3] - f["views"][k]["objects"][str(i)]["box"][1])
                    / (f["views"][k]["objects"]["4"]["box"][3] - f["views"][k]["objects"]["4"]["box"][1])
                    for i, k in zip((1, 2, 3), checks)}
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
            end = f"{nm(1).capitalize()} is about {estimate[1]:.1f} m tall; the nearest option is {record.answer_text}"
        names = {_short(o["name"]): o["name"] for o in objects.values()}
        return Reasoning(summary, captions, self.grounding(record, names), " ".join(lines),
                         conclude(end, record.answer))


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


TASKS = [LocationRelationship, DepthRelationship, View3D, ForcedPerspective]
