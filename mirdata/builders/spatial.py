"""The spatial category: questions about positions, depth and size across several rendered views of a scene.

Every scene is a scene graph (mirdata.generators.scene) rendered by the chosen renderer; each fact a question
rests on is measured on the rendered depth maps and instance masks, with margins, and agrees with the 3D
geometry. A draw whose relation is too close to call is dropped and drawn again.

Viewpoints: azimuth 0 is wherever the first photo was taken ("the front"); "walking around to the left"
moves the camera clockwise seen from above, so after a quarter turn it looks at the scene's left side.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from mirdata.builders.base import BuildOptions, Reasoning, Sample, Task, cite, conclude, join_and, pick
from mirdata.builders.options import place_answer
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
    sample_size,
    view_facts,
)
from mirdata.schema.record import Record, Region, option_text

LAYOUT_TRIES = 6  # layouts drawn per attempt before the runner is asked for a fresh RNG
MIN_GAP_X = 0.06  # left/right needs the mask centroids this share of the image width apart
MIN_GAP_DEPTH = 0.6  # near/far needs median depths this many metres apart
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]


def _short(name: str) -> str:
    """'the red cube' -> 'red cube' (region labels)."""
    return name.removeprefix("the ")


@dataclass
class View:
    """One rendered view and what its pixels say about each object."""

    camera: Camera
    result: RenderResult
    facts: dict[str, Any]

    def obj(self, oid: int) -> dict[str, Any]:
        return self.facts["objects"][str(oid)]

    def visible(self, oid: int) -> bool:
        return bool(self.obj(oid)["visible"])

    def box(self, oid: int) -> list[int]:
        return self.obj(oid)["box"]

    def depth(self, oid: int) -> float:
        return self.obj(oid)["median_depth_m"]

    def x(self, oid: int) -> float:
        return self.obj(oid)["mask_centroid_x"]

    def image(self) -> Image.Image:
        return Image.fromarray(self.result.color)

    def left_to_right(self) -> list[int]:
        ids = [int(k) for k, v in self.facts["objects"].items() if v["visible"]]
        return sorted(ids, key=self.x)


class SpatialTask(Task):
    """Shared by the four spatial tasks: the lazily made renderer, scene sampling, rendering views."""

    category = "spatial"
    default_views: ClassVar[int] = 3
    min_views: ClassVar[int] = 2
    # The most views a task can take, and why (said in the error for a larger --views); None: no limit.
    max_views: ClassVar[tuple[int, str] | None] = None

    def __init__(self, options: BuildOptions):
        super().__init__(options)
        check_renderer_name(options.renderer)
        if self.max_views is not None and self.views > self.max_views[0]:
            limit, why = self.max_views
            raise MirdataError(f"{self.name} takes at most {limit} views{why}, not {self.views}")
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
        return max(self.options.views or self.default_views, self.min_views)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.options.image_size)  # type: ignore[return-value]

    def build(self, index: int, rng: np.random.Generator) -> Sample | None:
        """Up to LAYOUT_TRIES fresh layouts from this RNG; most refusals are cheap (before any rendering)."""
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
        """A tabletop-like scene of primitives and a composite or two (no towers: they hide everything)."""
        n = int(rng.integers(low, high + 1))
        pool = list(PRIMITIVES) * 3 + ["car", "tree", "figure"]
        kinds = [pick(rng, pool) for _ in range(n)]
        scene = sample_layout(rng, kinds, area=2.2 + 0.55 * n)
        if scene is not None:
            scene.light = sample_light(rng)
            scene.ground, scene.sky_colour = sample_backdrop(rng)
        return scene

    def orbit(self, scene: Scene, azimuth: float, elevation: float, distance: float) -> Camera:
        return orbit_camera(scene, azimuth, elevation, distance, self.size)

    @staticmethod
    def frame(scene: Scene, rng: np.random.Generator) -> tuple[float, float, float]:
        """(base azimuth, elevation, distance) that keep the whole scene in a 45-degree view."""
        return (round(float(rng.uniform(0, 360)), 1), round(float(rng.uniform(26, 40)), 1),
                round(2.3 * scene.radius() + 2.5, 2))

    def regions_for(self, views: list[View], names: dict[int, str], start: int = 0
                    ) -> tuple[list[Region], dict[int, list[Region]]]:
        """A region for each named object in each view where it is visible: r0, r1, ... in view order."""
        regions, by_object = [], {oid: [] for oid in names}
        for k, view in enumerate(views):
            for oid, name in names.items():
                if view.visible(oid):
                    region = Region(f"r{start + len(regions)}", k, [float(v) for v in view.box(oid)], _short(name))
                    regions.append(region)
                    by_object[oid].append(region)
        return regions, by_object

    def regions_in_view(self, view: View, image: int, names: dict[int, str]) -> list[Region]:
        """`regions_for` one view that is image `image` of the record."""
        regions, _ = self.regions_for([view], names)
        for region in regions:
            region.image = image
        return regions

    @staticmethod
    def view_list_facts(views: list[View]) -> list[dict[str, Any]]:
        return [v.facts for v in views]

    def generator_name(self) -> str:
        return f"scene/{self.renderer.name}"

    # -- reasoning helpers ---------------------------------------------------------------------------------

    @staticmethod
    def grounding(record: Record, names: dict[str, str]) -> str:
        """text2region: each named phrase tied to its boxes, image by image."""
        lines = []
        for label, phrase in names.items():
            hits = [r for r in record.regions if r.label == label]
            if not hits:
                continue
            where = "; ".join(cite(r) for r in hits)
            lines.append(f"'{phrase}' → {where}.")
        return " ".join(lines)

    @staticmethod
    def caption_of(view_facts: dict[str, Any], objects: dict[str, dict[str, Any]], where: str, ground: str,
                   rng: np.random.Generator) -> str:
        visible = [(o["mask_centroid_x"], objects[k]["name"], o["median_depth_m"])
                   for k, o in view_facts["objects"].items() if o["visible"]]
        visible.sort()
        names = [n for _, n, _ in visible]
        nearest = min(visible, key=lambda t: t[2])
        opener = pick(rng, ["A view {where}", "The scene seen {where}", "A photo taken {where}"]).format(where=where)
        return (f"{opener}: from left to right, {join_and(names)} stand on {ground} ground; "
                f"{nearest[1]} is nearest to the camera ({nearest[2]:.1f} m).")


# -- location_relationship --------------------------------------------------------------------------------

# Camera moves from where the first photo was taken: (azimuth change in degrees, how the text says it,
# what the resulting viewpoint is called).
MOVES: list[tuple[int, str, str]] = [
    (-90, "after walking around to the left side of the scene, a quarter turn", "from the left side"),
    (90, "after walking around to the right side of the scene, a quarter turn", "from the right side"),
    (180, "after walking around to the far side of the scene, half a turn", "from the far side"),
    (-45, "after walking an eighth of a turn around the scene to the left",
     "from an eighth of a turn to the left"),
    (45, "after walking an eighth of a turn around the scene to the right",
     "from an eighth of a turn to the right"),
    (-135, "after walking three eighths of a turn around the scene to the left",
     "from three eighths of a turn to the left"),
    (135, "after walking three eighths of a turn around the scene to the right",
     "from three eighths of a turn to the right"),
]

LOCATION_TEMPLATES = {
    "intro": [
        "{image} The first photo is taken standing in front of a group of objects.",
        "{image} This photo is taken from where you start, facing the objects.",
        "{image} Photo 1 shows the objects from your starting point.",
    ],
    "shown": [
        "{image} Photo {k} is taken {move}.",
        "{image} The {ordinal} photo is taken {move}, facing the centre again.",
    ],
    "pair": [
        ("Now imagine you start again at the first photo's spot and walk {query_move}, then face the centre. "
        "From there, where is {a} relative to {b}?"),
        ("Suppose you go back to where the first photo was taken and move {query_move}, looking at the centre. "
        "How would {a} appear relative to {b}?"),
    ],
    "extreme": [
        ("Now imagine you start again at the first photo's spot and walk {query_move}, then face the centre. "
        "Which of these objects would look {extreme} to you?"),
        ("Suppose you go back to where the first photo was taken and move {query_move}, looking at the centre. "
        "Which object would appear {extreme}?"),
    ],
}
PAIR_OPTIONS = {(lr, fb): f"to the {lr} of {{b}} and {'closer to' if fb == 'near' else 'farther from'} you"
                for lr in ("left", "right") for fb in ("near", "far")}
EXTREMES = {"leftmost": "furthest to the left", "rightmost": "furthest to the right",
            "nearest": "closest", "farthest": "farthest away"}


class LocationRelationship(SpatialTask):
    """Left/right and in front/behind between two objects as seen from a viewpoint no photo shows.

    The photos are taken from the start and after stated walks around the scene; the question names another
    walk. Its answer is measured on a render from that hidden viewpoint (kept in the facts as the query
    view): left/right by the objects' mask centroids (at least 6% of the width apart), closer/farther by
    their median depths (at least 0.6 m apart); the projected 3D centres must agree.
    """

    name = "location_relationship"
    default_views = 3

    max_views = (len(MOVES), "")

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
        scene = self.sample_scene(rng)
        if scene is None:
            return None
        base, elevation, distance = self.frame(scene, rng)
        moves = [MOVES[i] for i in rng.permutation(len(MOVES))]
        shown, query = moves[: self.views - 1], moves[self.views - 1]
        views = [self.shoot(scene, self.orbit(scene, base, elevation, distance))]
        views += [self.shoot(scene, self.orbit(scene, base + m[0], elevation, distance)) for m in shown]
        hidden = self.shoot(scene, self.orbit(scene, base + query[0], elevation, distance))
        # Objects a question may name: seen in the hidden view and in at least one photo.
        named = [o.id for o in scene.objects if hidden.visible(o.id) and any(v.visible(o.id) for v in views)]
        family = "pair" if rng.uniform() < 0.6 else "extreme"
        w = self.size[0]
        if family == "pair":
            pairs = [(a, b) for a, b in itertools.permutations(named, 2)
                     if self._lr(hidden, a, b, w) and self._fb(hidden, a, b)]
            if not pairs:
                return None
            a, b = pairs[int(rng.integers(len(pairs)))]
            key = (self._lr(hidden, a, b, w), self._fb(hidden, a, b))
            texts = {k: t.format(b=scene.by_id(b).name) for k, t in PAIR_OPTIONS.items()}
            correct = texts[key]
            distractors = [t for k, t in texts.items() if k != key]
            chosen = [a, b]
            wording = {"a": scene.by_id(a).name, "b": scene.by_id(b).name}
            answer_facts = {"family": "pair", "a": a, "b": b, "left_right": key[0], "near_far": key[1]}
        else:
            extreme = pick(rng, list(EXTREMES))
            if len(named) < 3:
                return None
            chosen = [named[i] for i in rng.permutation(len(named))[:4]]
            winner = self._extreme(hidden, chosen, extreme, w)
            if winner is None:
                return None
            correct = scene.by_id(winner).name
            distractors = [scene.by_id(o).name for o in chosen if o != winner]
            wording = {"extreme": EXTREMES[extreme]}
            answer_facts = {"family": "extreme", "extreme": extreme, "candidates": chosen, "winner": winner}
        options, answer = place_answer(correct, distractors, self.slot(index), rng)

        parts = [pick(rng, LOCATION_TEMPLATES["intro"]).format(image="<image>")]
        for k, move in enumerate(shown, start=2):
            parts.append(pick(rng, LOCATION_TEMPLATES["shown"]).format(
                image="<image>", k=k, ordinal=ORDINALS[k - 1], move=move[1]))
        query_move = query[1].removeprefix("after ").removeprefix("walking ")
        parts.append(pick(rng, LOCATION_TEMPLATES[family]).format(query_move=query_move, **wording))
        regions, _ = self.regions_for(views, {o: scene.by_id(o).name for o in chosen})
        facts = {
            "scene": scene.to_facts(),
            "views": self.view_list_facts(views),
            "view_moves_deg": [0] + [m[0] for m in shown],
            "view_places": ["from the starting point"] + [m[2] for m in shown],
            "query_move_deg": query[0],
            "query_place": query[2],
            "query_view": hidden.facts,
            "answer": answer_facts,
            "base_azimuth_deg": base, "elevation_deg": elevation, "distance_m": distance,
        }
        return Sample(" ".join(parts), options, answer, [v.image() for v in views], regions, facts,
                      self.generator_name())

    @staticmethod
    def _lr(view: View, a: int, b: int, width: int) -> str | None:
        """'left' / 'right' when a clearly lies that side of b in the view (pixels and 3D agree)."""
        dx = view.x(a) - view.x(b)
        dc = view.obj(a)["centre_px"][0] - view.obj(b)["centre_px"][0]
        if abs(dx) < MIN_GAP_X * width or dx * dc <= 0:
            return None
        return "left" if dx < 0 else "right"

    @staticmethod
    def _fb(view: View, a: int, b: int) -> str | None:
        dz = view.depth(a) - view.depth(b)
        dc = view.obj(a)["centre_depth_m"] - view.obj(b)["centre_depth_m"]
        if abs(dz) < MIN_GAP_DEPTH or dz * dc <= 0:
            return None
        return "near" if dz < 0 else "far"

    @staticmethod
    def _extreme(view: View, ids: list[int], extreme: str, width: int) -> int | None:
        """The object that is clearly the most left/right/near/far, or None when the top two are close."""
        if extreme in ("leftmost", "rightmost"):
            score, gap, centre = view.x, MIN_GAP_X * width, lambda o: view.obj(o)["centre_px"][0]
        else:
            score, gap, centre = view.depth, MIN_GAP_DEPTH, lambda o: view.obj(o)["centre_depth_m"]
        reverse = extreme in ("rightmost", "farthest")
        ranked = sorted(ids, key=score, reverse=reverse)
        by_centre = sorted(ids, key=centre, reverse=reverse)
        if abs(score(ranked[0]) - score(ranked[1])) < gap or ranked[0] != by_centre[0]:
            return None
        return ranked[0]

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        objects = {str(o["id"]): o for o in f["scene"]["objects"]}
        ans, q = f["answer"], f["query_view"]["objects"]
        captions = [self.caption_of(v, objects, place, f["scene"]["ground"], rng) for v, place in zip(f["views"], f["view_places"])]
        ids = [ans["a"], ans["b"]] if ans["family"] == "pair" else ans["candidates"]
        names = {_short(objects[str(i)]["name"]): objects[str(i)]["name"] for i in ids}
        turn = f["query_move_deg"]
        side = "left" if turn < 0 else "right"
        summary = pick(rng, [
            ("The photos are taken from known spots around one group of objects; the question asks how the "
            "objects would line up seen {place}, a spot no photo shows."),
            ("Several views of the same objects with the walking between them stated; I need to picture the "
            "scene {place} and read off the asked relation."),
        ]).format(place=f["query_place"])
        summary += " I match the objects across the photos, place them on the floor, then turn the view."
        seen = []
        for k, v in enumerate(f["views"]):
            order = [objects[str(i)]["name"] for i in sorted(
                (int(i) for i in ids if v["objects"][str(i)]["visible"]),
                key=lambda i: v["objects"][str(i)]["mask_centroid_x"])]
            if len(order) >= 2:
                seen.append(f"in image {k + 1} ({f['view_places'][k]}) they run left to right as {join_and(order)}")
        moves = "; ".join(seen) if seen else "each photo shows some of them"
        lines = [f"The same objects appear across the photos: {moves}."]
        lines.append(f"After walking {abs(turn)} degrees to the {side} from the first spot, the camera looks at the "
                     f"objects {f['query_place']}.")
        for i in ids:
            o = q[str(i)]
            lines.append(f"From there {objects[str(i)]['name']} would be about {o['median_depth_m']:.1f} m away, "
                         f"around x = {o['mask_centroid_x']:.1f} px across the picture.")
        region2region = " ".join(lines)
        if ans["family"] == "pair":
            a, b = objects[str(ans["a"])]["name"], objects[str(ans["b"])]["name"]
            relation = PAIR_OPTIONS[(ans["left_right"], ans["near_far"])].format(b=b)
            conclusion = conclude(f"So, seen {f['query_place']}, {a} is {relation}", record.answer)
        else:
            winner = objects[str(ans["winner"])]["name"]
            conclusion = conclude(f"So, seen {f['query_place']}, {winner} would look {EXTREMES[ans['extreme']]}",
                                  record.answer)
        return Reasoning(summary, captions, self.grounding(record, names), region2region, conclusion)


# -- depth_relationship ---------------------------------------------------------------------------------

DEPTH_TEMPLATES = {
    "intro": [
        "{images} These photos show the same objects from different spots around them.",
        "{images} The same group of objects is photographed from several positions.",
    ],
    "nearest": [
        "In image {k}, which of these objects is closest to the camera?",
        "Looking at image {k}, which object is nearest to the camera that took it?",
    ],
    "farthest": [
        "In image {k}, which of these objects is farthest from the camera?",
        "Looking at image {k}, which object lies furthest away from the camera?",
    ],
    "which_image": [
        "In which image is {a} closest to the camera?",
        "Which photo was taken nearest to {a}?",
    ],
    "order": [
        "In image {k}, order {listing} from nearest to farthest from the camera.",
        "Sort {listing} by their distance from the camera of image {k}, nearest first.",
    ],
}


class DepthRelationship(SpatialTask):
    """Which object is nearest/farthest in a given view, in which view an object is nearest, or the depth
    order of three objects. Depth is each object's median depth on the rendered depth map (metres along
    the viewing axis); neighbours in every asked order are at least 0.6 m apart and the 3D centres agree."""

    name = "depth_relationship"
    default_views = 3

    max_views = (12, " (30 degrees apart)")

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
        scene = self.sample_scene(rng)
        if scene is None:
            return None
        base, elevation, distance = self.frame(scene, rng)
        turns = np.sort(rng.choice(np.arange(30, 360, 30), size=self.views - 1, replace=False))
        views = [self.shoot(scene, self.orbit(scene, base + t, elevation, distance)) for t in [0, *turns.tolist()]]
        family = pick(rng, ["nearest", "farthest", "which_image", "order"])
        k = int(rng.integers(len(views)))
        view = views[k]
        visible = [o.id for o in scene.objects if view.visible(o.id)]
        name = lambda oid: scene.by_id(oid).name
        wording: dict[str, Any] = {"k": k + 1}
        if family in ("nearest", "farthest"):
            if len(visible) < 3:
                return None
            chosen = [visible[i] for i in rng.permutation(len(visible))[:4]]
            ranked = self._ranked(view, chosen, reverse=family == "farthest")
            if ranked is None or not self._clear(view, ranked[:2]):
                return None
            correct, distractors = name(ranked[0]), [name(o) for o in ranked[1:]]
            answer_facts = {"family": family, "image": k, "candidates": chosen, "ranked": ranked}
            regions = self.regions_in_view(view, k, {o: name(o) for o in chosen})
        elif family == "which_image":
            candidates = [o.id for o in scene.objects if all(v.visible(o.id) for v in views)]
            if not candidates:
                return None
            a = pick(rng, candidates)
            per_view = [(views[i].depth(a), views[i].obj(a)["centre_depth_m"], i) for i in range(len(views))]
            per_view.sort()
            if per_view[1][0] - per_view[0][0] < MIN_GAP_DEPTH or per_view[0][2] != min(per_view, key=lambda t: t[1])[2]:
                return None
            winner = per_view[0][2]
            correct = f"Image {winner + 1}"
            distractors = [f"Image {i + 1}" for i in range(len(views)) if i != winner]
            chosen = [a]
            wording["a"] = name(a)
            answer_facts = {"family": family, "object": a, "image": winner,
                            "depths_m": [views[i].depth(a) for i in range(len(views))]}
            regions, _ = self.regions_for(views, {a: name(a)})
        else:
            if len(visible) < 3:
                return None
            chosen = [visible[i] for i in rng.permutation(len(visible))[:3]]
            ranked = self._ranked(view, chosen)
            if ranked is None or not all(self._clear(view, ranked[i:i + 2]) for i in range(2)):
                return None
            perms = [p for p in itertools.permutations(ranked) if list(p) != ranked]
            picks = [perms[i] for i in rng.permutation(len(perms))[:3]]
            correct = ", ".join(name(o) for o in ranked)
            distractors = [", ".join(name(o) for o in p) for p in picks]
            wording["listing"] = join_and([name(o) for o in chosen])
            answer_facts = {"family": family, "image": k, "candidates": chosen, "ranked": ranked}
            regions = self.regions_in_view(view, k, {o: name(o) for o in chosen})
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        intro = pick(rng, DEPTH_TEMPLATES["intro"]).format(images=" ".join("<image>" for _ in views))
        question = f"{intro} {pick(rng, DEPTH_TEMPLATES[family]).format(**wording)}"
        facts = {"scene": scene.to_facts(), "views": self.view_list_facts(views),
                 "view_turns_deg": [0, *turns.tolist()],
                 # The walk as the captions state it: degrees right (+) or left (-) from the first spot.
                 "view_walks_deg": [0, *(t if t <= 180 else t - 360 for t in turns.tolist())],
                 "answer": answer_facts}
        return Sample(question, options, answer, [v.image() for v in views], regions, facts, self.generator_name())

    @staticmethod
    def _ranked(view: View, ids: list[int], reverse: bool = False) -> list[int] | None:
        """Ids by median depth; None when the 3D centres give a different order."""
        by_pixels = sorted(ids, key=view.depth, reverse=reverse)
        by_centre = sorted(ids, key=lambda o: view.obj(o)["centre_depth_m"], reverse=reverse)
        return by_pixels if by_pixels == by_centre else None

    @staticmethod
    def _clear(view: View, pair: list[int]) -> bool:
        return abs(view.depth(pair[0]) - view.depth(pair[1])) >= MIN_GAP_DEPTH

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        objects = {str(o["id"]): o for o in f["scene"]["objects"]}
        ans = f["answer"]
        places = ["from the first spot" if w == 0 else f"after walking {abs(w)} degrees to the "
                  f"{'right' if w > 0 else 'left'} around the objects" for w in f["view_walks_deg"]]
        captions = [self.caption_of(v, objects, p, f["scene"]["ground"], rng) for v, p in zip(f["views"], places)]
        nm = lambda i: objects[str(i)]["name"]
        if ans["family"] == "which_image":
            ids = [ans["object"]]
            summary = (f"The question follows {nm(ans['object'])} through {len(f['views'])} photos and asks "
                       "in which one the camera stands closest to it; I compare its distance in each photo.")
            lines = [f"[{r.id}] in image {r.image + 1} is {nm(ans['object'])} at about "
                     f"{f['views'][r.image]['objects'][str(ans['object'])]['median_depth_m']:.1f} m"
                     for r in record.regions]
            region2region = ("All these regions are the same object: " + "; ".join(lines) +
                             f". The smallest distance is in image {ans['image'] + 1}.")
            conclusion = conclude(f"{nm(ans['object']).capitalize()} is closest to the camera in image "
                                  f"{ans['image'] + 1}", record.answer)
        else:
            ids = ans["candidates"]
            view = f["views"][ans["image"]]["objects"]
            goal = {"nearest": "find the one closest to it", "farthest": "find the one farthest from it",
                    "order": "sort them from nearest to farthest"}
            summary = pick(rng, [
                ("The question is about the camera of image {k}: I estimate each listed object's distance from its "
                 "size, where it meets the floor and what it hides, then {goal}."),
                ("I need the distance of each listed object from the camera of image {k} to {goal}; the floor and "
                 "the overlaps between objects tell their depth."),
            ]).format(goal=goal[ans["family"]], k=ans["image"] + 1)
            rid = {r.label: r.id for r in record.regions}
            steps = [f"{nm(i)} [{rid[_short(nm(i))]}] lies about {view[str(i)]['median_depth_m']:.1f} m away"
                     for i in ans["ranked"]]
            region2region = "From nearest to farthest: " + "; ".join(steps) + "."
            if ans["family"] == "order":
                conclusion = conclude(f"So the order from nearest to farthest is "
                                      f"{', '.join(nm(i) for i in ans['ranked'])}", record.answer)
            else:
                word = "closest to" if ans["family"] == "nearest" else "farthest from"
                conclusion = conclude(f"So {nm(ans['ranked'][0])} is {word} the camera in image {ans['image'] + 1}",
                                      record.answer)
        names = {_short(nm(i)): nm(i) for i in ids}
        return Reasoning(summary, captions, self.grounding(record, names), region2region, conclusion)


# -- view_3d -------------------------------------------------------------------------------------------

# Viewpoints relative to the reference photo: (name, azimuth change, elevation or None for the same).
VIEWPOINTS: dict[str, tuple[int, float | None]] = {
    "from the left side": (-90, None),
    "from the right side": (90, None),
    "from behind": (180, None),
    "from directly above": (0, 80.0),
}

VIEW3D_TEMPLATES = {
    "pick_image": [
        ("{ref} This photo shows a group of objects from the front. Which of the next images shows the same "
        "objects {viewpoint}? {candidates}"),
        ("{ref} Here is the front view of a scene. Look at these views: {candidates} Which one shows this same "
        "scene {viewpoint}?"),
    ],
    "name_view": [
        "{ref} This is the front view of a scene. {others} From where was image {k} taken?",
        "{ref} The first photo shows the scene from the front. {others} Where was the camera of image {k}?",
    ],
}


class View3D(SpatialTask):
    """Matching viewpoints: pick the image that shows the scene from a stated side (distractors: other
    sides, and the mirror image of the scene seen from the asked side), or name the side an image was
    taken from. Every candidate view shows at least three objects and no two candidates show the objects in
    the same left-to-right order, so each image tells its viewpoint apart."""

    name = "view_3d"
    default_views = 4

    max_views = (len(VIEWPOINTS) + 1, f" (the front and {len(VIEWPOINTS)} viewpoints)")

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
        scene = self.sample_scene(rng, 4, 5)
        if scene is None:
            return None
        base, elevation, distance = self.frame(scene, rng)

        def camera(viewpoint: str, target: Scene = scene) -> Camera:
            turn, elev = VIEWPOINTS[viewpoint]
            return self.orbit(target, base + turn, elev or elevation, distance)

        # Cheap first test on projected centres; the rendered masks decide below.
        if len({projected_order(scene, camera(vp)) for vp in VIEWPOINTS}) != len(VIEWPOINTS):
            return None
        every = {vp: self.shoot(scene, camera(vp)) for vp in VIEWPOINTS}
        orders = [tuple(v.left_to_right()) for v in every.values()]
        if min(len(o) for o in orders) < 3 or len(set(orders)) != len(orders):
            return None
        reference = self.shoot(scene, self.orbit(scene, base, elevation, distance))
        if len(reference.left_to_right()) < 3:
            return None
        # Picking among candidates needs at least two of them beside the front view.
        family = "pick_image" if self.views >= 3 and rng.uniform() < 0.6 else "name_view"
        asked = pick(rng, list(VIEWPOINTS))
        if family == "pick_image":
            mirrored = mirror(scene)
            decoy = self.shoot(mirrored, camera(asked, mirrored))
            if len(decoy.left_to_right()) < 3 or tuple(decoy.left_to_right()) in orders:
                return None
            n_candidates = self.views - 1
            others = [vp for vp in VIEWPOINTS if vp != asked]
            pool = {"decoy": decoy, **{vp: every[vp] for vp in (others[i] for i in rng.permutation(3))}}
            keys = list(pool)[: n_candidates - 1]
            options, answer = place_answer(asked, keys, self.slot(index), rng)
            order = [option_text(o) for o in options]
            candidates = [every[asked] if key == asked else pool[key] for key in order]
            options = [f"{o.split('.')[0]}. Image {i + 2}" for i, o in enumerate(options)]
            views = [reference, *candidates]
            question = pick(rng, VIEW3D_TEMPLATES["pick_image"]).format(
                ref="<image>", viewpoint=asked, candidates=" ".join("<image>" for _ in candidates))
            answer_facts = {"family": family, "asked": asked, "answer_image": order.index(asked) + 2,
                            "candidates": ["mirror image of the scene " + asked if k == "decoy" else k for k in order]}
        else:
            k_views = self.views
            shown = [asked] + [vp for vp in VIEWPOINTS if vp != asked][: k_views - 2]
            shown = [shown[i] for i in rng.permutation(len(shown))]
            views = [reference, *[every[vp] for vp in shown]]
            k = shown.index(asked) + 2
            distractors = [vp for vp in VIEWPOINTS if vp != asked]
            options, answer = place_answer(asked, distractors, self.slot(index), rng)
            others = " ".join("<image>" for _ in shown)
            question = pick(rng, VIEW3D_TEMPLATES["name_view"]).format(ref="<image>", others=others, k=k)
            answer_facts = {"family": family, "asked": asked, "answer_image": k, "shown": shown}
        regions: list[Region] = []
        for idx, view in enumerate(views):
            for oid in view.left_to_right():
                regions.append(Region(f"r{len(regions)}", idx, [float(v) for v in view.box(oid)],
                                      _short(scene.by_id(oid).name)))
        facts = {"scene": scene.to_facts(), "views": self.view_list_facts(views), "answer": answer_facts,
                 "base_azimuth_deg": base, "elevation_deg": elevation, "distance_m": distance,
                 "viewpoints": {vp: {"turn_deg": t, "elevation_deg": e or elevation} for vp, (t, e) in VIEWPOINTS.items()}}
        return Sample(question, options, answer, [v.image() for v in views], regions, facts, self.generator_name())

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        objects = {str(o["id"]): o for o in f["scene"]["objects"]}
        ans = f["answer"]
        asked = ans["asked"]
        places = ["from the front"] + ["from an unstated viewpoint"] * (len(f["views"]) - 1)
        captions = [self.caption_of(v, objects, where, f["scene"]["ground"], rng) for v, where in zip(f["views"], places)]
        orders = []
        for k, v in enumerate(f["views"]):
            ids = sorted((i for i, o in v["objects"].items() if o["visible"]), key=lambda i: v["objects"][i]["mask_centroid_x"])
            orders.append([objects[i]["name"] for i in ids])
        summary = pick(rng, [
            ("The first photo fixes the front of the scene; I rotate that layout in my mind to the asked side and "
            "compare the left-to-right order of the objects with each other image."),
            ("I work out how the objects of the front view would line up when seen {asked}, then look for the "
            "image that matches."),
        ]).format(asked=asked)
        turn = VIEWPOINTS[asked][0]
        expect = {
            -90: "from the left side, the objects nearest the front edge appear on the right",
            90: "from the right side, the objects nearest the front edge appear on the left",
            180: "from behind, the left-to-right order of the front view is reversed",
            0: "from directly above, the floor plan shows and nothing hides anything",
        }[turn]
        lines = [f"In image 1 (front) the order is {join_and(orders[0])}. Seen {expect}."]
        for k in range(1, len(orders)):
            lines.append(f"Image {k + 1} runs {join_and(orders[k])}.")
        target = ans["answer_image"]
        lines.append(f"Only image {target} matches the layout seen {asked}.")
        if ans["family"] == "pick_image":
            decoys = [k + 2 for k, c in enumerate(ans["candidates"]) if c.startswith("mirror image")]
            if decoys:
                lines.append(f"Image {decoys[0]} looks similar but is the mirror image of the scene: its objects "
                             "sit on the wrong sides.")
            conclusion = conclude(f"Image {target} shows the scene {asked}", record.answer)
        else:
            conclusion = conclude(f"Image {target} was taken {asked}", record.answer)
        names = {}
        for r in record.regions:
            names.setdefault(r.label, f"the {r.label}")
        return Reasoning(summary, captions, self.grounding(record, names), " ".join(lines), conclusion)


def projected_order(scene: Scene, camera: Camera) -> tuple[int, ...]:
    """Object ids left to right by their projected centres, among those whose centre lands in the frame."""
    points = camera.project(np.array([o.centre for o in scene.objects]))
    inside = [(x, o.id) for o, (x, y, d) in zip(scene.objects, points)
              if d > 0 and 0 <= x < camera.width and 0 <= y < camera.height]
    return tuple(oid for _, oid in sorted(inside))


def mirror(scene: Scene) -> Scene:
    """The scene reflected across the vertical plane x = centre x (objects keep their ids)."""
    cx = float(scene.centre()[0])
    objs = [SceneObject(o.id, o.kind, o.colour, o.material, o.size, (round(2 * cx - o.position[0], 3), o.position[1]),
                        round(math.pi - o.yaw, 4)) for o in scene.objects]
    return Scene(objs, scene.light, scene.ground, scene.sky_colour)


# -- forced_perspective --------------------------------------------------------------------------------

CANDIDATE_KINDS = ["tower", "tree", "figure", "cube", "cylinder", "cone", "sphere"]
RATIO_BINS = [  # (low, high, text) for a true height over the reference car's height; gaps stay unasked
    (0.0, 0.55, "less than about half as tall as the car"),
    (0.8, 1.25, "about as tall as the car"),
    (1.8, 3.2, "roughly two to three times as tall as the car"),
    (4.0, 99.0, "more than four times as tall as the car"),
]
EYE_HEIGHT = 1.6

FORCED_TEMPLATES = {
    "intro": [
        "{images} The same {car_short} appears in every photo, next to one other object.",
        "{images} Each photo shows {car} and one other object; the car is the same one every time.",
    ],
    "tallest": [
        "Judging by the car, which object is the tallest in real life?",
        "Using the car as a yardstick, which of the objects is actually the tallest?",
    ],
    "ratio": [
        "Using the car as a reference, how tall is {a} in image {k} in reality?",
        "Compared with the real car, about how tall is {a} (image {k})?",
    ],
}
SAME_HEIGHT = "they are all about the same height"


class ForcedPerspective(SpatialTask):
    """True sizes when apparent sizes mislead. Every photo shows the same car (the reference, 1.35-1.6 m
    tall) and one other object at another distance; eye-level photos, so a near small object can look taller
    than a far big one. The car rescales each photo: true height ≈ car height × (object's box height /
    car's box height) × (object's median depth / car's median depth). A record is kept only when apparent
    heights mislead (the asked comparison comes out differently in raw pixels) and the car-based estimate,
    computed on the rendered boxes and depth map, gives the true answer."""

    name = "forced_perspective"
    default_views = 3

    def build_from_layout(self, index: int, rng: np.random.Generator) -> Sample | None:
        n = self.views
        (car_colour, _), *identities = sample_identities(rng, ["car"] + [pick(rng, CANDIDATE_KINDS) for _ in range(n)])
        car_size = sample_size("car", rng)
        kinds = [k for _, k in identities]
        family = "tallest" if rng.uniform() < 0.5 else "ratio"
        heights = [sample_size(k, rng) for k in kinds]
        # Planned apparent heights (shares of the image height) of each object and its car, chosen so that
        # pixels mislead; the renders below decide whether they did.
        looks, car_looks = rng.uniform(0.15, 0.65, n), rng.uniform(0.08, 0.2, n)
        if family == "tallest":
            top = int(np.argmax([h[2] for h in heights]))
            small = int(np.argmin(looks / car_looks))
            looks[[top, small]], car_looks[[top, small]] = looks[[small, top]], car_looks[[small, top]]
        else:
            k = int(rng.integers(n))
            true_bin = _ratio_bin(heights[k][2] / car_size[2])
            if true_bin is None:
                return None
            lo, hi, _ = RATIO_BINS[pick(rng, [b for b in range(len(RATIO_BINS)) if b != true_bin])]
            seen = float(rng.uniform(max(lo, 0.3) * 1.1, min(hi, 6.0) * 0.9))
            car_looks[k] = float(np.clip(0.3 / seen, 0.08, 0.2))
            looks[k] = seen * car_looks[k]
        views, scenes = [], []
        pitch = math.radians(float(rng.uniform(3, 7)))
        setting = Scene([], sample_light(rng), *sample_backdrop(rng))  # light, ground and sky of every photo
        for k in range(n):
            shot = self._shoot(rng, car_colour, car_size, identities[k], heights[k], pitch, setting,
                               float(looks[k]), float(car_looks[k]))
            if shot is None:
                return None
            scenes.append(shot[0])
            views.append(shot[1])
        car_h = car_size[2]
        true = [h[2] for h in heights]
        apparent = [v.box(2)[3] - v.box(2)[1] for v in views]
        car_px = [v.box(1)[3] - v.box(1)[1] for v in views]
        estimate = [car_h * apparent[k] / car_px[k] * views[k].depth(2) / views[k].depth(1) for k in range(n)]
        names = [scenes[k].by_id(2).name for k in range(n)]
        if len(set(names)) != n:
            return None
        car_name = scenes[0].by_id(1).name
        wording: dict[str, Any] = {}
        if family == "tallest":
            order = np.argsort(true)[::-1]
            top, second = int(order[0]), int(order[1])
            if true[top] < 1.25 * true[second]:
                return None
            # Misleading: in pixels the tallest does not look tallest, or not relative to its own car.
            looks = int(np.argmax(np.array(apparent) / np.array(car_px)))
            if int(np.argmax(apparent)) == top and looks == top:
                return None
            if int(np.argmax(estimate)) != top or estimate[top] < 1.1 * sorted(estimate)[-2]:
                return None
            correct = names[top]
            distractors = [names[k] for k in range(n) if k != top][:3]
            if len(distractors) < 3:
                distractors.append(SAME_HEIGHT)
            answer_facts = {"family": family, "answer_image": top + 1}
        else:
            ratio, seen_ratio, est_ratio = true[k] / car_h, apparent[k] / car_px[k], estimate[k] / car_h
            bin_true, bin_seen, bin_est = (_ratio_bin(r) for r in (ratio, seen_ratio, est_ratio))
            if bin_true is None or bin_est != bin_true or bin_seen == bin_true:
                return None
            correct = RATIO_BINS[bin_true][2]
            distractors = [b[2] for i, b in enumerate(RATIO_BINS) if i != bin_true]
            wording = {"a": names[k], "k": k + 1}
            answer_facts = {"family": family, "answer_image": k + 1, "true_ratio": round(ratio, 2),
                            "apparent_ratio": round(seen_ratio, 2), "estimated_ratio": round(est_ratio, 2)}
        options, answer = place_answer(correct, distractors, self.slot(index), rng)
        intro = pick(rng, FORCED_TEMPLATES["intro"]).format(images=" ".join("<image>" for _ in views), car=car_name,
                                                                   car_short=_short(car_name))
        question = f"{intro} {pick(rng, FORCED_TEMPLATES[family]).format(**wording)}"
        regions: list[Region] = []
        for k, view in enumerate(views):
            for oid, label in ((1, _short(car_name)), (2, _short(names[k]))):
                regions.append(Region(f"r{len(regions)}", k, [float(v) for v in view.box(oid)], label))
        facts = {
            "reference": {"name": car_name, "height_m": car_h},
            "images": [{"scene": s.to_facts(), "view": v.facts, "object": names[k], "true_height_m": true[k],
                        "apparent_height_px": apparent[k], "car_height_px": car_px[k],
                        "object_depth_m": v.depth(2), "car_depth_m": v.depth(1),
                        "estimated_height_m": round(estimate[k], 2)} for k, (s, v) in enumerate(zip(scenes, views))],
            "answer": answer_facts,
            "camera_pitch_deg": round(math.degrees(pitch), 2),
        }
        return Sample(question, options, answer, [v.image() for v in views], regions, facts, self.generator_name())

    def _shoot(self, rng: np.random.Generator, car_colour: str, car_size: tuple[float, float, float],
               identity: tuple[str, str], size: tuple[float, float, float], pitch: float, setting: Scene, look: float,
               car_look: float) -> tuple[Scene, View] | None:
        """One eye-level photo: the car on one side, the object on the other, each fully in frame; `look` and
        `car_look` are the planned apparent heights as shares of the image height (jittered per try)."""
        w, h = self.size
        camera = Camera((0.0, 0.0, EYE_HEIGHT), (0.0, 30.0, round(EYE_HEIGHT - 30.0 * math.tan(pitch), 4)), w, h)
        f = camera.focal
        side = 1 if rng.uniform() < 0.5 else -1
        horizon = h / 2 - f * math.tan(pitch)  # image row of the horizon

        def fits(height: float) -> float:
            """The least depth at which an object this tall fits between the image's top and bottom rows."""
            below = f * EYE_HEIGHT / (0.92 * (h - horizon))
            above = f * (height - EYE_HEIGHT) / (0.92 * horizon)
            return max(below, above)

        def placed(oid: int, kind: str, colour: str, material: str, size: tuple[float, float, float], depth: float,
                   yaw: float, side: int) -> SceneObject | None:
            """The object at `depth`, shifted sideways into its half of the picture; None if it cannot fit."""
            probe = SceneObject(oid, kind, colour, material, size, (0.0, round(depth, 3)), round(yaw, 4))
            box = projected_box(probe, camera)
            half_width = max(w / 2 - box[0], box[2] - w / 2)
            low, high = half_width + 0.04 * w, w / 2 - half_width - 0.08 * w  # seen obliquely it widens
            if low > high:
                return None
            shift = float(rng.uniform(low, high)) * depth / f
            return SceneObject(oid, kind, colour, material, size, (round(side * shift, 3), round(depth, 3)),
                               round(yaw, 4))

        for _ in range(8):
            jitter = float(rng.uniform(0.9, 1.1))
            depth = min(max(f * size[2] / (look * jitter * h), fits(size[2]) + 0.5 * math.hypot(*size[:2]),
                            2.5 + size[1]), 120.0)
            car_depth = min(max(f * car_size[2] / (car_look * jitter * h),
                                fits(car_size[2]) + 0.5 * math.hypot(*car_size[:2]), 8.0), 60.0)
            material = pick(rng, ["rubber", "metal"]) if identity[1] in PRIMITIVES else "rubber"
            obj = placed(2, identity[1], identity[0], material, size, depth, float(rng.uniform(0, 2 * math.pi)), side)
            # The car points roughly along the view (its long side would fill half the picture otherwise).
            car_yaw = math.pi / 2 + float(rng.uniform(-0.6, 0.6)) + math.pi * int(rng.integers(2))
            car = placed(1, "car", car_colour, "metal", car_size, car_depth, car_yaw, -side)
            if obj is None or car is None:
                continue
            if math.dist(obj.position, car.position) < obj.footprint_radius + car.footprint_radius + 0.5:
                continue
            predicted = [projected_box(o, camera) for o in (car, obj)]  # size boxes: cheap, a little generous
            if not all(_inside(b, w, h) for b in predicted) or _boxes_overlap(*predicted):
                continue
            scene = Scene([car, obj], setting.light, setting.ground, setting.sky_colour)
            view = self.shoot(scene, camera)
            if all(view.visible(i) and _inside(view.box(i), w, h) for i in (1, 2)) and not _boxes_overlap(
                    view.box(1), view.box(2)):
                return scene, view
        return None

    def reason(self, record: Record, rng: np.random.Generator) -> Reasoning:
        f = record.meta["facts"]
        ref, ans, images = f["reference"], f["answer"], f["images"]
        car = ref["name"]
        captions = []
        for k, im in enumerate(images):
            closer = "closer than" if im["object_depth_m"] < im["car_depth_m"] else "farther away than"
            captions.append(pick(rng, [
                "An eye-level photo of {o} standing {c} {car} on flat {g} ground.",
                "{O} and {car} on open {g} ground, seen from standing height; {o} is {c} the car.",
            ]).format(o=im["object"], O=im["object"].capitalize(), c=closer, car=car, g=im["scene"]["ground"]))
        summary = pick(rng, [
            ("Apparent size depends on distance, so pixel heights cannot be compared directly. The same car is in "
            "every photo: I measure each object against the car and correct for how much farther or nearer it is."),
            ("This is a forced-perspective question: near things look big. I use {car} as a yardstick in each "
            "photo, scaling by the distances, to recover true heights."),
        ]).format(car=car)
        cars = ", ".join(f"[r{2 * k}]" for k in range(len(images)))
        lines = [f"{cars} are the same {_short(car)}, {ref['height_m']:g} m tall: it sets the scale of each photo."]
        for k, im in enumerate(images):
            rc, ro = f"r{2 * k}", f"r{2 * k + 1}"
            lines.append(
                f"Image {k + 1}: {im['object']} [{ro}] is {im['apparent_height_px']} px tall at about "
                f"{im['object_depth_m']:.1f} m, the car [{rc}] {im['car_height_px']} px at about {im['car_depth_m']:.1f} m, "
                f"so the object is about {ref['height_m']:g} m × {im['apparent_height_px']}/{im['car_height_px']} × "
                f"{im['object_depth_m']:.1f}/{im['car_depth_m']:.1f} ≈ {im['estimated_height_m']:.2f} m tall.")
        if ans["family"] == "tallest":
            k = ans["answer_image"] - 1
            lines.append(f"The largest estimate belongs to {images[k]['object']}, although it does not look the "
                         "tallest in its photo.")
            conclusion = conclude(f"{images[k]['object'].capitalize()} is the tallest in reality, at about "
                                  f"{images[k]['true_height_m']:g} m", record.answer)
        else:
            k = ans["answer_image"] - 1
            lines.append(f"In image {k + 1} it looks {ans['apparent_ratio']:.2f} times the car's height, but "
                         f"corrected for distance it is about {ans['estimated_ratio']:.2f} times as tall.")
            conclusion = conclude(f"{images[k]['object'].capitalize()} is {record.answer_text}"
                                  f" (true ratio {ans['true_ratio']:.2f})", record.answer)
        names = {_short(car): car}
        names.update({_short(im["object"]): im["object"] for im in images})
        return Reasoning(summary, captions, self.grounding(record, names), " ".join(lines), conclusion)


def projected_box(obj: SceneObject, camera: Camera) -> list[int]:
    """The image box of an object's projected size box (it holds the object's silhouette)."""
    points = camera.project(obj.corners())
    return [int(np.floor(points[:, 0].min())), int(np.floor(points[:, 1].min())),
            int(np.ceil(points[:, 0].max())), int(np.ceil(points[:, 1].max()))]


def _ratio_bin(ratio: float) -> int | None:
    return next((i for i, (lo, hi, _) in enumerate(RATIO_BINS) if lo <= ratio < hi), None)


def _inside(box: list[int], w: int, h: int) -> bool:
    """The box does not touch the image border (the whole object is in frame)."""
    return box[0] > 0 and box[1] > 0 and box[2] < w and box[3] < h


def _boxes_overlap(a: list[int], b: list[int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


TASKS = [LocationRelationship, DepthRelationship, View3D, ForcedPerspective]
