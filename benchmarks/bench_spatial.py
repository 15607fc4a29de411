"""Spatial benchmark: views per second per core for each renderer at 320x240, the default 448x336 and 640x480,
and spatial records built per second on 2 workers at the default size (six views per question).

Per core: each renderer runs in a child process limited to one thread (Mesa's llvmpipe via LP_NUM_THREADS,
Cycles via its thread count). Baselines measured in the same run: the path tracer against the rasterizer,
and two single-thread raster processes side by side against one.

    python benchmarks/bench_spatial.py [--views 40] [--cycles-views 2] [--records 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [(320, 240), (448, 336), (640, 480)]

CHILD = r"""
import json, sys, time
import numpy as np
from mirdata.generators.render import create_renderer
from mirdata.generators.scene import orbit_camera, sample_layout, sample_light
name, w, h, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
scene = sample_layout(rng, ["cube", "sphere", "cylinder", "cone", "torus", "car", "tree", "figure"], area=6.0)
scene.light = sample_light(rng)
renderer = create_renderer(name)
if name == "cycles":
    renderer.threads = 1
renderer.render(scene, orbit_camera(scene, 0, 30, 18, (w, h)))  # warm-up: context, shaders, Blender start
start = time.perf_counter()
for i in range(n):
    renderer.render(scene, orbit_camera(scene, 360 * (i + 1) / (n + 1), 30, 18, (w, h)))
seconds = time.perf_counter() - start
renderer.close()
print(json.dumps({"views_per_s": n / seconds}))
"""


def one_core(name: str, size: tuple[int, int], views: int, processes: int = 1) -> float:
    """Views per second of `processes` single-thread renderer processes running side by side (summed)."""
    env = {**os.environ, "LP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", CHILD, name, str(size[0]), str(size[1]), str(views)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(processes)]
    rates = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{name} benchmark child failed (exit {p.returncode})")
        rates.append(json.loads(next(line for line in out.splitlines() if line.startswith("{")))["views_per_s"])
    return sum(rates)


def records_per_second(num: int, workers: int) -> tuple[float, float]:
    from mirdata.builders.base import BuildOptions, run_build
    from mirdata.registry import tasks_of

    with tempfile.TemporaryDirectory() as tmp:
        options = BuildOptions(out=Path(tmp) / "data", num=num, workers=workers)  # the default size and views
        start = time.perf_counter()
        run = run_build(options, list(tasks_of("spatial")), show_progress=False)
        seconds = time.perf_counter() - start
        images = sum(len(json.loads(line)["images"]) for line in (Path(tmp) / "data" / "records.jsonl").open())
    return run["built"] / seconds, images / seconds, images / max(1, run["built"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=40, help="raster views per measurement")
    parser.add_argument("--cycles-views", type=int, default=2, help="path-traced views per measurement")
    parser.add_argument("--records", type=int, default=8, help="records per spatial task for the build figure")
    args = parser.parse_args()

    print(f"spatial benchmark on {os.cpu_count()} cores, load average before: "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for size in SIZES:
        label = f"{size[0]}x{size[1]}"
        raster = one_core("raster", size, args.views)
        raster_two = one_core("raster", size, args.views, processes=2)
        cycles = one_core("cycles", size, args.cycles_views)
        print(f"{label}: raster {raster:7.2f} views/s per core | 2 processes {raster_two:7.2f} views/s "
              f"({raster_two / raster:.2f}x one) | cycles (8 spp, denoised) {cycles:6.3f} views/s per core "
              f"-> raster is {raster / cycles:.0f}x faster")
    rate, image_rate, per_record = records_per_second(args.records, workers=2)
    print(f"spatial build, 2 workers, default 448x336 and views, raster: {rate:.2f} records/s "
          f"({image_rate:.1f} images/s, {per_record:.2f} images per question)")
    hours = 58_000 / image_rate / 3600
    print(f"-> the original release's ~58,000 spatial images would take {hours:.2f} h on this machine")
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())} (other work on the machine "
          "lowers every figure)")


if __name__ == "__main__":
    main()
