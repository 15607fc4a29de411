"""`mirdata difficulty`, `mirdata predict`, `mirdata evaluate`: expert-model inference on a MIR folder."""

from __future__ import annotations

from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from mirdata.cli.app import (
    ExecutorName,
    ExecutorOpt,
    RayAddressOpt,
    command,
    err_console,
    out_console,
)
from mirdata.errors import MirdataError
from mirdata.executors import Executor, make_executor
from mirdata.inference.judge import Judge
from mirdata.models import Runner, RunnerSpec
from mirdata.store import MIRStore


class Backend(str, Enum):
    transformers = "transformers"
    vllm = "vllm"
    openai = "openai"


class PromptFormat(str, Enum):
    mir = "mir"
    chain = "chain"


BackendOpt = Annotated[Backend, typer.Option(help="transformers (local folder), vllm (local folder, GPU) or openai "
                                                  "(an OpenAI-compatible server).")]
ModelOpt = Annotated[str, typer.Option(help="A local model folder, or the model id the server knows.")]
BaseUrlOpt = Annotated[Optional[str], typer.Option(help="openai backend: the server's base URL, "
                                                        "e.g. http://localhost:8000/v1.")]
ApiKeyOpt = Annotated[Optional[str], typer.Option(envvar="OPENAI_API_KEY", show_envvar=True,
                                                  help="openai backend: the API key.")]
DeviceOpt = Annotated[str, typer.Option(help="transformers backend: auto, cpu or cuda[:N].")]
DtypeOpt = Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")]
BatchOpt = Annotated[int, typer.Option(min=1, help="Prompts per generate call (concurrent requests for openai).")]
SeedOpt = Annotated[int, typer.Option(help="Sampling seed.")]
MaxTokensOpt = Annotated[int, typer.Option(min=1, help="Most tokens generated per response.")]
MinPixelsOpt = Annotated[Optional[int], typer.Option(min=1, help="Upscale smaller images to this many pixels.")]
MaxPixelsOpt = Annotated[Optional[int], typer.Option(min=1, help="Downscale larger images to this many pixels.")]
PromptOpt = Annotated[PromptFormat, typer.Option(help="mir: question, options and a \"Your option: X\" "
                                                    "instruction. chain: the input a `mirdata curriculum-train` "
                                                    "model learnt to answer with the whole tagged chain (stage 5).")]
JudgeBackendOpt = Annotated[Optional[Backend], typer.Option(help="LLM judge for responses the rules cannot read "
                                                                 "(default: no judge).")]
JudgeModelOpt = Annotated[Optional[str], typer.Option(help="The judge's model (a folder or a served id).")]
JudgeUrlOpt = Annotated[Optional[str], typer.Option(help="The judge's OpenAI-compatible base URL.")]
TimeoutOpt = Annotated[float, typer.Option(min=0.1, help="openai backend and judge: seconds to wait for each "
                                                         "answer before trying again.")]
RetriesOpt = Annotated[int, typer.Option(min=0, help="openai backend and judge: tries again after a timeout, "
                                                     "a refused connection or a 408/429/5xx answer.")]


def _max_images(root: Path) -> int:
    return max((len(r.get("images") or []) for r in MIRStore(root).read_raw()), default=1)


def _model(spec: RunnerSpec, executor: ExecutorName, models: ExitStack) -> Runner | RunnerSpec:
    """The model loaded here (closed with `models`), or, on Ray, its spec: every actor loads its own replica."""
    return spec if executor == ExecutorName.ray else models.enter_context(spec.load())


def _runner(backend: Backend, model: str, root: Path, device: str, dtype: str, base_url: str | None,
            api_key: str | None, concurrency: int, timeout: float, retries: int, executor: ExecutorName,
            models: ExitStack) -> Runner | RunnerSpec:
    return _model(RunnerSpec(backend.value, model, dict(device=device, dtype=dtype, base_url=base_url,
                                                        api_key=api_key, max_images=_max_images(root),
                                                        concurrency=concurrency, timeout=timeout, retries=retries)),
                  executor, models)


def _judge(backend: Backend | None, model: str | None, base_url: str | None, api_key: str | None,
           device: str, dtype: str, models: ExitStack, timeout: float, retries: int,
           executor: ExecutorName = ExecutorName.local) -> Judge | None:
    """The LLM judge, if asked for; its model is closed with `models`."""
    if backend is None and model is None:
        return None
    if backend is None or model is None:
        raise MirdataError("a judge needs both --judge-backend and --judge-model")
    spec = RunnerSpec(backend.value, model, dict(device=device, dtype=dtype, base_url=base_url, api_key=api_key,
                                                 max_images=1, timeout=timeout, retries=retries))
    return Judge(_model(spec, executor, models))


def _executor(executor: ExecutorName, address: str | None, backend: Backend, device: str) -> Executor:
    """Where the model steps run: here, or one Ray actor per model replica (a GPU each for vllm and cuda)."""
    gpus = 1 if backend == Backend.vllm or device.startswith("cuda") else "auto" if device == "auto" else 0
    return make_executor(executor.value, address=address, gpus=0 if backend == Backend.openai else gpus)


@command("difficulty")
def difficulty(
    root: Annotated[Path, typer.Argument(metavar="DIR", help="Dataset folder in the MIR layout.")],
    backend: BackendOpt,
    model: ModelOpt,
    samples: Annotated[int, typer.Option(min=1, help="Samples per question.")] = 10,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")] = 0.7,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling top-p.")] = 0.8,
    threshold: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Fixed rule: easy when "
                                                       "pass_rate >= T.")] = None,
    adaptive: Annotated[bool, typer.Option("--adaptive", help="Adaptive rule per task (the default): the "
                                           "--quantile share with the lowest pass rates is hard.")] = False,
    quantile: Annotated[float, typer.Option(help="Adaptive rule: share of each task's records that is hard.")] = 0.5,
    prompt: PromptOpt = PromptFormat.mir,
    batch_size: BatchOpt = 8,
    seed: SeedOpt = 0,
    max_new_tokens: MaxTokensOpt = 512,
    min_pixels: MinPixelsOpt = None,
    max_pixels: MaxPixelsOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    judge_backend: JudgeBackendOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    timeout: TimeoutOpt = 600.0,
    retries: RetriesOpt = 4,
    executor: ExecutorOpt = ExecutorName.local,
    ray_address: RayAddressOpt = None,
) -> None:
    """Rate every question easy or hard by an expert model's pass rate over N samples; resumable."""
    from mirdata.curriculum.difficulty import DifficultySettings, rate_difficulty

    if threshold is not None and adaptive:
        raise MirdataError("choose one rule: --threshold T or --adaptive")
    settings = DifficultySettings(
        samples=samples, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
        rule="threshold" if threshold is not None else "adaptive",
        threshold=threshold if threshold is not None else 0.5, quantile=quantile, batch_size=batch_size, seed=seed,
        min_pixels=min_pixels, max_pixels=max_pixels, prompt=prompt.value)
    with ExitStack() as models:
        judge = _judge(judge_backend, judge_model, judge_base_url, api_key, device, dtype, models, timeout,
                       retries, executor)
        runner = _runner(backend, model, root, device, dtype, base_url, api_key, batch_size, timeout, retries,
                         executor, models)
        summary = rate_difficulty(root, runner, settings, judge,
                                  executor=_executor(executor, ray_address, backend, device))
    table = Table(title=f"difficulty ({summary['rule']}) by {summary['model']}")
    for col in ("task", "easy", "hard"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for task, c in summary["counts"].items():
        table.add_row(task, str(c["easy"]), str(c["hard"]))
    out_console.print(table)
    out_console.print(f"{summary['records']} records rated ({summary['asked_this_run']} asked now, the rest from "
                      f"the cache); unanswered samples: {summary['unanswered_samples']} "
                      f"({summary['unanswered_share']:.1%}); settings written to {MIRStore(root).build_info_path}")


@command("predict")
def predict(
    root: Annotated[Path, typer.Argument(metavar="DIR", help="Dataset folder in the MIR layout.")],
    backend: BackendOpt,
    model: ModelOpt,
    out: Annotated[Path, typer.Option(help="Predictions file (JSON lines); an existing one is resumed.")],
    circular: Annotated[bool, typer.Option(help="Ask every rotation of the options too (for evaluate "
                                                "--circular).")] = False,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 is greedy decoding.")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling top-p.")] = 1.0,
    prompt: PromptOpt = PromptFormat.mir,
    batch_size: BatchOpt = 8,
    seed: SeedOpt = 0,
    max_new_tokens: MaxTokensOpt = 512,
    min_pixels: MinPixelsOpt = None,
    max_pixels: MaxPixelsOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    timeout: TimeoutOpt = 600.0,
    retries: RetriesOpt = 4,
    executor: ExecutorOpt = ExecutorName.local,
    ray_address: RayAddressOpt = None,
) -> None:
    """Write a model's response to every question of DIR to --out, one JSON line each; resumable."""
    from mirdata.inference.predict import PredictSettings
    from mirdata.inference.predict import predict as run_predict

    settings = PredictSettings(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, seed=seed, circular=circular, min_pixels=min_pixels,
                               max_pixels=max_pixels, prompt=prompt.value)
    with ExitStack() as models:
        runner = _runner(backend, model, root, device, dtype, base_url, api_key, batch_size, timeout, retries,
                         executor, models)
        summary = run_predict(root, runner, out, settings, executor=_executor(executor, ray_address, backend, device))
    rate = summary["prompts_per_second"]
    out_console.print(f"{summary['prompts']} prompts for {summary['records']} records in {out} "
                      f"({summary['asked_this_run']} asked now" + (f", {rate} prompts/s)" if rate else ")"))


@command("evaluate")
def evaluate(
    root: Annotated[Path, typer.Argument(metavar="DIR", help="Dataset folder in the MIR layout.")],
    predictions: Annotated[Path, typer.Argument(metavar="PREDICTIONS", help="Predictions file (JSON lines) "
                                                "from `mirdata predict`.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the accuracies as JSON here.")]
    = None,
    circular: Annotated[bool, typer.Option(help="CircularEval: right only if every rotation of the options is "
                                                "right (needs `predict --circular`).")] = False,
    grounding: Annotated[bool, typer.Option(help="Also score the cited regions: mean box IoU with the true regions "
                                                 "and the share cited in the right image.")] = False,
    judge_backend: JudgeBackendOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeUrlOpt = None,
    api_key: ApiKeyOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    timeout: TimeoutOpt = 600.0,
    retries: RetriesOpt = 4,
) -> None:
    """Accuracy per task, per category and overall, with the number of unanswered questions (and, with
    --grounding, region IoU and image accuracy)."""
    from mirdata.curriculum.evaluate import Tally, write_json
    from mirdata.curriculum.evaluate import evaluate as run_evaluate

    with ExitStack() as models:
        judge = _judge(judge_backend, judge_model, judge_base_url, api_key, device, dtype, models, timeout,
                       retries)
        result = run_evaluate(root, predictions, circular=circular, judge=judge, grounding=grounding)
    table = Table(title="accuracy" + (" (circular)" if circular else ""))
    for col in ("", "n", "correct", "accuracy", "unanswered", *(("region IoU", "image acc.") if grounding else ())):
        table.add_column(col, justify="left" if not col else "right")

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def row(name: str, t: Tally, style: str | None = None) -> None:
        d = t.to_dict()
        cells = [str(d["n"]), str(d["correct"]), percent(d["accuracy"]), str(d["unanswered"])]
        if grounding:
            cells += ["-" if d["region_iou"] is None else f"{d['region_iou']:.3f}", percent(d["image_accuracy"])]
        table.add_row(name, *cells, style=style)

    for task, t in result.by_task.items():
        row(task, t)
    table.add_section()
    for cat, t in result.by_category.items():
        row(cat, t, "bold")
    table.add_section()
    row("overall", result.overall, "bold")
    out_console.print(table)
    if result.missing:
        err_console.print(f"[yellow]warning:[/] {len(result.missing)} records have no prediction and are not "
                          f"counted (first: {result.missing[0]})", highlight=False)
    if json_out is not None:
        write_json(result, json_out)
