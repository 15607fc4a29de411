"""Loading a model by name: `make_runner` here, or `RunnerSpec` for every worker of an executor to load its own.

`ModelStep` is the step (annotate's drafting, difficulty's sampling, predict) that asks a model: a spec is loaded
once per worker and closed when the worker is done.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.executors import Step
from mirdata.models.base import Runner

BACKENDS = ("transformers", "vllm", "openai")


def make_runner(backend: str, model: str, *, device: str = "auto", dtype: str = "auto", batch_size: int | None = None,
                base_url: str | None = None, api_key: str | None = None, max_images: int = 8,
                concurrency: int = 8, timeout: float = 600.0, retries: int = 4) -> Runner:
    """Load `model` with `backend`: a local folder or .gguf file (transformers, vllm), or a served model id
    (openai). `batch_size`: prompts per forward pass of a local model (default: all of a call's prompts at once);
    `concurrency`: requests in flight to a server; `max_images`: the most images one prompt carries (vLLM reserves
    room for them)."""
    if backend == "transformers":
        from mirdata.models.local import TransformersRunner

        return TransformersRunner(model, device=device, dtype=dtype, batch_size=batch_size)
    if backend == "vllm":
        from mirdata.models.vllm_engine import VLLMRunner

        return VLLMRunner(model, dtype=dtype, max_images=max_images)
    if backend == "openai":
        from mirdata.models.server import OpenAIRunner

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
