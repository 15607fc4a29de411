"""GRPO after the curriculum: how fast the rewards score completions, and the time of one `rl-train` step.

Rewards: the four rewards of `mirdata.rl.rewards` on whole stage-5 chains (the records' own, so every citation is
parsed and matched), completions per second; baseline in the same run: reading the answer letter alone with
`inference.extract`, what `evaluate` does for every response.

Steps: `rl_train` exactly as the command runs it on MIR-shaped samples (2-4 images of 448x336), seconds per
optimiser step (TRL's own `step_time`, mean over the steps after the first) at 2 and 4 generations per prompt,
`--max-completion-length` tokens each, and the share of a step the rewards take at the rate measured above. Default model: the tiny Idefics3 of `mirdata.testing`; `--size
smolvlm-256m` builds a randomly initialised model of SmolVLM-256M's shape (a GPU run: TRL uses CUDA when there is
one).

Run: python benchmarks/bench_rl.py [--samples 8] [--steps 4] [--size tiny|smolvlm-256m] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from bench_train import make_smolvlm_256m_shape, write_dataset

from mirdata.inference.extract import extract_answer
from mirdata.rl.rewards import REWARDS
from mirdata.rl.train import RLTrainOptions, rl_train
from mirdata.schema.tasks import STAGES
from mirdata.store import MIRStore
from mirdata.testing import make_tiny_vlm


def chain(record) -> str:
    texts = {"caption": "\n".join(record.caption)} | {s: getattr(record, s) for s in STAGES if s != "caption"}
    return "\n".join(f"<{s}>{texts[s]}</{s}>" for s in STAGES)


def per_second(work, count: int, repeats: int) -> float:
    work()  # warm up: imports, compiled patterns
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    return count * repeats / (time.perf_counter() - start)


def step_seconds(data: Path, model: Path, out: Path, generations: int, steps: int, length: int, bf16: bool) -> float:
    rl_train(RLTrainOptions(data=data, model=str(model), output_dir=out, split="all", num_generations=generations,
                            max_steps=steps, max_completion_length=length, logging_steps=1, save_steps=100_000,
                            bf16=bf16))
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    times = [entry["step_time"] for entry in history if "step_time" in entry][1:]  # the first step warms up
    return sum(times) / len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--size", choices=["tiny", "smolvlm-256m"], default="tiny")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        write_dataset(tmp_path / "data", args.samples)
        records = MIRStore(tmp_path / "data").read()
        completions = [chain(r) for r in records] * 50
        columns = {"answer": [r.answer for r in records] * 50, "options": [r.options for r in records] * 50,
                   "regions": [[{"image": g.image, "box": g.box} for g in r.regions] for r in records] * 50}
        rewards_rate = per_second(lambda: [f(completions, **columns) for f in REWARDS.values()], len(completions), 3)
        extract_rate = per_second(lambda: [extract_answer(c, o) for c, o in zip(completions, columns["options"])],
                                  len(completions), 3)

        model = (make_tiny_vlm(tmp_path / "model") if args.size == "tiny"
                 else make_smolvlm_256m_shape(tmp_path / "model"))
        device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                  else f"CPU, {torch.get_num_threads()} threads")
        steps = {g: step_seconds(tmp_path / "data", model, tmp_path / f"out-{g}", g, args.steps,
                                 args.max_completion_length, args.bf16) for g in (2, 4)}

    print(f"\nrewards, {len(completions)} whole chains: all four {rewards_rate:,.0f} completions/s; "
          f"answer letter alone {extract_rate:,.0f}/s (x{rewards_rate / extract_rate:.2f})")
    print(f"rl-train step, {args.size} model, {args.max_completion_length} new tokens, {device}")
    for g, seconds in steps.items():
        print(f"  {g} generations  {seconds:6.3f} s/step   x{seconds / steps[2]:.2f} vs 2 generations; scoring its "
              f"{g} completions takes {100 * g / rewards_rate / seconds:.2f}% of the step")


if __name__ == "__main__":
    main()
