"""The 3 categories and 12 tasks of MIR, with snake_case ids used everywhere."""

from __future__ import annotations

import re

CATEGORIES: dict[str, tuple[str, ...]] = {
    "sequential": ("speed_comparison", "motion_detection", "cooking_process", "image_puzzle"),
    "spatial": ("location_relationship", "depth_relationship", "view_3d", "forced_perspective"),
    "analytical": ("chart_analysis", "yes_but_satire", "weight_comparison", "scale_blur"),
}

TASK_CATEGORY: dict[str, str] = {task: cat for cat, tasks in CATEGORIES.items() for task in tasks}

# Every task in a fixed order: builds and releases list records in this order.
ALL_TASKS: tuple[str, ...] = tuple(TASK_CATEGORY)

_TASK_RANK = {task: k for k, task in enumerate(ALL_TASKS)}


def task_rank(task: str) -> int:
    """A task's place in the fixed task order; a name outside it sorts after every task."""
    return _TASK_RANK.get(task, len(ALL_TASKS))


STAGES: tuple[str, ...] = ("summary", "caption", "text2region", "region2region", "conclusion")


def normalize_name(name: str) -> str:
    """'Forced Perspective', 'forced-perspective' and 'forced_perspective' all become 'forced_perspective'."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


# Spellings of the original release that do not normalise to our ids.
_TASK_ALIASES = {
    "view3d": "view_3d",
    "3d_view": "view_3d",
    "yes_but": "yes_but_satire",
    "satire": "yes_but_satire",
    "chart": "chart_analysis",
    "puzzle": "image_puzzle",
    "cooking": "cooking_process",
}


def task_id(name: str) -> str | None:
    """The task id for a task name in either form, or None if it names no task."""
    key = normalize_name(name)
    key = _TASK_ALIASES.get(key, key)
    return key if key in TASK_CATEGORY else None


def category_id(name: str) -> str | None:
    key = normalize_name(name)
    return key if key in CATEGORIES else None
