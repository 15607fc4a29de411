"""Prompts per second: batched generation vs one prompt at a time, same tiny model, same prompts, one run.

Two workloads: `predict` (greedy, one response per prompt) and `difficulty` (10 samples per prompt at
temperature 0.7, top-p 0.8, as the original filter). The baseline sends one prompt per generate call, as the
original scripts did. Run: python benchmarks/bench_inference.py [--prompts 32] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mirdata.inference.prompt import Prompt, build_prompt
from mirdata.inference.runners import Sampling, make_runner, prompt_seed
from mirdata.schema.record import Record, format_options
from mirdata.testing import make_tiny_vlm


def make_prompts(count: int, seed: int = 0) -> list[Prompt]:
    """MIR-shaped prompts: 2-4 images of 448x336 interleaved with text, four options."""
    rng = np.random.default_rng(seed)
    prompts = []
    for i in range(count):
        n_images = int(rng.integers(2, 5))
        images = []
        for _ in range(n_images):
            im = Image.new("RGB", (448, 336), tuple(int(v) for v in rng.integers(150, 256, 3)))
            x, y = (int(v) for v in rng.integers(20, 200, 2))
            ImageDraw.Draw(im).rectangle([x, y, x + 120, y + 90], fill=tuple(int(v) for v in rng.integers(0, 150, 3)))
            images.append(im)
        question = " ".join(f"Frame {k + 1}: <image>" for k in range(n_images)) + ". Which frame shows the box left?"
        record = Record(id=f"bench-{i}", category="sequential", task="motion_detection",
                        images=[f"{k}.jpg" for k in range(n_images)], question=question,
                        options=format_options([f"frame {k + 1}" for k in range(4)]), answer="A")
        prompts.append(build_prompt(record, images))
    return prompts


def prompts_per_second(runner, prompts: list[Prompt], sampling: Sampling, batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        batch = prompts[i:i + batch_size]
        runner.generate(batch, sampling, [prompt_seed(0, str(i + k)) for k in range(len(batch))])
    return len(prompts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    prompts = make_prompts(args.prompts)
    workloads = {
        "predict (greedy, 1 response)": Sampling(n=1, max_new_tokens=args.max_new_tokens),
        "difficulty (10 samples, T=0.7)": Sampling(n=10, temperature=0.7, top_p=0.8,
                                                   max_new_tokens=args.max_new_tokens),
    }
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_vlm(Path(tmp) / "tiny-vlm")
        with make_runner("transformers", str(model), device=args.device) as runner:
            prompts_per_second(runner, prompts[:4], workloads["predict (greedy, 1 response)"], 4)  # warm-up
            print(f"{len(prompts)} prompts, {args.max_new_tokens} new tokens each, tiny Idefics3 on {runner.device}")
            for name, sampling in workloads.items():
                single = prompts_per_second(runner, prompts, sampling, 1)
                batched = prompts_per_second(runner, prompts, sampling, args.batch_size)
                print(f"{name:32s} one at a time: {single:7.2f} prompts/s   batch {args.batch_size}: "
                      f"{batched:7.2f} prompts/s   speed-up x{batched / single:.2f}")


if __name__ == "__main__":
    main()
