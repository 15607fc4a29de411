"""`mirdata rl-train` end to end: GRPO for two steps with the tiny vision-language model on CPU, offline."""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.rl import rewards
from mirdata.schema.record import Record
from mirdata.store import MIRStore
from tests.conftest import interrupted_at_second_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--num-generations", "2", "--max-completion-length", "8", "--logging-steps", "1", "--max-steps", "2",
        "--max-pixels", "4096"]


@pytest.fixture(scope="module")
def hard_data(tmp_path_factory) -> Path:
    """Three chart_analysis records from `mirdata build`, two rated hard and one easy."""
    out = tmp_path_factory.mktemp("data") / "mir"
    subprocess.run([sys.executable, "-m", "mirdata", "build", "--task", "chart_analysis", "--num", "3", "--out",
                    str(out)], check=True, capture_output=True, env={**os.environ})
    store = MIRStore(out)
    records = store.read()
    for k, r in enumerate(records):
        r.difficulty = "easy" if k == 1 else "hard"
    store.write(records)
    return out


def rl_cli(*args: str):
    return CliRunner().invoke(app, ["rl-train", *args])


def recorded_rl_cli(*args: str):
    """rl-train with every reward call recorded (its completions, columns and scores) on its way to the reward."""
    calls: dict[str, list[dict]] = {name: [] for name in rewards.REWARDS}

    def recording(name, reward):
        @functools.wraps(reward)
        def wrapper(completions, **columns):
            scores = reward(completions, **columns)
            calls[name].append({"completions": completions, "scores": scores, **columns})
            return scores
        return wrapper

    with pytest.MonkeyPatch.context() as mp:
        for name, reward in list(rewards.REWARDS.items()):
            mp.setitem(rewards.REWARDS, name, recording(name, reward))
        result = rl_cli(*args)
    assert result.exit_code == 0, result.output
    return result, calls


@pytest.fixture(scope="module")
def run(tiny_vlm: Path, hard_data: Path, tmp_path_factory):
    """Two GRPO steps with all four rewards."""
    out = tmp_path_factory.mktemp("rl") / "out"
    result, calls = recorded_rl_cli("--data", str(hard_data), "--model", str(tiny_vlm), "--output-dir", str(out),
                                    "--reward-weights", "1,0.5,2,1", *FAST)
    return out, calls, result.output


def test_checkpoint_and_manifest_are_written(run, hard_data: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out, _, output = run
    manifest = json.loads((out / "manifest.json").read_text())
    hard = sorted(r.id for r in MIRStore(hard_data).read() if r.difficulty == "hard")
    assert manifest["sample_ids"] == hard and manifest["split"] == "hard"
    assert manifest["rewards"] == ["accuracy", "format", "region", "image"]
    assert manifest["reward_weights"] == [1.0, 0.5, 2.0, 1.0]
    assert len(manifest["sha256"]) == 64 and manifest["global_step"] == 2
    assert AutoModelForImageTextToText.from_pretrained(out) is not None and AutoProcessor.from_pretrained(out)
    assert not (out / "checkpoints").exists()
    assert "region" in output and "checkpoint" in output


def test_logged_rewards_are_finite_per_reward_and_step(run) -> None:
    out, _, _ = run
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    steps = [entry for entry in history if "reward" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    for entry in steps:
        for name in ("accuracy", "format", "region", "image"):
            value = entry[f"rewards/{name}_reward/mean"]
            assert math.isfinite(value) and 0.0 <= value <= 1.0
        assert math.isfinite(entry["reward"])


def check_calls(calls: dict[str, list[dict]], records: dict[str, Record]) -> None:
    for name, made in calls.items():
        assert len(made) == 2, name  # one call per step: one prompt x 2 generations
        for call in made:
            assert len(call["completions"]) == 2 and len(set(call["id"])) == 1
            record = records[call["id"][0]]
            assert record.difficulty == "hard"
            assert call["answer"] == [record.answer] * 2 and call["options"] == [record.options] * 2
            assert [[(g["image"], g["box"]) for g in regions] for regions in call["regions"]] \
                == [[(g.image, [float(v) for v in g.box]) for g in record.regions]] * 2
            # the prompt: the question with its images in place (shrunk to --max-pixels) and the options, no reasoning
            content = call["prompts"][0][0]["content"]
            text = "".join(part["text"] for part in content if part["type"] == "text")
            assert record.options[0] in text and record.summary not in text and "<summary>" not in text
            images = [part["image"] for part in content if part["type"] == "image"]
            assert len(images) == len(record.images)
            assert all(isinstance(im, Image.Image) and im.width * im.height <= 4096 for im in images)
            assert all(c[0]["role"] == "assistant" and isinstance(c[0]["content"], str) for c in call["completions"])
            assert all(s is not None and 0.0 <= s <= 1.0 for s in call["scores"])


def test_rewards_see_the_generations_and_the_records_columns(run, hard_data: Path) -> None:
    _, calls, _ = run
    check_calls(calls, {r.id: r for r in MIRStore(hard_data).read()})


def test_a_released_dataset_trains_with_its_regions(tiny_vlm: Path, hard_data: Path, tmp_path: Path) -> None:
    from mirdata.release import release_dataset

    release_dataset(hard_data, tmp_path / "release", original=False)
    _, calls = recorded_rl_cli("--data", str(tmp_path / "release"), "--model", str(tiny_vlm), "--output-dir",
                               str(tmp_path / "o"), *FAST)
    check_calls(calls, {r.id: r for r in MIRStore(hard_data).read()})
    assert (tmp_path / "o" / "manifest.json").is_file()


def test_a_finished_run_is_kept(run, tiny_vlm: Path, hard_data: Path) -> None:
    out, _, _ = run
    before = (out / "model.safetensors").read_bytes()
    again = rl_cli("--data", str(hard_data), "--model", str(tiny_vlm), "--output-dir", str(out), *FAST)
    assert again.exit_code == 1 and "already there" in again.output and "--resume" in again.output
    kept = rl_cli("--data", str(hard_data), "--model", str(tiny_vlm), "--output-dir", str(out), "--resume", *FAST)
    assert kept.exit_code == 0 and "skipped" in kept.output
    assert (out / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--rewards", "accuracy,speed"], "rewards are accuracy, format, region, image"),
    (["--reward-weights", "1,2"], "one finite number per reward"),
    (["--split", "medium"], "splits are hard, easy, all"),
    (["--per-device-train-batch-size", "3"], "multiple of --num-generations"),
    (["--max-length", "20"], "raise --max-length"),
])
def test_bad_arguments_stop_before_training(args, message, tiny_vlm: Path, hard_data: Path, tmp_path: Path) -> None:
    result = rl_cli("--data", str(hard_data), "--model", str(tiny_vlm), "--output-dir", str(tmp_path / "o"),
                    *FAST, *args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_unrated_data_is_refused(tiny_vlm: Path, hard_data: Path, tmp_path: Path) -> None:
    store = MIRStore(hard_data)
    unrated = MIRStore(tmp_path / "unrated")
    records = store.read()
    for r in records:
        r.difficulty = None
        for rel in r.images:
            (unrated.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (unrated.root / rel).write_bytes((store.root / rel).read_bytes())
    unrated.write(records)
    result = rl_cli("--data", str(unrated.root), "--model", str(tiny_vlm), "--output-dir", str(tmp_path / "o"), *FAST)
    assert result.exit_code == 1 and "no record has a difficulty" in result.output and "--split all" in result.output


def test_a_reward_with_spread_moves_the_weights(tiny_vlm: Path, hard_data: Path, tmp_path: Path) -> None:
    """The tiny model's random text scores 0 on every real reward, so GRPO has no advantage to follow; a reward that
    differs between the two generations (their share of digits) must change the weights."""
    from safetensors.torch import load_file

    def digits(completions, **_):
        texts = [rewards.completion_text(c) for c in completions]
        return [sum(ch.isdigit() for ch in t) / max(len(t), 1) + 0.01 * k for k, t in enumerate(texts)]

    digits.__name__ = "digits_reward"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(rewards.REWARDS, "format", digits)
        result = rl_cli("--data", str(hard_data), "--model", str(tiny_vlm), "--output-dir", str(tmp_path / "o"),
                        "--rewards", "format", "--lr", "1e-3", *FAST)
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "o" / "trainer_state.json").read_text())["log_history"]
    assert all(entry["reward_std"] > 0 and entry["grad_norm"] > 0 for entry in history if "reward" in entry)
    before, after = load_file(tiny_vlm / "model.safetensors"), load_file(tmp_path / "o" / "model.safetensors")
    assert any(not (before[k] == after[k]).all() for k in before)


def test_a_curriculum_lora_adapter_is_trained_further_or_merged(tiny_vlm: Path, hard_data: Path,
                                                                 tmp_path: Path) -> None:
    curriculum = CliRunner().invoke(app, ["curriculum-train", "--data", str(hard_data), "--model", str(tiny_vlm),
                                          "--output-dir", str(tmp_path / "cur"), "--stages", "5", "--lora",
                                          "--hard-fraction", "1", "--max-pixels", "4096"])
    assert curriculum.exit_code == 0, curriculum.output
    adapter = tmp_path / "cur" / "stage-5"
    assert (adapter / "adapter_config.json").is_file()
    lora = rl_cli("--data", str(hard_data), "--model", str(adapter), "--output-dir", str(tmp_path / "lora"), "--lora",
                  *FAST)
    assert lora.exit_code == 0, lora.output
    assert (tmp_path / "lora" / "adapter_config.json").is_file()
    assert not (tmp_path / "lora" / "model.safetensors").exists()
    merged = rl_cli("--data", str(hard_data), "--model", str(adapter), "--output-dir", str(tmp_path / "full"), *FAST)
    assert merged.exit_code == 0, merged.output
    assert (tmp_path / "full" / "model.safetensors").is_file()
    assert not (tmp_path / "full" / "adapter_config.json").exists()


def test_resume_continues_an_interrupted_run_from_its_checkpoint(tiny_vlm: Path, hard_data: Path,
                                                                 tmp_path: Path) -> None:
    from trl import GRPOTrainer

    out = tmp_path / "out"
    args = ["--data", str(hard_data), "--model", str(tiny_vlm), "--output-dir", str(out), "--save-steps", "1", *FAST]
    with interrupted_at_second_step(GRPOTrainer):
        crashed = rl_cli(*args)
    assert crashed.exit_code != 0
    assert (out / "checkpoints" / "checkpoint-1").is_dir() and not (out / "manifest.json").exists()

    resumed = rl_cli(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    said = resumed.output.replace("\n", "")  # the console wraps long paths
    assert "resuming" in said and "checkpoints/checkpoint-1" in said
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["global_step"] == 2 and not (out / "checkpoints").exists()
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [entry["step"] for entry in history if "reward" in entry] == [1, 2]
