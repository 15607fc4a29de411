"""Steps apart from executors: what is done to each item, and where it runs.

A `Step` is one command's work over items (build: (task, index) pairs; difficulty and predict: batches of
prompts; annotate: chunks of records). An executor hands each worker the step once (`setup`), then shards of
items (`run(items, rank, world_size)`, as datatrove's pipeline steps), and gives every result back to the
caller in the driver, in the order of the items. The caller decides what is still to do (its completion scheme,
`mirdata.parts`), so a resumed run on either executor skips what is done, and the results do not depend on
which executor ran them.

Executors: `local` (in this process, or a pool of spawned processes; the default) and `ray` (Ray Data on a
cluster; the optional `mirbench-tools[ray]` extra, imported only when asked for).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mirdata.errors import MirdataError

EXECUTORS = ("local", "ray")


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


def make_executor(name: str, workers: int = 1, address: str | None = None, gpus: float | str = 0) -> Executor:
    """The executor `--executor NAME` means: local with `workers` processes, or Ray at `address` (RAY_ADDRESS when
    not given; a local cluster when neither is) with `gpus` per worker (a number, or "auto")."""
    if name == "local":
        from mirdata.executors.local import LocalExecutor

        return LocalExecutor(workers)
    if name == "ray":
        from mirdata.executors.ray import RayExecutor

        return RayExecutor(address, num_gpus=gpus)
    raise MirdataError(f"--executor must be one of {', '.join(EXECUTORS)}, not {name!r}")
