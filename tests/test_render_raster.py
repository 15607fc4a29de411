"""The default renderer: deterministic, and its depth and masks agree with the geometry."""

from __future__ import annotations

import numpy as np
import pytest

from mirdata.errors import MirdataError
from mirdata.generators.render import create_renderer
from mirdata.generators.render.raster import RasterRenderer
from mirdata.generators.scene import (
    Camera,
    Scene,
    SceneObject,
    orbit_camera,
    sample_layout,
)


@pytest.fixture(scope="module")
def raster():
    renderer = create_renderer()
    yield renderer
    renderer.close()


def _two_cubes() -> Scene:
    return Scene([SceneObject(1, "cube", "red", "rubber", (1.0, 1.0, 1.0), (0.0, 0.0)),
                  SceneObject(2, "sphere", "blue", "metal", (1.6, 1.6, 1.6), (0.7, 4.0))])


def test_default_is_the_raster_renderer_and_unknown_names_fail():
    assert isinstance(create_renderer(None), RasterRenderer)
    with pytest.raises(MirdataError, match="unknown renderer 'povray'"):
        create_renderer("povray")


def test_render_is_byte_identical_across_calls_and_renderers(raster):
    scene = sample_layout(np.random.default_rng(3), ["cube", "car", "tree", "torus", "figure"], area=5.0)
    camera = orbit_camera(scene, 40, 30, 16.0, (160, 120))
    a = raster.render(scene, camera)
    b = raster.render(scene, camera)
    fresh = RasterRenderer()
    try:
        c = fresh.render(scene, camera)
    finally:
        fresh.close()
    for x in (b, c):
        assert np.array_equal(a.color, x.color) and np.array_equal(a.depth, x.depth, equal_nan=True)
        assert np.array_equal(a.instance, x.instance)
    assert a.color.shape == (120, 160, 3) and a.color.dtype == np.uint8
    assert a.depth.dtype == np.float32 and a.instance.dtype == np.int32
    assert set(np.unique(a.instance)) <= {0, *(o.id for o in scene.objects)}


def test_depth_is_metres_along_the_view_axis(raster):
    # Looking straight ahead and level from 1 m up: the ground at image row y lies at depth f * 1 / (y - cy).
    camera = Camera((0.0, 0.0, 1.0), (0.0, 50.0, 1.0), 160, 120, fov_y=50.0)
    result = raster.render(_two_cubes(), camera)
    for row in (80, 100, 119):
        expected = camera.focal * 1.0 / (row + 0.5 - 60)
        assert result.depth[row, 5] == pytest.approx(expected, rel=0.02)
    assert np.isinf(result.depth[10, 5])  # sky
    assert result.instance[10, 5] == 0 and result.instance[110, 5] == 0  # sky and ground


def test_masks_match_projection_depth_and_colour(raster):
    scene = _two_cubes()
    camera = Camera((0.0, -6.0, 0.5), (0.0, 0.0, 0.5), 160, 120, fov_y=50.0)
    result = raster.render(scene, camera)
    cube = result.instance == 1
    ys, xs = np.nonzero(cube)
    cx, cy, _ = camera.project(np.array([[0.0, 0.0, 0.5]]))[0]
    assert xs.min() < cx < xs.max() and ys.min() < cy < ys.max()
    # The cube's front face is 5.5 m from the camera, along the viewing axis.
    assert np.median(result.depth[cube]) == pytest.approx(5.5, abs=0.05)
    red = result.color[cube].astype(int)
    assert (red[:, 0] > red[:, 2] + 40).mean() > 0.9
    # The sphere stands right behind the cube: what shows of it is farther away, and partly hidden.
    sphere = result.instance == 2
    assert sphere.any() and result.depth[sphere].min() > result.depth[cube].max()
    alone = raster.render(Scene([scene.objects[1]]), camera)
    assert (alone.instance == 2).sum() > sphere.sum()


def test_ground_is_paved_with_one_metre_slabs(raster):
    scene = Scene([SceneObject(1, "cube", "red", "rubber", (1.0, 1.0, 1.0), (40.0, 40.0))])  # out of view
    camera = Camera((0.2, -3.0, 5.0), (0.2, 3.0, 0.0), 160, 120)
    result = raster.render(scene, camera)
    ys, xs = np.nonzero(np.isfinite(result.depth))
    d = result.depth[ys, xs].astype(float)
    eye = np.stack([(xs + 0.5 - 80) * d / camera.focal, -(ys + 0.5 - 60) * d / camera.focal, -d], axis=1)
    world = eye @ camera.view_matrix()[:3, :3] + np.array(camera.position)
    brightness = result.color[ys, xs].astype(float).sum(axis=1)
    dark = brightness <= np.percentile(brightness, 5)
    to_joint = np.minimum(np.abs(world[:, 0] - np.round(world[:, 0])), np.abs(world[:, 1] - np.round(world[:, 1])))
    assert np.mean(to_joint[dark] < 0.08) > 0.8  # the darkest pixels are the joints between slabs
    assert np.mean(to_joint[~dark] < 0.08) < 0.4
