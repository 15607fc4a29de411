"""Image editing with one interface, `edit(images, instructions, masks=None) -> images`, and two backends.

* `classical` (the default): OpenCV/PIL operations that make an edit exactly and deterministically: paste a
  sprite, remove a region (patch-based inpainting with matching texture), recolour it, resize it, move it, blur it.
* `diffusers`: InstructPix2Pix and inpainting pipelines loaded from a local folder (or a hub id where there is
  a network), batched, fp16 on CUDA, float32 on CPU, seeded per edit. Masked edits go to the inpainting
  pipeline; edits without a mask go to InstructPix2Pix. The pixels outside a mask are kept from the input.

An `Edit` says both what to do (`op` and its parameters, which the classical editor follows) and how to say it
(`prompt`, which a model editor follows), so a builder writes one edit and either backend can make it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from mirdata.errors import MirdataError

OPS = ("paste", "remove", "recolour", "resize", "move", "blur")
EDITORS = ("classical", "diffusers")
# Folder names when one model folder holds both pipelines.
PIX2PIX_DIR, INPAINT_DIR = "instruct_pix2pix", "inpaint"


@dataclass
class Edit:
    """One edit of one image.

    op: paste (needs `sprite` and `at`, its top-left corner), remove, recolour (needs `colour`), resize (needs
    `scale`, about the bottom centre of the masked object, which stands on the ground), move (needs `offset`),
    blur (needs `sigma`; `motion` makes it a horizontal motion blur). Every op but paste needs a mask.
    `seed` seeds a model editor for this edit, so a batch gives the same pixels as one edit at a time.
    """

    prompt: str
    op: str | None = None
    sprite: Image.Image | None = None
    at: tuple[int, int] = (0, 0)
    colour: tuple[int, int, int] = (128, 128, 128)
    scale: float = 1.0
    offset: tuple[int, int] = (0, 0)
    sigma: float = 4.0
    motion: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.op is not None and self.op not in OPS:
            raise ValueError(f"unknown edit op {self.op!r}; ops are {', '.join(OPS)}")
        if self.op == "paste" and self.sprite is None:
            raise ValueError("a paste edit needs a sprite")

    def footprint(self, size: tuple[int, int]) -> np.ndarray:
        """Where a paste lands: the sprite's alpha placed at `at` on a canvas of `size` (width, height)."""
        assert self.sprite is not None
        mask = np.zeros((size[1], size[0]), dtype=bool)
        alpha = np.asarray(self.sprite.convert("RGBA").getchannel("A")) > 0
        _place(mask, alpha, self.at)
        return mask


class Editor:
    """An image editor backend: `edit` returns one new image per input image, in order."""

    name = ""

    def edit(self, images: Sequence[Image.Image], instructions: Sequence[Edit | str],
             masks: Sequence[np.ndarray | Image.Image | None] | None = None) -> list[Image.Image]:
        raise NotImplementedError

    def close(self) -> None:
        """Free models and memory."""


def make_editor(name: str = "classical", model: str | Path | None = None, device: str = "cpu", **kwargs: Any) -> Editor:
    """The editor backend `name`; `diffusers` needs `model` (a pipeline folder or hub id)."""
    if name == "classical":
        return ClassicalEditor()
    if name == "diffusers":
        if model is None:
            raise MirdataError("--editor diffusers needs --editor-model: a local diffusers pipeline folder")
        return DiffusersEditor(model, device=device, **kwargs)
    raise MirdataError(f"unknown editor {name!r}; editors are: {', '.join(EDITORS)}")


def edit(images: Sequence[Image.Image], instructions: Sequence[Edit | str],
         masks: Sequence[np.ndarray | Image.Image | None] | None = None, editor: str = "classical",
         model: str | Path | None = None, device: str = "cpu") -> list[Image.Image]:
    """Edit each image by its instruction (and mask) with a one-off editor of the named backend."""
    backend = make_editor(editor, model, device)
    try:
        return backend.edit(images, instructions, masks)
    finally:
        backend.close()


Job = tuple[Image.Image, Edit, "np.ndarray | None"]  # an image, its edit, and its mask (None: the whole image)


def _normalise(images: Sequence[Image.Image], instructions: Sequence[Edit | str],
               masks: Sequence[np.ndarray | Image.Image | None] | None) -> list[Job]:
    if len(instructions) != len(images):
        raise ValueError(f"{len(images)} images but {len(instructions)} instructions")
    if masks is not None and len(masks) != len(images):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    out = []
    for k, (image, instruction) in enumerate(zip(images, instructions)):
        e = instruction if isinstance(instruction, Edit) else Edit(prompt=str(instruction))
        m = None if masks is None else masks[k]
        if m is not None:
            m = np.asarray(m.convert("L")) > 127 if isinstance(m, Image.Image) else np.asarray(m).astype(bool)
            if m.shape != (image.height, image.width):
                raise ValueError(f"mask {k} is {m.shape[1]}x{m.shape[0]}, image is {image.width}x{image.height}")
        elif e.op == "paste":
            m = e.footprint(image.size)
        out.append((image.convert("RGB"), e, m))
    return out


def _place(canvas: np.ndarray, patch: np.ndarray, at: tuple[int, int]) -> None:
    """OR a boolean patch into a boolean canvas at top-left `at`, clipped to the canvas."""
    x, y = at
    h, w = patch.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
    if x0 < x1 and y0 < y1:
        canvas[y0:y1, x0:x1] |= patch[y0 - y:y1 - y, x0 - x:x1 - x]


# -- the classical editor ------------------------------------------------------------------------------------

class ClassicalEditor(Editor):
    """Exact, deterministic edits with OpenCV and PIL; follows `Edit.op` and ignores the prompt."""

    name = "classical"

    def edit(self, images: Sequence[Image.Image], instructions: Sequence[Edit | str],
             masks: Sequence[np.ndarray | Image.Image | None] | None = None) -> list[Image.Image]:
        out = []
        for image, e, mask in _normalise(images, instructions, masks):
            if e.op is None:
                raise MirdataError(f"the classical editor needs an edit op ({', '.join(OPS)}), "
                                   f"not only a prompt ({e.prompt!r}); use --editor diffusers for free text")
            if e.op != "paste" and (mask is None or not mask.any()):
                raise ValueError(f"a {e.op} edit needs a non-empty mask")
            out.append(getattr(self, f"_{e.op}")(image, e, mask))
        return out

    @staticmethod
    def _paste(image: Image.Image, e: Edit, mask: np.ndarray | None) -> Image.Image:
        result = image.copy()
        sprite = e.sprite.convert("RGBA")  # type: ignore[union-attr]
        result.paste(sprite, e.at, sprite)
        return result

    @staticmethod
    def _remove(image: Image.Image, e: Edit, mask: np.ndarray) -> Image.Image:
        return Image.fromarray(_inpaint(np.asarray(image), mask))

    @staticmethod
    def _recolour(image: Image.Image, e: Edit, mask: np.ndarray) -> Image.Image:
        """Give the masked pixels the target hue and saturation, keeping their shading (relative brightness)."""
        rgb = np.asarray(image).copy()
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
        target = cv2.cvtColor(np.uint8([[e.colour]]), cv2.COLOR_RGB2HSV)[0, 0].astype(np.float32)
        v = hsv[..., 2][mask]
        hsv[..., 0][mask] = target[0]
        hsv[..., 1][mask] = target[1]
        hsv[..., 2][mask] = np.clip(v * (target[2] / max(1.0, float(np.percentile(v, 75)))), 0, 255)
        recoloured = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
        rgb[mask] = recoloured[mask]
        return Image.fromarray(rgb)

    @staticmethod
    def _resize(image: Image.Image, e: Edit, mask: np.ndarray) -> Image.Image:
        patch, alpha, (x0, y0, x1, y1) = _cut(image, mask)
        w, h = max(1, round((x1 - x0) * e.scale)), max(1, round((y1 - y0) * e.scale))
        base = Image.fromarray(_inpaint(np.asarray(image), mask))
        sprite = patch.resize((w, h), Image.LANCZOS)
        sprite.putalpha(alpha.resize((w, h), Image.BILINEAR))
        at = (round((x0 + x1) / 2 - w / 2), y1 - h)  # keep the bottom centre where it stands
        base.paste(sprite, at, sprite)
        return base

    @staticmethod
    def _move(image: Image.Image, e: Edit, mask: np.ndarray) -> Image.Image:
        patch, alpha, (x0, y0, _, _) = _cut(image, mask)
        base = Image.fromarray(_inpaint(np.asarray(image), mask))
        patch.putalpha(alpha)
        base.paste(patch, (x0 + e.offset[0], y0 + e.offset[1]), patch)
        return base

    @staticmethod
    def _blur(image: Image.Image, e: Edit, mask: np.ndarray) -> Image.Image:
        rgb = np.asarray(image).astype(np.float32)
        if e.motion:
            length = max(3, int(e.sigma * 3) | 1)
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1.0 / length
            blurred = cv2.filter2D(rgb, -1, kernel, borderType=cv2.BORDER_REFLECT)
        else:
            blurred = cv2.GaussianBlur(rgb, (0, 0), e.sigma)
        # Feather the mask so the blurred area has no hard seam.
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(1.0, e.sigma / 2))[..., None]
        soft = np.maximum(soft, mask[..., None].astype(np.float32))
        return Image.fromarray(np.clip(rgb * (1 - soft) + blurred * soft, 0, 255).astype(np.uint8))


def _inpaint(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill a region with texture copied from elsewhere in the image (patch-based), seams blended by Telea.

    The mask is grown a little to swallow anti-aliased edges. Candidate source windows are the hole shifted
    sideways (then up or down) to where it overlaps no hole pixel; each is scored by how well the pixels
    around the shifted hole match the pixels around the hole, and how close its inside is to the hole's
    surroundings row by row (so a window over another object loses). The best window's pixels fill the hole,
    keeping the grain of the ground or sky instead of a smooth smear; with no candidate, Telea fills it all.
    """
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ring = cv2.dilate(grown.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~grown
    h, w = grown.shape
    ys, xs = np.nonzero(grown)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    image = rgb.astype(np.float32)
    hole_y, hole_x = np.nonzero(grown)
    ring_y, ring_x = np.nonzero(ring)
    # The colour the background has on each row, from the ring pixels of that row (or the nearest row).
    counts = np.bincount(ring_y, minlength=h)
    present = np.nonzero(counts)[0]
    sums = [np.bincount(ring_y, image[ring_y, ring_x, c], minlength=h) for c in range(3)]
    means = [(sums[c] / np.maximum(counts, 1))[present] for c in range(3)]
    row_mean = np.stack([np.interp(np.arange(h), present, means[c]) for c in range(3)], axis=1)
    expected = row_mean[hole_y]
    bw, bh = x1 - x0, y1 - y0
    # Sideways first (ground and sky change little along a row), then up and down, in half-hole steps out to
    # a few hole sizes: near windows match best, and fewer candidates keep an edit fast.
    steps_x = [(k + 1) * bw // 2 for k in range(1, min(2 * w // max(1, bw) + 2, 9))]
    steps_y = [(k + 1) * bh // 2 for k in range(1, min(2 * h // max(1, bh) + 2, 5))]
    shifts = [(d, 0) for step in steps_x for d in (step, -step)] + [(0, d) for step in steps_y for d in (step, -step)]
    best, best_cost = None, np.inf
    for dx, dy in shifts:
        sy, sx = hole_y + dy, hole_x + dx
        ry, rx = ring_y + dy, ring_x + dx
        if sy.min() < 0 or sy.max() >= h or sx.min() < 0 or sx.max() >= w or ry.min() < 0 or ry.max() >= h \
                or rx.min() < 0 or rx.max() >= w or grown[sy, sx].any():
            continue
        source = image[sy, sx]
        outliers = np.mean(np.abs(source - expected).max(axis=1) > 45)  # pixels of some other object
        cost = (np.mean((image[ry, rx] - image[ring_y, ring_x]) ** 2) + np.mean((source - expected) ** 2)
                + 1e5 * outliers)
        if cost < best_cost:
            best, best_cost = (sy, sx), cost
    if best is None:
        return cv2.inpaint(rgb, grown.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    filled = rgb.copy()
    filled[hole_y, hole_x] = rgb[best]
    seam = cv2.dilate(grown.astype(np.uint8), np.ones((3, 3), np.uint8)) - cv2.erode(grown.astype(np.uint8),
                                                                                     np.ones((3, 3), np.uint8))
    return cv2.inpaint(filled, seam * 255, 3, cv2.INPAINT_TELEA)


def _cut(image: Image.Image, mask: np.ndarray) -> tuple[Image.Image, Image.Image, tuple[int, int, int, int]]:
    """The masked object's pixels and alpha, cropped to its box, and the box."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    patch = image.crop((x0, y0, x1, y1)).convert("RGBA")
    alpha = Image.fromarray((mask[y0:y1, x0:x1] * 255).astype(np.uint8), "L")
    return patch, alpha, (x0, y0, x1, y1)


# -- the diffusers editor -------------------------------------------------------------------------------------

class DiffusersEditor(Editor):
    """InstructPix2Pix and inpainting pipelines from `model`, loaded on first use.

    `model` is a pipeline folder (its model_index.json names an InstructPix2Pix or an inpainting pipeline), a
    folder holding both as `instruct_pix2pix/` and `inpaint/`, or a hub id. Edits run in batches of
    `batch_size`, each with its own generator seeded by `Edit.seed`.
    """

    name = "diffusers"

    def __init__(self, model: str | Path, device: str = "cpu", steps: int = 20, batch_size: int = 4,
                 guidance_scale: float = 7.5, image_guidance_scale: float = 1.5):
        self.model = str(model)
        self.device = device
        self.steps = steps
        self.batch_size = batch_size
        self.guidance_scale = guidance_scale
        self.image_guidance_scale = image_guidance_scale
        self._pipelines: dict[str, Any] | None = None
        self._sources()  # a missing or wrong folder is an error now, not at the first edit

    # Loading --------------------------------------------------------------------------------------------

    def _sources(self) -> dict[str, str]:
        """{"instruct_pix2pix" or "inpaint": where to load it from}."""
        root = Path(self.model)
        if not root.exists():
            if root.is_absolute() or self.model.startswith(".") or self.model.count("/") != 1:
                raise MirdataError(f"{self.model}: no such diffusers pipeline folder")
            return {"hub": self.model}  # a hub id: the kind is known once loaded
        if (root / "model_index.json").is_file():
            return {_pipeline_kind(root / "model_index.json"): str(root)}
        found = {kind: str(root / kind) for kind in (PIX2PIX_DIR, INPAINT_DIR)
                 if (root / kind / "model_index.json").is_file()}
        if not found:
            raise MirdataError(f"{root}: not a diffusers pipeline folder (no model_index.json, "
                               f"nor {PIX2PIX_DIR}/ or {INPAINT_DIR}/ subfolders holding one)")
        return found

    def _load(self) -> dict[str, Any]:
        if self._pipelines is not None:
            return self._pipelines
        sources = self._sources()
        import torch
        from diffusers import DiffusionPipeline, StableDiffusionInpaintPipeline, StableDiffusionInstructPix2PixPipeline

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise MirdataError("--device cuda: no CUDA device is available")
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        pipelines = {}
        for kind, source in sources.items():
            try:
                pipe = DiffusionPipeline.from_pretrained(source, dtype=dtype, safety_checker=None,
                                                         requires_safety_checker=False)
            except (OSError, ValueError, EnvironmentError) as e:
                raise MirdataError(f"{source}: cannot load a diffusers pipeline ({e})") from e
            if isinstance(pipe, StableDiffusionInstructPix2PixPipeline):
                kind = PIX2PIX_DIR
            elif isinstance(pipe, StableDiffusionInpaintPipeline):
                kind = INPAINT_DIR
            else:
                raise MirdataError(f"{source}: a {type(pipe).__name__}, but editing needs an InstructPix2Pix "
                                   f"or a Stable Diffusion inpainting pipeline")
            pipe.set_progress_bar_config(disable=True)
            pipelines[kind] = pipe.to(self.device)
        self._pipelines = pipelines
        return pipelines

    def close(self) -> None:
        if self._pipelines is None:
            return
        self._pipelines = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    # Editing --------------------------------------------------------------------------------------------

    def edit(self, images: Sequence[Image.Image], instructions: Sequence[Edit | str],
             masks: Sequence[np.ndarray | Image.Image | None] | None = None) -> list[Image.Image]:
        items = _normalise(images, instructions, masks)
        pipelines = self._load()
        routes: dict[str, list[int]] = {PIX2PIX_DIR: [], INPAINT_DIR: []}
        for k, (_, _, mask) in enumerate(items):
            if mask is None:
                if PIX2PIX_DIR not in pipelines:
                    raise MirdataError(f"{self.model}: an edit without a mask needs an InstructPix2Pix pipeline, "
                                       f"but the folder holds only an inpainting one")
                routes[PIX2PIX_DIR].append(k)
            else:
                # A masked edit: inpaint when we can, else InstructPix2Pix composited inside the mask.
                routes[INPAINT_DIR if INPAINT_DIR in pipelines else PIX2PIX_DIR].append(k)
        out: list[Image.Image | None] = [None] * len(items)
        for kind, indices in routes.items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                edited = self._run(kind, pipelines[kind], [items[k] for k in chunk])
                for k, image in zip(chunk, edited):
                    out[k] = image
        return out  # type: ignore[return-value]

    def _run(self, kind: str, pipe: Any, batch: list[Job]) -> list[Image.Image]:
        import torch

        size = batch[0][0].size
        if any(image.size != size for image, _, _ in batch):
            return [im for item in batch for im in self._run(kind, pipe, [item])]  # a batch shares one size
        # The latent grid needs sides divisible by the VAE's scale factor.
        step = int(pipe.vae_scale_factor)
        w8, h8 = max(step, size[0] // step * step), max(step, size[1] // step * step)
        inputs = [_with_paste(image, e).resize((w8, h8), Image.LANCZOS) for image, e, _ in batch]
        generator_device = "cpu" if not self.device.startswith("cuda") else self.device
        generators = [torch.Generator(generator_device).manual_seed(int(e.seed)) for _, e, _ in batch]
        prompts = [e.prompt for _, e, _ in batch]
        with torch.inference_mode():
            if kind == INPAINT_DIR:
                mask_images = [Image.fromarray((m * 255).astype(np.uint8), "L").resize((w8, h8), Image.NEAREST)
                               for _, _, m in batch]  # type: ignore[union-attr]
                result = pipe(prompt=prompts, image=inputs, mask_image=mask_images, height=h8, width=w8,
                              num_inference_steps=self.steps, guidance_scale=self.guidance_scale,
                              generator=generators).images
            else:
                result = pipe(prompt=prompts, image=inputs, num_inference_steps=self.steps,
                              guidance_scale=self.guidance_scale, image_guidance_scale=self.image_guidance_scale,
                              generator=generators).images
        out = []
        for (image, _, mask), edited in zip(batch, result):
            edited = edited.convert("RGB").resize(size, Image.LANCZOS)
            out.append(edited if mask is None else _composite(image, edited, mask))
        return out


def _with_paste(image: Image.Image, e: Edit) -> Image.Image:
    """A paste shows the model its sprite in place, so the model blends it in rather than inventing it."""
    if e.op != "paste" or e.sprite is None:
        return image
    return ClassicalEditor._paste(image, e, None)


def _composite(original: Image.Image, edited: Image.Image, mask: np.ndarray) -> Image.Image:
    """The edited pixels inside a softened mask, the original outside it."""
    soft = cv2.GaussianBlur(cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32), (0, 0), 2)
    soft[soft < 0.02] = 0.0  # the far tail of the blur would only add rounding noise to untouched pixels
    soft = np.maximum(soft, mask.astype(np.float32))[..., None]
    a, b = np.asarray(original).astype(np.float32), np.asarray(edited).astype(np.float32)
    return Image.fromarray(np.clip(a * (1 - soft) + b * soft, 0, 255).astype(np.uint8))


def _pipeline_kind(model_index: Path) -> str:
    try:
        name = json.loads(model_index.read_text()).get("_class_name", "")
    except (json.JSONDecodeError, OSError) as e:
        raise MirdataError(f"{model_index}: not a readable model index ({e})") from e
    if "InstructPix2Pix" in name:
        return PIX2PIX_DIR
    if "Inpaint" in name:
        return INPAINT_DIR
    raise MirdataError(f"{model_index}: a {name or 'unnamed'} pipeline, but editing needs an InstructPix2Pix "
                       f"or an inpainting pipeline")


# -- a tiny pipeline, built from configs ------------------------------------------------------------------------

def write_tiny_pipeline(folder: str | Path, kinds: Sequence[str] = (PIX2PIX_DIR, INPAINT_DIR), seed: int = 0) -> Path:
    """Save small randomly initialised pipelines, built from configs with no download, under `folder`.

    One kind is saved at `folder` itself; two kinds go to `folder/instruct_pix2pix` and `folder/inpaint`.
    The pipelines have the real architecture at toy width, so they exercise the whole editing path (tests,
    benchmarks) in seconds on a CPU; their output is noise, not an edit.
    """
    import torch
    from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionInpaintPipeline,
                           StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    # A byte-level vocabulary with no merges: every character is a token; enough for CLIP's tokenizer.
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    with tempfile.TemporaryDirectory() as tok_dir:
        vocab_file, merges_file = Path(tok_dir) / "vocab.json", Path(tok_dir) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab))
        merges_file.write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77)
    pipeline_classes = {PIX2PIX_DIR: (StableDiffusionInstructPix2PixPipeline, 8),
                        INPAINT_DIR: (StableDiffusionInpaintPipeline, 9)}
    for kind in kinds:
        cls, in_channels = pipeline_classes[kind]
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, projection_dim=32, bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]))
        unet = UNet2DConditionModel(
            block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=in_channels, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32, norm_num_groups=8, attention_head_dim=4)
        # Four VAE levels: the usual 8x downsampling, so latents stay small at real image sizes.
        vae = AutoencoderKL(block_out_channels=[16] * 4, in_channels=3, out_channels=3, latent_channels=4,
                            down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                            norm_num_groups=8, layers_per_block=1)
        scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                     steps_offset=1)
        pipe = cls(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.save_pretrained(folder if len(kinds) == 1 else folder / kind)
    return folder


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte-to-printable-character map, which CLIP's byte-level BPE uses."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))
