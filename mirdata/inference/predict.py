"""`mirdata predict`: ask a model every question of a MIR folder and write its responses, one JSON line each.

A line is {"id", "response", "model", "prompt"} (prompt: the format asked in, mir or chain), plus "rotation" with
--circular, where every question is asked once per
rotation of its options (rotation r puts option r first; see `prompt.rotate_options`) so that `evaluate
--circular` can require all of them right. Lines are appended batch by batch, in the order of the records,
whichever executor asks the model (`PredictStep`: one batch per item); a rerun skips what the file already holds
(a line cut short by a kill is dropped first), so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.executors import Executor
from mirdata.executors.local import LocalExecutor
from mirdata.inference.prompt import PROMPT_FORMATS, build_prompt, load_images
from mirdata.models import ModelStep, Runner, RunnerSpec, Sampling, prompt_seed
from mirdata.progress import progress_bar
from mirdata.schema.record import Record
from mirdata.store import MIRStore, atomic_write, iter_jsonl


@dataclass
class PredictSettings:
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    batch_size: int = 8
    seed: int = 0
    circular: bool = False
    min_pixels: int | None = None
    max_pixels: int | None = None
    prompt: str = "mir"  # the prompt format, one of prompt.PROMPT_FORMATS

    def __post_init__(self) -> None:
        if self.prompt not in PROMPT_FORMATS:
            raise MirdataError(f"--prompt must be one of {', '.join(PROMPT_FORMATS)}, not {self.prompt!r}")
        if self.batch_size < 1:
            raise MirdataError(f"--batch-size must be at least 1, not {self.batch_size}")
        self.sampling  # noqa: B018  (building it validates the sampling options)

    @property
    def sampling(self) -> Sampling:
        return Sampling(n=1, temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens)


def _done_keys(out: Path, model: str, prompt: str) -> set[tuple[str, int]]:
    """(id, rotation) pairs already in `out`; a torn or bad line is dropped so appending starts clean."""
    if not out.is_file():
        return set()
    good: list[dict[str, Any]] = []
    dropped = False
    for _, obj, reason in iter_jsonl(out):
        if reason is None and isinstance(obj.get("id"), str) and isinstance(obj.get("response"), str):
            good.append(obj)
        else:
            dropped = True
    others = sorted({str(o.get("model")) for o in good} - {model})
    if others:
        raise MirdataError(f"{out}: holds responses of another model ({others[0]}); choose another --out")
    formats = sorted({str(o.get("prompt", "mir")) for o in good} - {prompt})
    if formats:
        raise MirdataError(f"{out}: holds responses to --prompt {formats[0]}; choose another --out")
    if dropped or not out.read_bytes().endswith(b"\n") and good:
        atomic_write(out, "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in good).encode())
    return {(o["id"], int(o.get("rotation", 0))) for o in good}


class PredictStep(ModelStep):
    """Ask the model batches of (record, rotation); each batch yields its output lines."""

    name = "predict"

    def __init__(self, root: Path, runner: Runner | RunnerSpec, settings: PredictSettings):
        super().__init__(runner)
        self.root, self.settings = root, settings

    def run(self, items: Sequence[list[tuple[Record, int]]], rank: int = 0,
            world_size: int = 1) -> Iterator[list[dict[str, Any]]]:
        settings = self.settings
        for batch in items:
            prompts = [build_prompt(r, load_images(r, self.root, settings.min_pixels, settings.max_pixels), rot,
                                    format=settings.prompt) for r, rot in batch]
            seeds = [prompt_seed(settings.seed, f"{r.id}:{rot}") for r, rot in batch]
            responses = self.live_runner.generate(prompts, settings.sampling, seeds)
            lines = []
            for (r, rot), resp in zip(batch, responses):
                line: dict[str, Any] = {"id": r.id}
                if settings.circular:
                    line["rotation"] = rot
                line.update(response=resp[0], model=self.runner.model, prompt=settings.prompt)
                lines.append(line)
            yield lines


def predict(root: str | Path, runner: Runner | RunnerSpec, out: str | Path, settings: PredictSettings,
            show_progress: bool = True, executor: Executor | None = None) -> dict[str, Any]:
    """Write the model's response to every record (every rotation with circular) to `out`; resumes. `runner` is
    a loaded model, or a RunnerSpec that each worker of `executor` (default: local, in this process) loads."""
    store = MIRStore(root)
    records = store.read()
    out = Path(out)
    done = _done_keys(out, runner.model, settings.prompt)
    jobs: list[tuple[Record, int]] = [
        (r, rot) for r in records for rot in (range(len(r.options)) if settings.circular else [0])]
    todo = [(r, rot) for r, rot in jobs if (r.id, rot) not in done]
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with progress_bar(transient=not show_progress) as bar, open(out, "a", encoding="utf-8") as f:
        job = bar.add_task(f"predicting with {runner.model}", total=len(jobs), completed=len(jobs) - len(todo))

        def write(lines: list[dict[str, Any]]) -> None:
            f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
            f.flush()
            bar.advance(job, len(lines))

        batches = [todo[i:i + settings.batch_size] for i in range(0, len(todo), settings.batch_size)]
        (executor or LocalExecutor()).run(PredictStep(store.root, runner, settings), batches, write)
    seconds = time.perf_counter() - start
    return {"records": len(records), "prompts": len(jobs), "asked_this_run": len(todo),
            "seconds": round(seconds, 3),
            "prompts_per_second": round(len(todo) / seconds, 3) if todo and seconds > 0 else None}
