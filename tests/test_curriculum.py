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
from tests.conftest import write_simple_dataset

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
    seen: list[str] = []
    collator = train._collator_class()
    original = collator.conversation

    def recording(self, example):
        seen.append(example["id"])
        return original(self, example)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(collator, "conversation", recording)
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
    collator = train._collator_class()(processor=processor, completion_only_loss=True, image_root=rated_data)
    examples = build_curriculum(MIRStore(rated_data).read(), hard_fraction=0.5).examples(3)[:2]
    batch = collator.torch_call([train._row(e) for e in examples])
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


def test_max_pixels_shrinks_images_before_tokenizing(tiny_vlm, rated_data):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_vlm)
    collator = train._collator_class()(processor=processor, completion_only_loss=True, image_root=rated_data,
                                       max_pixels=1500)
    record = MIRStore(rated_data).read()[0]
    image = collator.load_image(record.images[0])
    assert image.size[0] * image.size[1] <= 1500 and image.size[0] / image.size[1] == pytest.approx(96 / 64, rel=0.05)
    unlimited = train._collator_class()(processor=processor, image_root=rated_data)
    assert unlimited.load_image(record.images[0]).size == (96, 64)


def test_resume_continues_an_interrupted_stage_from_its_checkpoint(tiny_vlm, rated_data, tmp_path):
    out = tmp_path / "out"
    args = ["curriculum-train", "--data", str(rated_data), "--model", str(tiny_vlm), "--output-dir", str(out),
            "--stages", "1", "--hard-fraction", "0.34", "--save-steps", "1", "--logging-steps", "1"]
    trainer_class = train._trainer_class()
    original = trainer_class.training_step
    steps = []

    def crash_on_second_step(self, *a, **kw):
        steps.append(1)
        if len(steps) == 2:
            raise KeyboardInterrupt
        return original(self, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer_class, "training_step", crash_on_second_step)
        crashed = CliRunner().invoke(app, args)
    assert crashed.exit_code != 0
    assert (out / "stage-1" / "checkpoints" / "checkpoint-1").is_dir()
    assert not (out / "stage-1" / "manifest.json").exists()

    result = CliRunner().invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "checkpoint-1" in result.output
    m = manifest(out, 1)
    assert m["global_step"] == 2 and len(m["sample_ids"]) == 2
    assert not (out / "stage-1" / "checkpoints").exists()
