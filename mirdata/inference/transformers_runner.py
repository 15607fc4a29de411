"""The transformers backend: AutoModelForImageTextToText + AutoProcessor from a local folder, batched generate."""

from __future__ import annotations

import zlib
from pathlib import Path

from mirdata.errors import MirdataError
from mirdata.inference.prompt import Prompt, hf_messages
from mirdata.inference.runners import Runner, Sampling

_DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MirdataError(f"--device {device}: no CUDA device is available here")
    if device != "cpu" and not device.startswith("cuda"):
        raise MirdataError(f"--device must be auto, cpu or cuda[:N], not {device!r}")
    return device


class TransformersRunner(Runner):
    backend = "transformers"

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto"):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = Path(model)
        if not (path / "config.json").is_file():
            raise MirdataError(f"{path}: not a model folder (no config.json); the transformers backend loads "
                               "local checkpoints only")
        if dtype not in _DTYPES:
            raise MirdataError(f"--dtype must be one of {', '.join(_DTYPES)}, not {dtype!r}")
        self.model = str(path)
        self.device = resolve_device(device)
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        try:
            self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            self.net = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype),
                                                                   local_files_only=True)
        except (OSError, ValueError) as e:
            raise MirdataError(f"{path}: cannot load as an image-text-to-text model ({e})") from e
        self.net.to(self.device).eval()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        # decoder-only batches are padded on the left so every prompt ends where generation starts
        self.tokenizer.padding_side = "left"
        if getattr(self.processor, "chat_template", None) is None:
            raise MirdataError(f"{path}: the processor has no chat template")

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[list[str]]:
        import torch

        if not prompts:
            return []
        texts = [self.processor.apply_chat_template(hf_messages(p), add_generation_prompt=True, tokenize=False)
                 for p in prompts]
        images = [p.images for p in prompts]
        kwargs = {"images": images} if any(images) else {}
        inputs = self.processor(text=texts, padding=True, return_tensors="pt", **kwargs).to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.net.dtype)
        n = 1 if sampling.greedy else sampling.n
        options = {"max_new_tokens": sampling.max_new_tokens, "do_sample": not sampling.greedy,
                   "num_return_sequences": n, "pad_token_id": self.tokenizer.pad_token_id}
        if not sampling.greedy:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        # one seed for the batch, made from its prompts' seeds: the same batch always samples the same
        torch.manual_seed(zlib.crc32(",".join(map(str, seeds)).encode()))
        with torch.inference_mode():
            out = self.net.generate(**inputs, **options)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        decoded = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        # generate returns the n sequences of each prompt next to each other
        per_prompt = [decoded[i * n:(i + 1) * n] for i in range(len(prompts))]
        return [r * sampling.n if n == 1 else r for r in per_prompt]

    def close(self) -> None:
        import torch

        del self.net
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
