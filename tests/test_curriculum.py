"""`mirdata curriculum-train` end to end with the tiny vision-language model, on CPU, offline."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.curriculum import train
from mirdata.curriculum.stages import build_curriculum, examples_sha256
from mirdata.store import MIRStore
from tests.conftest import interrupted_at_second_step, write_simple_dataset

FAST = ["--per-device-train-batch-size", "3", "--logging-steps", "1", "--lr", "1e-3"]


def curriculum_cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["curriculum-train", *args])
    assert result.exit_code == 0, result.output
    return result.output


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rated_data(tmp_path_factory) -> Path:
    """12 records, 6 easy and 6 hard (3 sampled at --hard-fraction 0.5)."""
    root = tmp_path_factory.mktemp("data") / "d"
    write_simple_dataset(root, per_task=1)
    store = MIRStore(root)
    records = store.read()
    for i, r in enumerate(records):
        r.difficulty = "hard" if i % 2 else "easy"
    store.write(records)
    return root


@pytest.fixture(scope="module")
def full_run(tiny_vlm, rated_data, tmp_path_factory):
    """All six stages, recording the id of every sample the collator turns into tensors, in call order."""
    out = tmp_path_factory.mktemp("run") / "out"
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    seen: list[str] = []
    original = DataCollatorForVisionLanguageModeling.torch_call

    def recording(self, examples):
        seen.extend(example["id"] for example in examples)
        return original(self, examples)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DataCollatorForVisionLanguageModeling, "torch_call", recording)
        curriculum_cli("--data", str(rated_data), "--model", str(tiny_vlm), "--output-dir", str(out),
                       "--hard-fraction", "0.5", "--stages", "0-5", *FAST)
    return out, seen


def manifest(out: Path, stage: int) -> dict:
    return json.loads((out / f"stage-{stage}" / "manifest.json").read_text())


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_all_stages_write_checkpoints_and_manifests_in_data_order(full_run, rated_data, tiny_vlm):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out, _ = full_run
    cur = build_curriculum(MIRStore(rated_data).read(), hard_fraction=0.5)
    assert len(cur.easy) == 6 and len(cur.hard) == 3
    for stage in range(6):
        m = manifest(out, stage)
        examples = cur.examples(stage)
        assert m["stage"] == stage
        assert m["sample_ids"] == [e.id for e in examples]
        assert m["sha256"] == examples_sha256(examples)
        assert m["started_from"] == (str(tiny_vlm) if stage == 0 else str(out / f"stage-{stage - 1}"))
        assert not (out / f"stage-{stage}" / "checkpoints").exists()
    model = AutoModelForImageTextToText.from_pretrained(out / "stage-5")
    AutoProcessor.from_pretrained(out / "stage-5")
    assert sum(p.numel() for p in model.parameters()) > 0

    # the model is carried: every stage changes the weights it started from
    chain = [tiny_vlm] + [out / f"stage-{s}" for s in range(6)]
    for before, after in zip(chain, chain[1:], strict=False):
        a, b = weights(before), weights(after)
        assert a.keys() == b.keys()
        assert any(not torch.equal(a[k], b[k]) for k in a), (before, after)


def test_trainer_reads_samples_in_manifest_order(full_run):
    out, seen = full_run
    order = [i for stage in range(6) for i in manifest(out, stage)["sample_ids"]]
    # the pre-flight tokenizes every sample once, then training reads them in the same order, one epoch a stage
    assert seen == order + order


def test_loss_only_on_target_tokens(full_run, rated_data, tiny_vlm):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_vlm)
    collator = train._collator(processor)
    examples = build_curriculum(MIRStore(rated_data).read(), hard_fraction=0.5).examples(3)[:2]
    rows = train._dataset(examples, rated_data, max_pixels=None)
    batch = collator([rows[0], rows[1]])
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert (batch["labels"][batch["input_ids"] == image_token] == -100).all()
    tokenizer = processor.tokenizer
    for row, example in enumerate(examples):
        target = batch["labels"][row][batch["labels"][row] != -100]
        text = tokenizer.decode(target)
        assert text.strip() == example.completion + "<end_of_utterance>"
        # everything before the target is masked, the prompt and its images included
        first = int((batch["labels"][row] != -100).nonzero()[0])
        assert (batch["input_ids"][row][:first] == image_token).sum() == 4 * len(example.images)


def test_loss_falls_within_a_stage(tiny_vlm, rated_data, tmp_path):
    out = tmp_path / "out"
    curriculum_cli("--data", str(rated_data), "--model", str(tiny_vlm), "--output-dir", str(out),
                   "--stages", "1", "--hard-fraction", "0.34", "--epochs-per-stage", "6",
                   "--per-device-train-batch-size", "2", "--logging-steps", "1", "--lr", "5e-3")
    state = json.loads((out / "stage-1" / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 6  # 2 samples in one batch, 6 epochs
    assert sum(losses[-2:]) / 2 < 0.8 * sum(losses[:2]) / 2, losses


def test_resume_skips_finished_stages(full_run, tiny_vlm, rated_data, tmp_path):
    done, _ = full_run
    out = tmp_path / "out"
    shutil.copytree(done, out)
    args = ["--data", str(rated_data), "--model", str(tiny_vlm), "--output-dir", str(out), "--hard-fraction", "0.5",
            *FAST]
    shutil.rmtree(out / "stage-4")
    stale = CliRunner().invoke(app, ["curriculum-train", *args, "--resume"])
    assert stale.exit_code == 1 and "stage 4 is not finished but later stage(s) 5 are" in stale.output
    shutil.rmtree(out / "stage-5")
    before = {s: (out / f"stage-{s}" / "model.safetensors").read_bytes() for s in range(4)}

    refused = CliRunner().invoke(app, ["curriculum-train", *args])
    assert refused.exit_code == 1 and "--resume" in refused.output

    output = curriculum_cli(*args, "--resume")
    assert output.count("skipped") == 4 and output.count("trained") == 2
    for s in range(4):
        assert (out / f"stage-{s}" / "model.safetensors").read_bytes() == before[s]
    assert manifest(out, 4)["started_from"] == str(out / "stage-3")
    assert manifest(out, 5)["started_from"] == str(out / "stage-4")
    assert manifest(out, 5)["sample_ids"] == manifest(done, 5)["sample_ids"]

    other_order = CliRunner().invoke(app, ["curriculum-train", *args, "--resume", "--seed", "1"])
    assert other_order.exit_code == 1 and "sha256 differs" in other_order.output


def test_lora_adapter_is_carried_across_stages_and_runs(tiny_vlm, rated_data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    out = tmp_path / "out"
    common = ["--data", str(rated_data), "--model", str(tiny_vlm), "--output-dir", str(out), "--lora",
              "--lora-r", "4", "--hard-fraction", "0.34", *FAST]
    curriculum_cli(*common, "--stages", "1")
    curriculum_cli(*common, "--stages", "1-2", "--resume")
    for stage in (1, 2):
        folder = out / f"stage-{stage}"
        assert (folder / "adapter_config.json").is_file() and not (folder / "model.safetensors").exists()
    assert manifest(out, 2)["started_from"] == str(out / "stage-1")
    a, b = (load_file(out / f"stage-{s}" / "adapter_model.safetensors") for s in (1, 2))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(tiny_vlm), out / "stage-2")


def test_preflight_stops_before_training(tiny_vlm, rated_data, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["curriculum-train", "--data", str(rated_data), "--model", str(tiny_vlm),
                                      "--output-dir", str(out), "--max-length", "64"])
    assert result.exit_code == 1
    assert "tokens with its images tokenized, more than --max-length 64" in result.output
    assert any(f"record '{r.id}'" in result.output for r in MIRStore(rated_data).read())
    assert not (out / "stage-0").exists()


def test_unrated_data_is_refused(tiny_vlm, tmp_path):
    write_simple_dataset(tmp_path / "d", per_task=1)
    result = CliRunner().invoke(app, ["curriculum-train", "--data", str(tmp_path / "d"), "--model", str(tiny_vlm),
                                      "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 1 and "rate them first with `mirdata difficulty`" in result.output


def test_torchrun_two_processes_share_each_stage_in_order(full_run, tiny_vlm, rated_data, tmp_path):
    """The same command under torchrun (DDP over gloo on CPU): each stage's batches are split across the two
    processes, so a stage takes half the steps, and the manifests match the single-process run."""
    done, _ = full_run
    out = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mirdata", "curriculum-train", "--data", str(rated_data), "--model", str(tiny_vlm),
               "--output-dir", str(out), "--hard-fraction", "0.5", "--stages", "0-1",
               "--per-device-train-batch-size", "1", "--logging-steps", "1"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    for stage, samples in ((0, 6), (1, 3)):
        m = manifest(out, stage)
        assert m["sample_ids"] == manifest(done, stage)["sample_ids"] and m["sha256"] == manifest(done, stage)["sha256"]
        assert m["global_step"] == math.ceil(samples / 2)
    assert manifest(out, 1)["started_from"] == str(out / "stage-0")


def test_max_pixels_shrinks_images_before_tokenizing(rated_data):
    record = MIRStore(rated_data).read()[0]
    examples = build_curriculum(MIRStore(rated_data).read()).examples(0)
    (image, *_) = train._dataset(examples, rated_data, max_pixels=1500)[0]["images"]
    assert image.size[0] * image.size[1] <= 1500 and image.size[0] / image.size[1] == pytest.approx(96 / 64, rel=0.05)
    assert train.load_image(str(rated_data / record.images[0]), max_pixels=None).size == (96, 64)


def killed_at_second_step(args: list[str]):
    """Run the CLI with a KeyboardInterrupt raised as the trainer starts its second step."""
    from trl import SFTTrainer

    with interrupted_at_second_step(SFTTrainer):
        return CliRunner().invoke(app, args)


def test_resume_continues_an_interrupted_stage_from_its_checkpoint(tiny_vlm, rated_data, tmp_path):
    out = tmp_path / "out"
    args = ["curriculum-train", "--data", str(rated_data), "--model", str(tiny_vlm), "--output-dir", str(out),
            "--stages", "1", "--hard-fraction", "0.34", "--save-steps", "1", "--logging-steps", "1"]
    assert killed_at_second_step(args).exit_code != 0
    assert (out / "stage-1" / "checkpoints" / "checkpoint-1").is_dir()
    assert not (out / "stage-1" / "manifest.json").exists()

    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "checkpoint-1" in result.output
    m = manifest(out, 1)
    assert m["global_step"] == 2 and len(m["sample_ids"]) == 2
    assert not (out / "stage-1" / "checkpoints").exists()


def test_resume_skips_a_checkpoint_cut_short_while_it_was_written(tiny_vlm, rated_data, tmp_path):
    """A kill while the Trainer writes checkpoint-2 leaves a folder without trainer_state.json (written last):
    resume starts from checkpoint-1 and removes the broken one."""
    out = tmp_path / "out"
    args = ["curriculum-train", "--data", str(rated_data), "--model", str(tiny_vlm), "--output-dir", str(out),
            "--stages", "1", "--hard-fraction", "0.5", "--save-steps", "1", "--logging-steps", "1",
            "--per-device-train-batch-size", "1"]
    assert killed_at_second_step(args).exit_code != 0
    checkpoints = out / "stage-1" / "checkpoints"
    complete = checkpoints / "checkpoint-1"
    assert (complete / "trainer_state.json").is_file()
    broken = checkpoints / "checkpoint-2"  # what a kill during the next save leaves: weights half written
    broken.mkdir()
    (broken / "model.safetensors").write_bytes((complete / "model.safetensors").read_bytes()[:100])

    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "checkpoint-1" in result.output and "unfinished checkpoint" in result.output
    m = manifest(out, 1)
    assert m["global_step"] == 3 and len(m["sample_ids"]) == 3
    assert not checkpoints.exists()


def test_release_images_are_read_only_from_inside_the_release(tiny_vlm, rated_data, tmp_path):
    """A parquet row that names an image by path (no bytes) outside the release is refused before anything is
    copied; one inside the release is read."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mirdata.release import release_dataset

    repo = tmp_path / "repo"
    release_dataset(rated_data, repo, original=False, show_progress=False)
    from PIL import Image

    secret = tmp_path / "secret.png"  # a file of its own, like none in the dataset
    Image.new("RGB", (8, 8), (1, 2, 3)).save(secret)
    shard = next(repo.glob("data/sequential/speed_comparison/easy-*.parquet"))
    table = pq.read_table(shard)

    def naming(path: str) -> pa.Table:
        images = table.column("images").to_pylist()
        images[0] = [{"bytes": None, "path": path} for _ in images[0]]
        return table.set_column(table.schema.get_field_index("images"), "images",
                                pa.array(images, type=table.schema.field("images").type))

    pq.write_table(naming(str(secret)), shard)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["curriculum-train", "--data", str(repo), "--model", str(tiny_vlm),
                                      "--output-dir", str(out), "--stages", "0"])
    assert result.exit_code == 1 and "lies outside the release folder" in result.output
    cached = list((out / "images").rglob("*")) if (out / "images").exists() else []
    assert all(p.read_bytes() != secret.read_bytes() for p in cached if p.is_file())

    from mirdata.curriculum.stages import load_records

    inside_repo = tmp_path / "repo-inside"  # a folder of its own: datasets caches what it read from `repo`
    shutil.copytree(repo, inside_repo)
    (inside_repo / "extra").mkdir()
    (inside_repo / "extra" / "inside.png").write_bytes(secret.read_bytes())
    pq.write_table(naming("extra/inside.png"), inside_repo / shard.relative_to(repo))
    cache = tmp_path / "cache"
    _, records = load_records(inside_repo, image_cache=cache)
    assert len(records) == len(MIRStore(rated_data).read())
    first = datasets.load_dataset(str(inside_repo), split="easy").select_columns(["id"])[0]["id"]
    (record,) = [r for r in records if r.id == first]
    assert all((cache / p).read_bytes() == secret.read_bytes() for p in record.images)
