"""Prompts for expert models: a record's question with each image at its <image> position, options, instruction.

A `Prompt` is a list of parts, text and images in reading order, as chat content; every backend turns it into
its own message format. Options can be rotated (CircularEval): rotation r moves option k to position k - r,
so the correct letter moves with it.

Two prompt formats: "mir" (the question, the options and an instruction to end with "Your option: X") for any
chat model, and "chain" for a model trained with `mirdata curriculum-train`: exactly the input of the curriculum's
stage 5 (question and options only; the model writes the whole tagged chain, ending in <conclusion>).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from mirdata.curriculum.stages import stage_example
from mirdata.errors import MirdataError
from mirdata.schema.record import (
    IMAGE_TOKEN,
    LETTERS,
    Record,
    format_options,
    option_text,
)
from mirdata.store import MIRStore, decode_image

INSTRUCTION = ("Answer with the letter of the correct option. Think step by step if you need to, then finish your "
               "response with a last line in the form \"Your option: X\", where X is the letter.")
PROMPT_FORMATS = ("mir", "chain")
# The curriculum stage whose input a "chain" prompt is: question and options in, the whole chain out.
CHAIN_STAGE = 5


@dataclass
class Prompt:
    """One user turn: `parts` are str (text) and PIL images, in reading order."""

    parts: list[str | Image.Image] = field(default_factory=list)

    @property
    def images(self) -> list[Image.Image]:
        return [p for p in self.parts if isinstance(p, Image.Image)]

    @property
    def text(self) -> str:
        """The prompt's text with an <image> marker where each image is (for logs and the judge)."""
        return "".join(p if isinstance(p, str) else IMAGE_TOKEN for p in self.parts)


def fit_pixels(image: Image.Image, min_pixels: int | None = None, max_pixels: int | None = None) -> Image.Image:
    """Scale `image` (keeping its aspect ratio) so that width * height lies within [min_pixels, max_pixels]."""
    w, h = image.size
    area = w * h
    scale = 1.0
    if max_pixels is not None and area > max_pixels:
        scale = math.sqrt(max_pixels / area)
    elif min_pixels is not None and area < min_pixels:
        scale = math.sqrt(min_pixels / area)
    if scale == 1.0:
        return image
    # floor when shrinking so the result never exceeds max_pixels, ceil when growing so it reaches min_pixels
    rnd = math.floor if scale < 1 else math.ceil
    size = (max(1, rnd(w * scale)), max(1, rnd(h * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def rotate_options(options: list[str], answer: str, rotation: int) -> tuple[list[str], str]:
    """Options rotated by `rotation` places (relabelled A, B, ...) and the correct letter after the rotation."""
    texts = [option_text(o) for o in options]
    k = len(texts)
    r = rotation % k
    rotated = texts[r:] + texts[:r]
    return format_options(rotated), LETTERS[(LETTERS.index(answer) - r) % k]


def load_images(record: Record, root: Path, min_pixels: int | None = None,
                max_pixels: int | None = None) -> list[Image.Image]:
    """The record's images as RGB, decoded and size-limited; a missing or broken file names itself."""
    images = []
    store = MIRStore(root)
    for rel in record.images:
        path = store.image_path(rel)
        if not path.exists():
            raise MirdataError(f"{path}: image of record {record.id} does not exist")
        try:
            with decode_image(path, f"{path}: image of record {record.id}") as im:
                images.append(fit_pixels(im.convert("RGB"), min_pixels, max_pixels))
        except OSError as e:
            raise MirdataError(f"{path}: image of record {record.id} does not decode ({e})") from None
    return images


def build_prompt(record: Record, images: list[Image.Image], rotation: int = 0, instruction: str = INSTRUCTION,
                 format: str = "mir") -> Prompt:
    """The record's prompt in `format` with its options rotated by `rotation` and each image at its <image>.

    "mir": the question, then the options and the instruction. "chain": the input of curriculum stage 5, built by
    `curriculum.stages.stage_example` (the same text the trainer fed the model; `instruction` is not used)."""
    if format not in PROMPT_FORMATS:
        raise MirdataError(f"prompt format must be one of {', '.join(PROMPT_FORMATS)}, not {format!r}")
    options, answer = rotate_options(record.options, record.answer, rotation)
    if format == "chain":
        text = stage_example(dataclasses.replace(record, options=options, answer=answer), CHAIN_STAGE).prompt
    else:
        text = record.question.rstrip() + "\n\nOptions:\n" + "\n".join(options) + "\n\n" + instruction
    return interleave(text, images, f"record {record.id}")


def interleave(text: str, images: list[Image.Image], source: str) -> Prompt:
    """`text` with the i-th image in place of its i-th <image> placeholder (empty text pieces are left out, as
    the curriculum's trainer leaves them out of its chat turns)."""
    pieces = text.split(IMAGE_TOKEN)
    if len(pieces) - 1 != len(images):
        raise MirdataError(f"{source}: the question has {len(pieces) - 1} {IMAGE_TOKEN} placeholders "
                           f"but {len(images)} images")
    parts: list[str | Image.Image] = []
    for k, piece in enumerate(pieces):
        if k > 0:
            parts.append(images[k - 1])
        if piece:
            parts.append(piece)
    return Prompt(parts)


def text_prompt(text: str) -> Prompt:
    return Prompt([text])


def hf_messages(prompt: Prompt) -> list[dict]:
    """Chat messages for a transformers processor's chat template: images are {"type": "image"} parts."""
    content = [{"type": "text", "text": p} if isinstance(p, str) else {"type": "image"} for p in prompt.parts]
    return [{"role": "user", "content": content}]


def data_url(image: Image.Image) -> str:
    """A PNG data URL (lossless: charts and small text survive)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def openai_messages(prompt: Prompt) -> list[dict]:
    """Chat messages in the OpenAI format (also vLLM's): images are base64 data URLs at their positions."""
    content = [{"type": "text", "text": p} if isinstance(p, str)
               else {"type": "image_url", "image_url": {"url": data_url(p)}} for p in prompt.parts]
    return [{"role": "user", "content": content}]
