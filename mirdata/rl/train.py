"""`mirdata rl-train`: GRPO (TRL's `GRPOTrainer`) on MIR after the curriculum, with the grounding rewards.

The policy starts from a `curriculum-train` checkpoint (a `stage-K` folder: a full model, or a LoRA adapter whose
base model is read from its `adapter_config.json`). Each prompt is the stage-5 input, the question with its images
in place and the options, nothing of the reasoning; the model writes the whole chain and the rewards of
`mirdata.rl.rewards` score it against the record's answer and regions.

* **data**: the records of one difficulty split (`hard` by default, `easy`, or `all`), in id order; TRL shuffles
  them per epoch with the run's seed.
* **pre-flight**, before any model is loaded: the curriculum's checks (one `<image>` per image, every image
  present) and, once the processor is loaded, no prompt with its reference chain longer than `max_length` tokens
  with its images tokenized.
* **logs**: TRL logs every reward's mean and standard deviation (`rewards/<name>_reward/mean`) and the weighted
  total (`reward`) every `logging_steps` steps.
* **checkpoints**: `OUT/` holds the trained model (or adapter) and processor, `trainer_state.json` (the log
  history) and `manifest.json` `{"sample_ids", "rewards", "reward_weights", "sha256", ...}`, written last: a run
  with a manifest is finished. Intermediate checkpoints go to `OUT/checkpoints/`, are removed at the end, and
  `resume` continues from the last one.

Multi-GPU: `torchrun --nproc_per_node N -m mirdata rl-train ...` or `accelerate launch -m mirdata rl-train ...`.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mirdata.curriculum.stages import StageExample, check_example, examples_sha256, load_records, stage_example
from mirdata.curriculum.train import (CHECKPOINTS, MANIFEST, TRAINER_STATE, ModelTrainingOptions,
                                      _check_lengths, _collator, _load, _load_model,
                                      load_image, read_manifest, trainer_arguments)
from mirdata.curriculum.train import _dataset as _sft_dataset
from mirdata.errors import MirdataError
from mirdata.progress import console
from mirdata.rl.rewards import REWARDS
from mirdata.schema.record import Record
from mirdata.store import atomic_write

CHAIN_STAGE = 5  # the prompt holds the question and options only; the model writes the whole chain
SPLITS = ("hard", "easy", "all")


@dataclass(kw_only=True)
class RLTrainOptions(ModelTrainingOptions):
    """Settings of a GRPO run; training settings carry TRL's `GRPOConfig` names."""

    rewards: list[str] = field(default_factory=lambda: list(REWARDS))
    reward_weights: list[float] | None = None
    split: str = "hard"
    num_generations: int = 4
    max_steps: int | None = None
    num_train_epochs: float = 1.0
    learning_rate: float = 1e-6
    per_device_train_batch_size: int | None = None  # completions per device per step; None: num_generations
    max_completion_length: int = 1024
    temperature: float = 1.0
    beta: float = 0.0


@dataclass
class RLResult:
    status: str  # "trained" or "skipped" (finished in an earlier run)
    samples: int
    path: Path
    global_step: int
    reward_means: dict[str, float]  # each reward's mean over the run's logged steps, and "reward" for the total


def rl_train(opts: RLTrainOptions) -> RLResult:
    names, weights = _reward_choice(opts.rewards, opts.reward_weights)
    batch = opts.per_device_train_batch_size or opts.num_generations
    if batch % opts.num_generations:
        raise MirdataError(f"--per-device-train-batch-size {batch} counts completions and must be a multiple of "
                           f"--num-generations {opts.num_generations}")
    out = Path(opts.output_dir)
    data_root, records = load_records(opts.data, image_cache=out / "images")
    chosen = select_split(records, opts.split, str(opts.data))
    examples = [stage_example(r, CHAIN_STAGE) for r in chosen]
    for example in examples:
        check_example(example, data_root)
    sha256 = examples_sha256(examples)
    if (out / MANIFEST).is_file():
        return _finished(out, sha256, len(examples), opts.resume)

    from transformers import AutoProcessor

    processor = _load(AutoProcessor, opts.model, "processor")
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    # The prompt with its reference chain, tokenized as curriculum-train does: no longer than --max-length.
    _check_lengths(_collator(processor), {CHAIN_STAGE: examples},
                   {CHAIN_STAGE: _sft_dataset(examples, data_root, opts.max_pixels)}, opts.max_length)

    model = _load_policy(opts)
    dataset = _dataset(examples, chosen, data_root, opts.max_pixels)
    trainer = _trainer(opts, model, processor, dataset, names, weights, batch)
    checkpoints = out / CHECKPOINTS
    from transformers.trainer_utils import get_last_checkpoint

    resume_from = get_last_checkpoint(str(checkpoints)) if opts.resume and checkpoints.is_dir() else None
    console.print(f"[bold]rl-train[/]: {len(examples)} {opts.split} prompts x {opts.num_generations} generations, "
                  f"rewards {', '.join(f'{n} x{w:g}' for n, w in zip(names, weights))}, starting from {opts.model}"
                  + (f", resuming {resume_from}" if resume_from else ""))
    trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(str(out))
    means = reward_means(trainer.state.log_history)
    if trainer.is_world_process_zero():
        trainer.state.save_to_json(str(out / TRAINER_STATE))
        manifest = {
            "sample_ids": [ex.id for ex in examples],
            "split": opts.split,
            "rewards": names,
            "reward_weights": weights,
            "sha256": sha256,
            "started_from": opts.model,
            "num_generations": opts.num_generations,
            "global_step": trainer.state.global_step,
            "reward_means": means,
        }
        shutil.rmtree(checkpoints, ignore_errors=True)
        atomic_write(out / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    trainer.accelerator.wait_for_everyone()
    return RLResult("trained", len(examples), out, trainer.state.global_step, means)


def _reward_choice(names: list[str], weights: list[float] | None) -> tuple[list[str], list[float]]:
    unknown = [n for n in names if n not in REWARDS]
    if not names or unknown:
        raise MirdataError(f"--rewards {','.join(names)!r}: rewards are {', '.join(REWARDS)}")
    if len(set(names)) != len(names):
        raise MirdataError(f"--rewards {','.join(names)!r} names a reward twice")
    if weights is None:
        return names, [1.0] * len(names)
    if len(weights) != len(names) or not all(math.isfinite(w) for w in weights):
        raise MirdataError(f"--reward-weights needs one finite number per reward ({len(names)}: {', '.join(names)}), "
                           f"got {weights}")
    return names, [float(w) for w in weights]


def select_split(records: list[Record], split: str, source: str) -> list[Record]:
    """The records of one difficulty split (or all of them), in id order."""
    if split not in SPLITS:
        raise MirdataError(f"--split {split!r}: splits are {', '.join(SPLITS)}")
    if split != "all" and all(r.difficulty is None for r in records):
        raise MirdataError(f"{source}: no record has a difficulty; rate them with `mirdata difficulty`, or train "
                           "on every record with --split all")
    chosen = sorted((r for r in records if split == "all" or r.difficulty == split), key=lambda r: r.id)
    if not chosen:
        raise MirdataError(f"{source}: no {split} records to train on")
    return chosen


def _finished(out: Path, sha256: str, samples: int, resume: bool) -> RLResult:
    if not resume:
        raise MirdataError(f"{out}: a finished rl-train run is already there; pass --resume to keep it, or choose "
                           "another --output-dir")
    manifest = read_manifest(out)
    if manifest.get("sha256") != sha256:
        raise MirdataError(f"{out / MANIFEST}: that run trained on other data (sha256 differs); use the same --data "
                           "and --split, or another --output-dir")
    return RLResult("skipped", samples, out, int(manifest.get("global_step", 0)), manifest.get("reward_means", {}))


def reward_means(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """Each logged reward's mean over the logged steps: {"accuracy": …, "region": …, "reward": total}."""
    sums: dict[str, list[float]] = {}
    for entry in log_history:
        for key, value in entry.items():
            name = _reward_key(key)
            if name is not None and isinstance(value, (int, float)) and math.isfinite(value):
                sums.setdefault(name, []).append(float(value))
    return {name: sum(values) / len(values) for name, values in sums.items()}


def _reward_key(key: str) -> str | None:
    """'rewards/region_reward/mean' -> 'region'; 'reward' -> 'reward'; anything else -> None."""
    if key == "reward":
        return key
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "rewards" and parts[2] == "mean" and parts[1].endswith("_reward"):
        return parts[1].removesuffix("_reward")
    return None


# -- model, data, trainer -----------------------------------------------------------------------------------

def _load_policy(opts: RLTrainOptions) -> Any:
    """The curriculum checkpoint to train: a full model, or a LoRA adapter on its base model (trained further with
    --lora, merged into the base weights without)."""
    adapter_config = Path(opts.model) / "adapter_config.json"
    if not adapter_config.is_file():
        return _load_model(opts, opts.model)
    try:
        base = json.loads(adapter_config.read_text())["base_model_name_or_path"]
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise MirdataError(f"{adapter_config}: cannot read the adapter's base model ({e})") from e
    model = _load_model(replace(opts, model=base, lora=True), opts.model)
    if opts.lora:
        return model
    merged = model.merge_and_unload()
    merged.requires_grad_(True)  # peft froze the base weights; all of them train now
    return merged


def _dataset(examples: list[StageExample], records: list[Record], image_root: Path, max_pixels: int | None):
    """Rows TRL's GRPOTrainer reads: a conversational `prompt` with image parts in place, `images` loaded when a
    row is read (shrunk as in curriculum-train), and the columns the rewards read."""
    import datasets

    from mirdata.inference.prompt import interleave
    from mirdata.models import hf_messages

    # image parts stay empty in the prompt: TRL fills them, in order, from the row's "images"
    rows = [{"id": ex.id,
             "prompt": hf_messages(interleave(ex.prompt, [None] * len(ex.images), f"record {ex.id!r}")),
             "images": list(ex.images),
             "answer": record.answer,
             "options": list(record.options),
             "regions": [{"id": r.id, "image": r.image, "box": [float(v) for v in r.box], "label": r.label}
                         for r in record.regions]}
            for ex, record in zip(examples, records)]

    def load_images(batch: dict[str, list]) -> dict[str, list]:
        return {**batch, "images": [[load_image(str(image_root / rel), max_pixels) for rel in paths]
                                    for paths in batch["images"]]}

    return datasets.Dataset.from_list(rows).with_transform(load_images)


def _trainer(opts: RLTrainOptions, model: Any, processor: Any, dataset: Any, names: list[str], weights: list[float],
             batch: int) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=str(Path(opts.output_dir) / CHECKPOINTS),
        reward_weights=weights,
        num_generations=opts.num_generations,
        max_completion_length=opts.max_completion_length,
        temperature=opts.temperature,
        beta=opts.beta,
        max_steps=opts.max_steps if opts.max_steps is not None else -1,
        num_train_epochs=opts.num_train_epochs,
        per_device_train_batch_size=batch,
        **trainer_arguments(opts, GRPOConfig),
    )
    return GRPOTrainer(model=model, reward_funcs=[REWARDS[n] for n in names], args=args, train_dataset=dataset,
                       processing_class=processor)


def parse_weights(text: str | None) -> list[float] | None:
    """'1,0.5,1,1' -> [1.0, 0.5, 1.0, 1.0]; None stays None."""
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise MirdataError(f"--reward-weights {text!r}: write numbers separated by commas, e.g. 1,0.5,1,1") from None
