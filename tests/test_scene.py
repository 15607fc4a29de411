"""The scene graph: meshes, composites, layout sampling, cameras and the facts read from masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mirdata.generators.scene import (
    COMPOSITES,
    KINDS,
    PRIMITIVES,
    Camera,
    Scene,
    SceneObject,
    object_boxes,
    orbit_camera,
    overlaps,
    sample_layout,
    unit_mesh,
    view_facts,
)


@pytest.mark.parametrize("shape", PRIMITIVES)
def test_unit_meshes_fill_the_unit_box_and_face_outwards(shape):
    mesh = unit_mesh(shape)
    assert np.allclose(mesh.vertices.min(0), -0.5, atol=1e-6) and np.allclose(mesh.vertices.max(0), 0.5, atol=1e-6)
    assert np.allclose(np.linalg.norm(mesh.normals, axis=1), 1.0, atol=1e-5)
    v, f = mesh.vertices, mesh.faces
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    area = np.linalg.norm(cross, axis=1)
    outward = (cross * mesh.normals[f].sum(1)).sum(1)
    assert (outward[area > 1e-9] > 0).all()  # counter-clockwise seen from the normal side


@pytest.mark.parametrize("kind", COMPOSITES)
def test_composite_parts_stay_inside_the_object_box(kind):
    obj = SceneObject(1, kind, "red", "rubber", (4.0, 2.0, 3.0), (1.0, -2.0), 0.0)
    points = np.vstack([unit_mesh(shape).vertices @ model[:3, :3].T + model[:3, 3]
                        for shape, model, _, _ in obj.parts()])
    lo, hi = points.min(0), points.max(0)
    assert np.all(lo >= np.array([-1.0, -3.0, 0.0]) - 1e-6) and np.all(hi <= np.array([3.0, -1.0, 3.0]) + 1e-6)
    assert hi[2] > 2.9  # it reaches its stated height


def test_layouts_are_seeded_and_never_interpenetrate():
    kinds = ["cube", "sphere", "car", "tree", "figure", "torus", "cone"]
    a = sample_layout(np.random.default_rng(5), kinds, area=6.0)
    b = sample_layout(np.random.default_rng(5), kinds, area=6.0)
    assert a is not None and a.to_facts() == b.to_facts()
    for x in a.objects:
        for y in a.objects:
            if x.id < y.id:
                assert not overlaps(x, y, gap=0.4)
    names = [o.name for o in a.objects]
    assert len(set(names)) == len(names)
    assert sample_layout(np.random.default_rng(0), ["tower"] * 8, area=1.0, tries=20) is None
    with pytest.raises(ValueError, match="names would repeat"):
        sample_layout(np.random.default_rng(0), ["cube"] * 11)


def test_scene_and_camera_rebuild_from_their_facts():
    scene = sample_layout(np.random.default_rng(2), list(KINDS[:6]), area=5.0)
    camera = orbit_camera(scene, 30, 35, 12.0, (320, 240))
    assert Scene.from_facts(scene.to_facts()).to_facts() == scene.to_facts()
    assert Camera.from_facts(camera.to_facts()) == camera


def test_camera_projection_follows_the_pinhole_model():
    camera = Camera((0.0, -10.0, 0.0), (0.0, 0.0, 0.0), 320, 240, fov_y=60.0)
    (x, y, d), = camera.project(np.array([[0.0, 0.0, 0.0]]))
    assert (x, y, d) == pytest.approx((160, 120, 10))
    # A point 1 m to the right and 1 m up, 10 m ahead: focal / 10 pixels off the centre.
    (x, y, d), = camera.project(np.array([[1.0, 0.0, 1.0]]))
    f = 120 / math.tan(math.radians(30))
    assert (x, y, d) == pytest.approx((160 + f / 10, 120 - f / 10, 10))
    # Azimuth 90 is the right side: the camera sits on +x.
    scene = Scene([SceneObject(1, "cube", "red", "rubber", (1, 1, 1), (0.0, 0.0))])
    assert orbit_camera(scene, 90, 0, 10, (64, 48)).position[0] == pytest.approx(10)
    assert orbit_camera(scene, 0, 0, 10, (64, 48)).position[1] == pytest.approx(-10)


def test_view_facts_read_boxes_depth_and_visibility_from_the_maps():
    scene = Scene([SceneObject(1, "cube", "red", "rubber", (1, 1, 1), (0.0, 0.0)),
                   SceneObject(2, "cube", "blue", "rubber", (1, 1, 1), (3.0, 0.0))])
    camera = Camera((0.0, -10.0, 2.0), (0.0, 0.0, 0.5), 40, 30)
    instance = np.zeros((30, 40), np.int32)
    instance[5:15, 10:20] = 1
    instance[0:2, 38:40] = 2  # 4 pixels: seen, but below the visibility threshold
    depth = np.full((30, 40), 20.0, np.float32)
    depth[5:15, 10:20] = 9.5
    assert object_boxes(instance) == {1: ([10, 5, 20, 15], 100), 2: ([38, 0, 40, 2], 4)}
    facts = view_facts(scene, camera, depth, instance, min_visible=0.01)
    assert facts["objects"]["1"]["box"] == [10, 5, 20, 15] and facts["objects"]["1"]["visible"]
    assert facts["objects"]["1"]["median_depth_m"] == 9.5
    assert facts["objects"]["1"]["mask_centroid_x"] == 15.0
    assert facts["objects"]["2"]["visible_pixels"] == 4 and not facts["objects"]["2"]["visible"]
    assert facts["objects"]["2"]["cut_off"] and not facts["objects"]["1"]["cut_off"]


def test_view_facts_read_ground_distances_and_occlusion_from_a_render():
    from mirdata.generators.render.raster import RasterRenderer

    # A cube right in front of a taller cylinder, seen from 4 m up: the cube hides the cylinder's lower part.
    scene = Scene([SceneObject(1, "cube", "red", "rubber", (1.0, 1.0, 1.0), (0.0, 6.0)),
                   SceneObject(2, "cylinder", "blue", "rubber", (1.0, 1.0, 3.0), (0.0, 9.0))])
    camera = Camera((0.0, 0.0, 4.0), (0.0, 8.0, 0.5), 160, 120)
    renderer = RasterRenderer()
    try:
        result = renderer.render(scene, camera)
    finally:
        renderer.close()
    facts = view_facts(scene, camera, result.depth, result.instance)["objects"]
    # The nearest visible surfaces: the cube's front face at 5.5 m, the cylinder's front at 8.5 m (along the
    # ground from the camera's foot, whatever their height).
    assert facts["1"]["ground_distance_m"] == pytest.approx(5.5, abs=0.1)
    assert facts["2"]["ground_distance_m"] == pytest.approx(8.5, abs=0.2)
    assert facts["2"]["hidden_by"] == [1] and facts["1"]["hidden_by"] == []
    assert not facts["1"]["cut_off"] and facts["1"]["seen"]
