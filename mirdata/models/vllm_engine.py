"""The vLLM backend (GPU machines): one `LLM.chat` call per batch, carrying all of its samples.

vLLM is an optional dependency (`pip install vllm`). Each prompt gets its own `SamplingParams` with its own
seed, so a prompt's samples do not depend on the rest of its batch.
"""

from __future__ import annotations

from pathlib import Path

from mirdata.errors import MirdataError
from mirdata.models.base import Prompt, Runner, Sampling, prompt_seed
from mirdata.models.messages import openai_messages


class VLLMRunner(Runner):
    backend = "vllm"

    def __init__(self, model: str, dtype: str = "auto", max_images: int = 8):
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise MirdataError("--backend vllm needs the vllm package (pip install vllm, on a machine with a "
                               "CUDA GPU); use --backend transformers otherwise") from None
        if not (Path(model) / "config.json").is_file():
            raise MirdataError(f"{model}: not a model folder (no config.json); the vllm backend loads local "
                               "checkpoints only")
        self.model = model
        self._params = SamplingParams
        self.llm = LLM(model=model, dtype=dtype, limit_mm_per_prompt={"image": max_images})

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int] | None = None) -> list[list[str]]:
        if not prompts:
            return []
        seeds = seeds if seeds is not None else [prompt_seed(0, p.text) for p in prompts]
        n = 1 if sampling.greedy else sampling.n
        params = [self._params(n=n, temperature=sampling.temperature, top_p=sampling.top_p,
                               max_tokens=sampling.max_new_tokens, seed=seed) for seed in seeds]
        outputs = self.llm.chat([openai_messages(p) for p in prompts], sampling_params=params, use_tqdm=False)
        return [[c.text for c in out.outputs] * (sampling.n // n) for out in outputs]

    def close(self) -> None:
        del self.llm
