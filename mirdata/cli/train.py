"""`mirdata curriculum-train`: the staged easy-to-hard fine-tuning loop; `mirdata rl-train`: GRPO after it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from mirdata.cli.app import command, out_console



# Options both trainers take, with one help text each.
LearningRateOpt = Annotated[float, typer.Option("--learning-rate", "--lr", help="Peak learning rate.")]
GradientAccumulationOpt = Annotated[int, typer.Option(min=1, help="Steps whose gradients add up before an update.")]
MaxPixelsOpt = Annotated[Optional[int], typer.Option(min=1, help="Shrink images to at most this many pixels "
                                                     "(width x height).")]
Bf16Opt = Annotated[bool, typer.Option(help="Load the weights in bfloat16 and train in bf16.")]
CheckpointingOpt = Annotated[bool, typer.Option(help="Trade compute for memory.")]
ReportToOpt = Annotated[str, typer.Option(help="Trainer loggers: none, tensorboard, wandb, ...")]


@command("curriculum-train")
def curriculum_train(
    data: Annotated[Path, typer.Option(help="A MIR folder (records.jsonl) or a released dataset folder; records "
                                       "need a difficulty (see `mirdata difficulty`).")],
    model: Annotated[str, typer.Option(help="Local folder of the vision-language model to fine-tune.")],
    output_dir: Annotated[Path, typer.Option(help="Writes OUT/stage-K/ (model, manifest.json) per stage.")],
    stages: Annotated[str, typer.Option(help="Stages to train, as ranges and lists: 0-5, 1-3, 0,2,4.")] = "0-5",
    hard_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of the hard records sampled for "
                                                 "stages 1-5.")] = 0.4,
    seed: Annotated[int, typer.Option(help="Seeds the hard sample, the order within a level and training.")] = 0,
    epochs_per_stage: Annotated[float, typer.Option(help="Epochs over each stage's samples.")] = 1.0,
    learning_rate: LearningRateOpt = 2e-5,
    per_device_train_batch_size: Annotated[int, typer.Option(min=1, help="Samples per device per step.")] = 1,
    gradient_accumulation_steps: GradientAccumulationOpt = 1,
    max_length: Annotated[int, typer.Option(min=1, help="Longest sample in tokens, images included; longer "
                                            "samples stop the run before training.")] = 4096,
    max_pixels: MaxPixelsOpt = None,
    lora: Annotated[bool, typer.Option(help="Train a LoRA adapter (peft) instead of all weights.")] = False,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 16,
    lora_alpha: Annotated[int, typer.Option(min=1, help="LoRA scaling alpha.")] = 32,
    bf16: Bf16Opt = False,
    gradient_checkpointing: CheckpointingOpt = False,
    logging_steps: Annotated[int, typer.Option(min=1, help="Log the loss every N steps.")] = 10,
    save_steps: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps within a stage.")] = 500,
    resume: Annotated[bool, typer.Option(help="Skip finished stages; continue an unfinished one from its last "
                                         "checkpoint.")] = False,
    report_to: ReportToOpt = "none",
) -> None:
    """Fine-tune on easy questions first, then on a sample of the hard ones, moving the reasoning steps from the
    model's input to its output stage by stage.

    Multi-GPU: torchrun --nproc_per_node N -m mirdata curriculum-train …"""
    from mirdata.curriculum.train import CurriculumTrainOptions, parse_stages, train_curriculum

    results = train_curriculum(CurriculumTrainOptions(
        data=data, model=model, output_dir=output_dir, stages=parse_stages(stages), hard_fraction=hard_fraction,
        seed=seed, epochs_per_stage=epochs_per_stage, learning_rate=learning_rate,
        per_device_train_batch_size=per_device_train_batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps, max_length=max_length, max_pixels=max_pixels,
        lora=lora, lora_r=lora_r, lora_alpha=lora_alpha, bf16=bf16, gradient_checkpointing=gradient_checkpointing,
        logging_steps=logging_steps, save_steps=save_steps, resume=resume, report_to=report_to,
    ))
    table = Table(title="curriculum stages")
    for column in ("stage", "status", "samples", "train loss", "checkpoint"):
        table.add_column(column)
    for r in results:
        loss = "" if r.train_loss is None else f"{r.train_loss:.4f}"
        table.add_row(str(r.stage), r.status, str(r.samples), loss, str(r.path))
    out_console.print(table)


@command("rl-train")
def rl_train(
    data: Annotated[Path, typer.Option(help="A MIR folder (records.jsonl) or a released dataset folder.")],
    model: Annotated[str, typer.Option(help="The checkpoint to start from: a curriculum-train stage folder (a "
                                       "model, or a LoRA adapter) or any local vision-language model folder.")],
    output_dir: Annotated[Path, typer.Option(help="Writes the trained model and OUT/manifest.json.")],
    rewards: Annotated[str, typer.Option(help="Rewards to optimise, comma-separated, among accuracy, format, region "
                                         "and image (see mirdata.rl.rewards).")] = "accuracy,format,region,image",
    reward_weights: Annotated[Optional[str], typer.Option(help="One weight per reward, comma-separated, e.g. "
                                                          "1,0.5,1,1; all 1 if left out.")] = None,
    split: Annotated[str, typer.Option(help="Records to train on by difficulty: hard, easy or all.")] = "hard",
    num_generations: Annotated[int, typer.Option(min=2, help="Completions sampled per prompt (the GRPO group).")] = 4,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="Stop after N optimiser steps (default: one "
                                                     "epoch over the split).")] = None,
    learning_rate: LearningRateOpt = 1e-6,
    per_device_train_batch_size: Annotated[Optional[int], typer.Option(min=1, help="Completions per device per step, "
                                                                       "a multiple of --num-generations (default: "
                                                                       "--num-generations, one prompt).")] = None,
    gradient_accumulation_steps: GradientAccumulationOpt = 1,
    max_completion_length: Annotated[int, typer.Option(min=1, help="Longest completion generated, in tokens.")] = 1024,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature of the generations.")] = 1.0,
    beta: Annotated[float, typer.Option(min=0.0, help="KL penalty to the starting model (0: no reference "
                                        "model).")] = 0.0,
    max_length: Annotated[int, typer.Option(min=1, help="Longest prompt with its reference chain in tokens, images "
                                            "included; longer samples stop the run before training.")] = 4096,
    max_pixels: MaxPixelsOpt = None,
    lora: Annotated[bool, typer.Option(help="Train a LoRA adapter (peft); a curriculum adapter is trained "
                                       "further.")] = False,
    bf16: Bf16Opt = False,
    gradient_checkpointing: CheckpointingOpt = False,
    logging_steps: Annotated[int, typer.Option(min=1, help="Log the rewards every N steps.")] = 10,
    save_steps: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps.")] = 500,
    seed: Annotated[int, typer.Option(help="Seeds sampling, shuffling and training.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint; a finished run is kept.")] = False,
    report_to: ReportToOpt = "none",
) -> None:
    """Reinforcement learning after the curriculum: GRPO on the stage-5 prompts, rewarded for the answer, the
    format and the grounding (cited boxes and their images).

    Multi-GPU: torchrun --nproc_per_node N -m mirdata rl-train …"""
    from mirdata.rl.train import RLTrainOptions, parse_weights
    from mirdata.rl.train import rl_train as run_rl_train

    result = run_rl_train(RLTrainOptions(
        data=data, model=model, output_dir=output_dir, rewards=[r.strip() for r in rewards.split(",") if r.strip()],
        reward_weights=parse_weights(reward_weights), split=split, num_generations=num_generations,
        max_steps=max_steps, learning_rate=learning_rate, per_device_train_batch_size=per_device_train_batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps, max_completion_length=max_completion_length,
        temperature=temperature, beta=beta, max_length=max_length, max_pixels=max_pixels, lora=lora, bf16=bf16,
        gradient_checkpointing=gradient_checkpointing, logging_steps=logging_steps, save_steps=save_steps, seed=seed,
        resume=resume, report_to=report_to,
    ))
    table = Table(title=f"rl-train ({result.status}, {result.samples} prompts, {result.global_step} steps)")
    table.add_column("reward")
    table.add_column("mean over the run", justify="right")
    for name, mean in result.reward_means.items():
        table.add_row(name, f"{mean:.4f}")
    out_console.print(table)
    out_console.print(f"checkpoint: {result.path}")
