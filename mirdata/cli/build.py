"""`mirdata build`: make a MIR dataset from the embedded procedural sources or from --source files."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from mirdata.builders.base import BuildOptions, resolve_tasks, run_build
from mirdata.cli.app import (
    ExecutorName,
    ExecutorOpt,
    RayAddressOpt,
    command,
    counted,
    out_console,
)
from mirdata.errors import MirdataError
from mirdata.executors import make_executor
from mirdata.store import MIRStore


class Category(str, Enum):
    sequential = "sequential"
    spatial = "spatial"
    analytical = "analytical"


class ImageFormat(str, Enum):
    jpg = "jpg"
    png = "png"


class OnError(str, Enum):
    skip = "skip"
    fail = "fail"


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise MirdataError(f"--image-size must look like 448x336, not {text!r}") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise MirdataError(f"--image-size {text}: width and height must be within 16..4096")
    return w, h


@command("build")
def build(
    category: Annotated[Optional[Category], typer.Option(help="Build every task of this category.")] = None,
    task: Annotated[Optional[list[str]], typer.Option(help="Build only this task (repeatable).")] = None,
    num: Annotated[int, typer.Option(min=1, help="Records per task.")] = 10,
    out: Annotated[Path, typer.Option(help="Dataset folder (MIR layout); an existing build there is resumed.")]
    = Path("mir_data"),
    seed: Annotated[int, typer.Option(min=0, help="Seed: the same seed and options give byte-identical output.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (the local executor).")] = 1,
    executor: ExecutorOpt = ExecutorName.local,
    ray_address: RayAddressOpt = None,
    source: Annotated[Optional[Path], typer.Option(help="Real media (a file or a folder) instead of the "
                                                        "procedural default.")] = None,
    steps_csv: Annotated[Optional[Path], typer.Option(help="Step annotations CSV (video,start_s,end_s,step) "
                                                           "for cooking_process from --source videos.")] = None,
    on_error: Annotated[OnError, typer.Option(help="A bad source file: skip and report it, or fail.")]
    = OnError.skip,
    image_size: Annotated[str, typer.Option(help="Image size WIDTHxHEIGHT.")] = "448x336",
    format: Annotated[ImageFormat, typer.Option("--format", help="Image file format.")] = ImageFormat.jpg,
    renderer: Annotated[Optional[str], typer.Option(help="Spatial: renderer name (default: the fast "
                                                         "rasterizer).")] = None,
    views: Annotated[Optional[int], typer.Option(min=2, help="Spatial: views per scene.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda, for model-backed generators.")] = "cpu",
    editor: Annotated[str, typer.Option(help="Analytical: image editor, classical or diffusers.")] = "classical",
    editor_model: Annotated[Optional[Path], typer.Option(help="Analytical: local diffusers pipeline folder.")]
    = None,
    annotator: Annotated[str, typer.Option(help="Reasoning annotator: template (grounded, default) or llm.")]
    = "template",
    backend: Annotated[Optional[str], typer.Option(help="LLM annotator backend: openai or transformers.")] = None,
    model: Annotated[Optional[str], typer.Option(help="LLM annotator model: a path or a served model id.")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="LLM annotator: OpenAI-compatible base URL.")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="LLM annotator: drafting rounds.")] = 2,
) -> None:
    """Build MIR records with ground-truth answers and five reasoning stages into OUT."""
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise MirdataError(f"--device must be cpu or cuda, not {device!r}")
    if annotator not in ("template", "llm"):
        raise MirdataError(f"--annotator must be template or llm, not {annotator!r}")
    tasks = resolve_tasks(category.value if category else None, task)
    options = BuildOptions(
        out=out, seed=seed, num=num, workers=workers, image_size=parse_size(image_size), image_format=format.value,
        source=source, steps_csv=steps_csv, on_error=on_error.value, renderer=renderer, views=views,
        device=device, editor=editor, editor_model=editor_model, annotator=annotator,
        annotator_options={"backend": backend, "model": model, "base_url": base_url, "rounds": rounds},
    )
    where = make_executor(executor.value, workers, ray_address)
    with MIRStore(out).writing("build", create=True):
        run = run_build(options, tasks, executor=where)
    out_console.print(f"built {counted(run['built'], 'record')} ({run['resumed_from']} already there) in "
                      f"{run['seconds']:.1f} s → {out}")
    for s in run["skipped_sources"]:
        out_console.print(f"[yellow]skipped[/] {s['file']}: {s['reason']}", highlight=False)
    for f in run["failed"]:
        out_console.print(f"[yellow]not built[/] {f['task']} #{f['index']}: {f['reason']}", highlight=False)
    if annotator == "llm":
        from mirdata.annotate import annotate_dir

        annotate_dir(out, annotator="llm", workers=workers, executor=None if executor == ExecutorName.local else where,
                     **options.annotator_options)
