"""Inference backends behind one interface: prompts in, n sampled responses per prompt out.

Backends: `transformers` (a local checkpoint, batched `generate`), `vllm` (a local checkpoint on a GPU, a batch
and all its samples in one `LLM.chat` call; optional import) and `openai` (any OpenAI-compatible server, images
sent as base64 data URLs). Every prompt carries its own seed, so sampling does not depend on which other prompts
share its batch wherever the backend allows it (vLLM, OpenAI); transformers seeds each batch from its prompts.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.executors import Step
from mirdata.inference.prompt import Prompt

BACKENDS = ("transformers", "vllm", "openai")


@dataclass(frozen=True)
class Sampling:
    """How to sample: `n` responses per prompt; temperature 0 is greedy decoding (one response, repeated)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512

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
        return asdict(self)


def prompt_seed(seed: int, key: str) -> int:
    """The seed of one prompt: a function of the run's seed and the prompt's key (record id, rotation) only."""
    return zlib.crc32(f"{seed}:{key}".encode()) & 0x7FFFFFFF


class Runner:
    """A loaded model. `generate` returns, for each prompt, `sampling.n` responses."""

    backend: str = ""
    model: str = ""

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[list[str]]:
        raise NotImplementedError

    def close(self) -> None:
        """Free the model (GPU memory, connections)."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_runner(backend: str, model: str, *, device: str = "auto", dtype: str = "auto",
                base_url: str | None = None, api_key: str | None = None, max_images: int = 8,
                concurrency: int = 8, timeout: float = 600.0, retries: int = 4) -> Runner:
    """Load `model` with `backend`. `max_images` is the most images one prompt carries (vLLM reserves for it)."""
    if backend == "transformers":
        from mirdata.inference.transformers_runner import TransformersRunner

        return TransformersRunner(model, device=device, dtype=dtype)
    if backend == "vllm":
        from mirdata.inference.vllm_runner import VLLMRunner

        return VLLMRunner(model, dtype=dtype, max_images=max_images)
    if backend == "openai":
        from mirdata.inference.openai_runner import OpenAIRunner

        if not base_url:
            raise MirdataError("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        return OpenAIRunner(model, base_url=base_url, api_key=api_key, concurrency=concurrency, timeout=timeout,
                            retries=retries)
    raise MirdataError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")


@dataclass(frozen=True)
class RunnerSpec:
    """A model to load with `make_runner`, not loaded yet: what an executor sends to each of its workers, so
    every worker loads its own replica. `backend` and `model` name it as the loaded runner will."""

    backend: str
    model_arg: str
    options: dict[str, Any] = field(default_factory=dict, repr=False)  # make_runner's keywords (an API key too)

    @property
    def model(self) -> str:
        return str(Path(self.model_arg)) if self.backend == "transformers" else self.model_arg  # as it names itself

    def load(self) -> Runner:
        return make_runner(self.backend, self.model_arg, **self.options)


class ModelStep(Step):
    """A step that asks a model (and maybe a judge, anything with a `.runner`): a runner given as a RunnerSpec is
    loaded once per worker in `setup` and closed in `close`; a loaded one is used as it is."""

    def __init__(self, runner: Runner | RunnerSpec, judge: Any = None):
        self.runner, self.judge = runner, judge
        self._loaded: list[Runner] = []

    def _load(self, runner: Runner | RunnerSpec) -> Runner:
        if isinstance(runner, RunnerSpec):
            runner = runner.load()
            self._loaded.append(runner)
        return runner

    def setup(self) -> None:
        self.live_runner = self._load(self.runner)
        self.live_judge = self.judge
        if self.judge is not None and isinstance(self.judge.runner, RunnerSpec):
            self.live_judge = copy.copy(self.judge)
            self.live_judge.runner = self._load(self.judge.runner)

    def close(self) -> None:
        while self._loaded:
            self._loaded.pop().close()
