"""The one model stack: every step that asks a model (annotate, difficulty, predict, the judge) goes through it.

`make_runner` loads a local transformers checkpoint or .gguf file (`local`), a vLLM engine (`vllm_engine`, GPU
machines) or a client of an OpenAI-compatible server (`server`); each is a `Runner` with the same `generate` and
`stream`, the same `Sampling`, the same seeds, and the same errors (`ModelError`, keys redacted).
"""

from mirdata.models.base import (BACKENDS, ModelError, ModelStep, Prompt, Runner, RunnerSpec, Sampling, make_runner,
                                 prompt_seed)
from mirdata.models.messages import hf_messages, openai_messages, text_messages

__all__ = ["BACKENDS", "ModelError", "ModelStep", "Prompt", "Runner", "RunnerSpec", "Sampling", "hf_messages",
           "make_runner", "openai_messages", "prompt_seed", "text_messages"]
