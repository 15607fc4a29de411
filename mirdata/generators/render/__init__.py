"""Renderers behind one interface: a `Scene` seen by a `Camera` becomes colour, depth and an instance mask.

Backends:
  raster   the default: OpenGL through moderngl on a headless EGL context (Mesa llvmpipe on CPU), with
           shadow mapping and 4x multisampling; fast and byte-identical for the same input on one machine.
  cycles   Blender's Cycles path tracer through the `bpy` module (CPU, or CUDA/OptiX with device="cuda").
  restyle:PATH  the raster render, repainted by a local diffusers ControlNet-depth pipeline folder PATH that
           keeps the geometry; depth and masks stay those of the raster render.

Renderers are created lazily in the process that uses them (GL contexts and Blender do not survive a fork
or a pickle) and released with `close()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirdata.errors import MirdataError
from mirdata.generators.scene import Camera, Scene

DEFAULT_RENDERER = "raster"
RENDERERS = ("raster", "cycles", "restyle:PATH")


@dataclass
class RenderResult:
    color: np.ndarray  # (h, w, 3) uint8, sRGB
    depth: np.ndarray  # (h, w) float32, metres along the camera's viewing axis; inf where no surface
    instance: np.ndarray  # (h, w) int32: the object id per pixel, 0 for ground and sky


class Renderer:
    """One rendering backend. `name` goes into the records' meta."""

    name: str = ""

    def render(self, scene: Scene, camera: Camera) -> RenderResult:
        raise NotImplementedError

    def close(self) -> None:
        """Free the context, the process-wide state, the models."""


def check_renderer_name(name: str | None) -> None:
    """Fail early, before any work, on a renderer name that `create_renderer` would not accept."""
    name = name or DEFAULT_RENDERER
    if name in ("raster", "cycles"):
        return
    if name.startswith("restyle"):
        _, _, folder = name.partition(":")
        if not folder:
            raise MirdataError("--renderer restyle needs the pipeline folder: restyle:PATH")
        if not (Path(folder) / "model_index.json").is_file():
            raise MirdataError(f"{folder}: not a diffusers pipeline folder (no model_index.json)")
        return
    raise MirdataError(f"unknown renderer {name!r}; renderers are: {', '.join(RENDERERS)}")


def create_renderer(name: str | None = None, device: str = "cpu") -> Renderer:
    """The renderer called `name` (None: the default)."""
    check_renderer_name(name)
    name = name or DEFAULT_RENDERER
    if name == "raster":
        from mirdata.generators.render.raster import RasterRenderer

        return RasterRenderer()
    if name == "cycles":
        from mirdata.generators.render.cycles import CyclesRenderer

        return CyclesRenderer(device=device)
    _, _, folder = name.partition(":")  # restyle:PATH
    from mirdata.generators.render.raster import RasterRenderer
    from mirdata.generators.render.restyle import RestyleRenderer

    return RestyleRenderer(RasterRenderer(), Path(folder), device=device)
