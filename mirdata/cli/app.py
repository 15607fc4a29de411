"""The typer app every command module registers on, and the one way user errors reach the terminal."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.text import Text

from mirdata.errors import MirdataError
from mirdata.secrets import redact

app = typer.Typer(
    name="mirdata",
    help="Rebuild, validate, release and train on MIR, the multi-image interleaved reasoning benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
out_console = Console()


@app.callback()
def report_plugin_problems() -> None:
    """Rebuild, validate, release and train on MIR, the multi-image interleaved reasoning benchmark."""
    from mirdata.registry import plugin_problems

    for line in plugin_problems():  # one line per plugin that could not be registered; the rest still works
        err_console.print(Text.assemble(("warning: ", "bold yellow"), redact(line)), soft_wrap=True)


def command(name: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`app.command`, plus: a MirdataError, or an OSError of the file system (no space, read-only, a file where
    a folder should be), becomes one red line on stderr and exit code 1, no traceback; keys are redacted."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except (MirdataError, OSError) as e:
                err_console.print(Text.assemble(("error: ", "bold red"), redact(error_line(e))), soft_wrap=True)
                raise typer.Exit(1) from None

        return app.command(name, **kwargs)(wrapper)

    return decorate


def error_line(error: MirdataError | OSError) -> str:
    """The message of a user error; an OSError names its path and the reason ('out: No space left on device')."""
    if isinstance(error, MirdataError) or not error.strerror:
        return str(error)
    paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
    return f"{paths}: {error.strerror}" if paths else error.strerror


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
