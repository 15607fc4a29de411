"""Keys and tokens never reach the terminal or a file: every error message and every cached model reply is
passed through `redact` first.

A secret is redacted wherever it appears when the process knows it (an API key given to a backend, the
OPENAI_API_KEY / HF_TOKEN environment variables); anything shaped like one (a `Bearer ...` credential, an
OpenAI `sk-...` key, a Hugging Face `hf_...` token) is redacted even when it does not.
"""

from __future__ import annotations

import os
import re

REDACTED = "***"
SECRET_ENV = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_SHAPES = re.compile(r"(?i)(?<=bearer )[^\s\"',;}]+|\bsk-[A-Za-z0-9_-]{8,}|\bhf_[A-Za-z0-9]{8,}")
_known: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """Redact `secret` from everything this process reports from now on."""
    if secret and len(secret) >= 4:  # shorter strings would blank ordinary words
        _known.add(secret)


def redact(text: str) -> str:
    secrets = _known | {v for v in (os.environ.get(name) for name in SECRET_ENV) if v and len(v) >= 4}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _SHAPES.sub(REDACTED, text)
