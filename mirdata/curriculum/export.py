"""One curriculum stage for other fine-tuning frameworks, with the command line that trains on it in order.

* ms-swift: a JSONL file, one `{"messages": [user, assistant], "images": [...]}` object per line, `<image>` tags in
  the user turn where the images go. Order is kept by `--dataset_shuffle false --train_dataloader_shuffle false`
  (and `--split_dataset_ratio 0`, so that no sample is taken out for validation).
* LLaMA-Factory: a sharegpt-style JSON list with the same messages and images, plus its entry in the
  `dataset_info.json` next to it (merged into an existing one). Order is kept by `--disable_shuffling true`.

Image paths are absolute, so the files work from any working directory. The printed command reads the model from
`$MODEL` (for stage K > 0: the checkpoint of stage K-1) and, for LLaMA-Factory, the chat template from `$TEMPLATE`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from mirdata.curriculum.stages import (DEFAULT_HARD_FRACTION, DEFAULT_SEED, StageExample, build_curriculum,
                                       check_example, load_records, stage_level)
from mirdata.errors import MirdataError
from mirdata.store import MIRStore, atomic_write, parse_json_line

FORMATS = ("swift", "llamafactory")


def export_stage(root: str | Path, fmt: str, stage: int, out: str | Path,
                 hard_fraction: float = DEFAULT_HARD_FRACTION, seed: int = DEFAULT_SEED) -> str:
    """Write stage `stage` of the dataset at `root` to `out` in format `fmt` ("swift" or "llamafactory"), in
    training order. Returns the command line that trains on it without reordering."""
    if fmt not in FORMATS:
        raise MirdataError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out).absolute()
    data_root, records = load_records(root, image_cache=out.parent / f"{out.stem}_images")
    examples = build_curriculum(records, hard_fraction, seed, source=str(root)).examples(stage)
    if not examples:
        raise MirdataError(f"{root}: stage {stage} has no records (it trains on {stage_level(stage)} records and "
                           "there are none)")
    for example in examples:
        check_example(example, data_root)
    rows = [_conversation(example, data_root.absolute()) for example in examples]
    if fmt == "swift":
        atomic_write(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
        return _swift_command(out)
    atomic_write(out, (json.dumps(rows, ensure_ascii=False, indent=1) + "\n").encode())
    name = _register_llamafactory(out)
    return _llamafactory_command(out.parent, name)


def _conversation(example: StageExample, root: Path) -> dict[str, object]:
    return {
        "id": example.id,
        "messages": [{"role": "user", "content": example.prompt},
                     {"role": "assistant", "content": example.completion}],
        "images": [str(MIRStore(root).image_path(rel)) for rel in example.images],
    }


def _swift_command(out: Path) -> str:
    return " ".join([
        "swift sft", '--model "$MODEL"', f"--dataset {shlex.quote(str(out))}",
        "--dataset_shuffle false", "--train_dataloader_shuffle false", "--split_dataset_ratio 0",
        f"--output_dir {shlex.quote(str(out.with_suffix('')) + '-run')}",
    ])


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


def _llamafactory_command(dataset_dir: Path, name: str) -> str:
    return " ".join([
        "llamafactory-cli train", "--stage sft", "--do_train true", '--model_name_or_path "$MODEL"',
        '--template "$TEMPLATE"', f"--dataset_dir {shlex.quote(str(dataset_dir))}", f"--dataset {shlex.quote(name)}",
        "--disable_shuffling true", f"--output_dir {shlex.quote(str(dataset_dir / (name + '-run')))}",
    ])
