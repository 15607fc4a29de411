"""The one interface to a model: prompts in, `n` sampled replies per prompt out, for every backend and every step.

A `Prompt` is one request: the text turns before it (a system prompt, earlier rounds), then a user turn whose parts
are text and images in reading order, and optionally how the reply starts. A `Runner` is a loaded model; `stream`
yields each prompt's replies as soon as they are ready (a caller can cache them at once), `generate` returns them
all in order. Every prompt can carry its own seed, so sampling does not depend on which other prompts share its
batch wherever the backend allows it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from mirdata.errors import MirdataError
from mirdata.schema.record import IMAGE_TOKEN


class ModelError(MirdataError):
    """A model could not answer (unreachable after its retries, refused the request) or cannot be loaded."""


@dataclass
class Prompt:
    """One request: the text turns of `history` ({"role", "content"}, oldest first), then a user turn of `parts`
    (str and PIL images, in reading order). `prefix`: how the reply starts; a local model continues from it (its
    reply includes it), a server is not told."""

    parts: list[str | Image.Image] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)
    prefix: str = ""

    @classmethod
    def from_messages(cls, messages: list[dict[str, str]], prefix: str = "") -> Prompt:
        """A text conversation that ends with a user turn."""
        if not messages or messages[-1].get("role") != "user":
            raise ModelError("a conversation for a model must end with a user turn")
        return cls([messages[-1]["content"]], [dict(m) for m in messages[:-1]], prefix)

    @property
    def images(self) -> list[Image.Image]:
        return [p for p in self.parts if isinstance(p, Image.Image)]

    @property
    def text(self) -> str:
        """The user turn's text with an <image> marker where each image is (for logs, seeds and the judge)."""
        return "".join(p if isinstance(p, str) else IMAGE_TOKEN for p in self.parts)


@dataclass(frozen=True)
class Sampling:
    """How to sample: `n` replies per prompt; temperature 0 is greedy decoding (one reply, repeated).
    `one_json_object`: each reply is one JSON object, so a local model stops as soon as it has closed it."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    one_json_object: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise MirdataError(f"samples must be at least 1, not {self.n}")
        if self.temperature < 0:
            raise MirdataError(f"temperature must be >= 0, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise MirdataError(f"top-p must be in (0, 1], not {self.top_p}")
        if self.max_new_tokens < 1:
            raise MirdataError(f"max new tokens must be at least 1, not {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.one_json_object:  # only when set, so settings recorded before it existed keep their keys
            del d["one_json_object"]
        return d


def prompt_seed(seed: int, key: str) -> int:
    """The seed of one prompt: a function of the run's seed and the prompt's key (record id, rotation) only."""
    return zlib.crc32(f"{seed}:{key}".encode()) & 0x7FFFFFFF


class Runner:
    """A loaded model. Subclasses implement `stream` or `generate` (each is written in terms of the other).

    `model` is how the model was named when it was loaded (a path, or the id a server serves); `name` is how
    records and summaries name it; `identity` is what makes two runners give the same replies (a cache key part,
    never a secret)."""

    backend: str = ""
    model: str = ""

    @property
    def name(self) -> str:
        return self.model

    @property
    def identity(self) -> str:
        return f"{self.backend}:{self.model}"

    def stream(self, prompts: list[Prompt], sampling: Sampling,
               seeds: list[int] | None = None) -> Iterator[tuple[int, list[str]]]:
        """(position in `prompts`, its `sampling.n` replies) for every prompt, in any order."""
        yield from enumerate(self.generate(prompts, sampling, seeds))

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int] | None = None) -> list[list[str]]:
        """For each prompt, `sampling.n` replies, in the order of `prompts`."""
        out: list[list[str]] = [[] for _ in prompts]
        for i, replies in self.stream(prompts, sampling, seeds):
            out[i] = replies
        return out

    def close(self) -> None:
        """Free the model (GPU memory, connections)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
