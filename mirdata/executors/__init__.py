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

from mirdata.errors import MirdataError
from mirdata.executors.step import Executor, Step

__all__ = ["EXECUTORS", "Executor", "Step", "make_executor"]

EXECUTORS = ("local", "ray")


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
