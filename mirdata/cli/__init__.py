"""The `mirdata` command: thin typer commands, each parsing its options and calling one library function."""

from mirdata.cli import annotate, build, data, infer, release, train  # noqa: F401  (they register commands)
from mirdata.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
