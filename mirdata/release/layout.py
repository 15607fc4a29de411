"""What a release folder holds, as its writer (`release.dataset`), its card (`release.card`) and its reader
(`release.source`) all name it: the splits, the configs and their data files, the folders and files beside the data,
how a row's `meta` is read back, and the summary of one release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.registry import CATEGORIES, category_of, task_names

DEFAULT_REPO_ID = "ShellyCoder/MIRBench"
SPLITS = ("easy", "hard")
DEFAULT_CONFIG = "all"
DATA = "data"
ORIGINAL = "original"
ORIGINAL_JSON = "all_data_rel.json"
STATS_FIGURE = "assets/statistics.png"
STATS_JSON = "assets/statistics.json"
AUDIT_JSON = "assets/audit.json"


@dataclass
class ReleaseSummary:
    out: Path
    counts: dict[tuple[str, str, str], int]  # (category, task, split) -> records
    images: int
    shards: list[str]
    configs: list[str]
    seconds: float = 0.0
    original: bool = True
    audit_failures: list[str] = field(default_factory=list)  # tasks released despite failing the audit

    @property
    def records(self) -> int:
        return sum(self.counts.values())


def config_data_files(counts: dict[tuple[str, str, str], int]) -> dict[str, dict[str, list[str]]]:
    """{config: {split: [glob per task]}} for `all`, each category and each task. One glob per task, in the task
    order, so that a config reads its records in the order of the source; a config lists only splits it has."""
    configs: dict[str, dict[str, list[str]]] = {}

    def add(name: str, keep: Any) -> None:
        splits = {}
        for split in SPLITS:
            globs = [f"{DATA}/{cat}/{task}/{split}-*.parquet" for task in task_names()
                     if keep(cat := category_of(task), task) and counts.get((cat, task, split))]
            if globs:
                splits[split] = globs
        if splits:
            configs[name] = splits

    add(DEFAULT_CONFIG, lambda c, t: True)
    for cat in CATEGORIES:
        add(cat, lambda c, t, cat=cat: c == cat)
    for task in task_names():
        add(task, lambda c, t, task=task: t == task)
    return configs


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as loaded from a release, with `meta` (JSON text in the parquet) decoded back into an object."""
    meta = row.get("meta")
    if not isinstance(meta, str):
        return row
    try:
        return {**row, "meta": json.loads(meta)}
    except json.JSONDecodeError as e:
        raise MirdataError(f"record {row.get('id')!r}: its meta is not valid JSON ({e.msg})") from None
