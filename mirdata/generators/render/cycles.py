"""The path tracer: Blender's Cycles through the `bpy` module (pip install bpy==4.2.23).

Chosen over Mitsuba 3 because it is what CLEVR and Kubric render with (so scenes look familiar), it ships
as one wheel with its own denoiser (OpenImageDenoise), and it writes the depth and object-index passes that
the facts need without a second renderer. Each render rebuilds the Blender scene from the scene graph, renders
colour to PNG with metadata stamps off, and reads the depth (planar, along the viewing axis) and object-index
passes from the compositor's EXR outputs. Those data passes come from each pixel's first sample, so masks
are hard-edged like the rasterizer's.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from mirdata.errors import MirdataError
from mirdata.generators.render import Renderer, RenderResult
from mirdata.generators.render.raster import GROUND_HALF_SIZE
from mirdata.generators.scene import Camera, Scene, unit_mesh

BACKGROUND_DEPTH = 1e9  # Cycles writes 1e10 where a ray leaves the scene


@contextlib.contextmanager
def _quiet_stdout():
    """Blender prints a line per render tile and pass to the process's stdout; keep the terminal clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def _linear(srgb: tuple[int, int, int]) -> tuple[float, float, float, float]:
    return (*((c / 255.0) ** 2.2 for c in srgb), 1.0)  # type: ignore[return-value]


class CyclesRenderer(Renderer):
    """Cycles on the CPU (or on CUDA/OptiX when device is cuda), `samples` paths per pixel, denoised."""

    name = "cycles"

    def __init__(self, samples: int = 8, device: str = "cpu", denoise: bool = True, threads: int | None = None):
        self.samples = samples
        self.device = device
        self.denoise = denoise
        self.threads = threads  # None: all cores
        self._bpy = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def _blender(self):
        if self._bpy is not None:
            return self._bpy
        try:
            import bpy
        except ImportError as e:
            raise MirdataError("the cycles renderer needs Blender as a Python module: pip install bpy==4.2.23 "
                               "(Python 3.11)") from e
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self._bpy = bpy
        self._tmp = tempfile.TemporaryDirectory(prefix="mirdata-cycles-")
        return bpy

    def _configure(self, scene, width: int, height: int) -> None:
        bpy = self._bpy
        scene.render.engine = "CYCLES"
        cycles = scene.cycles
        cycles.samples = self.samples
        cycles.use_adaptive_sampling = False
        cycles.seed = 0
        cycles.use_animated_seed = False
        cycles.use_denoising = self.denoise
        cycles.denoiser = "OPENIMAGEDENOISE"
        cycles.denoising_prefilter = "FAST"  # few samples: the fast denoiser is what they can afford
        cycles.denoising_quality = "FAST"
        cycles.max_bounces = 4
        if self.device.startswith("cuda"):
            prefs = bpy.context.preferences.addons["cycles"].preferences
            for backend in ("OPTIX", "CUDA"):
                try:
                    prefs.compute_device_type = backend
                    prefs.get_devices()
                    if any(d.type == backend for d in prefs.devices):
                        for d in prefs.devices:
                            d.use = d.type == backend
                        cycles.device = "GPU"
                        break
                except TypeError:
                    continue
            else:
                raise MirdataError("--device cuda: Cycles found no CUDA or OptiX device")
        else:
            cycles.device = "CPU"
        r = scene.render
        if self.threads:
            r.threads_mode, r.threads = "FIXED", self.threads
        r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
        r.film_transparent = False
        r.use_stamp = False
        for flag in dir(r):
            if flag.startswith("use_stamp_"):
                setattr(r, flag, False)
        r.image_settings.file_format = "PNG"
        r.image_settings.color_mode = "RGB"
        r.image_settings.color_depth = "8"
        scene.view_settings.view_transform = "Standard"
        layer = scene.view_layers[0]
        layer.use_pass_z = True
        layer.use_pass_object_index = True

    def _passes_output(self, scene, folder: Path) -> None:
        """Compositor: Render Layers -> a File Output node writing Depth and IndexOB as 32-bit EXRs."""
        scene.use_nodes = True
        tree = scene.node_tree
        tree.nodes.clear()
        layers = tree.nodes.new("CompositorNodeRLayers")
        composite = tree.nodes.new("CompositorNodeComposite")
        tree.links.new(layers.outputs["Image"], composite.inputs["Image"])
        out = tree.nodes.new("CompositorNodeOutputFile")
        out.base_path = str(folder)
        out.format.file_format = "OPEN_EXR"
        out.format.color_depth = "32"
        out.format.color_mode = "RGB"
        out.file_slots.clear()
        for name, socket in (("depth", "Depth"), ("index", "IndexOB")):
            out.file_slots.new(name)
            tree.links.new(layers.outputs[socket], out.inputs[name])

    def render(self, scene: Scene, camera: Camera) -> RenderResult:
        bpy = self._blender()
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bl_scene = bpy.context.scene
        self._configure(bl_scene, camera.width, camera.height)
        folder = Path(self._tmp.name)
        for old in folder.glob("*"):
            old.unlink()
        self._passes_output(bl_scene, folder)
        materials: dict[tuple, object] = {}

        def material(colour: tuple[int, int, int], kind: str):
            key = (colour, kind)
            if key not in materials:
                mat = bpy.data.materials.new(f"m{len(materials)}")
                mat.use_nodes = True
                bsdf = mat.node_tree.nodes["Principled BSDF"]
                bsdf.inputs["Base Color"].default_value = _linear(colour)
                bsdf.inputs["Metallic"].default_value = 1.0 if kind == "metal" else 0.0
                bsdf.inputs["Roughness"].default_value = 0.25 if kind == "metal" else 0.85
                materials[key] = mat
            return materials[key]

        def add_mesh(name: str, vertices: np.ndarray, faces: np.ndarray, mat, pass_index: int, smooth: bool) -> None:
            mesh = bpy.data.meshes.new(name)
            mesh.from_pydata(vertices.tolist(), [], faces.tolist())
            mesh.materials.append(mat)
            mesh.polygons.foreach_set("use_smooth", [smooth] * len(mesh.polygons))
            mesh.update()
            obj = bpy.data.objects.new(name, mesh)
            obj.pass_index = pass_index
            bl_scene.collection.objects.link(obj)

        h = GROUND_HALF_SIZE
        add_mesh("ground", np.array([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], float), np.array([[0, 1, 2, 3]]),
                 self._paving(scene.ground_colour), 0, False)
        for obj in scene.objects:
            for k, (shape, model, colour, kind) in enumerate(obj.parts()):
                mesh = unit_mesh(shape)
                world = mesh.vertices @ model[:3, :3].T + model[:3, 3]
                add_mesh(f"o{obj.id}_{k}", world, mesh.faces, material(colour, kind), obj.id, shape != "cube")

        sun = bpy.data.lights.new("sun", "SUN")
        sun.energy = 2.4
        sun.angle = math.radians(3.0)
        sun_obj = bpy.data.objects.new("sun", sun)
        d = scene.light.unit_direction()
        sun_obj.rotation_euler = (0.0, math.acos(float(d[2])), math.atan2(float(d[1]), float(d[0])))
        bl_scene.collection.objects.link(sun_obj)
        world = bpy.data.worlds.new("sky")
        world.use_nodes = True
        world.node_tree.nodes["Background"].inputs["Color"].default_value = _linear(scene.sky_colour)
        world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
        bl_scene.world = world

        cam_data = bpy.data.cameras.new("camera")
        cam_data.sensor_fit = "VERTICAL"
        cam_data.angle_y = math.radians(camera.fov_y)
        cam_data.clip_start, cam_data.clip_end = 0.1, 1000.0
        cam_obj = bpy.data.objects.new("camera", cam_data)
        from mathutils import Matrix

        # Blender's camera looks down its local -z with y up, as the OpenGL eye frame does.
        cam_obj.matrix_world = Matrix(np.linalg.inv(camera.view_matrix()).tolist())
        bl_scene.collection.objects.link(cam_obj)
        bl_scene.camera = cam_obj

        colour_path = folder / "colour.png"
        bl_scene.render.filepath = str(colour_path)
        with _quiet_stdout():
            bpy.ops.render.render(write_still=True)
        color = np.array(Image.open(colour_path).convert("RGB"))
        depth = self._read_pass(folder, "depth", camera)
        index = self._read_pass(folder, "index", camera)
        depth = np.where(depth < BACKGROUND_DEPTH, depth, np.inf).astype(np.float32)
        return RenderResult(color, depth, np.rint(index).astype(np.int32))

    def _paving(self, colour: tuple[int, int, int]):
        """The ground's material: square slabs of 1 m with darker joints, as the rasterizer draws them."""
        bpy = self._bpy
        mat = bpy.data.materials.new("paving")
        mat.use_nodes = True
        nodes, links = mat.node_tree.nodes, mat.node_tree.links
        bsdf = nodes["Principled BSDF"]
        bsdf.inputs["Roughness"].default_value = 0.9
        coords = nodes.new("ShaderNodeTexCoord")
        bricks = nodes.new("ShaderNodeTexBrick")
        bricks.offset, bricks.squash = 0.0, 1.0
        bricks.inputs["Scale"].default_value = 1.0
        bricks.inputs["Brick Width"].default_value = 1.0
        bricks.inputs["Row Height"].default_value = 1.0
        bricks.inputs["Mortar Size"].default_value = 0.03
        base = np.array(_linear(colour))
        bricks.inputs["Color1"].default_value = tuple((base * [0.92, 0.92, 0.92, 1]).tolist())
        bricks.inputs["Color2"].default_value = tuple((base * [1.04, 1.04, 1.04, 1]).tolist())
        bricks.inputs["Mortar"].default_value = tuple((base * [0.6, 0.6, 0.6, 1]).tolist())
        links.new(coords.outputs["Object"], bricks.inputs["Vector"])
        links.new(bricks.outputs["Color"], bsdf.inputs["Base Color"])
        return mat

    def _read_pass(self, folder: Path, name: str, camera: Camera) -> np.ndarray:
        files = sorted(folder.glob(f"{name}*.exr"))
        if not files:
            raise MirdataError(f"Cycles wrote no {name} pass into {folder}")
        image = self._bpy.data.images.load(str(files[0]))
        pixels = np.empty(camera.width * camera.height * 4, np.float32)
        image.pixels.foreach_get(pixels)
        self._bpy.data.images.remove(image)
        return pixels.reshape(camera.height, camera.width, 4)[::-1, :, 0].copy()

    def close(self) -> None:
        if self._bpy is not None:
            self._bpy.ops.wm.read_factory_settings(use_empty=True)
            self._bpy = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
