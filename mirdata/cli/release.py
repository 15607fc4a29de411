"""Commands that publish a dataset: release (Hugging Face dataset folder), push (to the Hub), preview (HTML page)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from mirdata.cli.app import command, out_console
from mirdata.errors import MirdataError

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?\s*", re.I)
_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3}


def parse_bytes(text: str) -> int:
    m = _SIZE.fullmatch(text)
    if not m:
        raise MirdataError(f"--max-shard-size must look like 500MB or 2GB, not {text!r}")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "B").upper()])


@command("release")
def release(
    dir: Annotated[Path, typer.Argument(help="Dataset folder in the MIR layout, every record rated easy or hard.")],
    out: Annotated[Path, typer.Option(help="Release folder to write (a Hugging Face dataset repository).")],
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it holds an earlier release.")] = False,
    original: Annotated[bool, typer.Option(help="Also write the original release's all_data_rel.json and "
                                                "images under OUT/original/.")] = True,
    repo_id: Annotated[Optional[str], typer.Option(help="OWNER/NAME used in the card's loading example.")] = None,
    license: Annotated[str, typer.Option(help="License id for the card's metadata.")] = "cc-by-4.0",
    max_shard_size: Annotated[str, typer.Option(help="Largest parquet file, e.g. 500MB.")] = "500MB",
    row_group_size: Annotated[int, typer.Option(min=1, help="Rows per parquet row group (the Hub's viewer "
                                                            "reads one at a time).")] = 100,
    allow_audit_failures: Annotated[bool, typer.Option(help="Release even when `mirdata audit` fails a task; the "
                                                            "card names the failing tasks.")] = False,
) -> None:
    """Write DIR as a Hugging Face dataset: parquet with embedded images, configs, easy/hard splits, card."""
    from mirdata.release import release_dataset

    summary = release_dataset(dir, out, overwrite=overwrite, original=original, license=license, repo_id=repo_id,
                              max_shard_bytes=parse_bytes(max_shard_size), row_group_rows=row_group_size,
                              allow_audit_failures=allow_audit_failures)
    by_split: dict[str, int] = {}
    for (_, _, split), n in summary.counts.items():
        by_split[split] = by_split.get(split, 0) + n
    splits = ", ".join(f"{n} {split}" for split, n in sorted(by_split.items()))
    out_console.print(f"released {summary.records} records ({splits}), {summary.images} images, "
                      f"{len(summary.shards)} parquet files, {len(summary.configs)} configs in "
                      f"{summary.seconds:.1f} s → {out}")
    if summary.audit_failures:
        out_console.print(f"[yellow]released despite audit failures in[/] {', '.join(summary.audit_failures)} "
                          "(the card names them)", highlight=False)


@command("push")
def push(
    repo_dir: Annotated[Path, typer.Argument(help="Release folder written by `mirdata release`.")],
    repo_id: Annotated[str, typer.Option(help="Dataset repository on the Hub, OWNER/NAME.")],
    private: Annotated[bool, typer.Option(help="Create the repository as private (an existing one keeps its "
                                               "visibility).")] = False,
    revision: Annotated[Optional[str], typer.Option(help="Branch to push to (created if needed).")] = None,
) -> None:
    """Upload REPO_DIR to a Hub dataset repository; the token comes from HF_TOKEN or `hf auth login`.

    Interrupted? Run it again: files already committed are skipped. HF_ENDPOINT selects another Hub."""
    from mirdata.release import push_dataset

    url = push_dataset(repo_dir, repo_id, private=private, revision=revision)
    out_console.print(f"pushed {repo_dir} → {url}" + (f" (branch {revision})" if revision else ""))


@command("preview")
def preview(
    dir: Annotated[Path, typer.Argument(help="Dataset folder in the MIR layout.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("preview.html"),
    num: Annotated[int, typer.Option(min=1, help="Records to show, taken in turn from every task.")] = 24,
) -> None:
    """Write one self-contained HTML page of sample records: images in place, answer, reasoning, boxes."""
    from mirdata.release import write_preview

    shown = write_preview(dir, out, num=num)
    out_console.print(f"previewed {shown} records → {out}")
