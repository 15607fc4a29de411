"""The five reasoning stages of every record, in chain order. The task list is the registry's (mirdata.registry)."""

from __future__ import annotations

STAGES: tuple[str, ...] = ("summary", "caption", "text2region", "region2region", "conclusion")
