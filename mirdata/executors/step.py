"""The two contracts every executor and every step keep (see `mirdata.executors`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class Step(ABC):
    """One command's work over items. A step object is pickled to every worker, so it holds settings, not
    loaded models: `setup` loads what the worker needs, once, and `close` frees it."""

    name: str = "step"

    def setup(self) -> None:
        """Make what every item needs (tasks, renderers, models), once per worker."""

    @abstractmethod
    def run(self, items: Sequence[Any], rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        """Do `items`, shard `rank` of `world_size`, and yield one result per item."""

    def close(self) -> None:
        """Free what `setup` made."""


class Executor(ABC):
    name: str
    in_process: bool = False  # runs the step in the calling process (then the caller's objects are shared)

    @abstractmethod
    def run(self, step: Step, items: Sequence[Any], on_result: Callable[[Any], None]) -> None:
        """Run `step` over `items`, calling `on_result` in this process with each item's result, in item order
        where the executor allows it (local pools report as items finish; Ray in item order)."""
