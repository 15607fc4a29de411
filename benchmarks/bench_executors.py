"""Executor benchmark: records/s of the same build on the local executor with 1 and 2 worker processes and on
Ray Data with 2 CPUs, and Ray's overhead against the 2-process pool (goal: at most 15%).

Every run builds the same records into a fresh folder and is checked to give the same bytes. Ray's figure
includes starting its actors (imports and the tasks' set-up), as the pool's includes starting its processes;
each is also split into the start-up (until the first record) and the rate after it. Ray hands results back
block by block in item order, so its first record arrives late and its rate after it reads high: the
overhead is taken over the whole run. Starting the Ray cluster itself (`ray.init`) is timed apart: a cluster serves many runs.

    python benchmarks/bench_executors.py [--category spatial] [--records 20] [--image-size 320x240]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in [root / "records.jsonl", *sorted((root / "images").rglob("*"))]:
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


@dataclass
class Timing:
    rate: float  # records/s over the whole run
    startup: float  # seconds to the first record: starting workers, imports, the tasks' set-up
    steady: float  # records/s after the first record
    digest: str


class FirstResult:
    """An executor that runs on `inner` and notes when the first result arrives."""

    def __init__(self, inner):
        self.inner, self.name, self.in_process, self.first = inner, inner.name, inner.in_process, None

    def run(self, step, items, on_result):
        def note(result):
            self.first = self.first or time.perf_counter()
            on_result(result)

        self.inner.run(step, items, note)


def timed_build(out: Path, category: str, num: int, size: tuple[int, int], executor) -> Timing:
    from mirdata.builders.base import BuildOptions, run_build
    from mirdata.registry import tasks_of

    options = BuildOptions(out=out, num=num, image_size=size, workers=getattr(executor, "workers", 1))
    executor = FirstResult(executor)
    start = time.perf_counter()
    run = run_build(options, list(tasks_of(category)), show_progress=False, executor=executor)
    end = time.perf_counter()
    return Timing(run["built"] / (end - start), executor.first - start, (run["built"] - 1) / (end - executor.first),
                  digest(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--category", default="spatial", choices=["sequential", "spatial", "analytical"])
    parser.add_argument("--records", type=int, default=20, help="records per task")
    parser.add_argument("--image-size", default="320x240")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.image_size.split("x"))

    import ray

    from mirdata.executors.local import LocalExecutor
    from mirdata.executors.ray import RayExecutor

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one = timed_build(root / "one", args.category, args.records, size, LocalExecutor(1))
        two = timed_build(root / "two", args.category, args.records, size, LocalExecutor(2))
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        cluster_s = time.perf_counter() - start
        on_ray = timed_build(root / "ray", args.category, args.records, size, RayExecutor())
        ray.shutdown()
    if not one.digest == two.digest == on_ray.digest:
        raise SystemExit("the executors wrote different bytes")
    print(f"{args.category}, {4 * args.records} records at {args.image_size} (same bytes on every executor):")
    for name, t in (("local, 1 worker", one), ("local, 2 workers", two), ("ray, 2 CPUs", on_ray)):
        print(f"  {name:17s} {t.rate:6.2f} records/s (x{t.rate / one.rate:.2f} of 1 worker); start-up "
              f"{t.startup:5.1f} s, then {t.steady:6.2f} records/s")
    print(f"  (the Ray cluster's own start: {cluster_s:.1f} s, apart)")
    print(f"Ray's overhead against the 2-process pool: {two.rate / on_ray.rate - 1:+.1%} over the run "
          f"(goal: <= 15%)")


if __name__ == "__main__":
    main()
