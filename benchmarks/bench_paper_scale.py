"""Paper-scale benchmark: build 1% of the original release in each category (55 sequential, 94 spatial, 78
analytical questions, at the default image size and image counts), then project the full 22,257-question
rebuild on this machine and on N Ray nodes like it (goal: the full default rebuild in at most 20 minutes on
2 cores).

Each category is built twice, on the local executor with 2 worker processes and on Ray Data with 2 CPUs, into
fresh folders; the two must give the same bytes. A category's questions are split evenly over its 4 tasks
(rounded up). This machine's projection is the pool's start-up (until the first record) plus the full count
at its rate after that. The Ray projection takes Ray's rate over the whole run, start-up included (Ray hands
results back block by block, so a rate after the first record reads high), times N nodes: the work is
independent per record, so what limits it is the shared storage the workers write to, which this benchmark
cannot measure.

    python benchmarks/bench_paper_scale.py [--workers 2] [--nodes 1 4 16] [--no-ray]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from bench_executors import timed_build

PAPER_QUESTIONS = 22_257
ONE_PERCENT = {"sequential": 55, "spatial": 94, "analytical": 78}
GOAL_MINUTES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="local worker processes (and Ray CPUs)")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 16], help="Ray node counts to project")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray builds")
    args = parser.parse_args()

    from mirdata.builders.base import BuildOptions
    from mirdata.executors.local import LocalExecutor

    size = BuildOptions().image_size
    total_share = sum(ONE_PERCENT.values())
    if not args.no_ray:
        import ray

        from mirdata.executors.ray import RayExecutor

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    local_s = ray_s = 0.0
    print(f"1% of the paper per category at {size[0]}x{size[1]}, {args.workers} workers:")
    with tempfile.TemporaryDirectory() as tmp:
        for category, questions in ONE_PERCENT.items():
            num = math.ceil(questions / 4)
            full = PAPER_QUESTIONS * questions / total_share
            here = timed_build(Path(tmp) / f"{category}-local", category, num, size, LocalExecutor(args.workers))
            local_s += here.startup + full / here.steady
            line = (f"  {category:10s} {4 * num:3d} records: local {here.rate:6.2f} records/s "
                    f"(start-up {here.startup:4.1f} s, then {here.steady:6.2f}/s)")
            if not args.no_ray:
                there = timed_build(Path(tmp) / f"{category}-ray", category, num, size, RayExecutor())
                if there.digest != here.digest:
                    raise SystemExit(f"{category}: Ray wrote other bytes than the local executor")
                ray_s += full / there.rate
                line += f"; ray {there.rate:6.2f} records/s (start-up {there.startup:4.1f} s, then {there.steady:6.2f}/s)"
            print(line)
    minutes = local_s / 60
    print(f"full rebuild, {PAPER_QUESTIONS:,} questions, on this machine ({args.workers} workers): {minutes:.1f} min "
          f"({'meets' if minutes <= GOAL_MINUTES else 'misses'} the {GOAL_MINUTES}-minute goal: "
          f"x{GOAL_MINUTES / minutes:.2f} of the rate it needs)")
    if not args.no_ray:
        for n in args.nodes:
            print(f"  on {n:3d} Ray node(s) of {args.workers} CPUs: {ray_s / n / 60:7.1f} min")
        ray.shutdown()


if __name__ == "__main__":
    main()
