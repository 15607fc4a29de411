"""Chat backends for the LLM annotator: an OpenAI-compatible HTTP endpoint, or a local transformers model.

Both answer a batch of conversations and yield each reply as soon as it is ready, so the caller can put it in
the cache at once and a killed run loses at most the replies in flight. The API key lives only in memory: it
is never part of a cache key, a repr, an error message or a file.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.secrets import redact, remember_secret

Messages = list[dict[str, str]]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class BackendError(MirdataError):
    """The backend could not answer (unreachable after retries, refused the request, or cannot be loaded)."""


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0: greedy, so the same prompt gives the same reply
    one_json_object: bool = False  # the reply is one JSON object: a local model stops when it closes

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature}
        if self.one_json_object:  # only when set, so the keys of replies cached before stay valid
            d["one_json_object"] = True
        return d


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


def json_object_closed(text: str) -> bool:
    """Whether `text` holds a '{' whose object is closed."""
    start = text.find("{")
    return start >= 0 and balanced_object(text, start) is not None


class ChatBackend(ABC):
    name: str  # "openai" or "transformers"
    model_id: str  # what the records' meta names as the model
    cache_identity: str  # what makes two backends give the same replies (part of every cache key)

    @abstractmethod
    def complete_batch(self, conversations: list[Messages], params: GenerationParams,
                       prefixes: list[str] | None = None) -> Iterator[tuple[int, str]]:
        """Yield (position in `conversations`, reply text) for each conversation, in any order. `prefixes`: how
        each reply starts; a local model continues from there (the reply includes it), a server is not told."""


# -- OpenAI-compatible endpoint (vLLM, llama.cpp's server, hosted APIs) ------------------------------------

class OpenAIChat(ChatBackend):
    """POST {base_url}/chat/completions, with retries and exponential backoff on timeouts, 429 and 5xx."""

    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, workers: int = 1,
                 timeout: float = 60.0, max_retries: int = 5, backoff: float = 1.0, max_backoff: float = 30.0):
        if not model:
            raise BackendError("the openai backend needs --model (the model id the server serves)")
        self.model_id = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.cache_identity = f"openai:{self.base_url}:{model}"
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        remember_secret(self._api_key)
        self.workers = max(1, workers)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model_id!r}, base_url={self.base_url!r})"

    def complete_batch(self, conversations: list[Messages], params: GenerationParams,
                       prefixes: list[str] | None = None) -> Iterator[tuple[int, str]]:
        if self.workers == 1:
            for i, messages in enumerate(conversations):
                yield i, self.complete(messages, params)
            return
        with ThreadPoolExecutor(self.workers) as pool:
            futures = {pool.submit(self.complete, m, params): i for i, m in enumerate(conversations)}
            try:
                for fut in as_completed(futures):
                    yield futures[fut], fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise

    def complete(self, messages: Messages, params: GenerationParams) -> str:
        body = json.dumps({"model": self.model_id, "messages": messages, "max_tokens": params.max_new_tokens,
                           "temperature": params.temperature}).encode()
        last, retry_after = "", 0.0
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(max(retry_after, min(self.max_backoff, self.backoff * 2 ** (attempt - 1))))
            retry_after = 0.0
            try:
                with urllib.request.urlopen(self._request(body), timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as e:
                if e.code == 429 or e.code >= 500:
                    last = f"HTTP {e.code}"
                    retry_after = _seconds(e.headers.get("Retry-After"), self.max_backoff)
                    continue
                detail = redact(e.read()[:300].decode("utf-8", "replace")).strip()
                raise BackendError(f"{self.url}: HTTP {e.code}: {detail or e.reason}") from None
            except (TimeoutError, ConnectionError, urllib.error.URLError, http.client.HTTPException) as e:
                reason = getattr(e, "reason", None) or e
                last = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
                continue
            try:
                return redact(_reply_text(json.loads(raw)))  # a server that echoes the key: never store it
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as e:
                last = f"malformed response ({type(e).__name__})"
        raise BackendError(f"{self.url}: no answer after {self.max_retries + 1} tries (last: {redact(last)})")

    def _request(self, body: bytes) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")


def _seconds(retry_after: str | None, cap: float) -> float:
    """A Retry-After header in seconds (the HTTP-date form is rare from these servers), capped."""
    try:
        return min(cap, max(0.0, float(retry_after))) if retry_after else 0.0
    except ValueError:
        return 0.0


def _reply_text(payload: dict[str, Any]) -> str:
    content = payload["choices"][0]["message"]["content"]
    if not isinstance(content, str):
        raise TypeError("message content is not text")
    return content


# -- local transformers model (a folder, or a .gguf file) --------------------------------------------------

class TransformersChat(ChatBackend):
    """A local chat model: a transformers folder or a GGUF file (loaded with `gguf_file=`), greedy batches."""

    name = "transformers"

    def __init__(self, model: str | os.PathLike[str], device: str = "cpu", batch_size: int = 8):
        path = Path(model).expanduser()
        if not path.exists():
            raise BackendError(f"{path}: no such model file or folder")
        self.path = path.resolve()
        self.model_id = path.name
        self.cache_identity = f"transformers:{self.path}"
        self.device = device
        self.batch_size = max(1, batch_size)
        self.model, self.tokenizer = _load_model(str(self.path), device)

    def __repr__(self) -> str:
        return f"TransformersChat(model={str(self.path)!r}, device={self.device!r})"

    def complete_batch(self, conversations: list[Messages], params: GenerationParams,
                       prefixes: list[str] | None = None) -> Iterator[tuple[int, str]]:
        import torch
        from transformers import StoppingCriteriaList

        tok = self.tokenizer
        prefixes = prefixes or [""] * len(conversations)
        # the reply's start goes after the generation prompt: a small model then writes the format it was asked
        prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) + prefix
                   for m, prefix in zip(conversations, prefixes)]
        # prompts of similar lengths share a batch, so little of it is padding
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            enc = tok([prompts[i] for i in rows], return_tensors="pt", padding=True,
                      add_special_tokens=False).to(self.device)
            sampling = {"do_sample": True, "temperature": params.temperature} if params.temperature > 0 else \
                {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            prompt_len = enc["input_ids"].shape[1]
            starts = [prefixes[i] for i in rows]
            stop = StoppingCriteriaList([_ObjectClosed(tok, prompt_len, starts)]) if params.one_json_object else None
            with torch.inference_mode():
                out = self.model.generate(**enc, max_new_tokens=params.max_new_tokens,
                                          pad_token_id=tok.pad_token_id, stopping_criteria=stop, **sampling)
            for i, start, text in zip(rows, starts, tok.batch_decode(out[:, prompt_len:], skip_special_tokens=True)):
                yield i, start + text


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


@lru_cache(maxsize=2)
def _load_model(path: str, device: str) -> tuple[Any, Any]:
    """Load once per process: a .gguf file is de-quantized by transformers from its folder with `gguf_file=`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    folder, extra = (p.parent, {"gguf_file": p.name}) if p.suffix == ".gguf" else (p, {})
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **extra)
        model = AutoModelForCausalLM.from_pretrained(folder, **extra).to(device).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise BackendError(f"{path}: cannot load as a transformers chat model ({e})") from e
    if not tokenizer.chat_template:
        raise BackendError(f"{path}: the tokenizer has no chat template, so it is not a chat model")
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def make_backend(backend: str | None, model: str | None, base_url: str | None = None, api_key: str | None = None,
                 workers: int = 1, device: str = "cpu", batch_size: int = 8, timeout: float = 60.0,
                 retries: int = 5) -> ChatBackend:
    """The backend the options name. Without --backend: a base URL given means openai, then a model that is a
    local path means transformers, then OPENAI_BASE_URL in the environment means openai."""
    if backend is None:
        if base_url:
            backend = "openai"
        elif model and Path(model).expanduser().exists():
            backend = "transformers"
        elif os.environ.get("OPENAI_BASE_URL"):
            backend = "openai"
        else:
            raise MirdataError("the llm annotator needs --backend openai (with --base-url or OPENAI_BASE_URL, "
                               "and --model) or --backend transformers (with --model PATH)")
    if backend == "openai":
        return OpenAIChat(model or "", base_url=base_url, api_key=api_key, workers=workers, timeout=timeout,
                          max_retries=retries)
    if backend == "transformers":
        if not model:
            raise MirdataError("the transformers backend needs --model: a model folder or a .gguf file")
        return TransformersChat(model, device=device, batch_size=batch_size)
    raise MirdataError(f"--backend must be openai or transformers, not {backend!r}")
