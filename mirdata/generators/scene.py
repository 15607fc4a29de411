"""A backend-neutral 3D scene graph, seeded layout samplers, and the facts a rendered view proves.

The world is right-handed, z up, in metres; the ground is the plane z = 0 and every object stands on it.
Objects are simple shapes (cube, sphere, cylinder, cone, torus) or composites made of them (car, tree,
person-like figure, tower); each fills its axis-aligned size box (width along its local x, depth along y,
height along z) before its yaw turns it. Renderers turn a `Scene` seen by a `Camera` into colour, depth and
an instance mask; `view_facts` reads the 2D boxes, depths and visibility from those maps, so every fact a
question uses is measured on the pixels it is asked about.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

PRIMITIVES = ("cube", "sphere", "cylinder", "cone", "torus")
COMPOSITES = ("car", "tree", "figure", "tower")
KINDS = PRIMITIVES + COMPOSITES

# What a question calls each kind.
KIND_NOUNS = {"cube": "cube", "sphere": "sphere", "cylinder": "cylinder", "cone": "cone", "torus": "ring",
              "car": "car", "tree": "tree", "figure": "figure of a person", "tower": "tower"}

# CLEVR's palette (sRGB 0..255), plus orange and white.
COLOURS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215), "green": (29, 105, 20),
    "brown": (129, 74, 25), "purple": (129, 38, 192), "cyan": (41, 208, 208), "yellow": (255, 238, 51),
    "orange": (235, 120, 20), "white": (225, 225, 225),
}
MATERIALS = ("rubber", "metal")

# Colours of the parts of a composite that do not take the object's colour.
PART_COLOURS: dict[str, tuple[int, int, int]] = {
    "tyre": (30, 30, 34), "glass": (150, 180, 205), "wood": (96, 64, 36), "skin": (224, 184, 150),
    "trousers": (45, 50, 70), "roof": (70, 44, 40),
}

# Ground surfaces (sRGB), light enough that every object colour stands out from them.
GROUNDS: dict[str, tuple[int, int, int]] = {
    "grey concrete": (150, 150, 146), "sandy": (178, 162, 128), "pale green": (132, 150, 112),
    "slate blue": (132, 140, 154), "light stone": (182, 178, 170),
}
SKIES: list[tuple[int, int, int]] = [(196, 210, 226), (214, 222, 232), (188, 204, 228), (226, 214, 200)]

# Size ranges in metres: (width, depth, height) low and high; primitives keep width == depth.
SIZE_RANGES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cube": ((0.7, 0.7, 0.7), (1.6, 1.6, 1.6)),
    "sphere": ((0.7, 0.7, 0.7), (1.6, 1.6, 1.6)),
    "cylinder": ((0.6, 0.6, 0.8), (1.4, 1.4, 2.0)),
    "cone": ((0.8, 0.8, 0.9), (1.6, 1.6, 2.0)),
    "torus": ((1.0, 1.0, 0.3), (1.8, 1.8, 0.54)),
    "car": ((3.8, 1.7, 1.35), (4.8, 1.95, 1.6)),
    "tree": ((1.6, 1.6, 3.0), (2.6, 2.6, 5.5)),
    "figure": ((0.45, 0.28, 1.55), (0.55, 0.34, 1.9)),
    "tower": ((1.6, 1.6, 6.0), (2.6, 2.6, 12.0)),
}
TORUS_HEIGHT = 0.3  # a torus's height over its width


# -- meshes ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mesh:
    """Triangles with per-vertex normals; vertices fill the box [-0.5, 0.5]^3."""

    vertices: np.ndarray  # (n, 3) float32
    normals: np.ndarray  # (n, 3) float32
    faces: np.ndarray  # (m, 3) int32

    def interleaved(self) -> np.ndarray:
        """(3m, 6) float32 rows of position + normal, one row per triangle corner."""
        idx = self.faces.reshape(-1)
        return np.hstack([self.vertices[idx], self.normals[idx]]).astype(np.float32)


def _surface_of_revolution(profile: list[tuple[float, float, float, float]], segments: int) -> Mesh:
    """Revolve rings (radius, z, normal_r, normal_z) about the z axis into a mesh."""
    angles = np.linspace(0, 2 * math.pi, segments + 1)[:-1]
    cos, sin = np.cos(angles), np.sin(angles)
    verts, norms = [], []
    for r, z, nr, nz in profile:
        verts.append(np.stack([r * cos, r * sin, np.full(segments, z)], axis=1))
        norms.append(np.stack([nr * cos, nr * sin, np.full(segments, nz)], axis=1))
    faces = []
    for ring in range(len(profile) - 1):
        a, b = ring * segments, (ring + 1) * segments
        for s in range(segments):
            t = (s + 1) % segments
            faces += [(a + s, a + t, b + t), (a + s, b + t, b + s)]
    return _normalised(np.concatenate(verts), np.concatenate(norms), np.array(faces))


def _normalised(vertices: np.ndarray, normals: np.ndarray, faces: np.ndarray) -> Mesh:
    """Scale and centre the mesh so it fills [-0.5, 0.5]^3 exactly (normals re-normalised for the scaling)."""
    lo, hi = vertices.min(0), vertices.max(0)
    scale = hi - lo
    v = (vertices - (lo + hi) / 2) / scale
    n = normals * scale  # inverse-transpose of a diagonal scale 1/scale is scale
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return Mesh(v.astype(np.float32), n.astype(np.float32), faces.astype(np.int32))


def _cap(z: float, up: bool) -> list[tuple[float, float, float, float]]:
    nz = 1.0 if up else -1.0
    return [(0.0, z, 0.0, nz), (0.5, z, 0.0, nz)] if not up else [(0.5, z, 0.0, nz), (0.0, z, 0.0, nz)]


@cache
def unit_mesh(shape: str) -> Mesh:
    """The unit mesh of a primitive shape, filling [-0.5, 0.5]^3."""
    if shape == "cube":
        corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
        verts, norms, faces = [], [], []
        for axis in range(3):
            for sign in (-1, 1):
                quad = [c for c in corners if c[axis] * sign > 0]
                u, w = [a for a in range(3) if a != axis]
                quad.sort(key=lambda c: math.atan2(c[w], c[u]) * sign)  # counter-clockwise seen from outside
                base = len(verts)
                normal = np.zeros(3)
                normal[axis] = sign
                verts += quad
                norms += [normal] * 4
                faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
        return _fix_winding(Mesh(np.array(verts, np.float32), np.array(norms, np.float32), np.array(faces, np.int32)))
    if shape == "sphere":
        rings = [(0.5 * math.sin(p), -0.5 * math.cos(p), math.sin(p), -math.cos(p))
                 for p in np.linspace(0, math.pi, 17)]
        return _fix_winding(_surface_of_revolution(rings, 32))
    if shape == "cylinder":
        profile = [*_cap(-0.5, False), (0.5, -0.5, 1.0, 0.0), (0.5, 0.5, 1.0, 0.0), *_cap(0.5, True)]
        return _fix_winding(_surface_of_revolution(profile, 32))
    if shape == "cone":
        slope = 1 / math.hypot(1.0, 0.5)  # side normal of a cone of radius 0.5 and height 1
        profile = [*_cap(-0.5, False), (0.5, -0.5, slope, 0.5 * slope), (0.0, 0.5, slope, 0.5 * slope)]
        return _fix_winding(_surface_of_revolution(profile, 32))
    if shape == "torus":
        major, minor = 0.35, 0.15
        rings = [(major + minor * math.cos(t), minor * math.sin(t), math.cos(t), math.sin(t))
                 for t in np.linspace(-math.pi, math.pi, 17)]
        return _fix_winding(_surface_of_revolution(rings, 40))
    raise ValueError(f"unknown primitive {shape!r}")


def _fix_winding(mesh: Mesh) -> Mesh:
    """Orient every triangle counter-clockwise seen from outside (its normal side), so culling works."""
    v, f = mesh.vertices, mesh.faces.copy()
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    outward = mesh.normals[f].sum(axis=1)
    flip = (cross * outward).sum(axis=1) < 0
    f[flip] = f[flip][:, [0, 2, 1]]
    return Mesh(v, mesh.normals, f)


# -- composites as data: parts in the object's unit box [-0.5, 0.5]^2 x [0, 1] ----------------------------
# (shape, centre, extent, axis the shape's z axis is turned to, colour role: "main" is the object's colour)

Part = tuple[str, tuple[float, float, float], tuple[float, float, float], str, str]

COMPOSITE_PARTS: dict[str, list[Part]] = {
    "car": [
        ("cube", (0.0, 0.0, 0.42), (1.0, 0.9, 0.4), "z", "main"),
        ("cube", (-0.06, 0.0, 0.8), (0.55, 0.8, 0.38), "z", "glass"),
        ("cube", (-0.06, 0.0, 0.98), (0.52, 0.78, 0.04), "z", "main"),
        *[("cylinder", (x, y, 0.225), (0.16, 0.12, 0.45), "y", "tyre") for x in (-0.32, 0.32) for y in (-0.44, 0.44)],
    ],
    "tree": [
        ("cylinder", (0.0, 0.0, 0.18), (0.14, 0.14, 0.36), "z", "wood"),
        ("cone", (0.0, 0.0, 0.64), (1.0, 1.0, 0.72), "z", "main"),
    ],
    "figure": [
        *[("cylinder", (x, 0.0, 0.24), (0.3, 0.7, 0.48), "z", "trousers") for x in (-0.2, 0.2)],
        ("cylinder", (0.0, 0.0, 0.665), (0.76, 1.0, 0.37), "z", "main"),
        *[("cylinder", (x, 0.0, 0.62), (0.12, 0.4, 0.34), "z", "main") for x in (-0.44, 0.44)],
        ("sphere", (0.0, 0.0, 0.928), (0.5, 0.83, 0.144), "z", "skin"),
    ],
    "tower": [
        ("cube", (0.0, 0.0, 0.3), (1.0, 1.0, 0.6), "z", "main"),
        ("cylinder", (0.0, 0.0, 0.71), (0.75, 0.75, 0.22), "z", "main"),
        ("cone", (0.0, 0.0, 0.91), (0.9, 0.9, 0.18), "z", "roof"),
    ],
}

# Turning a shape's z axis onto another axis (a 90 degree turn maps the unit box onto itself).
_AXIS_TURNS = {
    "z": np.eye(3),
    "y": np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float),
    "x": np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float),
}


def _affine(linear: np.ndarray, translation: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = linear, translation
    return m


def rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# -- the scene --------------------------------------------------------------------------------------------

@dataclass
class SceneObject:
    """One object standing on the ground. `id` is its value in instance masks (1, 2, ...)."""

    id: int
    kind: str
    colour: str
    material: str
    size: tuple[float, float, float]  # width (local x), depth (local y), height, metres
    position: tuple[float, float]  # ground point under the centre of its size box
    yaw: float = 0.0  # radians about z

    @property
    def name(self) -> str:
        """'the red cube', unique within a scene (samplers never repeat a colour + kind)."""
        return f"the {self.colour} {KIND_NOUNS[self.kind]}"

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.position[0], self.position[1], self.size[2] / 2])

    @property
    def footprint_radius(self) -> float:
        return 0.5 * math.hypot(self.size[0], self.size[1])

    def parts(self) -> list[tuple[str, np.ndarray, tuple[int, int, int], str]]:
        """(primitive, 4x4 model matrix, sRGB colour, material) for each part, in world coordinates."""
        place = _affine(rotation_z(self.yaw) @ np.diag(self.size), np.array([*self.position, 0.0]))
        if self.kind in PRIMITIVES:
            lift = _affine(np.eye(3), np.array([0, 0, 0.5]))
            return [(self.kind, place @ lift, COLOURS[self.colour], self.material)]
        out = []
        for shape, centre, extent, axis, role in COMPOSITE_PARTS[self.kind]:
            local = _affine(np.diag(extent) @ _AXIS_TURNS[axis], np.array(centre))
            colour = COLOURS[self.colour] if role == "main" else PART_COLOURS[role]
            out.append((shape, place @ local, colour, self.material if role == "main" else "rubber"))
        return out

    def corners(self) -> np.ndarray:
        """The 8 corners of its size box in world coordinates."""
        w, d, h = self.size
        local = np.array([[x * w, y * d, z * h] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (0, 1)])
        return local @ rotation_z(self.yaw).T + np.array([*self.position, 0.0])

    def to_facts(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "colour": self.colour,
                "material": self.material, "size_m": list(self.size), "ground_position_m": list(self.position),
                "centre_m": self.centre.tolist(), "yaw_rad": self.yaw}

    @classmethod
    def from_facts(cls, facts: dict[str, Any]) -> SceneObject:
        return cls(int(facts["id"]), facts["kind"], facts["colour"], facts["material"],
                   tuple(facts["size_m"]), tuple(facts["ground_position_m"]), float(facts["yaw_rad"]))


@dataclass
class Light:
    """A sun (direction towards it, from above) and a sky fill."""

    direction: tuple[float, float, float] = (0.45, -0.35, 0.82)
    sun: tuple[float, float, float] = (1.0, 0.96, 0.9)
    sky: tuple[float, float, float] = (0.42, 0.46, 0.55)
    ground_bounce: tuple[float, float, float] = (0.22, 0.21, 0.2)

    def unit_direction(self) -> np.ndarray:
        d = np.array(self.direction, float)
        return d / np.linalg.norm(d)


@dataclass
class Scene:
    objects: list[SceneObject]
    light: Light = field(default_factory=Light)
    ground: str = "grey concrete"  # a key of GROUNDS
    sky_colour: tuple[int, int, int] = (196, 210, 226)

    @property
    def ground_colour(self) -> tuple[int, int, int]:
        return GROUNDS[self.ground]

    def by_id(self, object_id: int) -> SceneObject:
        return next(o for o in self.objects if o.id == object_id)

    def centre(self) -> np.ndarray:
        xy = np.array([o.position for o in self.objects]).mean(0)
        return np.array([xy[0], xy[1], 0.0])

    def radius(self) -> float:
        """Radius of a ground circle about `centre()` holding every footprint."""
        c = self.centre()[:2]
        return max(math.dist(c, o.position) + o.footprint_radius for o in self.objects)

    def to_facts(self) -> dict[str, Any]:
        return {"objects": [o.to_facts() for o in self.objects], "light_direction": list(self.light.direction),
                "ground": self.ground, "sky_colour": list(self.sky_colour)}

    @classmethod
    def from_facts(cls, facts: dict[str, Any]) -> Scene:
        """The scene a record's facts describe (the facts hold every number the renderers use)."""
        return cls([SceneObject.from_facts(o) for o in facts["objects"]],
                   Light(direction=tuple(facts["light_direction"])), facts["ground"], tuple(facts["sky_colour"]))


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking from `position` at `target`, z up; `fov_y` in degrees."""

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    width: int
    height: int
    fov_y: float = 45.0

    @property
    def focal(self) -> float:
        """Focal length in pixels (square pixels)."""
        return (self.height / 2) / math.tan(math.radians(self.fov_y) / 2)

    def view_matrix(self) -> np.ndarray:
        """World to eye (OpenGL convention: x right, y up, looking down -z)."""
        eye, target = np.array(self.position, float), np.array(self.target, float)
        forward = target - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        rot = np.stack([right, up, -forward])
        return _affine(rot, -rot @ eye)

    def projection_matrix(self, near: float = 0.1, far: float = 300.0) -> np.ndarray:
        f = 1 / math.tan(math.radians(self.fov_y) / 2)
        aspect = self.width / self.height
        return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                         [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)], [0, 0, -1, 0]])

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (n, 3) -> (n, 3) rows of pixel x, pixel y, depth in metres along the viewing axis."""
        eye = np.c_[points, np.ones(len(points))] @ self.view_matrix().T
        depth = -eye[:, 2]
        x = self.width / 2 + self.focal * eye[:, 0] / depth
        y = self.height / 2 - self.focal * eye[:, 1] / depth
        return np.stack([x, y, depth], axis=1)

    def to_facts(self) -> dict[str, Any]:
        return {"position_m": list(self.position), "target_m": list(self.target), "fov_y_deg": self.fov_y,
                "size_px": [self.width, self.height], "focal_px": self.focal}

    @classmethod
    def from_facts(cls, facts: dict[str, Any]) -> Camera:
        return cls(tuple(facts["position_m"]), tuple(facts["target_m"]), int(facts["size_px"][0]),
                   int(facts["size_px"][1]), float(facts["fov_y_deg"]))


def orbit_camera(scene: Scene, azimuth: float, elevation: float, distance: float, size: tuple[int, int],
                 fov_y: float = 45.0) -> Camera:
    """A camera on a circle about the scene centre. `azimuth` in degrees: 0 is the front (the camera on -y
    looking towards +y), 90 the right side (+x), 180 the back, 270 the left side; walking around to the
    right while facing the scene adds to it."""
    c = scene.centre()
    a, e = math.radians(azimuth), math.radians(elevation)
    position = c + distance * np.array([math.sin(a) * math.cos(e), -math.cos(a) * math.cos(e), math.sin(e)])
    look_at = c + np.array([0.0, 0.0, 0.5])
    # Rounded so that the camera written into the facts rebuilds exactly this camera.
    return Camera(tuple(round(v, 4) for v in position.tolist()), tuple(round(v, 4) for v in look_at.tolist()),
                  size[0], size[1], fov_y)


# -- layout sampling --------------------------------------------------------------------------------------

def sample_size(kind: str, rng: np.random.Generator) -> tuple[float, float, float]:
    lo, hi = (np.array(v) for v in SIZE_RANGES[kind])
    if kind in ("cube", "sphere", "cylinder", "cone"):
        w = float(rng.uniform(lo[0], hi[0]))
        h = w if kind in ("cube", "sphere") else float(rng.uniform(lo[2], hi[2]))
        return (round(w, 3), round(w, 3), round(h, 3))
    if kind == "torus":
        w = float(rng.uniform(lo[0], hi[0]))
        return (round(w, 3), round(w, 3), round(w * TORUS_HEIGHT, 3))
    t = float(rng.uniform(0, 1))  # composites keep their proportions
    return tuple(round(float(v), 3) for v in lo + t * (hi - lo))  # type: ignore[return-value]


def sample_identities(rng: np.random.Generator, kinds: list[str], taken: set[tuple[str, str]] | None = None
                      ) -> list[tuple[str, str]]:
    """A colour for each kind such that no (colour, kind) pair repeats, so every object has a unique name."""
    used = set(taken or ())
    out = []
    colours = list(COLOURS)
    for kind in kinds:
        free = [c for c in colours if (c, kind) not in used]
        if not free:
            raise ValueError(f"more than {len(colours)} objects of kind {kind!r}: their names would repeat")
        colour = free[int(rng.integers(len(free)))]
        used.add((colour, kind))
        out.append((colour, kind))
    return out


def sample_layout(rng: np.random.Generator, kinds: list[str], area: float = 5.0, gap: float = 0.4,
                  tries: int = 200) -> Scene | None:
    """Objects of the given kinds at random spots in a disc of radius `area`, footprints at least `gap` apart
    (so nothing interpenetrates); None when they do not fit after `tries` draws per object."""
    objects: list[SceneObject] = []
    for oid, (colour, kind) in enumerate(sample_identities(rng, kinds), start=1):
        size = sample_size(kind, rng)
        material = MATERIALS[int(rng.integers(len(MATERIALS)))] if kind in PRIMITIVES else "rubber"
        yaw = float(rng.uniform(0, 2 * math.pi))
        for _ in range(tries):
            r, t = area * math.sqrt(float(rng.uniform(0, 1))), float(rng.uniform(0, 2 * math.pi))
            candidate = SceneObject(oid, kind, colour, material, size, (round(r * math.cos(t), 3),
                                                                          round(r * math.sin(t), 3)), round(yaw, 4))
            if all(not overlaps(candidate, o, gap) for o in objects):
                objects.append(candidate)
                break
        else:
            return None
    return Scene(objects)


def overlaps(a: SceneObject, b: SceneObject, gap: float = 0.0) -> bool:
    """Whether two footprints (their bounding circles) come closer than `gap`."""
    return math.dist(a.position, b.position) < a.footprint_radius + b.footprint_radius + gap


def sample_backdrop(rng: np.random.Generator) -> tuple[str, tuple[int, int, int]]:
    """A ground surface and a sky tint."""
    names = list(GROUNDS)
    return names[int(rng.integers(len(names)))], SKIES[int(rng.integers(len(SKIES)))]


def sample_light(rng: np.random.Generator) -> Light:
    azimuth = float(rng.uniform(0, 2 * math.pi))
    elevation = float(rng.uniform(math.radians(40), math.radians(70)))
    d = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    return Light(direction=tuple(round(v, 4) for v in d))  # type: ignore[arg-type]


# -- facts read from a rendered view ----------------------------------------------------------------------

MIN_VISIBLE = 0.0025  # a question may name an object covering this share of the image (CLEVR: 200 of 480x320)
MIN_SEEN = 0.0003  # a caption names every object covering this share: what a careful viewer would notice
OCCLUSION_STEP_M = 0.25  # a neighbouring pixel of another object this much nearer hides the object there
NEAREST_SURFACE_PERCENTILE = 1.0  # of a mask's ground distances: its nearest visible surface, robust to one pixel


def object_pixels(instance: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{object id: (rows, columns) of its pixels} from an instance mask, in one pass over the image."""
    ys, xs = np.nonzero(instance)
    ids = instance[ys, xs]
    order = np.argsort(ids, kind="stable")
    ids, ys, xs = ids[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.array([], int)
    ends = np.r_[starts[1:], len(ids)]
    return {int(ids[a]): (ys[a:b], xs[a:b]) for a, b in zip(starts, ends)}


def object_boxes(instance: np.ndarray) -> dict[int, tuple[list[int], int]]:
    """{object id: ([x0, y0, x1, y1] with x1, y1 exclusive, visible pixels)} from an instance mask."""
    return {oid: ([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1], len(xs))
            for oid, (ys, xs) in object_pixels(instance).items()}


def ground_distances(camera: Camera, depth: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Distance along the ground (metres, horizontally) from the camera to the surface seen at pixels (ys, xs),
    from the depth map: each pixel centre is cast back into the world at its depth along the viewing axis."""
    d = depth[ys, xs].astype(float)
    eye = np.stack([(xs + 0.5 - camera.width / 2) * d / camera.focal,
                    -(ys + 0.5 - camera.height / 2) * d / camera.focal, -d], axis=1)
    offset = eye @ camera.view_matrix()[:3, :3]  # eye to world: the inverse (transpose) of the rotation
    return np.hypot(offset[:, 0], offset[:, 1])


def occluders(depth: np.ndarray, instance: np.ndarray, step: float = OCCLUSION_STEP_M) -> dict[int, set[int]]:
    """{object id: ids of the objects that hide part of it}: where two objects' pixels touch and one is at least
    `step` nearer, the nearer one covers the other there."""
    hidden: dict[int, set[int]] = {}
    for a, b, da, db in ((instance[:, :-1], instance[:, 1:], depth[:, :-1], depth[:, 1:]),
                         (instance[:-1], instance[1:], depth[:-1], depth[1:])):
        for back, front, dback, dfront in ((a, b, da, db), (b, a, db, da)):
            where = (back > 0) & (front > 0) & (back != front) & (dfront < dback - step)
            for oid, by in set(zip(back[where].tolist(), front[where].tolist())):
                hidden.setdefault(int(oid), set()).add(int(by))
    return hidden


def view_facts(scene: Scene, camera: Camera, depth: np.ndarray, instance: np.ndarray,
               min_visible: float = MIN_VISIBLE) -> dict[str, Any]:
    """Per-object facts of one view, measured on its depth map and instance mask: 2D box, visible pixels,
    whether the object counts as visible (a question may name it) or seen (a caption names it), whether the
    frame cuts it off, which objects hide part of it, the median depth of its pixels, the ground distance
    from the camera to its nearest visible surface, and its centre's projection."""
    pixels = object_pixels(instance)
    area = camera.width * camera.height
    projected = camera.project(np.array([o.centre for o in scene.objects]))
    hidden = occluders(depth, instance)
    objects = {}
    for obj, (px, py, pz) in zip(scene.objects, projected):
        ys, xs = pixels.get(obj.id, (np.array([], int), np.array([], int)))
        seen = len(xs) > 0
        objects[str(obj.id)] = {
            "box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if seen else None,
            "visible_pixels": len(xs),
            "visible": len(xs) >= min_visible * area,
            "seen": len(xs) >= MIN_SEEN * area,
            "cut_off": bool(seen and (xs.min() == 0 or ys.min() == 0 or xs.max() == camera.width - 1
                                      or ys.max() == camera.height - 1)),
            "hidden_by": sorted(hidden.get(obj.id, ())),
            "median_depth_m": round(float(np.median(depth[ys, xs])), 1) if seen else None,
            "ground_distance_m": round(float(np.percentile(ground_distances(camera, depth, ys, xs),
                                                           NEAREST_SURFACE_PERCENTILE)), 2) if seen else None,
            "mask_centroid_x": round(float(xs.mean() + 0.5), 1) if seen else None,
            "centre_px": [round(float(px), 1), round(float(py), 1)],
            "centre_depth_m": round(float(pz), 1),
        }
    return {"camera": camera.to_facts(), "objects": objects}
