"""Tiny models for tests and smoke runs on machines without weights, and a scripted runner.

`make_tiny_vlm` writes a randomly initialised Idefics3 model (the SmolVLM architecture) and its processor to a
folder that `AutoModelForImageTextToText.from_pretrained` and `AutoProcessor.from_pretrained` load like any
checkpoint. Everything is built locally: a byte-level BPE tokenizer with no merges (every UTF-8 byte is a token,
so any text encodes), the Idefics3 special tokens, a SmolVLM-style chat template, and a model small enough that
a forward pass on CPU takes milliseconds. The same seed writes the same weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mirdata.models import Prompt, Runner, Sampling

# The chat format of SmolVLM: images sit where their {"type": "image"} parts are, turns end with <end_of_utterance>.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}"
    "{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}: {{ message['content'] }}"
    "{% else %}{% if message['content'][0]['type'] == 'image' %}:{% else %}: {% endif %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% elif part['type'] == 'image' %}<image>{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>",
                  "<global-img>", *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))]


def _byte_tokenizer():
    """A byte-level BPE tokenizer with the 256 byte tokens and no merges, plus the Idefics3 special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<end_of_utterance>",
                                        pad_token="<|endoftext|>", unk_token="<|endoftext|>",
                                        model_max_length=8192, padding_side="left")
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    return tokenizer


def make_tiny_vlm(path: str | os.PathLike[str], seed: int = 0, image_size: int = 32, num_layers: int = 2,
                  hidden_size: int = 64) -> Path:
    """Write a tiny random Idefics3 model + processor to `path` and return it.

    Each image becomes `(image_size / 8)**2 / 4` tokens (4 for the default 32 px); images are resized so their
    longest edge is `image_size` and are not split into tiles, so one image costs one vision-encoder pass.
    """
    import torch
    from transformers import (
        AutoModelForImageTextToText,
        Idefics3Config,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _byte_tokenizer()
    patch_size, scale_factor = 8, 2
    image_seq_len = (image_size // patch_size) ** 2 // scale_factor**2
    config = Idefics3Config(
        vision_config={"hidden_size": hidden_size, "intermediate_size": 2 * hidden_size,
                       "num_hidden_layers": num_layers, "num_attention_heads": 2, "image_size": image_size,
                       "patch_size": patch_size},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": hidden_size,
                     "intermediate_size": 2 * hidden_size, "num_hidden_layers": num_layers,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 8192,
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id, "tie_word_embeddings": False},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=scale_factor,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out)

    image_processor = Idefics3ImageProcessorPil(
        do_resize=True, size={"longest_edge": image_size}, max_image_size={"longest_edge": image_size},
        do_image_splitting=False)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=image_seq_len,
                                  chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)
    return out


class ScriptedRunner(Runner):
    """A runner that answers from a function instead of a model, for tests and dry runs of the pipelines.

    `respond(prompt, sample_index, seed)` returns one response text. Every `generate` call is logged in `calls`
    (the number of prompts in it), so tests can see what was asked.
    """

    backend = "scripted"

    def __init__(self, respond: Callable[[Prompt, int, int], str], model: str = "scripted"):
        self.respond = respond
        self.model = model
        self.calls: list[int] = []

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int] | None = None) -> list[list[str]]:
        self.calls.append(len(prompts))
        seeds = seeds if seeds is not None else [0] * len(prompts)
        return [[self.respond(p, k, seed) for k in range(sampling.n)] for p, seed in zip(prompts, seeds)]
