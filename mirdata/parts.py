"""One completion scheme for every step: an item is done when its part file exists.

A part is one small JSON file per item, `<folder>/<key>.json`, written atomically as soon as the item is
finished, so a worker killed at any moment leaves either no part or a whole one. Before a run, the driver drops
the items whose part is there, so a resumed run on any executor asks only for what is missing, and a part
written twice (a retried worker) holds the same bytes. A build's parts are the store's DIR/.parts/<id>.json
(`MIRStore.put`, merged by `commit`); difficulty keeps its parts under DIR/.cache/difficulty/<settings>/.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from mirdata.store import atomic_write, parse_json_line


class PartFiles:
    """The parts of one step's run: one JSON object per item key."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / (urllib.parse.quote(key, safe="") + ".json")

    def keys(self) -> set[str]:
        if not self.folder.is_dir():
            return set()
        return {urllib.parse.unquote(p.stem) for p in self.folder.glob("*.json")}

    def read(self, key: str) -> dict[str, Any] | None:
        """The part of `key`, or None when there is none (an unreadable one counts as none: redoing is safe)."""
        try:
            obj, reason = parse_json_line(self.path(key).read_bytes())
        except FileNotFoundError:
            return None
        return obj if reason is None and isinstance(obj, dict) else None

    def write(self, key: str, obj: dict[str, Any]) -> None:
        atomic_write(self.path(key), json.dumps(obj, ensure_ascii=False).encode("utf-8"))
