"""One curriculum stage for other fine-tuning frameworks, with the command line that trains on it in order.

* ms-swift: a JSONL file, one `{"messages": [user, assistant], "images": [...]}` object per line, `<image>` tags in
  the user turn where the images go. Order is kept by `--dataset_shuffle false --train_dataloader_shuffle false`
  (and `--split_dataset_ratio 0`, so that no sample is taken out for validation).
* LLaMA-Factory: a sharegpt-style JSON list with the same messages and images, plus its entry in the
  `dataset_info.json` next to it (merged into an existing one). Order is kept by `--disable_shuffling true`.

Image paths are absolute, so the files work from any working directory.

The printed command trains the way `mirdata curriculum-train` does: all weights by default, for `epochs` epochs,
each stage starting from the model the previous stage wrote (`$MODEL`: the base model for stage 0, then what
`StageCommand.next_start` names). With `lora`, every stage trains one LoRA adapter on the base model
(`$BASE_MODEL`) and hands it on: stage K > 0 loads the adapter of stage K-1 (`$ADAPTER`) and keeps training it, as
both tools stop on a model folder that holds only an adapter. LLaMA-Factory also reads the chat template from
`$TEMPLATE`.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from mirdata.curriculum.stages import (DEFAULT_HARD_FRACTION, DEFAULT_SEED, StageExample, build_curriculum,
                                       check_example, load_records, stage_level)
from mirdata.errors import MirdataError
from mirdata.store import MIRStore, atomic_write, parse_json_line

FORMATS = ("swift", "llamafactory")


@dataclass(frozen=True)
class Tuning:
    """How every stage trains; the defaults are `mirdata curriculum-train`'s."""

    epochs: float = 1.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32


@dataclass(frozen=True)
class StageCommand:
    """The command that trains one stage, and what the next stage starts from: a shell word for `$MODEL` (all
    weights) or `$ADAPTER` (LoRA)."""

    command: str
    next_variable: str
    next_start: str

    @property
    def next_assignment(self) -> str:
        return f"{self.next_variable}={self.next_start}"


def export_stage(root: str | Path, fmt: str, stage: int, out: str | Path,
                 hard_fraction: float = DEFAULT_HARD_FRACTION, seed: int = DEFAULT_SEED,
                 tuning: Tuning = Tuning()) -> StageCommand:
    """Write stage `stage` of the dataset at `root` to `out` in format `fmt` ("swift" or "llamafactory"), in
    training order. Returns the command line that trains on it without reordering."""
    if fmt not in FORMATS:
        raise MirdataError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if tuning.epochs <= 0:
        raise MirdataError(f"--epochs-per-stage must be positive, got {tuning.epochs}")
    out = Path(out).absolute()
    data_root, records = load_records(root, image_cache=out.parent / f"{out.stem}_images")
    examples = build_curriculum(records, hard_fraction, seed, source=str(root)).examples(stage)
    if not examples:
        raise MirdataError(f"{root}: stage {stage} has no records (it trains on {stage_level(stage)} records and "
                           "there are none)")
    for example in examples:
        check_example(example, data_root)
    rows = [_conversation(example, data_root.absolute()) for example in examples]
    run_dir = out.parent / f"{out.stem}-run"
    if fmt == "swift":
        atomic_write(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
        return _swift_command(out, run_dir, stage, tuning)
    atomic_write(out, (json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode())
    name = _register_llamafactory(out)
    return _llamafactory_command(out.parent, name, run_dir, stage, tuning)


def _conversation(example: StageExample, root: Path) -> dict[str, object]:
    return {
        "id": example.id,
        "messages": [{"role": "user", "content": example.prompt},
                     {"role": "assistant", "content": example.completion}],
        "images": [str(MIRStore(root).image_path(rel)) for rel in example.images],
    }


def _start_flags(model_flag: str, adapter_flag: str, stage: int, tuning: Tuning) -> list[str]:
    if not tuning.lora:
        return [f'{model_flag} "$MODEL"']
    return [f'{model_flag} "$BASE_MODEL"'] + ([f'{adapter_flag} "$ADAPTER"'] if stage > 0 else [])


def _swift_command(out: Path, run_dir: Path, stage: int, tuning: Tuning) -> StageCommand:
    mode = (["--tuner_type lora", f"--lora_rank {tuning.lora_r}", f"--lora_alpha {tuning.lora_alpha}"]
            if tuning.lora else ["--tuner_type full"])
    command = " ".join([
        "swift sft", *_start_flags("--model", "--adapters", stage, tuning), f"--dataset {shlex.quote(str(out))}",
        *mode, f"--num_train_epochs {tuning.epochs:g}",
        "--dataset_shuffle false", "--train_dataloader_shuffle false", "--split_dataset_ratio 0",
        # without a version subfolder the run's checkpoints lie at a known place for the next stage
        "--add_version false", f"--output_dir {shlex.quote(str(run_dir))}",
    ])
    last_checkpoint = f'"$(ls -d {shlex.quote(str(run_dir))}/checkpoint-* | sort -V | tail -n 1)"'
    return StageCommand(command, "ADAPTER" if tuning.lora else "MODEL", last_checkpoint)


def _register_llamafactory(out: Path) -> str:
    """Add (or replace) this file's entry in dataset_info.json beside it; returns the dataset name."""
    info_path = out.parent / "dataset_info.json"
    info = {}
    if info_path.is_file():
        info, reason = parse_json_line(info_path.read_bytes())
        if reason is not None or not isinstance(info, dict):
            raise MirdataError(f"{info_path}: {reason or 'not a JSON object'}; fix or delete it")
    name = out.stem
    info[name] = {
        "file_name": out.name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }
    atomic_write(info_path, (json.dumps(info, ensure_ascii=False, indent=2) + "\n").encode())
    return name


def _llamafactory_command(dataset_dir: Path, name: str, run_dir: Path, stage: int, tuning: Tuning) -> StageCommand:
    mode = (["--finetuning_type lora", f"--lora_rank {tuning.lora_r}", f"--lora_alpha {tuning.lora_alpha}"]
            if tuning.lora else ["--finetuning_type full"])
    command = " ".join([
        "llamafactory-cli train", "--stage sft", "--do_train true",
        *_start_flags("--model_name_or_path", "--adapter_name_or_path", stage, tuning),
        '--template "$TEMPLATE"', f"--dataset_dir {shlex.quote(str(dataset_dir))}", f"--dataset {shlex.quote(name)}",
        *mode, f"--num_train_epochs {tuning.epochs:g}",
        "--disable_shuffling true", f"--output_dir {shlex.quote(str(run_dir))}",
    ])
    # LLaMA-Factory saves the final model (or adapter) in the output folder itself
    return StageCommand(command, "ADAPTER" if tuning.lora else "MODEL", shlex.quote(str(run_dir)))
