"""The `mirdata` command: thin typer commands, each parsing its options and calling one library function."""

# Imported in the order of the flow: `mirdata --help` lists the commands in this order.
from mirdata.cli import build, data, audit, annotate, infer, release, train  # noqa: F401,I001  (they register commands)
from mirdata.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
