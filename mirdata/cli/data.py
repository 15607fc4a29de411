"""Commands on a dataset folder: validate, import-upstream, export, stats."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from mirdata.cli.app import command, counted, err_console, out_console
from mirdata.errors import MirdataError


@command("validate")
def validate(
    dir: Annotated[Path, typer.Argument(help="Dataset folder in the MIR layout.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    files: Annotated[bool, typer.Option(help="Also check that every image exists and decodes.")] = True,
) -> None:
    """Check DIR against the MIR schema; print every failure at once. Exit 1 when anything fails."""
    from mirdata.validate import validate_dir  # pandas and pandera load only when validating

    report = validate_dir(dir, check_files=files, show_progress=not json_out)
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        for title, rows, style in (("warning", report.warnings, "yellow"), ("failure", report.failures, "red")):
            if not rows:
                continue
            table = Table(title=counted(len(rows), title), title_style=f"bold {style}", show_lines=False)
            for col in ("line", "record", "field", "what is wrong"):
                table.add_column(col, overflow="fold")
            for f in rows:
                table.add_row("" if f.line is None else str(f.line), f.record, f.field, f.problem)
            out_console.print(table)
        verdict = "[bold green]valid[/]" if report.ok else f"[bold red]{counted(len(report.failures), 'failure')}[/]"
        out_console.print(f"{dir}: {counted(report.records, 'record')}, {verdict} "
                          f"(schema {report.schema_seconds:.2f} s, files {report.file_seconds:.2f} s)")
    if not report.ok:
        raise typer.Exit(1)


class ExportFormat(str, Enum):
    upstream = "upstream"
    swift = "swift"
    llamafactory = "llamafactory"
    lmms_eval = "lmms-eval"
    vlmevalkit = "vlmevalkit"



@command("export")
def export(
    dir: Annotated[Path, typer.Argument(help="Dataset folder in the MIR layout, or a release folder (swift, "
                                        "llamafactory, lmms-eval, vlmevalkit).")],
    format: Annotated[ExportFormat, typer.Option("--format", help="upstream: the original release's "
                      "all_data_rel.json; swift / llamafactory: one curriculum stage for those trainers; lmms-eval: "
                      "a task folder; vlmevalkit: MIR_easy.tsv and MIR_hard.tsv.")],
    out: Annotated[Path, typer.Option(help="Output file (upstream, swift, llamafactory) or folder (lmms-eval, "
                                      "vlmevalkit).")],
    stage: Annotated[Optional[int], typer.Option(min=0, max=5, help="Curriculum stage (swift, llamafactory).")]
    = None,
    hard_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of the hard records sampled for "
                                                 "stages 1-5 (swift, llamafactory).")] = 0.4,
    seed: Annotated[int, typer.Option(min=0, help="Seeds the hard sample and the order within a level.")] = 0,
    epochs_per_stage: Annotated[float, typer.Option(help="Epochs of the printed training command (swift, "
                                                    "llamafactory).")] = 1.0,
    lora: Annotated[bool, typer.Option(help="Print a command that trains a LoRA adapter, carried from stage to "
                                       "stage, instead of all weights (swift, llamafactory).")] = False,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank (with --lora).")] = 16,
    lora_alpha: Annotated[int, typer.Option(min=1, help="LoRA scaling alpha (with --lora).")] = 32,
    dataset_path: Annotated[Optional[str], typer.Option(help="Where lmms-eval loads the release from: a folder or a "
                                                        "Hub id (lmms-eval; default: DIR when it is a release).")]
    = None,
) -> None:
    """Write DIR in another format: the original release's JSON, a curriculum stage for ms-swift/LLaMA-Factory,
    or an evaluation set for lmms-eval/VLMEvalKit."""
    if format is ExportFormat.upstream:
        from mirdata.upstream import export_upstream

        n = export_upstream(dir, out)
        out_console.print(f"wrote {counted(n, 'record')} → {out}")
        return
    if format is ExportFormat.lmms_eval:
        from mirdata.export.lmms_eval import write_task_folder

        names = write_task_folder(dir, out, dataset_path=dataset_path)
        out_console.print(f"wrote the lmms-eval tasks {', '.join(names)} → {out}")
        err_console.print("evaluate with:", style="bold")
        typer.echo(f"lmms-eval --model MODEL --model_args pretrained=PATH --include_path {out} --tasks mir")
        return
    if format is ExportFormat.vlmevalkit:
        from mirdata.export.vlmevalkit import write_tsv

        written = write_tsv(dir, out)
        files = ", ".join(f"{path.name} ({counted(n, 'question')})" for path, n in written)
        out_console.print(f"wrote {files} → {out}")
        return
    if stage is None:
        raise MirdataError(f"--format {format.value} needs --stage K (0-5)")
    from mirdata.curriculum.export import Tuning, export_stage

    result = export_stage(dir, format.value, stage, out, hard_fraction=hard_fraction, seed=seed,
                          tuning=Tuning(epochs=epochs_per_stage, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha))
    out_console.print(f"wrote stage {stage} → {out}")
    err_console.print("train in this order with:", style="bold")
    typer.echo(result.command)
    err_console.print(f"the next stage starts from: {result.next_assignment}", highlight=False, soft_wrap=True)


@command("import-upstream")
def import_upstream(
    json_path: Annotated[Path, typer.Argument(metavar="JSON", help="The original release's all_data_rel.json "
                                              "(a JSON array of items, or JSON Lines).")],
    images: Annotated[Path, typer.Argument(metavar="IMAGES", help="images.zip or a folder holding the images "
                                           "the items name.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write (MIR layout); records already there with "
                                           "other ids are kept.")],
    task: Annotated[Optional[str], typer.Option(help="Task of items that have no task/category/type field, "
                                                     "e.g. forced_perspective or 'Forced Perspective'.")] = None,
    max_entry_mb: Annotated[int, typer.Option(min=1, help="Refuse zip entries larger than this many MiB.")] = 256,
    max_total_mb: Annotated[int, typer.Option(min=1, help="Refuse a zip that unpacks to more than this many "
                                                          "MiB.")] = 64 * 1024,
    max_entries: Annotated[int, typer.Option(min=1, help="Refuse a zip with more entries than this.")] = 2_000_000,
    max_name_length: Annotated[int, typer.Option(min=1, help="Refuse zip entry names longer than this many "
                                                             "characters.")] = 1024,
    max_image_pixels: Annotated[int, typer.Option(min=1, help="Refuse images of more pixels (width x height) "
                                                              "than this.")] = 64_000_000,
) -> None:
    """Import the original release's JSON and images into the MIR layout at OUT."""
    from mirdata.upstream import import_upstream as run_import

    n = run_import(json_path, images, out, task=task, max_entry_bytes=max_entry_mb * 1024 * 1024,
                   max_total_bytes=max_total_mb * 1024 * 1024, max_entries=max_entries,
                   max_name_length=max_name_length, max_image_pixels=max_image_pixels)
    out_console.print(f"imported {counted(n, 'record')} → {out}")


@command("stats")
def stats(
    dir: Annotated[Path, typer.Argument(help="Dataset folder in the MIR layout.")],
    plot: Annotated[Optional[Path], typer.Option(help="Also draw the statistics figure to this PNG file.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON on stdout.")] = False,
) -> None:
    """Counts per category and task, images per record, answer-letter balance and annotation lengths of DIR."""
    from mirdata.stats import compute_stats, plot_stats, stats_tables

    result = compute_stats(dir)
    if json_out:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        for table in stats_tables(result):
            out_console.print(table)
    if plot is not None:
        plot_stats(result, plot)
        err_console.print(f"figure → {plot}")
