"""The adaptive difficulty filter: sample an expert model N times per question, pass rate -> easy or hard.

Every record is asked `samples` times (the original setting: Qwen2.5-VL-7B, 10 samples, temperature 0.7,
top_p 0.8); its pass rate is the share of samples whose extracted answer is right. An unreadable sample is
never guessed: it counts as not passed and is reported.

Rules:
* threshold T: easy when pass_rate >= T, hard otherwise;
* adaptive (default): per task, the share `quantile` of its records with the lowest pass rates is hard and the
  rest easy (at least one of each when the task has two or more records), so every task keeps both levels
  whatever the expert's overall strength. Records are ranked by pass rate; ties at the cut are split by a
  seeded hash of the record id, never by file order.

Resumable: each finished record's responses, answers and pass rate go to DIR/.cache/difficulty/<settings>/ as
one part file (`mirdata.parts`), written atomically as soon as its batch is done. A rerun with the same settings
asks only what is missing; changing only the rule asks nothing. Records are batched in file order in fixed
chunks, and each batch is seeded from its prompts, so a resumed run gives the same results as an unbroken one,
and a run on Ray (each batch an item of `SamplingStep`, one model replica per actor) the same as a local one.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.executors import Executor
from mirdata.executors.local import LocalExecutor
from mirdata.inference.judge import Judge, read_answers
from mirdata.inference.prompt import INSTRUCTION, PROMPT_FORMATS, build_prompt, load_images
from mirdata.models import ModelStep, Runner, RunnerSpec, Sampling, prompt_seed
from mirdata.parts import PartFiles
from mirdata.progress import progress_bar
from mirdata.registry import task_rank
from mirdata.schema.record import Record
from mirdata.store import MIRStore

CACHE = Path(".cache") / "difficulty"
RULES = ("adaptive", "threshold")


@dataclass
class DifficultySettings:
    samples: int = 10
    temperature: float = 0.7
    top_p: float = 0.8
    max_new_tokens: int = 512
    rule: str = "adaptive"
    threshold: float = 0.5  # the threshold rule: easy when pass_rate >= threshold
    quantile: float = 0.5  # the adaptive rule: the share of each task's records that is hard
    batch_size: int = 8
    seed: int = 0
    min_pixels: int | None = None
    max_pixels: int | None = None
    prompt: str = "mir"  # the prompt format, one of prompt.PROMPT_FORMATS

    def __post_init__(self) -> None:
        if self.prompt not in PROMPT_FORMATS:
            raise MirdataError(f"--prompt must be one of {', '.join(PROMPT_FORMATS)}, not {self.prompt!r}")
        if self.rule not in RULES:
            raise MirdataError(f"difficulty rule must be one of {', '.join(RULES)}, not {self.rule!r}")
        if not 0 <= self.threshold <= 1:
            raise MirdataError(f"--threshold must be in [0, 1], not {self.threshold}")
        if not 0 < self.quantile < 1:
            raise MirdataError(f"--quantile must be in (0, 1), not {self.quantile}")
        if self.batch_size < 1:
            raise MirdataError(f"--batch-size must be at least 1, not {self.batch_size}")
        self.sampling  # noqa: B018  (building it validates the sampling options)

    @property
    def sampling(self) -> Sampling:
        return Sampling(n=self.samples, temperature=self.temperature, top_p=self.top_p,
                        max_new_tokens=self.max_new_tokens)


def cache_dir(root: Path, runner: Runner | RunnerSpec, settings: DifficultySettings, judge: Judge | None) -> Path:
    """The cache of one sampling setup: everything that changes a record's responses or answers is in its name."""
    key = {"backend": runner.backend, "model": runner.model, "sampling": settings.sampling.to_json(),
           "seed": settings.seed, "min_pixels": settings.min_pixels, "max_pixels": settings.max_pixels,
           "prompt": settings.prompt, "instruction": INSTRUCTION, "judge": judge.name if judge else None}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return root / CACHE / digest


def fingerprint(record: Record) -> str:
    """What the expert was asked: a cached result counts only while the record still asks the same."""
    asked = [record.question, record.options, record.answer, record.images]
    return hashlib.sha256(json.dumps(asked, ensure_ascii=False).encode()).hexdigest()[:16]


def _read_cached(parts: PartFiles, record: Record, samples: int) -> dict[str, Any] | None:
    entry = parts.read(record.id)
    if entry is None or entry.get("fingerprint") != fingerprint(record):
        return None  # not asked yet, or the record was rebuilt since: ask again
    return entry if len(entry.get("answers", [])) == samples else None


class SamplingStep(ModelStep):
    """Ask the expert about batches of records; each record's entry is written as its part, and each batch
    yields its entries."""

    name = "difficulty"

    def __init__(self, root: Path, runner: Runner | RunnerSpec, settings: DifficultySettings,
                 judge: Judge | None, parts: PartFiles):
        super().__init__(runner, judge)
        self.root, self.settings, self.parts = root, settings, parts

    def run(self, items: Sequence[list[Record]], rank: int = 0, world_size: int = 1) -> Iterator[list[dict]]:
        settings = self.settings
        for todo in items:
            prompts = [build_prompt(r, load_images(r, self.root, settings.min_pixels, settings.max_pixels),
                                    format=settings.prompt) for r in todo]
            seeds = [prompt_seed(settings.seed, r.id) for r in todo]
            responses = self.live_runner.generate(prompts, settings.sampling, seeds)
            answers = read_answers([(resp, r.options) for r, resps in zip(todo, responses) for resp in resps],
                                   self.live_judge)
            entries = []
            for k, r in enumerate(todo):
                mine = answers[k * settings.samples:(k + 1) * settings.samples]
                correct = sum(a == r.answer for a in mine)
                entry = {"id": r.id, "fingerprint": fingerprint(r), "answer": r.answer, "answers": mine,
                         "responses": responses[k], "correct": correct, "unanswered": sum(a is None for a in mine),
                         "pass_rate": round(correct / settings.samples, 6)}
                self.parts.write(r.id, entry)
                entries.append(entry)
            yield entries


def sample_pass_rates(root: Path, records: list[Record], runner: Runner | RunnerSpec,
                      settings: DifficultySettings, judge: Judge | None = None, show_progress: bool = True,
                      executor: Executor | None = None) -> tuple[dict[str, dict[str, Any]], int]:
    """Ask the expert about every record not cached yet, on `executor` (default: here). Returns
    ({id: {"pass_rate", "correct", ...}}, the number of records asked now)."""
    parts = PartFiles(cache_dir(root, runner, settings, judge))
    results: dict[str, dict[str, Any]] = {}
    for r in records:
        cached = _read_cached(parts, r, settings.samples)
        if cached is not None:
            results[r.id] = cached
    batches = [records[i:i + settings.batch_size] for i in range(0, len(records), settings.batch_size)]
    todo = [left for left in ([r for r in batch if r.id not in results] for batch in batches) if left]
    with progress_bar(transient=not show_progress) as bar:
        job = bar.add_task(f"sampling {runner.model}", total=len(records), completed=len(results))

        def done(entries: list[dict[str, Any]]) -> None:
            results.update((e["id"], e) for e in entries)
            bar.advance(job, len(entries))

        (executor or LocalExecutor()).run(SamplingStep(root, runner, settings, judge, parts), todo, done)
    return results, sum(map(len, todo))


def _task_order(task: str) -> tuple[int, str]:
    return (task_rank(task), task)


def _tiebreak(seed: int, record_id: str) -> int:
    return zlib.crc32(f"{seed}:{record_id}".encode())


def label_threshold(pass_rates: dict[str, float], threshold: float) -> dict[str, str]:
    return {rid: "easy" if p >= threshold else "hard" for rid, p in pass_rates.items()}


def label_adaptive(pass_rates: dict[str, float], tasks: dict[str, str], quantile: float,
                   seed: int = 0) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Per task: the `quantile` share with the lowest pass rates is hard. Returns labels and each task's cut."""
    by_task: dict[str, list[str]] = defaultdict(list)
    for rid in pass_rates:
        by_task[tasks[rid]].append(rid)
    labels: dict[str, str] = {}
    cuts: dict[str, dict[str, Any]] = {}
    for task, ids in sorted(by_task.items(), key=lambda kv: _task_order(kv[0])):
        ranked = sorted(ids, key=lambda rid: (pass_rates[rid], _tiebreak(seed, rid)))
        n = len(ranked)
        if n == 1:  # one record cannot hold both levels: fall back to the middle
            n_hard = 1 if pass_rates[ranked[0]] < 0.5 else 0
        else:
            n_hard = min(max(int(quantile * n + 0.5), 1), n - 1)  # half rounds up
        for k, rid in enumerate(ranked):
            labels[rid] = "hard" if k < n_hard else "easy"
        hard_max = pass_rates[ranked[n_hard - 1]] if n_hard else None
        easy_min = pass_rates[ranked[n_hard]] if n_hard < n else None
        cuts[task] = {"records": n, "hard": n_hard, "easy": n - n_hard, "hard_max_pass_rate": hard_max,
                      "easy_min_pass_rate": easy_min, "ties_split": hard_max is not None and hard_max == easy_min}
    return labels, cuts


def rate_difficulty(root: str | Path, runner: Runner | RunnerSpec, settings: DifficultySettings,
                    judge: Judge | None = None, show_progress: bool = True,
                    executor: Executor | None = None) -> dict[str, Any]:
    """Write pass_rate and difficulty into every record of DIR, and the settings into build.json. `runner` is a
    loaded model, or a RunnerSpec that each worker of `executor` (default: local, in this process) loads."""
    with MIRStore(root).writing("difficulty"):
        return _rate(MIRStore(root), runner, settings, judge, show_progress, executor)


def _rate(store: MIRStore, runner: Runner | RunnerSpec, settings: DifficultySettings, judge: Judge | None,
          show_progress: bool, executor: Executor | None) -> dict[str, Any]:
    records = store.read()
    if not records:
        raise MirdataError(f"{store.records_path}: no records to rate")
    start = time.perf_counter()
    results, asked = sample_pass_rates(store.root, records, runner, settings, judge, show_progress, executor)
    seconds = time.perf_counter() - start
    pass_rates = {r.id: results[r.id]["pass_rate"] for r in records}
    cuts = None
    if settings.rule == "threshold":
        labels = label_threshold(pass_rates, settings.threshold)
    else:
        labels, cuts = label_adaptive(pass_rates, {r.id: r.task for r in records}, settings.quantile, settings.seed)
    for r in records:
        r.pass_rate = pass_rates[r.id]
        r.difficulty = labels[r.id]
    store.write(records)

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        counts[r.task][r.difficulty] += 1
    samples_total = settings.samples * len(records)
    unanswered = sum(results[r.id]["unanswered"] for r in records)
    summary = {
        "backend": runner.backend,
        "model": runner.model,
        "judge": judge.name if judge else None,
        **asdict(settings),
        "records": len(records),
        "asked_this_run": asked,
        "unanswered_samples": unanswered,
        "unanswered_share": round(unanswered / samples_total, 6),
        "counts": {task: {"easy": counts[task]["easy"], "hard": counts[task]["hard"]}
                   for task in sorted(counts, key=_task_order)},
        "cuts": cuts,
        "seconds": round(seconds, 3),
    }
    store.update_build_info(difficulty=summary)
    return summary
