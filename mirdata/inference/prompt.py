"""Prompts for expert models: a record's question with each image at its <image> position, options, instruction.

A `Prompt` (`mirdata.models`) is a list of parts, text and images in reading order, as chat content; every
backend turns it into its own message format. Options can be rotated (CircularEval): rotation r moves option k to
position k - r, so the correct letter moves with it.

Two prompt formats: "mir" (the question, the options and an instruction to end with "Your option: X") for any
chat model, and "chain" for a model trained with `mirdata curriculum-train`: exactly the input of the curriculum's
stage 5, in the format of `mirdata.schema.chain` (question and options only; the model writes the whole tagged
chain, ending in <conclusion>).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from PIL import Image

from mirdata.errors import MirdataError
from mirdata.models import Prompt
from mirdata.schema.chain import CHAIN, chain_prompt
from mirdata.schema.record import IMAGE_TOKEN, LETTERS, Record, format_options, option_text
from mirdata.store import MIRStore, decode_image

INSTRUCTION = ("Answer with the letter of the correct option. Think step by step if you need to, then finish your "
               "response with a last line in the form \"Your option: X\", where X is the letter.")
PROMPT_FORMATS = ("mir", "chain")


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

    "mir": the question, then the options and the instruction. "chain": the question and options with a request
    for the whole chain (`schema.chain.chain_prompt`), the text the curriculum's trainer fed the model at stage 5
    (`instruction` is not used)."""
    if format not in PROMPT_FORMATS:
        raise MirdataError(f"prompt format must be one of {', '.join(PROMPT_FORMATS)}, not {format!r}")
    options, answer = rotate_options(record.options, record.answer, rotation)
    if format == "chain":
        text = chain_prompt(dataclasses.replace(record, options=options, answer=answer), given=(), asked=CHAIN)
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
