"""Executor benchmark: records/s of the same build on the local executor with 1 and 2 worker processes and on
Ray Data with 2 CPUs, and Ray's overhead against the 2-process pool (goal: at most 15%).

Every run builds the same records into a fresh folder and is checked to give the same bytes. Ray's figure
includes starting its actors (imports and the tasks' set-up), as the pool's includes starting its processes;
starting the Ray cluster itself (`ray.init`) is timed apart, as a cluster is started once for many runs.

    python benchmarks/bench_executors.py [--category spatial] [--records 20] [--image-size 320x240]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in [root / "records.jsonl", *sorted((root / "images").rglob("*"))]:
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


def timed_build(out: Path, category: str, num: int, size: tuple[int, int], executor) -> tuple[float, str]:
    from mirdata.builders.base import BuildOptions, run_build
    from mirdata.schema.tasks import CATEGORIES

    options = BuildOptions(out=out, num=num, image_size=size, workers=getattr(executor, "workers", 1))
    start = time.perf_counter()
    run = run_build(options, list(CATEGORIES[category]), show_progress=False, executor=executor)
    seconds = time.perf_counter() - start
    return run["built"] / seconds, digest(out)


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
        one, d1 = timed_build(root / "one", args.category, args.records, size, LocalExecutor(1))
        two, d2 = timed_build(root / "two", args.category, args.records, size, LocalExecutor(2))
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        cluster_s = time.perf_counter() - start
        on_ray, d3 = timed_build(root / "ray", args.category, args.records, size, RayExecutor())
        ray.shutdown()
    if not d1 == d2 == d3:
        raise SystemExit("the executors wrote different bytes")
    records = 4 * args.records
    print(f"{args.category}, {records} records at {args.image_size} (same bytes on every executor):")
    print(f"  local, 1 worker   {one:7.2f} records/s")
    print(f"  local, 2 workers  {two:7.2f} records/s   (x{two / one:.2f} of 1 worker)")
    print(f"  ray, 2 CPUs       {on_ray:7.2f} records/s   (x{on_ray / one:.2f} of 1 worker; cluster start "
          f"{cluster_s:.1f} s apart)")
    overhead = two / on_ray - 1
    print(f"Ray's overhead against the 2-process pool: {overhead:+.1%} (goal: <= 15%)")


if __name__ == "__main__":
    main()
