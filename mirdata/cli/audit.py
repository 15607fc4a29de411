"""`mirdata audit`: blind baselines, answer letters, duplicates and shared images of a dataset folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from mirdata.cli.app import command, counted, err_console, out_console


@command("audit")
def audit(
    dir: Annotated[Path, typer.Argument(help="Dataset folder in the MIR layout.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the report as JSON to this file.")]
    = None,
    plot: Annotated[Optional[Path], typer.Option(help="Also draw blind accuracy against chance to this PNG.")] = None,
    task: Annotated[Optional[list[str]], typer.Option(help="Audit only this task (repeatable).")] = None,
    min_gap: Annotated[float, typer.Option(min=0.0, help="Points over chance that count as a shortcut.")] = 5.0,
    alpha: Annotated[float, typer.Option(help="Significance level of every test.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Seeds the folds and the redrawn answers.")] = 0,
    runs: Annotated[int, typer.Option(help="Permutation runs (answers redrawn at random), at least 100.")] = 100,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default: every core).")] = None,
) -> None:
    """Can DIR be answered without its images? Text-only guessers against chance, per task. Exit 1 on a failure."""
    from mirdata.audit import AuditSettings, audit_dir, audit_table, failure_lines, plot_audit

    settings = AuditSettings(min_gap=min_gap, alpha=alpha, seed=seed, runs=runs)
    report = audit_dir(dir, tasks=task, settings=settings, workers=workers, show_progress=True)
    out_console.print(audit_table(report))
    for line in failure_lines(report):
        out_console.print(f"[red]fail[/] {line}", highlight=False)
    for name, t in report.tasks.items():
        for note in t["notes"]:
            err_console.print(f"[yellow]note[/] {name}: {note}", highlight=False)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
        err_console.print(f"report → {json_out}")
    if plot is not None:
        plot_audit(report, plot)
        err_console.print(f"figure → {plot}")
    failed = report.failed_tasks
    if failed:
        out_console.print(f"[bold red]{counted(len(failed), 'task')} failed the audit:[/] {', '.join(failed)}")
        raise typer.Exit(1)
    out_console.print(f"[bold green]passed[/]: {counted(len(report.tasks), 'task')}, no text-only shortcut found")
