"""A `Prompt` as each backend's chat messages: the OpenAI format (servers, vLLM) and a transformers chat template's.

Earlier turns are text. The user turn is plain text when it is all text (what every chat template and server
reads), and a list of typed parts when it holds images (or their places): the OpenAI format sends each image as a
base64 PNG data URL at its position, a processor's template puts an image token where each {"type": "image"} is.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from mirdata.models.base import ModelError, Prompt


def data_url(image: Image.Image) -> str:
    """A PNG data URL (lossless: charts and small text survive)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _all_text(prompt: Prompt) -> bool:
    return all(isinstance(p, str) for p in prompt.parts)


def openai_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """Chat messages in the OpenAI format (also vLLM's): images are base64 data URLs at their positions."""
    if _all_text(prompt):
        return text_messages(prompt)
    content = [{"type": "text", "text": p} if isinstance(p, str)
               else {"type": "image_url", "image_url": {"url": data_url(p)}} for p in prompt.parts]
    return [*prompt.history, {"role": "user", "content": content}]


def hf_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """Chat messages for a transformers processor's chat template: images are {"type": "image"} parts."""
    content = [{"type": "text", "text": p} if isinstance(p, str) else {"type": "image"} for p in prompt.parts]
    return [*prompt.history, {"role": "user", "content": content}]


def text_messages(prompt: Prompt) -> list[dict[str, str]]:
    """Chat messages for a text-only model's chat template (every turn's content is a string)."""
    if not _all_text(prompt):
        raise ModelError("this model reads text only, and the prompt holds images")
    return [*prompt.history, {"role": "user", "content": "".join(prompt.parts)}]
