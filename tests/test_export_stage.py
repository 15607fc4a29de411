"""`mirdata export --format swift|llamafactory --stage K`: one curriculum stage for other trainers, in order."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.curriculum.export import Tuning, export_stage
from mirdata.curriculum.stages import build_curriculum
from mirdata.errors import MirdataError
from mirdata.schema.record import IMAGE_TOKEN
from mirdata.store import MIRStore
from tests.conftest import write_simple_dataset


@pytest.fixture
def rated(tmp_path: Path) -> Path:
    root = tmp_path / "d"
    write_simple_dataset(root, per_task=2)
    store = MIRStore(root)
    records = store.read()
    for i, r in enumerate(records):
        r.difficulty = "hard" if i % 3 == 0 else "easy"
    store.write(records)
    return root


def flags(command: str) -> dict[str, str]:
    words = shlex.split(command)
    return {w: words[i + 1] for i, w in enumerate(words) if w.startswith("--") and i + 1 < len(words)}


def check_rows(rows: list[dict], root: Path, stage: int) -> None:
    examples = build_curriculum(MIRStore(root).read()).examples(stage)
    assert [r["id"] for r in rows] == [e.id for e in examples]  # training order kept
    for row, ex in zip(rows, examples, strict=True):
        user, assistant = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert user["content"] == ex.prompt and assistant["content"] == ex.completion
        assert user["content"].count(IMAGE_TOKEN) == len(row["images"]) == len(ex.images)
        for path in row["images"]:
            assert Path(path).is_absolute()
            with Image.open(path) as im:
                im.verify()


def test_swift_jsonl_in_order_with_a_command_that_keeps_it(rated, tmp_path):
    out = tmp_path / "x" / "stage2.jsonl"
    command = export_stage(rated, "swift", 2, out).command
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    check_rows(rows, rated, 2)
    assert command.startswith("swift sft ")
    f = flags(command)
    assert f["--dataset"] == str(out)
    assert f["--dataset_shuffle"] == f["--train_dataloader_shuffle"] == "false"
    assert f["--split_dataset_ratio"] == "0"


def test_llamafactory_json_and_dataset_info_merged(rated, tmp_path):
    folder = tmp_path / "lf"
    folder.mkdir()
    (folder / "dataset_info.json").write_text(json.dumps({"other": {"file_name": "other.json"}}))
    command = export_stage(rated, "llamafactory", 0, folder / "mir_stage0.json").command
    check_rows(json.loads((folder / "mir_stage0.json").read_text()), rated, 0)
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["other"] == {"file_name": "other.json"}  # existing entries kept
    entry = info["mir_stage0"]
    assert entry["file_name"] == "mir_stage0.json" and entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages", "images": "images"}
    assert entry["tags"]["user_tag"] == "user" and entry["tags"]["assistant_tag"] == "assistant"
    assert command.startswith("llamafactory-cli train ")
    f = flags(command)
    assert f["--dataset"] == "mir_stage0" and f["--dataset_dir"] == str(folder)
    assert f["--disable_shuffling"] == "true"


def test_cli_export_prints_the_command(rated, tmp_path):
    out = tmp_path / "s5.jsonl"
    result = CliRunner().invoke(app, ["export", str(rated), "--format", "swift", "--stage", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "--train_dataloader_shuffle false" in result.output
    assert len(out.read_text().splitlines()) == len(build_curriculum(MIRStore(rated).read()).hard)


def test_export_errors_name_the_problem(rated, tmp_path):
    with pytest.raises(MirdataError, match="unknown export format"):
        export_stage(rated, "axolotl", 0, tmp_path / "x.json")
    store = MIRStore(rated)
    records = store.read()
    for r in records:
        r.difficulty = "hard"
    store.write(records)
    with pytest.raises(MirdataError, match="stage 0 has no records"):
        export_stage(rated, "swift", 0, tmp_path / "x.jsonl")
    for r in records:
        r.difficulty = None
    store.write(records)
    result = CliRunner().invoke(app, ["export", str(rated), "--format", "llamafactory", "--stage", "1", "--out",
                                      str(tmp_path / "y.json")])
    assert result.exit_code == 1 and "mirdata difficulty" in result.output
    assert not (tmp_path / "y.json").exists()


# The arguments each tool's parser knows, of those the printed commands use (read from the dataclasses of
# ms-swift 4.6.0 `swift.arguments.SftArguments` and of LLaMA-Factory 0.9.5 `llamafactory.hparams` +
# `transformers.Seq2SeqTrainingArguments`). When a tool is installed its own parser is asked instead.
SWIFT_ARGUMENTS = {"model", "adapters", "dataset", "tuner_type", "lora_rank", "lora_alpha", "num_train_epochs",
                   "dataset_shuffle", "train_dataloader_shuffle", "split_dataset_ratio", "add_version", "output_dir"}
LLAMAFACTORY_ARGUMENTS = {"stage", "do_train", "model_name_or_path", "adapter_name_or_path", "template",
                          "dataset_dir", "dataset", "finetuning_type", "lora_rank", "lora_alpha",
                          "num_train_epochs", "disable_shuffling", "output_dir"}


def tool_parser(program: str):
    """The installed tool's argument parser (transformers' HfArgumentParser over its dataclasses), or None."""
    from transformers import HfArgumentParser

    try:
        if program == "swift":
            from swift.arguments import SftArguments

            return HfArgumentParser(SftArguments)
        from llamafactory.hparams.parser import _TRAIN_ARGS

        return HfArgumentParser(_TRAIN_ARGS)
    except ImportError:
        return None


def check_arguments(command: str) -> dict[str, str]:
    words = shlex.split(command)
    program = words[0]
    args = words[2:]  # "swift sft ..." / "llamafactory-cli train ..."
    names = {w[2:] for w in args if w.startswith("--")}
    parser = tool_parser(program)
    if parser is None:
        known = SWIFT_ARGUMENTS if program == "swift" else LLAMAFACTORY_ARGUMENTS
        assert names <= known, names - known
    else:
        _, unknown = parser.parse_known_args(args)
        assert unknown == [], unknown
    return flags(command)


@pytest.mark.parametrize("fmt", ["swift", "llamafactory"])
def test_stage_commands_chain_full_training_by_default(rated, tmp_path, fmt):
    """Every stage trains all weights for the curriculum's epochs; stage K > 0 starts from what stage K-1 wrote."""
    suffix = "jsonl" if fmt == "swift" else "json"
    first = export_stage(rated, fmt, 0, tmp_path / f"s0.{suffix}")
    later = export_stage(rated, fmt, 3, tmp_path / f"s3.{suffix}", tuning=Tuning(epochs=2))
    for result, epochs in ((first, "1"), (later, "2")):
        f = check_arguments(result.command)
        assert f["--num_train_epochs"] == epochs
        mode = "--tuner_type" if fmt == "swift" else "--finetuning_type"
        assert f[mode] == "full"
        assert f["--model" if fmt == "swift" else "--model_name_or_path"] == "$MODEL"
        assert "--adapters" not in f and "--adapter_name_or_path" not in f
        assert result.next_variable == "MODEL"
    run_dir = tmp_path / "s0-run"
    assert flags(first.command)["--output_dir"] == str(run_dir)
    if fmt == "swift":  # ms-swift writes RUN/checkpoint-N (no version folder): the next stage takes the last one
        assert flags(first.command)["--add_version"] == "false"
        for step in (2, 10, 9):
            (run_dir / f"checkpoint-{step}").mkdir(parents=True)
        shell = subprocess.run(["bash", "-c", f"{first.next_assignment}; echo $MODEL"], capture_output=True,
                               text=True, check=True)
        assert shell.stdout.strip() == str(run_dir / "checkpoint-10")
    else:  # LLaMA-Factory saves the final model in the output folder itself
        assert shlex.split(first.next_start) == [str(run_dir)]


@pytest.mark.parametrize("fmt", ["swift", "llamafactory"])
def test_lora_stage_commands_carry_the_adapter(rated, tmp_path, fmt):
    suffix = "jsonl" if fmt == "swift" else "json"
    tuning = Tuning(lora=True, lora_r=8, lora_alpha=16)
    first = export_stage(rated, fmt, 0, tmp_path / f"s0.{suffix}", tuning=tuning)
    later = export_stage(rated, fmt, 1, tmp_path / f"s1.{suffix}", tuning=tuning)
    model, adapter, mode = (("--model", "--adapters", "--tuner_type") if fmt == "swift" else
                            ("--model_name_or_path", "--adapter_name_or_path", "--finetuning_type"))
    f0, f1 = check_arguments(first.command), check_arguments(later.command)
    assert f0[mode] == f1[mode] == "lora" and f0["--lora_rank"] == "8" and f0["--lora_alpha"] == "16"
    assert f0[model] == f1[model] == "$BASE_MODEL"
    assert adapter not in f0 and f1[adapter] == "$ADAPTER"
    assert first.next_variable == "ADAPTER"
