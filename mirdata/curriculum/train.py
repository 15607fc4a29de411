"""The staged easy-to-hard fine-tuning loop on transformers + TRL.

For each requested stage (see `mirdata.curriculum.stages`) one `SFTTrainer` run trains the model carried over from
the previous stage on that stage's examples:

* **order kept**: transformers' `train_sampling_strategy="sequential"`, so batches follow the curriculum order
  (easy before hard, shuffled only within a level by seed); under torchrun/accelerate the same order is split
  across processes batch by batch;
* **loss on the target only**: each sample is a TRL prompt-completion pair of structured chat messages, the user
  turn holding an image part where each `<image>` was, tokenized by TRL's `DataCollatorForVisionLanguageModeling`
  with `completion_only_loss`, so every prompt token, the images' tokens included, has label -100;
* **LoRA**: `SFTTrainer(peft_config=...)` adds the adapter to the base model; later stages keep training it;
* **checkpoints**: `OUT/stage-K/` holds the model (or the LoRA adapter) and processor after stage K, its
  `trainer_state.json`, and `manifest.json` `{"stage", "sample_ids", "sha256", ...}`, written last: a stage with a
  manifest is finished. Intermediate trainer checkpoints go to `OUT/stage-K/checkpoints/` and are removed once the
  stage is done; `resume` skips finished stages and continues an unfinished one from its last complete checkpoint
  (one whose `trainer_state.json`, which the Trainer writes last, reads back; a checkpoint cut short by a kill is
  removed);
* **pre-flight**, before any model is loaded or trained: one `<image>` per image in every prompt, every image
  present, and no sample longer than `max_length` tokens once its images are tokenized.

Multi-GPU: run the same command under `torchrun --nproc_per_node N -m mirdata curriculum-train ...` or
`accelerate launch -m mirdata curriculum-train ...`; only the main process writes files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mirdata.curriculum.stages import (DEFAULT_HARD_FRACTION, DEFAULT_SEED, STAGE_IDS, Curriculum, StageExample,
                                       build_curriculum, check_example, examples_sha256, load_records, stage_level)
from mirdata.errors import MirdataError
from mirdata.progress import console, progress_bar
from mirdata.schema.record import IMAGE_TOKEN
from mirdata.store import atomic_write

MANIFEST = "manifest.json"
TRAINER_STATE = "trainer_state.json"
CHECKPOINTS = "checkpoints"


@dataclass(kw_only=True)
class ModelTrainingOptions:
    """What every fine-tuning run of a vision-language model here sets: the model, its data and outputs, image
    size, LoRA, precision, checkpoints and logging (transformers' `TrainingArguments` names)."""

    data: Path
    model: str
    output_dir: Path
    seed: int = DEFAULT_SEED
    learning_rate: float = 2e-5
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


@dataclass(kw_only=True)
class CurriculumTrainOptions(ModelTrainingOptions):
    """Settings of a curriculum run."""

    stages: list[int] = field(default_factory=lambda: list(STAGE_IDS))
    hard_fraction: float = DEFAULT_HARD_FRACTION
    epochs_per_stage: float = 1.0
    per_device_train_batch_size: int = 1


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

def _user_content(prompt: str) -> list[dict[str, str | None]]:
    """The prompt as structured content: an image part where each `<image>` is, text parts between."""
    content: list[dict[str, str | None]] = []
    for k, piece in enumerate(prompt.split(IMAGE_TOKEN)):
        if k > 0:
            content.append({"type": "image", "text": None})
        if piece:
            content.append({"type": "text", "text": piece})
    return content


def _row(example: StageExample, image_root: Path) -> dict[str, Any]:
    """One TRL prompt-completion sample; `images` are paths, loaded when the trainer reads the row."""
    return {
        "id": example.id,
        "prompt": [{"role": "user", "content": _user_content(example.prompt)}],
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": example.completion}]}],
        "images": [str(image_root / rel) for rel in example.images],
    }


def load_image(path: str, max_pixels: int | None) -> Any:
    from PIL import Image

    from mirdata.inference.prompt import fit_pixels

    try:
        with Image.open(path) as im:
            image = im.convert("RGB")
    except OSError as e:
        raise MirdataError(f"{path}: cannot read the image ({e})") from e
    return fit_pixels(image, max_pixels=max_pixels)


def _dataset(examples: list[StageExample], image_root: Path, max_pixels: int | None):
    """The stage's samples in order; images are decoded (and shrunk to `max_pixels`) as rows are read."""
    import datasets

    def with_images(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {**batch, "images": [[load_image(p, max_pixels) for p in paths] for paths in batch["images"]]}

    return datasets.Dataset.from_list([_row(ex, image_root) for ex in examples]).with_transform(with_images)


def _collator(processor: Any) -> Any:
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    return DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)


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
    collator = _collator(processor)
    data = {s: _dataset(plan[s], data_root, opts.max_pixels) for s in to_train}
    _check_lengths(collator, plan, data, opts.max_length)

    start = _starting_point(out, stages, to_train[0], opts.model)
    model = _load_model(opts, start)
    for stage in to_train:
        new_adapter = opts.lora and start == opts.model  # else the model carries the adapter already
        results[stage], model = _train_stage(opts, stage, plan[stage], data[stage], model, processor, collator,
                                             start, new_adapter)
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


def _load_model(opts: ModelTrainingOptions, start: str) -> Any:
    """The model the first stage to train starts from: the base model (SFTTrainer adds a new LoRA adapter to it),
    or a finished stage's model or adapter."""
    import torch
    from transformers import AutoModelForImageTextToText

    dtype = torch.bfloat16 if opts.bf16 else torch.float32
    if not opts.lora:
        return _load(AutoModelForImageTextToText, start, "model", dtype=dtype)
    base = _load(AutoModelForImageTextToText, opts.model, "model", dtype=dtype)
    if start == opts.model:
        return base
    from peft import PeftModel

    return PeftModel.from_pretrained(base, start, is_trainable=True)  # carry on training the stage's adapter


def _check_lengths(collator: Any, plan: dict[int, list[StageExample]], data: dict[int, Any], max_length: int) -> None:
    """Tokenize every sample as the trainer will (images included) and refuse any longer than `max_length`."""
    total = sum(len(rows) for rows in data.values())
    with progress_bar(transient=True) as bar:
        job = bar.add_task("pre-flight: tokenizing samples", total=total)
        for stage, rows in data.items():
            for example, row in zip(plan[stage], rows, strict=True):
                n = int(collator([row])["input_ids"].shape[1])
                if n > max_length:
                    raise MirdataError(
                        f"record {example.id!r}: stage {stage} sample is {n} tokens with its images tokenized, more "
                        f"than --max-length {max_length}; raise --max-length or lower --max-pixels")
                bar.advance(job)


def _train_stage(opts: CurriculumTrainOptions, stage: int, examples: list[StageExample], dataset: Any, model: Any,
                 processor: Any, collator: Any, start: str, new_adapter: bool) -> tuple[StageResult, Any]:
    """Train one stage; returns its result and the trained model, which the next stage carries on."""
    from trl import SFTConfig, SFTTrainer

    directory = stage_dir(Path(opts.output_dir), stage)
    checkpoints = directory / CHECKPOINTS
    args = SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=opts.epochs_per_stage,
        per_device_train_batch_size=opts.per_device_train_batch_size,
        max_length=opts.max_length,
        completion_only_loss=True,
        train_sampling_strategy="sequential",  # the curriculum order is the point
        remove_unused_columns=False,  # the collator needs the raw rows
        **trainer_arguments(opts, SFTConfig),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                         processing_class=processor, peft_config=_lora_config(opts) if new_adapter else None)
    resume_from = last_complete_checkpoint(checkpoints) if opts.resume else None
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
    return StageResult(stage, "trained", len(examples), directory, output.training_loss), trainer.model


def _lora_config(opts: ModelTrainingOptions) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=opts.lora_r, lora_alpha=opts.lora_alpha, lora_dropout=0.05, target_modules="all-linear",
                      task_type="CAUSAL_LM")


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """The newest `checkpoint-N` whose trainer_state.json (the Trainer writes it last) reads back; newer ones, cut
    short by a kill while they were written, are removed so that neither the Trainer nor a later resume reads
    them. None when there is no complete checkpoint (the stage then starts over)."""
    if not checkpoints.is_dir():
        return None
    numbered = sorted((int(m.group(1)), p) for p in checkpoints.iterdir()
                      if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name)))
    for _, path in reversed(numbered):
        try:
            json.loads((path / TRAINER_STATE).read_text())
            return str(path)
        except (OSError, json.JSONDecodeError):
            console.print(f"[yellow]{path}: an unfinished checkpoint (no readable {TRAINER_STATE}); removing it[/]")
            shutil.rmtree(path)
    return None


def trainer_arguments(opts: ModelTrainingOptions, config_class: type) -> dict[str, Any]:
    """The `TrainingArguments` every trainer here shares: optimiser, precision, devices, checkpoints, logging."""
    import torch

    return dict(
        learning_rate=opts.learning_rate,
        gradient_accumulation_steps=opts.gradient_accumulation_steps,
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
        **_checkpointing_argument(config_class, opts.gradient_checkpointing),
    )


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
