"""The typer app every command module registers on, and the one way user errors reach the terminal."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from mirdata.errors import MirdataError

app = typer.Typer(
    name="mirdata",
    help="Rebuild, validate, release and train on MIR, the multi-image interleaved reasoning benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
out_console = Console()


def command(name: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`app.command`, plus: a MirdataError becomes one red line on stderr and exit code 1, no traceback."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except MirdataError as e:
                err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None

        return app.command(name, **kwargs)(wrapper)

    return decorate


def counted(n: int, noun: str) -> str:
    """'1 record', '2 records'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class ExecutorName(str, Enum):
    local = "local"
    ray = "ray"


# The options every command that runs a step over items takes (build, annotate, difficulty, predict).
ExecutorOpt = Annotated[ExecutorName, typer.Option(help="Where the work runs: local (this machine's processes) or "
                                                       "ray (a Ray cluster; pip install 'mirbench-tools[ray]').")]
RayAddressOpt = Annotated[Optional[str], typer.Option(envvar="RAY_ADDRESS", show_envvar=True,
                                                      help="--executor ray: the cluster's address, e.g. "
                                                           "ray://head:10001 (default: a new local cluster).")]
