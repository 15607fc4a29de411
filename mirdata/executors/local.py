"""The local executor: the step in this process, or in a pool of spawned worker processes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

from mirdata.executors.step import Executor, Step

_worker_step: Step | None = None


def _start_worker(step: Step, threads: int) -> None:
    global _worker_step
    _exit_with_parent()
    # Before any torch/OpenCV import in this process: W workers each using every core thrash.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    step.setup()
    _worker_step = step


def _exit_with_parent() -> None:
    """End this worker when the run that started it dies (a kill -9 runs no cleanup that would stop it)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    return list(_worker_step.run(items, rank, world_size))


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)

    @property
    def in_process(self) -> bool:
        return self.workers == 1

    def run(self, step: Step, items: Sequence[Any], on_result: Callable[[Any], None]) -> None:
        if self.in_process:
            step.setup()
            try:
                for item in items:
                    for result in step.run([item], 0, 1):
                        on_result(result)
            finally:
                step.close()
            return
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=_start_worker,
                                 initargs=(step, threads)) as pool:
            futures = [pool.submit(_run_shard, [item], rank, len(items)) for rank, item in enumerate(items)]
            for future in as_completed(futures):
                for result in future.result():
                    on_result(result)
