"""Prompts per second: batched generation vs one prompt at a time, same tiny model, same prompts, one run.

Two workloads: `predict` (greedy, one response per prompt) and `difficulty` (10 samples per prompt at
temperature 0.7, top-p 0.8, as the original filter). The baselines are what the original scripts did: one prompt
per generate call, and for the filter one sample per call. Ratios compare figures of the same run.
Run: python benchmarks/bench_inference.py [--prompts 24] [--batch-size 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mirdata.inference.prompt import build_prompt
from mirdata.models import Prompt, Sampling, make_runner, prompt_seed
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


def prompts_per_second(runner, prompts: list[Prompt], sampling: Sampling, batch_size: int,
                       calls_per_prompt: int = 1) -> float:
    """Generate for every prompt, `batch_size` prompts per call; `calls_per_prompt` > 1 repeats each call (the
    original scripts drew their 10 samples with 10 calls of one sample each)."""
    start = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        batch = prompts[i:i + batch_size]
        for call in range(calls_per_prompt):
            runner.generate(batch, sampling, [prompt_seed(call, str(i + k)) for k in range(len(batch))])
    return len(prompts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    prompts = make_prompts(args.prompts)
    greedy = Sampling(n=1, max_new_tokens=args.max_new_tokens)
    one_sample = Sampling(n=1, temperature=0.7, top_p=0.8, max_new_tokens=args.max_new_tokens)
    all_samples = Sampling(n=args.samples, temperature=0.7, top_p=0.8, max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_vlm(Path(tmp) / "tiny-vlm")
        with make_runner("transformers", str(model), device=args.device) as runner:
            prompts_per_second(runner, prompts[:4], greedy, 4)  # warm-up
            print(f"{len(prompts)} prompts (2-4 images each), {args.max_new_tokens} new tokens per response, "
                  f"tiny Idefics3 on {runner.device}")
            single = prompts_per_second(runner, prompts, greedy, 1)
            batched = prompts_per_second(runner, prompts, greedy, args.batch_size)
            print(f"predict, greedy:     one prompt per call {single:7.2f} prompts/s | batch of {args.batch_size} "
                  f"{batched:7.2f} prompts/s | x{batched / single:.2f}")
            single = prompts_per_second(runner, prompts, one_sample, 1, calls_per_prompt=args.samples)
            per_prompt = prompts_per_second(runner, prompts, all_samples, 1)
            batched = prompts_per_second(runner, prompts, all_samples, args.batch_size)
            print(f"difficulty, {args.samples} samples: one sample per call {single:7.2f} prompts/s | "
                  f"{args.samples} samples per call {per_prompt:7.2f} | batch of {args.batch_size} x {args.samples} "
                  f"samples {batched:7.2f} prompts/s | x{batched / single:.2f}")


if __name__ == "__main__":
    main()
