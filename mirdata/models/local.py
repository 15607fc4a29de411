"""A local transformers model: a checkpoint folder, or a .gguf file that transformers de-quantizes.

An image-text-to-text checkpoint (the config's model type maps to `AutoModelForImageTextToText`) loads with its
processor and reads the prompts' images; any other loads as a text-only causal LM with its tokenizer. Prompts are
rendered with the checkpoint's chat template, a prompt's `prefix` is appended after the generation prompt (the
model continues from it), and decoder-only batches are padded on the left so every prompt ends where generation
starts. `batch_size` splits a call into batches of prompts of similar lengths (so little of a batch is padding)
and each batch's replies are yielded as soon as it is done; without it, a call is one batch in its own order.
Sampling is seeded per batch from its prompts' seeds, so the same batch always samples the same.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.models.base import ModelError, Prompt, Runner, Sampling, prompt_seed
from mirdata.models.messages import hf_messages, text_messages

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MirdataError(f"--device {device}: no CUDA device is available here")
    if device != "cpu" and not device.startswith("cuda"):
        raise MirdataError(f"--device must be auto, cpu or cuda[:N], not {device!r}")
    return device


def json_object_closed(text: str) -> bool:
    """Whether `text` holds a '{' whose object is closed."""
    start = text.find("{")
    return start >= 0 and balanced_object(text, start) is not None


def balanced_object(text: str, start: int) -> str | None:
    """text[start:] up to the '}' that closes text[start], skipping brackets inside strings."""
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'" and (ch == '"' or not text[i - 1].isalnum()):  # an apostrophe in a word is not a quote
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return None


class TransformersRunner(Runner):
    backend = "transformers"

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", batch_size: int | None = None):
        path = Path(model).expanduser()
        if not path.exists():
            raise ModelError(f"{path}: no such model file or folder")
        gguf = path.is_file() and path.suffix == ".gguf"
        if not gguf and not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model folder (no config.json) or .gguf file; the transformers backend "
                             "loads local checkpoints only")
        if dtype not in DTYPES:
            raise MirdataError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self.model = str(Path(model))
        self.path = path.resolve()
        self.device = resolve_device(device)
        self.batch_size = max(1, batch_size) if batch_size else None
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.net, self.processor, self.tokenizer = _load(self.path, dtype)
        self.net.to(self.device).eval()

    @property
    def name(self) -> str:
        return Path(self.model).name  # records name the file or folder, never where it lies on this machine

    @property
    def identity(self) -> str:
        return f"transformers:{self.path}"

    def __repr__(self) -> str:
        return f"TransformersRunner(model={str(self.path)!r}, device={self.device!r})"

    def stream(self, prompts: list[Prompt], sampling: Sampling,
               seeds: list[int] | None = None) -> Iterator[tuple[int, list[str]]]:
        if seeds is None:
            seeds = [prompt_seed(0, p.text + p.prefix) for p in prompts]
        texts = [self._template(p) + p.prefix for p in prompts]
        order = list(range(len(prompts)))
        if self.batch_size:
            order.sort(key=lambda i: len(texts[i]))
        size = self.batch_size or len(prompts) or 1
        for start in range(0, len(order), size):
            rows = order[start:start + size]
            replies = self._generate([prompts[i] for i in rows], [texts[i] for i in rows], sampling,
                                     [seeds[i] for i in rows])
            yield from zip(rows, replies)

    def _template(self, prompt: Prompt) -> str:
        if self.processor is not None:
            return self.processor.apply_chat_template(hf_messages(self._as_text(prompt)), add_generation_prompt=True,
                                                      tokenize=False)
        return self.tokenizer.apply_chat_template(text_messages(prompt), add_generation_prompt=True, tokenize=False)

    def _as_text(self, prompt: Prompt) -> Prompt:
        """The prompt with the processor's image token written `[image]` inside its text (a question's `<image>`
        placeholders in an annotation prompt): the processor would read it there as an image it was not given."""
        token = str(getattr(self.processor, "image_token", "") or "")
        if not token:
            return prompt

        def text(t: str) -> str:
            return t.replace(token, "[image]")

        return Prompt([text(p) if isinstance(p, str) else p for p in prompt.parts],
                      [{**m, "content": text(m["content"])} for m in prompt.history], prompt.prefix)

    def _generate(self, prompts: list[Prompt], texts: list[str], sampling: Sampling,
                  seeds: list[int]) -> list[list[str]]:
        import torch
        from transformers import StoppingCriteriaList

        if self.processor is not None:
            images = [p.images for p in prompts]
            kwargs = {"images": images} if any(images) else {}
            inputs = self.processor(text=texts, padding=True, return_tensors="pt", **kwargs).to(self.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.net.dtype)
        else:
            inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        n = 1 if sampling.greedy else sampling.n
        options: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens, "num_return_sequences": n,
                                   "pad_token_id": self.tokenizer.pad_token_id}
        if sampling.greedy:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        prompt_len = inputs["input_ids"].shape[1]
        starts = [p.prefix for p in prompts for _ in range(n)]  # generate returns each prompt's n rows together
        if sampling.one_json_object:
            options["stopping_criteria"] = StoppingCriteriaList([_ObjectClosed(self.tokenizer, prompt_len, starts)])
        torch.manual_seed(zlib.crc32(",".join(map(str, seeds)).encode()))
        with torch.inference_mode():
            out = self.net.generate(**inputs, **options)
        decoded = self.tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
        replies = [start + text for start, text in zip(starts, decoded)]
        per_prompt = [replies[i * n:(i + 1) * n] for i in range(len(prompts))]
        return [r * sampling.n if n == 1 else r for r in per_prompt]

    def close(self) -> None:
        import torch

        del self.net
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


class _ObjectClosed:
    """A stopping criterion (transformers calls it after every token): ends each row of a batch once its reply
    has closed a JSON object. What follows is never read, and a small model left to go on chatters to the budget."""

    def __init__(self, tokenizer: Any, prompt_len: int, starts: list[str]):
        self.tokenizer, self.prompt_len, self.starts = tokenizer, prompt_len, starts

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        closed = [json_object_closed(start + text) for start, text in zip(self.starts, texts)]
        return torch.tensor(closed, dtype=torch.bool, device=input_ids.device)


def _load(path: Path, dtype: str) -> tuple[Any, Any, Any]:
    """(model, processor or None, tokenizer): an image-text-to-text checkpoint with its processor, anything else
    as a causal LM with its tokenizer. A .gguf file is de-quantized by transformers from its folder (`gguf_file=`)."""
    import torch
    from transformers import (MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING, AutoConfig, AutoModelForCausalLM,
                              AutoModelForImageTextToText, AutoProcessor, AutoTokenizer)

    folder, extra = (path.parent, {"gguf_file": path.name}) if path.suffix == ".gguf" else (path, {})
    options = {"dtype": getattr(torch, dtype), "local_files_only": True, **extra}
    processor = None
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True, **extra)
        if type(config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
            processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
            net = AutoModelForImageTextToText.from_pretrained(folder, **options)
            tokenizer = getattr(processor, "tokenizer", processor)
        else:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **extra)
            net = AutoModelForCausalLM.from_pretrained(folder, **options)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelError(f"{path}: cannot load as a transformers chat model ({e})") from e
    template_holder = processor if processor is not None else tokenizer
    if not getattr(template_holder, "chat_template", None):
        raise ModelError(f"{path}: the {'processor' if processor is not None else 'tokenizer'} has no chat "
                         "template, so it is not a chat model")
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return net, processor, tokenizer
