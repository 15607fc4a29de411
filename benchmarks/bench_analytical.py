"""Benchmark the analytical category: records per second on 2 workers against 1 worker (same run), and image
edits per second for the classical editor and for a tiny diffusers pipeline on CPU.

    python benchmarks/bench_analytical.py [--num 25] [--size 448x336] [--edits 36] [--model-edits 4]
        [--steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mirdata.builders.base import BuildOptions, run_build
from mirdata.generators.drawings import COLOURS, background, draw_sign, paste_sprite, sprite
from mirdata.generators.editing import ClassicalEditor, DiffusersEditor, Edit, write_tiny_pipeline
from mirdata.registry import tasks_of


def records_per_second(num: int, workers: int, size: tuple[int, int], root: Path) -> tuple[float, int, float]:
    """Records per second, records built, and images per record of an analytical build."""
    out = root / f"w{workers}"
    run = run_build(BuildOptions(out=out, num=num, workers=workers, image_size=size),
                    list(tasks_of("analytical")), show_progress=False)
    images = sum(len(json.loads(line)["images"]) for line in (out / "records.jsonl").read_text().splitlines())
    return run["built"] / run["seconds"], run["built"], images / max(1, run["built"])


def edit_jobs(n: int, size: tuple[int, int]) -> tuple[list, list, list]:
    """n edits of street scenes, cycling through every classical op."""
    rng = np.random.default_rng(0)
    w, h = size
    images, edits, masks = [], [], []
    ops = ["paste", "remove", "recolour", "resize", "move", "blur"]
    for k in range(n):
        scene = background(size, "grass", 0.45, rng)
        draw_sign(scene, "KEEP OFF THE GRASS", int(w * 0.2), int(h * 0.57), int(h * 0.45))
        _, mask = paste_sprite(scene, sprite("tree", "green", int(h * 0.4)), (int(w * 0.45), int(h * 0.4)))
        op = ops[k % len(ops)]
        car = sprite("car", "red", int(h * 0.4))
        params = {"paste": {"sprite": car.image, "at": (int(w * 0.6), int(h * 0.6))},
                  "recolour": {"colour": COLOURS["brown"]}, "resize": {"scale": 0.5},
                  "move": {"offset": (-int(w * 0.1), 0)}, "blur": {"sigma": 6.0, "motion": True}}.get(op, {})
        images.append(scene)
        edits.append(Edit(f"{op} the tree", op=op, seed=k, **params))
        masks.append(None if op == "paste" else mask)
    return images, edits, masks


def edits_per_second(editor, images: list, edits: list, masks: list) -> float:
    editor.edit(images[:1], edits[:1], masks[:1])  # warm-up: imports, model load, first-call allocation
    start = time.perf_counter()
    editor.edit(images, edits, masks)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=25, help="records per task for the build figures")
    parser.add_argument("--size", default="448x336", help="image size WIDTHxHEIGHT")
    parser.add_argument("--edits", type=int, default=36, help="classical edits to time")
    parser.add_argument("--model-edits", type=int, default=4, help="tiny-diffusers edits to time")
    parser.add_argument("--steps", type=int, default=20, help="diffusion steps per model edit")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and OpenCV threads for the edit figures (1 suits a shared machine)")
    args = parser.parse_args()
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    size = tuple(int(v) for v in args.size.split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one, n, per_record = records_per_second(args.num, 1, size, root)
        two, _, _ = records_per_second(args.num, 2, size, root)
        print(f"analytical build, {n} records at {args.size} ({per_record:.2f} images each): 1 worker "
              f"{one:.2f} records/s, 2 workers {two:.2f} records/s (x{two / one:.2f}), "
              f"{two * per_record:.1f} images/s")

        images, edits, masks = edit_jobs(args.edits, size)
        classical = edits_per_second(ClassicalEditor(), images, edits, masks)
        print(f"classical editor: {classical:.1f} edits/s ({args.edits} edits, all six ops, {args.size}, "
              f"{args.threads} thread(s))")

        model = write_tiny_pipeline(root / "tiny-editor")
        editor = DiffusersEditor(model, device="cpu", steps=args.steps, batch_size=4)
        k = args.model_edits
        diffusers = edits_per_second(editor, images[:k], edits[:k], masks[:k])
        editor.close()
        print(f"tiny diffusers editor on CPU: {diffusers:.2f} edits/s ({k} edits, {args.steps} steps, {args.size}, "
              f"{args.threads} thread(s)); classical is x{classical / diffusers:.0f} faster")


if __name__ == "__main__":
    main()
