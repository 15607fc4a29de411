"""The adaptive difficulty filter: pass rates, the two rules, build.json, and resuming after an interruption."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import pytest
from conftest import write_simple_dataset
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.curriculum.difficulty import (
    CACHE,
    DifficultySettings,
    label_adaptive,
    label_threshold,
    rate_difficulty,
)
from mirdata.errors import MirdataError
from mirdata.models import Prompt, Runner, Sampling, make_runner
from mirdata.registry import task_names
from mirdata.validate import validate_dir
from mirdata.store import MIRStore
from mirdata.testing import ScriptedRunner


def _skill(prompt: Prompt, sample: int, seed: int) -> str:
    """A scripted expert whose accuracy varies by question (and sample): right when a seeded draw says so."""
    draw = zlib.crc32(f"{seed}:{sample}".encode()) % 100
    skill = seed % 100  # each question has its own skill level, so pass rates spread over [0, 1]
    if draw % 7 == 0:
        return "I am not sure."  # unreadable: counts as not passed
    # the square with the larger side is named in the options as "the first/second image"; answer by skill
    text = prompt.text
    return "Your option: A" if (draw < skill) == ("A. the first image" in text) else "Your option: B"


class _Interrupting(Runner):
    """Wraps a runner and raises KeyboardInterrupt on its `stop_at`-th generate call, like a Ctrl-C."""

    def __init__(self, inner: Runner, stop_at: int):
        self.inner, self.stop_at, self.calls = inner, stop_at, 0
        self.backend, self.model = inner.backend, inner.model

    def generate(self, prompts: list[Prompt], sampling: Sampling, seeds: list[int]) -> list[list[str]]:
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.inner.generate(prompts, sampling, seeds)


def _records(root: Path) -> list[dict]:
    return MIRStore(root).read_raw()


def test_difficulty_end_to_end_with_the_tiny_model(tiny_vlm: Path, simple_dataset: Path) -> None:
    result = CliRunner().invoke(app, ["difficulty", str(simple_dataset), "--backend", "transformers", "--model",
                                      str(tiny_vlm), "--samples", "3", "--temperature", "0.7", "--top-p", "0.8",
                                      "--max-new-tokens", "6", "--batch-size", "8", "--adaptive", "--seed", "3",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    records = _records(simple_dataset)
    assert all(isinstance(r["pass_rate"], float) and 0 <= r["pass_rate"] <= 1 for r in records)
    for task in task_names():
        assert {r["difficulty"] for r in records if r["task"] == task} == {"easy", "hard"}
    info = json.loads((simple_dataset / "build.json").read_text())["difficulty"]
    assert (info["backend"], info["model"], info["samples"], info["temperature"], info["top_p"], info["rule"],
            info["seed"]) == ("transformers", str(tiny_vlm), 3, 0.7, 0.8, "adaptive", 3)
    assert info["counts"]["view_3d"] == {"easy": 1, "hard": 1}
    assert 0 <= info["unanswered_samples"] <= 3 * len(records)
    assert validate_dir(simple_dataset).ok
    cached = list((simple_dataset / CACHE).glob("*/*.json"))
    assert len(cached) == len(records)
    entry = json.loads(cached[0].read_text())
    assert len(entry["responses"]) == len(entry["answers"]) == 3


def test_pass_rates_are_the_share_of_right_samples(simple_dataset: Path) -> None:
    runner = ScriptedRunner(_skill)
    rate_difficulty(simple_dataset, runner, DifficultySettings(samples=10, rule="threshold", threshold=0.6),
                    show_progress=False)
    cache = next((simple_dataset / CACHE).iterdir())
    for r in _records(simple_dataset):
        entry = json.loads((cache / f"{r['id']}.json").read_text())
        right = sum(a == r["answer"] for a in entry["answers"])
        assert r["pass_rate"] == pytest.approx(right / 10)
        assert entry["unanswered"] == sum(a is None for a in entry["answers"])
        assert r["difficulty"] == ("easy" if r["pass_rate"] >= 0.6 else "hard")
    rates = {r["pass_rate"] for r in _records(simple_dataset)}
    assert len(rates) > 3  # the scripted expert really spreads


def test_adaptive_rule_gives_every_task_both_levels(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_simple_dataset(root, per_task=5)
    summary = rate_difficulty(root, ScriptedRunner(_skill), DifficultySettings(samples=6, quantile=0.4),
                              show_progress=False)
    records = _records(root)
    for task in task_names():
        mine = [r for r in records if r["task"] == task]
        hard = [r for r in mine if r["difficulty"] == "hard"]
        easy = [r for r in mine if r["difficulty"] == "easy"]
        assert len(hard) == 2 and len(easy) == 3
        assert max(r["pass_rate"] for r in hard) <= min(r["pass_rate"] for r in easy)
        assert summary["cuts"][task]["hard"] == 2


def test_label_adaptive_splits_ties_by_seed_not_by_order() -> None:
    rates = {f"t-{k}": 0.0 for k in range(6)} | {"u-0": 0.9, "u-1": 0.1, "u-2": 0.5}
    tasks = {rid: rid[0] for rid in rates}
    labels, cuts = label_adaptive(rates, tasks, quantile=0.5, seed=0)
    assert sorted(labels[f"t-{k}"] for k in range(6)) == ["easy"] * 3 + ["hard"] * 3
    assert cuts["t"]["ties_split"] is True
    assert (labels["u-1"], labels["u-2"], labels["u-0"]) == ("hard", "hard", "easy")  # 1.5 rounds up to 2
    reversed_rates = dict(reversed(list(rates.items())))
    assert label_adaptive(reversed_rates, tasks, 0.5, seed=0)[0] == labels
    others = [label_adaptive(rates, tasks, 0.5, seed=s)[0] for s in range(1, 6)]
    assert any(o != labels for o in others)


def test_label_adaptive_edge_sizes() -> None:
    labels, _ = label_adaptive({"a": 1.0, "b": 1.0}, {"a": "x", "b": "x"}, quantile=0.01)
    assert sorted(labels.values()) == ["easy", "hard"]  # at least one of each
    labels, _ = label_adaptive({"a": 0.0, "b": 0.0}, {"a": "x", "b": "x"}, quantile=0.99)
    assert sorted(labels.values()) == ["easy", "hard"]
    assert label_adaptive({"a": 0.2}, {"a": "x"}, 0.5)[0] == {"a": "hard"}
    assert label_adaptive({"a": 0.8}, {"a": "x"}, 0.5)[0] == {"a": "easy"}
    assert label_threshold({"a": 0.5, "b": 0.49}, 0.5) == {"a": "easy", "b": "hard"}


def test_an_interrupted_run_continues_where_it_stopped(simple_dataset: Path, tmp_path: Path) -> None:
    unbroken = tmp_path / "unbroken"
    shutil.copytree(simple_dataset, unbroken)
    settings = DifficultySettings(samples=4, batch_size=5)
    rate_difficulty(unbroken, ScriptedRunner(_skill), settings, show_progress=False)

    before = (simple_dataset / "records.jsonl").read_bytes()
    stopping = _Interrupting(ScriptedRunner(_skill), stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        rate_difficulty(simple_dataset, stopping, settings, show_progress=False)
    assert (simple_dataset / "records.jsonl").read_bytes() == before  # nothing half-written
    assert len(list((simple_dataset / CACHE).glob("*/*.json"))) == 10  # two batches of 5 were done

    resumed = ScriptedRunner(_skill)
    summary = rate_difficulty(simple_dataset, resumed, settings, show_progress=False)
    assert sum(resumed.calls) == summary["asked_this_run"] == 24 - 10
    assert _records(simple_dataset) == _records(unbroken)

    # changing only the rule asks the model nothing
    again = ScriptedRunner(_skill)
    rate_difficulty(simple_dataset, again, DifficultySettings(samples=4, batch_size=5, rule="threshold"),
                    show_progress=False)
    assert again.calls == []


def test_an_interrupted_tiny_model_run_resumes_to_the_same_responses(tiny_vlm: Path, simple_dataset: Path,
                                                                     tmp_path: Path) -> None:
    unbroken = tmp_path / "unbroken"
    shutil.copytree(simple_dataset, unbroken)
    settings = DifficultySettings(samples=2, max_new_tokens=5, batch_size=8)
    with make_runner("transformers", str(tiny_vlm), device="cpu") as runner:
        rate_difficulty(unbroken, runner, settings, show_progress=False)
        with pytest.raises(KeyboardInterrupt):
            rate_difficulty(simple_dataset, _Interrupting(runner, stop_at=2), settings, show_progress=False)
        summary = rate_difficulty(simple_dataset, runner, settings, show_progress=False)
    assert summary["asked_this_run"] == 24 - 8

    def responses(root: Path) -> dict[str, list[str]]:
        return {p.name: json.loads(p.read_text())["responses"] for p in (root / CACHE).glob("*/*.json")}

    assert responses(simple_dataset) == responses(unbroken)
    assert _records(simple_dataset) == _records(unbroken)


def test_bad_settings_and_rules_are_clear_errors(simple_dataset: Path) -> None:
    with pytest.raises(MirdataError, match="quantile"):
        DifficultySettings(quantile=1.0)
    with pytest.raises(MirdataError, match="top-p"):
        DifficultySettings(top_p=0)
    result = CliRunner().invoke(app, ["difficulty", str(simple_dataset), "--backend", "openai", "--model", "m",
                                      "--base-url", "http://127.0.0.1:9", "--threshold", "0.5", "--adaptive"])
    assert result.exit_code == 1 and "choose one rule" in result.output
    missing = CliRunner().invoke(app, ["difficulty", str(simple_dataset / "nope"), "--backend", "openai",
                                       "--model", "m", "--base-url", "http://127.0.0.1:9"])
    assert missing.exit_code == 1 and "records.jsonl: no such file" in missing.output


def test_a_rebuilt_record_is_asked_again(simple_dataset: Path) -> None:
    settings = DifficultySettings(samples=3, batch_size=4)
    rate_difficulty(simple_dataset, ScriptedRunner(_skill), settings, show_progress=False)
    store = MIRStore(simple_dataset)
    records = store.read()
    changed = records[5]
    changed.options = list(reversed([o.split(". ", 1)[1] for o in changed.options]))
    changed.options = [f"{letter}. {text}" for letter, text in zip("AB", changed.options)]
    changed.answer = "B" if changed.answer == "A" else "A"
    store.write(records)
    runner = ScriptedRunner(_skill)
    summary = rate_difficulty(simple_dataset, runner, settings, show_progress=False)
    assert runner.calls == [1] and summary["asked_this_run"] == 1
