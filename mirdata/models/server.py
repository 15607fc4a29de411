"""An OpenAI-compatible server: POST {base_url}/chat/completions, images as base64 data URLs.

Works with vLLM's and SGLang's servers, llama.cpp's server and hosted APIs. The prompts of a call are sent
`concurrency` at a time and each prompt's replies are yielded as soon as they arrive; a prompt asks for all of its
samples at once (`n`), and a server that returns fewer choices is asked again for the rest. Timeouts, dropped
connections, malformed answers and 408/409/429/5xx are retried with exponential backoff (a Retry-After header is
honoured); any other HTTP error is not. The API key lives only in memory: every error message and every reply is
redacted (`mirdata.secrets`), and the key is never part of a repr or of `identity`.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from mirdata.models.base import ModelError, Prompt, Runner, Sampling
from mirdata.models.messages import openai_messages
from mirdata.secrets import redact, remember_secret

RETRY_STATUS = {408, 409, 429}  # and every 5xx


class OpenAIRunner(Runner):
    backend = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, concurrency: int = 8,
                 timeout: float = 600.0, retries: int = 4, backoff: float = 1.0, max_backoff: float = 30.0):
        if not model:
            raise ModelError("the openai backend needs --model (the model id the server serves)")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ModelError("--backend openai needs --base-url (e.g. http://localhost:8000/v1) or OPENAI_BASE_URL")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        remember_secret(self._api_key)
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    @property
    def identity(self) -> str:
        return f"openai:{self.base_url}:{self.model}"

    def __repr__(self) -> str:
        return f"OpenAIRunner(model={self.model!r}, base_url={self.base_url!r})"

    def stream(self, prompts: list[Prompt], sampling: Sampling,
               seeds: list[int] | None = None) -> Iterator[tuple[int, list[str]]]:
        seeds = seeds if seeds is not None else [None] * len(prompts)
        if self.concurrency == 1 or len(prompts) <= 1:
            for i, (prompt, seed) in enumerate(zip(prompts, seeds)):
                yield i, self._samples(prompt, sampling, seed)
            return
        with ThreadPoolExecutor(min(self.concurrency, len(prompts))) as pool:
            futures = {pool.submit(self._samples, p, sampling, s): i for i, (p, s) in enumerate(zip(prompts, seeds))}
            try:
                for fut in as_completed(futures):
                    yield futures[fut], fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise

    def _samples(self, prompt: Prompt, sampling: Sampling, seed: int | None) -> list[str]:
        messages = openai_messages(prompt)
        want = 1 if sampling.greedy else sampling.n
        out: list[str] = []
        while len(out) < want:
            body: dict[str, Any] = {"model": self.model, "messages": messages, "n": want - len(out),
                                    "temperature": sampling.temperature, "top_p": sampling.top_p,
                                    "max_tokens": sampling.max_new_tokens}
            if seed is not None:
                body["seed"] = seed + len(out)  # each extra call samples anew
            out.extend(self._post(body)[: want - len(out)])
        return out * (sampling.n // want)

    def _post(self, body: dict[str, Any]) -> list[str]:
        """The texts of the answer's choices, after retrying what can pass on a second try."""
        data = json.dumps(body).encode()
        last, retry_after = "", 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(max(retry_after, min(self.max_backoff, self.backoff * 2 ** (attempt - 1))))
            retry_after = 0.0
            try:
                with urllib.request.urlopen(self._request(data), timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as e:
                if e.code in RETRY_STATUS or e.code >= 500:
                    last = f"HTTP {e.code}"
                    retry_after = _seconds(e.headers.get("Retry-After"), self.max_backoff)
                    continue
                detail = redact(e.read()[:300].decode("utf-8", "replace")).strip()
                raise ModelError(f"{self.url}: HTTP {e.code}: {detail or e.reason}") from None
            except (TimeoutError, ConnectionError, urllib.error.URLError, http.client.HTTPException) as e:
                reason = getattr(e, "reason", None) or e
                last = f"cannot reach the server ({type(reason).__name__}: {reason})" if str(reason) else \
                    f"cannot reach the server ({type(reason).__name__})"
                continue
            try:
                return _choices(json.loads(raw))
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as e:
                last = f"malformed answer ({type(e).__name__}: {e})"
        raise ModelError(f"{self.url}: no answer after {self.retries + 1} tries (last: {redact(last)})")

    def _request(self, data: bytes) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return urllib.request.Request(self.url, data=data, headers=headers, method="POST")


def _seconds(retry_after: str | None, cap: float) -> float:
    """A Retry-After header in seconds (the HTTP-date form is rare from these servers), capped."""
    try:
        return min(cap, max(0.0, float(retry_after))) if retry_after else 0.0
    except ValueError:
        return 0.0


def _choices(payload: dict[str, Any]) -> list[str]:
    choices = payload["choices"]
    if not choices:
        raise IndexError("no choices")
    return [redact(_content(c["message"]["content"])) for c in choices]  # a server that echoes the key: never keep it


def _content(content: Any) -> str:
    if isinstance(content, list):  # some servers return content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if content is None:  # an empty reply is still an answer
        return ""
    if not isinstance(content, str):
        raise TypeError("message content is not text")
    return content
