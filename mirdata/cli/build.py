"""`mirdata build`: make a MIR dataset from the embedded procedural sources or from --source files."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from mirdata.builders.base import BuildOptions, resolve_tasks, run_build
from mirdata.cli.app import ExecutorName, ExecutorOpt, RayAddressOpt, command, counted, out_console
from mirdata.errors import MirdataError
from mirdata.executors import make_executor
from mirdata.registry import CATEGORIES, task_names, task_specs
from mirdata.store import MIRStore

# The CLI's categories and tasks are the registry's: a plugin's task shows up in `mirdata build --help` (an
# unknown one is refused in one line by resolve_tasks).
Category = Enum("Category", {c: c for c in CATEGORIES}, type=str)
TaskOpt = Annotated[Optional[list[str]], typer.Option(metavar="TASK", help="Build only this task (repeatable): "
                                                                               f"{', '.join(task_names())}.")]


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


def parse_settings(items: list[str]) -> dict[str, str]:
    settings = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise MirdataError(f"--set {item!r}: must look like NAME=VALUE")
        settings[name.strip()] = value
    return settings


@command("build")
def build(
    category: Annotated[Optional[Category], typer.Option(help="Build every task of this category.")] = None,
    task: TaskOpt = None,
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
    settings: Annotated[Optional[list[str]], typer.Option("--set", metavar="NAME=VALUE",
                                                          help="A field of a task's own config (repeatable), "
                                                               "e.g. a plugin task's option.")] = None,
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
        settings=parse_settings(settings or []),
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


@command("tasks")
def tasks(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's task table.")] = False,
) -> None:
    """List the registered tasks: built-in and from installed plugins."""
    rows = [(s.category, name, ", ".join(s.families) or "-", s.source, s.asks) for name, s in task_specs().items()]
    if markdown:
        out_console.print("| category | task | question families | asks |\n|---|---|---|---|", highlight=False)
        for cat, name, families, source, asks in rows:
            out_console.print(f"| {cat} | `{name}` | {families} | {asks} |", highlight=False, soft_wrap=True)
        return
    from rich.table import Table

    table = Table("category", "task", "question families", "from", "asks")
    for row in rows:
        table.add_row(*row)
    out_console.print(table)
