"""The OpenAI-compatible backend: POST {base_url}/chat/completions, images as base64 data URLs.

Works with vLLM's and SGLang's servers, llama.cpp's server and hosted APIs. The prompts of a batch are sent
concurrently; each asks for all of its samples at once (`n`), and a server that returns fewer choices is asked
again for the rest. Rate limits, server errors and dropped connections are retried with backoff.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mirdata.errors import MirdataError
from mirdata.inference.prompt import Prompt, openai_messages
from mirdata.inference.runners import Runner, Sampling
from mirdata.secrets import redact, remember_secret

RETRIES = 4
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIRunner(Runner):
    backend = "openai"

    def __init__(self, model: str, base_url: str, api_key: str | None = None, concurrency: int = 8,
                 timeout: float = 600.0, retry_wait: float = 1.0, retries: int = RETRIES):
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        remember_secret(self.api_key)
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retry_wait = retry_wait
        self.retries = retries

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[list[str]]:
        if not prompts:
            return []
        with ThreadPoolExecutor(min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda ps: self._samples(ps[0], sampling, ps[1]), zip(prompts, seeds)))

    def _samples(self, prompt: Prompt, sampling: Sampling, seed: int) -> list[str]:
        messages = openai_messages(prompt)
        want = 1 if sampling.greedy else sampling.n
        out: list[str] = []
        while len(out) < want:
            body = {"model": self.model, "messages": messages, "n": want - len(out),
                    "temperature": sampling.temperature, "top_p": sampling.top_p,
                    "max_tokens": sampling.max_new_tokens, "seed": seed + len(out)}
            choices = self._post(body).get("choices") or []
            if not choices:
                raise MirdataError(f"{self.url}: the server answered with no choices")
            out.extend(_content(c) for c in choices[: want - len(out)])
        return out * (sampling.n // want)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                detail = redact(e.read().decode("utf-8", "replace")[:300])
                if e.code not in RETRY_STATUS or attempt == self.retries:
                    raise MirdataError(f"{self.url}: HTTP {e.code} {e.reason}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.retries:
                    raise MirdataError(redact(f"{self.url}: cannot reach the server ({e})")) from None
            except json.JSONDecodeError as e:
                raise MirdataError(f"{self.url}: the answer is not JSON ({e.msg})") from None
            time.sleep(self.retry_wait * 2**attempt)
            attempt += 1


def _content(choice: dict[str, Any]) -> str:
    content = (choice.get("message") or {}).get("content")
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return redact(content or "")  # a server that echoes the key: never cache or print it
