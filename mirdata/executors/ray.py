"""The Ray executor: a step's items as a Ray Data dataset, mapped by a pool of actors.

Every actor gets the step once and calls its `setup` (a build's tasks, a model replica), then maps blocks of
items; the results stream back to the driver in item order. Items and results travel pickled in one binary
column, so Arrow never reinterprets a record. Workers write their files (images, parts, caches) themselves, so
the output folder must be one every node sees: a shared filesystem mounted at the same path.

An actor that dies (a killed process, a lost node) is restarted by Ray and its block is run again; a step
writes each item's files atomically, so a block run twice leaves the same bytes as a block run once.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mirdata.errors import MirdataError
from mirdata.executors.step import Executor, Step

# Blocks per actor: enough that the last blocks even out the actors' loads, few enough that the per-block
# scheduling cost stays small against the items' work.
BLOCKS_PER_ACTOR = 16


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MirdataError("--executor ray needs Ray Data: pip install 'mirbench-tools[ray]'") from None
    return ray


class _StepActor:
    """One Ray actor: the step set up once, then every batch of items it is given."""

    def __init__(self, step: Step):
        self.step = step
        step.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = []
        for rank, world_size, blob in zip(batch["rank"], batch["world_size"], batch["item"]):
            try:
                out = list(self.step.run([pickle.loads(blob)], int(rank), int(world_size)))
            except MirdataError as e:  # bad input: not worth a retry, and Ray would drop the message's type
                out = e
            results.append(pickle.dumps(out))
        return {"rank": batch["rank"], "results": np.array(results, dtype=object)}


class RayExecutor(Executor):
    """Ray Data at `address` (None: RAY_ADDRESS, else a new local cluster); one actor per `num_cpus` CPUs, or per
    `num_gpus` GPUs when the step needs a GPU ("auto": one GPU each when the cluster has GPUs), unless `actors`
    says how many."""

    name = "ray"

    def __init__(self, address: str | None = None, actors: int | None = None, num_cpus: float = 1,
                 num_gpus: float | str = 0):
        self.address = address
        self.actors = actors
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus

    def connect(self):
        ray = _ray()
        if not ray.is_initialized():
            joining = bool(self.address or os.environ.get("RAY_ADDRESS"))
            # a cluster of its own, for this run only, needs no dashboard
            ray.init(address=self.address, **({} if joining else {"include_dashboard": False, "log_to_driver": False,
                                                                   "logging_level": logging.WARNING}))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # results come back in item order
        context.enable_progress_bars = False  # the command shows its own
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notices (progress bars off, ...) are noise here
        return ray

    def gpus_per_actor(self, ray: Any) -> float:
        if self.num_gpus == "auto":
            return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        return float(self.num_gpus)

    def actor_count(self, ray: Any, items: int, gpus: float) -> int:
        if self.actors:
            return max(1, min(self.actors, items))
        resources = ray.cluster_resources()
        fit = resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", 1) / self.num_cpus
        return max(1, min(int(fit), items))

    def run(self, step: Step, items: Sequence[Any], on_result: Callable[[Any], None]) -> None:
        if not items:
            return
        ray = self.connect()
        gpus = self.gpus_per_actor(ray)
        actors = self.actor_count(ray, len(items), gpus)
        world_size = len(items)
        rows = [{"rank": rank, "world_size": world_size, "item": pickle.dumps(item)} for rank, item in enumerate(items)]
        blocks = min(len(rows), actors * BLOCKS_PER_ACTOR)
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            _StepActor, fn_constructor_args=(step,), batch_size=max(1, math.ceil(len(rows) / blocks)),
            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=self.num_cpus,
            **({"num_gpus": gpus} if gpus else {}))
        for row in dataset.iter_rows():
            results = pickle.loads(row["results"])
            if isinstance(results, MirdataError):
                raise results
            for result in results:
                on_result(result)
