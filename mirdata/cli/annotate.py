"""`mirdata annotate DIR`: (re)write the five reasoning stages of a dataset folder."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mirdata.cli.app import ExecutorName, ExecutorOpt, RayAddressOpt, command, out_console
from mirdata.executors import make_executor
from mirdata.schema.tasks import STAGES


class Annotator(str, Enum):
    template = "template"
    llm = "llm"


class Backend(str, Enum):
    openai = "openai"
    transformers = "transformers"


@command("annotate")
def annotate(
    dir: Annotated[Path, typer.Argument(help="Dataset folder in the MIR layout.")],
    annotator: Annotated[Annotator, typer.Option(help="template: each task's grounded templates; llm: drafts "
                                                      "checked against the facts, templates as the fallback.")]
    = Annotator.template,
    backend: Annotated[Backend | None, typer.Option(help="LLM backend: an OpenAI-compatible server, or a local "
                                                            "transformers model (default: from the other options).")]
    = None,
    model: Annotated[str | None, typer.Option(help="The served model id (openai), or a model folder or .gguf "
                                                      "file (transformers).")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 "
                                                         "(default: $OPENAI_BASE_URL). The key is read from "
                                                         "$OPENAI_API_KEY.")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Drafting rounds: later rounds send the failed checks back.")]
    = 2,
    workers: Annotated[int, typer.Option(min=1, help="Concurrent requests to the server (openai).")] = 1,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts per generate call (transformers).")] = 8,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest reply, in tokens.")] = 512,
    device: Annotated[str, typer.Option(help="transformers: cpu or cuda.")] = "cpu",
    timeout: Annotated[float, typer.Option(min=0.1, help="openai: seconds to wait for each reply before trying "
                                                       "again.")] = 60.0,
    retries: Annotated[int, typer.Option(min=0, help="openai: tries again after a timeout, 429 or 5xx, with "
                                                     "exponential backoff.")] = 5,
    executor: ExecutorOpt = ExecutorName.local,
    ray_address: RayAddressOpt = None,
) -> None:
    """Write the five reasoning stages of every record in DIR and check each against the facts."""
    from mirdata.annotate import annotate_dir

    summary = annotate_dir(dir, annotator=annotator.value, backend=backend.value if backend else None, model=model,
                           base_url=base_url, rounds=rounds, workers=workers, batch_size=batch_size,
                           max_new_tokens=max_new_tokens, device=device, timeout=timeout, retries=retries,
                           executor=make_executor(executor.value, address=ray_address,
                                                  gpus=1 if device.startswith("cuda") else 0))
    sources = sorted({s for counts in summary["sources"].values() for s in counts})
    table = Table(title="source of each stage", title_style="bold")
    table.add_column("stage")
    for source in sources:
        table.add_column(source, justify="right")
    for stage in STAGES:
        table.add_row(stage, *(str(summary["sources"][stage].get(s, 0)) for s in sources))
    out_console.print(table)
    if annotator == Annotator.llm:
        out_console.print(f"model {summary['model']} ({summary['backend']}), {summary['rounds']} rounds: "
                          f"{summary['requests']} requests, {summary['cached']} replies from the cache")
    if summary["no_template"]:
        first = summary["no_template_records"][0]
        out_console.print(f"[yellow]{summary['no_template']} records have no template text[/] and keep their own "
                          f"(e.g. {first['id']}: {first['reason']})", highlight=False)
    for failing in summary["failing_stages"]:
        out_console.print(f"[red]fails the checker[/] {failing['id']} {failing['stage']}: "
                          f"{'; '.join(failing['problems'])}", highlight=False)
    out_console.print(f"{summary['records']} records annotated ({summary['annotator']}) in {summary['seconds']:.1f} s "
                      f"→ {dir / 'records.jsonl'}", highlight=False)
