"""The one model stack: every step that asks a model (annotate, difficulty, predict, the judge) goes through it.

`make_runner` (`loader`) loads a local transformers checkpoint or .gguf file (`local`), a vLLM engine
(`vllm_engine`, GPU machines) or a client of an OpenAI-compatible server (`server`); each is a `Runner` with the
same `generate` and `stream`, the same `Sampling`, the same seeds, and the same errors (`ModelError`, keys
redacted). `RunnerSpec` names a model for every worker of an executor to load its own (`ModelStep`).
"""

from mirdata.models.base import ModelError, Prompt, Runner, Sampling, prompt_seed
from mirdata.models.loader import BACKENDS, ModelStep, RunnerSpec, make_runner
from mirdata.models.messages import hf_messages, openai_messages, text_messages

__all__ = ["BACKENDS", "ModelError", "ModelStep", "Prompt", "Runner", "RunnerSpec", "Sampling", "hf_messages",
           "make_runner", "openai_messages", "prompt_seed", "text_messages"]
