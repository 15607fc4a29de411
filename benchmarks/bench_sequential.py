"""Sequential category benchmark: the frame sampler against the ffmpeg command-line decoder, sparse sampling
against a full decode, and records built per second.

    python benchmarks/bench_sequential.py [--threads 2] [--records 48] [--repeat 5]

1. Full decode of one file, frames/s: FrameSampler.iter_all (decord, RGB out) vs `ffmpeg -i FILE -f rawvideo
   -pix_fmt rgb24 /dev/null` with the same thread count (goal: >= 0.7x ffmpeg). The file is a 60 s H.264 clip
   made here with ffmpeg (640x360, 30 fps, a key frame every second), plus opencv-doc's vtest.avi when present.
2. Sampling 8 evenly spaced frames of the 60 s clip (open + decode) as a fraction of a full decode (goal <= 25 %).
3. `mirdata build --category sequential` records/s (and images/s: frames are rendered at the image size, about 6
   per record) on 2 workers, against 1 worker in the same run.
Each timing is the best of --repeat runs, interleaved with its baseline's (the machine may be shared).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from mirdata.builders.base import BuildOptions, resolve_tasks, run_build
from mirdata.generators.frames import FrameSampler, VideoInfo, probe_video
from mirdata.store import MIRStore

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def best(fn, repeat: int) -> float:
    return min(best_of_each([fn], repeat))


def best_of_each(fns: list, repeat: int) -> list[float]:
    """Best time of each function, the runs interleaved so a burst of load on the machine hits them alike."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, bucket in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - t0)
    return [min(bucket) for bucket in times]


def make_clip(path: Path, seconds: int = 60) -> None:
    source = f"testsrc2=size=640x360:rate=30:duration={seconds}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source,
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p", str(path)], check=True)


def ffmpeg_decode(path: Path, threads: int) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-threads", str(threads), "-i", str(path), "-f", "rawvideo",
                    "-pix_fmt", "rgb24", "-y", "/dev/null"], check=True)


def sampler_decode(path: Path, info: VideoInfo, threads: int) -> int:
    frames = 0
    with FrameSampler(path, info, num_threads=threads) as sampler:
        for batch in sampler.iter_all(batch_size=64):
            frames += len(batch.indices)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--records", type=int, default=48, help="records per task for the build figure")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the ffmpeg command is needed as the baseline")

    with tempfile.TemporaryDirectory(prefix="bench-seq-") as tmp:
        clip = Path(tmp) / "clip60.mp4"
        make_clip(clip)
        files = [clip] + ([VTEST] if VTEST.is_file() else [])

        print(f"1. full decode to RGB, {args.threads} thread(s), best of {args.repeat}")
        for path in files:
            info = probe_video(path)
            n = info.frames
            t_ffmpeg, t_sampler = best_of_each([lambda p=path: ffmpeg_decode(p, args.threads),
                                                lambda p=path, i=info: sampler_decode(p, i, args.threads)],
                                               args.repeat)
            print(f"   {path.name:12s} {n} frames: sampler {n / t_sampler:7.1f} frames/s, "
                  f"ffmpeg CLI {n / t_ffmpeg:7.1f} "
                  f"frames/s -> {t_ffmpeg / t_sampler:.2f}x ffmpeg (goal >= 0.70x)")

        print("2. 8 evenly spaced frames of the 60 s clip vs a full decode (same sampler, same threads)")
        t_probe = best(lambda: probe_video(clip), args.repeat)
        info = probe_video(clip)

        def sample8() -> None:
            with FrameSampler(clip, info, num_threads=args.threads) as sampler:
                sampler.read_evenly(8)

        t_sample, t_full = best_of_each([sample8, lambda: sampler_decode(clip, info, args.threads)], args.repeat)
        print(f"   sample 8: {t_sample * 1000:.0f} ms, full decode: {t_full * 1000:.0f} ms -> "
              f"{t_sample / t_full:.1%} of a "
              f"full decode (goal <= 25%); the one-off hang-guard probe of the file: {t_probe * 1000:.0f} ms")

        print(f"3. sequential records/s, {args.records} per task, default options (448x336 jpg)")
        rates = {}
        for workers in (1, 2):
            options = BuildOptions(out=Path(tmp) / f"mir{workers}", num=args.records, workers=workers, seed=0)
            run = run_build(options, resolve_tasks("sequential", None), show_progress=False)
            rates[workers] = run["built"] / run["seconds"]
            images = sum(len(r.images) for r in MIRStore(options.out).read())
            print(f"   {workers} worker(s): {run['built']} records ({images / run['built']:.2f} images each) in "
                  f"{run['seconds']:.1f} s -> {rates[workers]:.2f} records/s, {images / run['seconds']:.1f} images/s")
        print(f"   2 workers vs 1: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
