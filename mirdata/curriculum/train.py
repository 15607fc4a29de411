"""The staged easy-to-hard fine-tuning loop on transformers + TRL.

For each requested stage (see `mirdata.curriculum.stages`) one `SFTTrainer` run trains the model carried over from
the previous stage on that stage's examples:

* **order kept**: the trainer's sampler is a `SequentialSampler`, so batches follow the curriculum order (easy
  before hard, shuffled only within a level by seed); under torchrun/accelerate the same order is split across
  processes batch by batch;
* **loss on the target only**: prompt and completion are tokenized as TRL's prompt-completion pairs with
  `completion_only_loss`, so every prompt token, the images' tokens included, has label -100;
* **checkpoints**: `OUT/stage-K/` holds the model (or the LoRA adapter) and processor after stage K, its
  `trainer_state.json`, and `manifest.json` `{"stage", "sample_ids", "sha256", ...}`, written last: a stage with a
  manifest is finished. Intermediate trainer checkpoints go to `OUT/stage-K/checkpoints/` and are removed once the
  stage is done; `resume` skips finished stages and continues an unfinished one from its last checkpoint;
* **pre-flight**, before any model is loaded or trained: one `<image>` per image in every prompt, every image
  present, and no sample longer than `max_length` tokens once its images are tokenized.

Multi-GPU: run the same command under `torchrun --nproc_per_node N -m mirdata curriculum-train ...` or
`accelerate launch -m mirdata curriculum-train ...`; only the main process writes files.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mirdata.curriculum.stages import (DEFAULT_HARD_FRACTION, DEFAULT_SEED, STAGE_IDS, Curriculum, StageExample,
                                       build_curriculum, check_example, examples_sha256, load_records, stage_level)
from mirdata.errors import MirdataError
from mirdata.progress import console, progress_bar
from mirdata.store import atomic_write

MANIFEST = "manifest.json"
TRAINER_STATE = "trainer_state.json"
CHECKPOINTS = "checkpoints"


@dataclass
class CurriculumTrainOptions:
    """Settings of a curriculum run; training settings carry transformers' `TrainingArguments` names."""

    data: Path
    model: str
    output_dir: Path
    stages: list[int] = field(default_factory=lambda: list(STAGE_IDS))
    hard_fraction: float = DEFAULT_HARD_FRACTION
    seed: int = DEFAULT_SEED
    epochs_per_stage: float = 1.0
    learning_rate: float = 2e-5
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    max_length: int = 4096
    max_pixels: int | None = None
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    bf16: bool = False
    gradient_checkpointing: bool = False
    logging_steps: int = 10
    save_steps: int = 500
    resume: bool = False
    report_to: str = "none"


@dataclass
class StageResult:
    stage: int
    status: str  # "trained" or "skipped" (finished in an earlier run)
    samples: int
    path: Path
    train_loss: float | None = None


def stage_dir(output_dir: Path, stage: int) -> Path:
    return output_dir / f"stage-{stage}"


# -- data to tensors ---------------------------------------------------------------------------------------

@functools.cache
def _collator_class() -> type:
    """TRL's vision-language collator, taught to read our rows: image paths loaded (and shrunk to `max_pixels`)
    and `<image>` placeholders turned into image parts of the user turn, in place."""
    from PIL import Image
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from mirdata.inference.prompt import fit_pixels, hf_messages, interleave

    @dataclass
    class CurriculumCollator(DataCollatorForVisionLanguageModeling):
        image_root: Path = Path(".")
        max_pixels: int | None = None

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            return super().torch_call([self.conversation(ex) for ex in examples])

        def conversation(self, example: dict[str, Any]) -> dict[str, Any]:
            images = [self.load_image(rel) for rel in example["images"]]
            return {
                "prompt": hf_messages(interleave(example["prompt"], images, f"record {example['id']!r}")),
                "completion": [{"role": "assistant", "content": [{"type": "text", "text": example["completion"]}]}],
                "images": images,
            }

        def load_image(self, rel: str) -> Image.Image:
            path = self.image_root / rel
            try:
                with Image.open(path) as im:
                    image = im.convert("RGB")
            except OSError as e:
                raise MirdataError(f"{path}: cannot read the image ({e})") from e
            return fit_pixels(image, max_pixels=self.max_pixels)

        def sequence_length(self, example: StageExample) -> int:
            return int(self.torch_call([_row(example)])["input_ids"].shape[1])

    return CurriculumCollator


def _row(example: StageExample) -> dict[str, Any]:
    return {"id": example.id, "prompt": example.prompt, "completion": example.completion,
            "images": list(example.images)}


def _dataset(examples: list[StageExample]):
    import datasets

    return datasets.Dataset.from_list([_row(ex) for ex in examples])


# -- the run ------------------------------------------------------------------------------------------------

def train_curriculum(opts: CurriculumTrainOptions) -> list[StageResult]:
    """Train the requested stages in order; returns one result per stage (trained or skipped)."""
    stages = sorted(set(opts.stages))
    if not stages or any(s not in STAGE_IDS for s in stages):
        raise MirdataError(f"--stages must name stages among 0-5, got {opts.stages}")
    out = Path(opts.output_dir)
    data_root, records = load_records(opts.data, image_cache=out / "images")
    curriculum = build_curriculum(records, opts.hard_fraction, opts.seed, source=str(opts.data))
    plan = _plan(curriculum, stages, str(opts.data))
    for examples in plan.values():
        for example in examples:
            check_example(example, data_root)
    finished = _finished_stages(out, plan, opts.resume)
    to_train = [s for s in stages if s not in finished]
    results = {s: StageResult(s, "skipped", len(plan[s]), stage_dir(out, s)) for s in finished}
    if not to_train:
        return [results[s] for s in stages]

    from transformers import AutoProcessor

    processor = _load(AutoProcessor, opts.model, "processor")
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    collator = _collator_class()(processor=processor, completion_only_loss=True, image_root=data_root,
                                 max_pixels=opts.max_pixels)
    _check_lengths(collator, {s: plan[s] for s in to_train}, opts.max_length)

    start = _starting_point(out, stages, to_train[0], opts.model)
    model = _load_model(opts, start)
    for stage in to_train:
        results[stage] = _train_stage(opts, stage, plan[stage], model, processor, collator, start)
        start = str(stage_dir(out, stage))
    return [results[s] for s in stages]


def _plan(curriculum: Curriculum, stages: list[int], source: str) -> dict[int, list[StageExample]]:
    plan = {}
    for stage in stages:
        examples = curriculum.examples(stage)
        if not examples:
            raise MirdataError(f"{source}: stage {stage} trains on {stage_level(stage)} records and there are none; "
                               f"leave it out with --stages")
        plan[stage] = examples
    return plan


def _finished_stages(out: Path, plan: dict[int, list[StageExample]], resume: bool) -> list[int]:
    finished = [s for s in plan if (stage_dir(out, s) / MANIFEST).is_file()]
    if finished and not resume:
        raise MirdataError(f"{out}: stage(s) {', '.join(map(str, finished))} are already trained there; pass --resume "
                           "to skip them, or choose another --output-dir")
    stages = sorted(plan)
    if finished != stages[:len(finished)]:  # a finished stage after an unfinished one grew from an older model
        unfinished = next(s for s in stages if s not in finished)
        stale = [s for s in finished if s > unfinished]
        raise MirdataError(f"{out}: stage {unfinished} is not finished but later stage(s) "
                           f"{', '.join(map(str, stale))} are; remove "
                           f"{', '.join(str(stage_dir(out, s)) for s in stale)} and resume")
    for s in finished:
        manifest = read_manifest(stage_dir(out, s))
        if manifest.get("sha256") != examples_sha256(plan[s]):
            raise MirdataError(f"{stage_dir(out, s) / MANIFEST}: stage {s} was trained on other data or another order "
                               "(sha256 differs); use the same --data, --hard-fraction and --seed, or another "
                               "--output-dir")
    return finished


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise MirdataError(f"{path}: cannot read the stage manifest ({e})") from e


def _starting_point(out: Path, stages: list[int], first: int, base_model: str) -> str:
    """The checkpoint the first stage to train starts from: the stage before it in this run, when an earlier run
    finished it, else the base model."""
    earlier = [s for s in stages if s < first]
    return str(stage_dir(out, earlier[-1])) if earlier else base_model


def _load(cls: Any, path: str, what: str, **kwargs: Any) -> Any:
    if (Path(path).is_absolute() or path.startswith(".")) and not Path(path).is_dir():
        raise MirdataError(f"{path}: no such model folder")
    try:
        return cls.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise MirdataError(f"{path}: cannot load the {what} ({e})") from e


def _load_model(opts: CurriculumTrainOptions, start: str) -> Any:
    import torch
    from transformers import AutoModelForImageTextToText

    dtype = torch.bfloat16 if opts.bf16 else torch.float32
    if not opts.lora:
        return _load(AutoModelForImageTextToText, start, "model", dtype=dtype)
    from peft import LoraConfig, PeftModel, get_peft_model

    base = _load(AutoModelForImageTextToText, opts.model, "model", dtype=dtype)
    if start != opts.model:  # carry on training the adapter of the previous stage
        return PeftModel.from_pretrained(base, start, is_trainable=True)
    config = LoraConfig(r=opts.lora_r, lora_alpha=opts.lora_alpha, lora_dropout=0.05, target_modules="all-linear",
                        task_type="CAUSAL_LM")
    return get_peft_model(base, config)


def _check_lengths(collator: Any, plan: dict[int, list[StageExample]], max_length: int) -> None:
    """Tokenize every sample as the trainer will (images included) and refuse any longer than `max_length`."""
    total = sum(len(examples) for examples in plan.values())
    with progress_bar(transient=True) as bar:
        job = bar.add_task("pre-flight: tokenizing samples", total=total)
        for stage, examples in plan.items():
            for example in examples:
                n = collator.sequence_length(example)
                if n > max_length:
                    raise MirdataError(
                        f"record {example.id!r}: stage {stage} sample is {n} tokens with its images tokenized, more "
                        f"than --max-length {max_length}; raise --max-length or lower --max-pixels")
                bar.advance(job)


@functools.cache
def _trainer_class() -> type:
    from torch.utils.data import SequentialSampler
    from trl import SFTTrainer

    class OrderedSFTTrainer(SFTTrainer):
        """SFTTrainer that reads the training set in order: the curriculum order is the point."""

        def _get_train_sampler(self, train_dataset: Any = None) -> SequentialSampler:
            return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    return OrderedSFTTrainer


def _train_stage(opts: CurriculumTrainOptions, stage: int, examples: list[StageExample], model: Any, processor: Any,
                 collator: Any, start: str) -> StageResult:
    import torch
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig

    directory = stage_dir(Path(opts.output_dir), stage)
    checkpoints = directory / CHECKPOINTS
    args = SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=opts.epochs_per_stage,
        learning_rate=opts.learning_rate,
        per_device_train_batch_size=opts.per_device_train_batch_size,
        gradient_accumulation_steps=opts.gradient_accumulation_steps,
        max_length=opts.max_length,
        completion_only_loss=True,
        remove_unused_columns=False,  # the collator needs the raw rows
        bf16=opts.bf16,
        dataloader_pin_memory=torch.cuda.is_available(),
        # torchrun on CPU-only machines: the Trainer runs DDP over gloo only when told to use the CPU
        use_cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1,
        logging_steps=opts.logging_steps,
        save_strategy="steps",
        save_steps=opts.save_steps,
        save_total_limit=1,
        seed=opts.seed,
        report_to=opts.report_to,
        **_checkpointing_argument(SFTConfig, opts.gradient_checkpointing),
    )
    trainer = _trainer_class()(model=model, args=args, train_dataset=_dataset(examples), data_collator=collator,
                               processing_class=processor)
    resume_from = get_last_checkpoint(str(checkpoints)) if opts.resume and checkpoints.is_dir() else None
    console.print(f"[bold]stage {stage}[/]: {len(examples)} {stage_level(stage)} samples, starting from {start}"
                  + (f", resuming {resume_from}" if resume_from else ""))
    output = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(str(directory))
    if trainer.is_world_process_zero():
        trainer.state.save_to_json(str(directory / TRAINER_STATE))
        manifest = {
            "stage": stage,
            "level": stage_level(stage),
            "sample_ids": [ex.id for ex in examples],
            "sha256": examples_sha256(examples),
            "started_from": start,
            "epochs": opts.epochs_per_stage,
            "global_step": trainer.state.global_step,
            "train_loss": output.training_loss,
        }
        shutil.rmtree(checkpoints, ignore_errors=True)
        atomic_write(directory / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    trainer.accelerator.wait_for_everyone()
    return StageResult(stage, "trained", len(examples), directory, output.training_loss)


def _checkpointing_argument(config_class: type, enabled: bool) -> dict[str, bool]:
    """transformers 5 renamed `gradient_checkpointing` to `activation_checkpointing` (the old name warns)."""
    names = {f.name for f in fields(config_class)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": enabled}


def parse_stages(text: str) -> list[int]:
    """'0-5' → [0, 1, 2, 3, 4, 5]; '0,2-3' → [0, 2, 3]."""
    stages: set[int] = set()
    for part in text.replace(" ", "").split(","):
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise MirdataError(f"--stages {text!r}: write stages as ranges and lists, e.g. 0-5 or 0,2-4") from None
        if first > last or first not in STAGE_IDS or last not in STAGE_IDS:
            raise MirdataError(f"--stages {text!r}: stages are 0-5")
        stages.update(range(first, last + 1))
    return sorted(stages)
