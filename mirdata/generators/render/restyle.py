"""The restyle pass: a depth-conditioned diffusers pipeline repaints a raster render to look photographic.

The pipeline is a `StableDiffusionControlNetImg2ImgPipeline` folder saved with `save_pretrained` (a Stable
Diffusion 1.x checkpoint with a depth ControlNet such as lllyasviel/control_v11f1p_sd15_depth), loaded from
disk only. The ControlNet sees the render's own depth map (near is bright, as MiDaS maps are), and img2img
starts from the render, so objects keep their place, outline and colour; depth and masks are passed through
from the base render. Every render is seeded from the scene and camera, so output depends on nothing else.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from mirdata.errors import MirdataError
from mirdata.generators.render import Renderer, RenderResult
from mirdata.generators.scene import Camera, Scene

NEGATIVE_PROMPT = "cartoon, drawing, illustration, blurry, distorted, extra objects, text, watermark"


def depth_control(depth: np.ndarray) -> Image.Image:
    """Inverse depth scaled to 0..255 (near bright, sky black) as a 3-channel image."""
    finite = np.isfinite(depth)
    inverse = np.zeros_like(depth, dtype=np.float64)
    inverse[finite] = 1.0 / np.maximum(depth[finite], 1e-3)
    if finite.any():
        lo, hi = inverse[finite].min(), inverse[finite].max()
        inverse[finite] = (inverse[finite] - lo) / max(hi - lo, 1e-9) * 0.9 + 0.1
    grey = np.rint(inverse * 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2))


def scene_prompt(scene: Scene) -> str:
    names = [o.name.removeprefix("the ") for o in scene.objects]
    listing = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    return f"a photograph of a {listing} standing on a wide concrete square, daylight, sharp focus, photorealistic"


class RestyleRenderer(Renderer):
    """`base` renders; a local ControlNet-depth img2img pipeline repaints its colour."""

    def __init__(self, base: Renderer, folder: Path, device: str = "cpu", steps: int = 20, strength: float = 0.6,
                 guidance: float = 6.0, control_scale: float = 1.0):
        self.base = base
        self.folder = Path(folder)
        self.device = device
        self.steps, self.strength, self.guidance, self.control_scale = steps, strength, guidance, control_scale
        self.name = f"restyle({base.name})"
        self._pipe = None

    def _pipeline(self):
        if self._pipe is None:
            import torch
            from diffusers import StableDiffusionControlNetImg2ImgPipeline

            index = json.loads((self.folder / "model_index.json").read_text())
            if "controlnet" not in index:
                raise MirdataError(f"{self.folder}/model_index.json: the pipeline has no controlnet component")
            dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
            try:
                pipe = StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
                    self.folder, dtype=dtype, safety_checker=None, requires_safety_checker=False,
                    local_files_only=True)
            except (OSError, ValueError) as e:
                raise MirdataError(f"{self.folder}: cannot load the ControlNet pipeline ({e})") from e
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe.to(self.device)
        return self._pipe

    def render(self, scene: Scene, camera: Camera) -> RenderResult:
        import torch

        base = self.base.render(scene, camera)
        pipe = self._pipeline()
        w, h = camera.width, camera.height
        work = (max(8, w // 8 * 8), max(8, h // 8 * 8))  # the UNet wants multiples of 8
        image = Image.fromarray(base.color).resize(work, Image.BICUBIC)
        control = depth_control(base.depth).resize(work, Image.BICUBIC)
        key = json.dumps([scene.to_facts(), camera.to_facts()], sort_keys=True)
        generator = torch.Generator("cpu").manual_seed(zlib.crc32(key.encode()))
        out = pipe(prompt=scene_prompt(scene), negative_prompt=NEGATIVE_PROMPT, image=image, control_image=control,
                   width=work[0], height=work[1], strength=self.strength, num_inference_steps=self.steps,
                   guidance_scale=self.guidance, controlnet_conditioning_scale=self.control_scale,
                   generator=generator).images[0]
        color = np.array(out.convert("RGB").resize((w, h), Image.BICUBIC))
        return RenderResult(color, base.depth, base.instance)

    def close(self) -> None:
        self._pipe = None
        self.base.close()
