"""`annotate_dir`: write the five reasoning stages of every record of a dataset folder, then records.jsonl.

Every record gets, per stage, the text that won and an entry in meta["annotation"]["stages"]: its source
(`llm`, `template`, or `existing` when the record's task has no template for it), and for the LLM annotator the
rounds, the prompt hash and each round's check results. records.jsonl is replaced atomically at the end; an
interrupted LLM run loses nothing, since every reply is already in DIR/.cache/annotate/. The LLM drafting is a
step over chunks of records (`DraftStep`), so it runs here or on Ray actors (one model replica each), with the
same chunks, hence the same batches and replies.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mirdata.annotate.cache import ResponseCache
from mirdata.annotate.check import check_stages, stage_texts
from mirdata.annotate.llm import LLMAnnotator
from mirdata.annotate.template import TemplateAnnotator, TemplateUnavailable
from mirdata.errors import MirdataError
from mirdata.executors import Executor
from mirdata.executors.local import LocalExecutor
from mirdata.models import ModelStep, Runner, RunnerSpec, Sampling
from mirdata.progress import progress_bar
from mirdata.schema.record import Record
from mirdata.schema.tasks import STAGES
from mirdata.store import MIRStore

ANNOTATORS = ("template", "llm")


def annotation_model(backend: str | None, model: str | None, base_url: str | None = None, api_key: str | None = None,
                     workers: int = 1, device: str = "cpu", batch_size: int = 8, timeout: float = 60.0,
                     retries: int = 5) -> RunnerSpec:
    """The model the annotate options name, not loaded yet. Without --backend: a base URL given means openai, then
    a model that is a local path means transformers, then OPENAI_BASE_URL in the environment means openai."""
    if backend is None:
        if base_url:
            backend = "openai"
        elif model and Path(model).expanduser().exists():
            backend = "transformers"
        elif os.environ.get("OPENAI_BASE_URL"):
            backend = "openai"
        else:
            raise MirdataError("the llm annotator needs --backend openai (with --base-url or OPENAI_BASE_URL, "
                               "and --model) or --backend transformers (with --model PATH)")
    if backend == "openai":
        if not model:
            raise MirdataError("the openai backend needs --model (the model id the server serves)")
        return RunnerSpec("openai", model, dict(base_url=base_url, api_key=api_key, concurrency=workers,
                                                timeout=timeout, retries=retries))
    if backend == "transformers":
        if not model:
            raise MirdataError("the transformers backend needs --model: a model folder or a .gguf file")
        return RunnerSpec("transformers", model, dict(device=device, batch_size=batch_size))
    raise MirdataError(f"--backend must be openai or transformers, not {backend!r}")


class DraftStep(ModelStep):
    """The LLM rounds over chunks of (record, fallback stages); each chunk yields its drafts by stage and the
    requests it sent and read from the cache. The model is a loaded one (in this process) or a RunnerSpec, for
    every worker to load its own."""

    name = "annotate"

    def __init__(self, root: Path, runner: Runner | RunnerSpec, rounds: int, sampling: Sampling):
        super().__init__(runner)
        self.root, self.rounds, self.sampling = root, rounds, sampling

    def setup(self) -> None:
        super().setup()
        self.llm = LLMAnnotator(self.live_runner, ResponseCache.for_dataset(self.root), self.rounds, self.sampling)

    def run(self, items: Sequence[list[tuple[Record, dict[str, Any]]]], rank: int = 0,
            world_size: int = 1) -> Iterator[dict[str, Any]]:
        for chunk in items:
            asked, cached = self.llm.asked, self.llm.cached
            drafts = self.llm.draft(chunk)
            yield {"drafts": drafts, "backend": self.llm.runner.backend, "model": self.llm.runner.name,
                   "asked": self.llm.asked - asked, "cached": self.llm.cached - cached}


def annotate_dir(root: str | Path, annotator: str = "template", backend: str | Runner | None = None,
                 model: str | None = None, base_url: str | None = None, rounds: int = 2, workers: int = 1,
                 api_key: str | None = None, max_new_tokens: int = 512, temperature: float = 0.0,
                 batch_size: int = 8, device: str = "cpu", timeout: float = 60.0, retries: int = 5,
                 show_progress: bool = True, executor: Executor | None = None) -> dict[str, Any]:
    """Annotate every record in `root` (MIR layout) and rewrite its records.jsonl. Returns a summary.

    annotator: "template" (each task's grounded templates) or "llm" (multi-round drafting, checked, with the
    template as the fallback). backend: "openai" (base_url, model, api_key, or OPENAI_BASE_URL / OPENAI_API_KEY;
    `workers` concurrent requests) or "transformers" (model: a folder or a .gguf file; `batch_size` prompts per
    generate call), or a loaded `mirdata.models.Runner`. The LLM rounds run on `executor` (default: here); on one that runs
    elsewhere, each worker loads its own backend from these options.
    """
    executor = executor or LocalExecutor()
    if annotator not in ANNOTATORS:
        raise MirdataError(f"--annotator must be template or llm, not {annotator!r}")
    if rounds < 1:
        raise MirdataError(f"--rounds must be at least 1, not {rounds}")
    with MIRStore(root).writing("annotate"):
        return _annotate(MIRStore(root), annotator, backend, model, base_url, rounds, workers, api_key,
                         max_new_tokens, temperature, batch_size, device, timeout, retries, show_progress, executor)


def _annotate(store: MIRStore, annotator: str, backend: str | Runner | None, model: str | None,
              base_url: str | None, rounds: int, workers: int, api_key: str | None, max_new_tokens: int,
              temperature: float, batch_size: int, device: str, timeout: float, retries: int,
              show_progress: bool, executor: Executor) -> dict[str, Any]:
    started = time.perf_counter()
    records = store.read()
    fallbacks, no_template = _fallbacks(store.root, records)

    if annotator == "llm":
        # a RunnerSpec is loaded by each worker (here too) before it drafts anything, and closed when it is done
        chat = backend if isinstance(backend, Runner) else \
            annotation_model(backend, model, base_url, api_key, workers, device, batch_size, timeout, retries)
        step = DraftStep(store.root, chat, rounds, Sampling(max_new_tokens=max_new_tokens, temperature=temperature))

    summary: dict[str, Any] = {"annotator": annotator, "records": len(records)}
    with progress_bar(transient=not show_progress) as bar:
        job = bar.add_task(f"annotating ({annotator})", total=len(records))
        if annotator == "template":
            for record, (stages, source) in zip(records, fallbacks):
                _apply(record, stages, {stage: {"source": source} for stage in STAGES}, {"annotator": "template"})
                bar.advance(job)
        else:
            chunk = max(8, batch_size, 4 * workers)  # records whose rounds run together, as batches
            chunks = [[(record, stages) for record, (stages, _) in zip(records[start:start + chunk],
                                                                       fallbacks[start:start + chunk])]
                      for start in range(0, len(records), chunk)]
            drafted: dict[str, dict[str, Any]] = {}  # record id -> its drafts by stage
            header = {"annotator": "llm", "backend": None, "model": None, "rounds": rounds}
            asked = cached = 0

            def done(result: dict[str, Any]) -> None:
                nonlocal asked, cached
                drafted.update((drafts["summary"].record.id, drafts) for drafts in result["drafts"])
                header.update(backend=result["backend"], model=result["model"])
                asked, cached = asked + result["asked"], cached + result["cached"]
                bar.advance(job, len(result["drafts"]))

            executor.run(step, chunks, done)
            for record, (_, source) in zip(records, fallbacks):
                results = {stage: d.result(source) for stage, d in drafted[record.id].items()}
                _apply(record, {s: text for s, (text, _) in results.items()},
                       {s: entry for s, (_, entry) in results.items()}, header)
            summary.update(backend=header["backend"], model=header["model"], rounds=rounds, requests=asked,
                           cached=cached)

    store.write(records)
    failing = [{"id": r.id, "stage": stage, "problems": entry["problems"]}
               for r in records for stage, entry in r.meta["annotation"]["stages"].items() if entry["problems"]]
    sources = {stage: dict(Counter(r.meta["annotation"]["stages"][stage]["source"] for r in records))
               for stage in STAGES}
    summary.update(sources=sources, failing=len(failing), no_template=len(no_template),
                   seconds=round(time.perf_counter() - started, 3))
    store.update_build_info(annotation=summary)
    return {**summary, "failing_stages": failing, "no_template_records": no_template}


def _fallbacks(root: Path, records: list[Record]) -> tuple[list[tuple[dict[str, Any], str]], list[dict[str, str]]]:
    """Per record, the stages to fall back on and their source: the task's template text, or the record's own
    text when its task has no template for it (listed in the second value with the reason)."""
    templates = TemplateAnnotator(root)
    out, no_template = [], []
    for record in records:
        try:
            out.append((templates.stages(record), "template"))
        except TemplateUnavailable as e:
            out.append((stage_texts(record), "existing"))
            no_template.append({"id": record.id, "reason": str(e)})
    return out, no_template


def _apply(record: Record, stages: dict[str, Any], entries: dict[str, dict[str, Any]],
           header: dict[str, Any]) -> None:
    """Put the stages into the record and its annotation meta, with the checker's verdict on each kept text."""
    for stage, text in stages.items():
        setattr(record, stage, text)
    for problem in check_stages(record):
        entries[problem.stage].setdefault("problems", []).append(problem.problem)
    for entry in entries.values():
        entry.setdefault("problems", [])
    record.meta["annotation"] = {**header, "stages": entries}
