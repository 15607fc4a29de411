"""Replies of chat models on disk, so an interrupted annotation run resumes without asking anything twice.

One small JSON file per reply under DIR/.cache/annotate/<2 hex>/<key>.json, written atomically. The key hashes
the model's identity (backend, server or model path, model id), the whole conversation and the generation
parameters — never an API key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mirdata.models import Sampling
from mirdata.secrets import redact
from mirdata.store import atomic_write, parse_json_line

CACHE_DIR = Path(".cache") / "annotate"

Messages = list[dict[str, str]]  # a text conversation, oldest turn first


def conversation_hash(messages: Messages) -> str:
    """A short stable hash of a conversation (the prompt hash recorded in meta)."""
    return hashlib.sha256(_canonical(messages).encode()).hexdigest()[:16]


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class ResponseCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @classmethod
    def for_dataset(cls, root: Path) -> ResponseCache:
        return cls(Path(root) / CACHE_DIR)

    @staticmethod
    def key(identity: str, messages: Messages, sampling: Sampling) -> str:
        params = {"max_new_tokens": sampling.max_new_tokens, "temperature": sampling.temperature}
        if sampling.one_json_object:  # only when set, so the keys of replies cached before stay valid
            params["one_json_object"] = True
        payload = {"backend": identity, "messages": messages, "params": params}
        return hashlib.sha256(_canonical(payload).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            entry, _ = parse_json_line(path.read_bytes())
            reply = entry["reply"]
        except (FileNotFoundError, KeyError, TypeError):
            return None  # absent, or not ours: ask again and overwrite it
        return reply if isinstance(reply, str) else None

    def put(self, key: str, reply: str) -> None:
        atomic_write(self._path(key), _canonical({"reply": redact(reply)}).encode())
