"""The path tracer (Blender Cycles through bpy): one tiny render, checked against the rasterizer."""

from __future__ import annotations

import numpy as np

from mirdata.generators.render import create_renderer
from mirdata.generators.scene import Scene, SceneObject, orbit_camera


def test_cycles_gives_colour_depth_and_masks_that_agree_with_the_raster():
    scene = Scene([SceneObject(1, "cube", "red", "rubber", (1.2, 1.2, 1.2), (-1.2, 0.0), 0.4),
                   SceneObject(2, "car", "blue", "rubber", (4.0, 1.8, 1.4), (2.0, 1.5), 1.0)])
    camera = orbit_camera(scene, 15, 30, 11.0, (64, 48))
    cycles = create_renderer("cycles")
    cycles.samples = 4
    raster = create_renderer("raster")
    try:
        traced = cycles.render(scene, camera)
        again = cycles.render(scene, camera)
        rasterized = raster.render(scene, camera)
    finally:
        cycles.close()
        raster.close()
    assert traced.color.shape == (48, 64, 3) and traced.color.dtype == np.uint8
    assert np.array_equal(traced.color, again.color)  # fixed seed, no stamps
    assert set(np.unique(traced.instance)) == {0, 1, 2}
    # Same geometry, same camera: masks overlap almost everywhere (edges differ by sub-pixel sampling) ...
    assert (traced.instance == rasterized.instance).mean() > 0.95
    # ... and depth is the same planar depth along the viewing axis.
    both = np.isfinite(traced.depth) & np.isfinite(rasterized.depth) & (traced.instance == rasterized.instance)
    relative = np.abs(traced.depth[both] - rasterized.depth[both]) / rasterized.depth[both]
    assert np.median(relative) < 0.01
    cube = traced.instance == 1
    red = traced.color[cube].astype(int)
    assert np.median(red[:, 0] - red[:, 2]) > 30
