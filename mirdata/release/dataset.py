"""`mirdata release DIR --out REPO_DIR`: a MIR folder as a Hugging Face dataset repository.

The repository holds parquet shards with the images embedded, one file set per (category, task, split):

    data/<category>/<task>/<split>-00000-of-00001.parquet

so that every config reads the same files and nothing is stored twice: `all` (the default) lists the folders
of every task, a category config those of its tasks, a task config its own, always in the task order. The splits are
the difficulty ratings, `easy` and `hard`; a record without a rating stops the release with a clear error
(rate the folder with `mirdata difficulty` first), because an unrated question belongs to neither split and a
third split would silently mix into curricula that expect exactly these two.

Only what records.jsonl names is released: DIR's working folders (`.cache/` of annotation and difficulty runs,
`.parts/` of an unfinished build) never are. A record whose image lies in one of them is refused, and so is a
folder whose build has not finished (records waiting in `.parts/` would be silently left out).

Before anything is written, `mirdata audit` runs on the folder: a folder where a task can be answered from its
text alone (or fails another audit check) is refused unless `allow_audit_failures` is given, and the card then
names the failing tasks. The audit's report goes to assets/audit.json and its table into the card.

`meta` is stored as a JSON string (`layout.decode_row` turns it back into an object), not as `datasets`' `Json` type:
`datasets` before 4.7 cannot read a `Json` feature, and some trainers pin older versions.

Next to the data: the dataset card (README.md, see card.py), its statistics figure, and the original
release's files (`original/all_data_rel.json` and `original/images/<task>/<bucket>/...`) for the original
scripts; the two-hex-digit bucket keeps every folder well under the Hub's advice of 10,000 files per folder.

The release is written to a temporary folder beside REPO_DIR and moved into place at the end, so a failed
release leaves the previous one as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, Image, List, Value
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from mirdata.errors import MirdataError
from mirdata.progress import progress_bar
from mirdata.release.layout import (AUDIT_JSON, DATA, ORIGINAL, ORIGINAL_JSON, SPLITS, STATS_FIGURE, STATS_JSON,
                                    ReleaseSummary, config_data_files)
from mirdata.registry import task_names
from mirdata.schema.record import Record
from mirdata.store import PARTS, MIRStore
from mirdata.validate import validate_dir

if TYPE_CHECKING:
    from mirdata.audit import AuditReport

# DIR's working folders: caches of annotation and difficulty runs, records of an unfinished build.
WORK_DIRS = (".cache", PARTS)

# The Hub's dataset viewer reads one row group at a time: about 100 rows keeps image row groups small.
ROW_GROUP_ROWS = 100
# The size datasets' push_to_hub aims for; the Hub handles files of this size well.
MAX_SHARD_BYTES = 500 * 1000**2
# Content-defined chunking (the settings datasets uses): a re-release that changes a few records re-uploads
# only the changed pages, because the Hub's storage deduplicates identical chunks.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}

REGION = {"id": Value("string"), "image": Value("int32"), "box": List(Value("float64"), length=4),
          "label": Value("string")}

FEATURES = Features({
    "id": Value("string"),
    "category": Value("string"),
    "task": Value("string"),
    "images": List(Image()),
    "question": Value("string"),
    "options": List(Value("string")),
    "answer": Value("string"),
    "summary": Value("string"),
    "caption": List(Value("string")),
    "text2region": Value("string"),
    "region2region": Value("string"),
    "conclusion": Value("string"),
    "regions": List(REGION),
    "difficulty": Value("string"),
    "pass_rate": Value("float64"),
    "meta": Value("string"),  # JSON text: readable by every datasets 4.x (see layout.decode_row)
})
EMBEDDED_COLUMNS = {"images"}


@dataclass
class Shard:
    category: str
    task: str
    split: str
    number: int
    of: int
    records: list[Record]

    @property
    def path(self) -> str:
        return f"{DATA}/{self.category}/{self.task}/{self.split}-{self.number:05d}-of-{self.of:05d}.parquet"


# -- reading and checking the source -------------------------------------------------------------------------

def _read_source(store: MIRStore) -> list[Record]:
    waiting = sorted(store.parts_dir.glob("*.json")) if store.parts_dir.is_dir() else []
    if waiting:
        raise MirdataError(f"{store.parts_dir}: {len(waiting)} records of an unfinished build are not in "
                           f"{store.records_path.name} yet; finish the build by running the same `mirdata build` "
                           "command again, or delete that folder to release without them")
    raw = store.read_raw()
    if not raw:
        raise MirdataError(f"{store.records_path}: no records to release")
    in_work_dirs = [(r.get("id"), p) for r in raw for p in _image_list(r) if p.split("/")[0] in WORK_DIRS]
    if in_work_dirs:
        rid, path = in_work_dirs[0]
        raise MirdataError(f"{store.records_path}: record {rid} names the image {path}, which lies in a working "
                           f"folder ({', '.join(WORK_DIRS)}) that is never released; keep images under images/")
    failures = validate_dir(store.root).failures  # the same record and file checks as `mirdata validate`
    if failures:
        shown = "; ".join(f"line {f.line} {f.record or '?'} {f.field}: {f.problem}" for f in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        raise MirdataError(f"{store.records_path}: {len(failures)} failure{'s' * (len(failures) != 1)}, e.g. "
                           f"{shown}{more}; run `mirdata validate {store.root}`")
    unrated = [r["id"] for r in raw if r.get("difficulty") is None]
    if unrated:
        raise MirdataError(
            f"{store.records_path}: {len(unrated)} of {len(raw)} records have no difficulty rating "
            f"(e.g. {', '.join(unrated[:3])}); the release's splits are easy and hard, so rate them first "
            f"with `mirdata difficulty {store.root} --backend ... --model ...`")
    return [Record.from_dict(r) for r in raw]


def _image_list(record: dict[str, Any]) -> list[str]:
    images = record.get("images")
    return [p for p in images if isinstance(p, str)] if isinstance(images, list) else []


def _image_bytes(store: MIRStore, relpath: str) -> bytes:
    path = store.image_path(relpath)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MirdataError(f"{path}: no such image file (named by records.jsonl)") from None
    try:  # the header only: enough to refuse a file that no image decoder would open
        with PILImage.open(io.BytesIO(data)):
            pass
    except (UnidentifiedImageError, OSError) as e:
        raise MirdataError(f"{path}: not an image ({e})") from None
    return data


def _shards(store: MIRStore, records: list[Record], max_shard_bytes: int) -> list[Shard]:
    """Records grouped by (category, task, split) in record order, cut into shards of about equal bytes."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        groups.setdefault((r.category, r.task, r.difficulty), []).append(r)
    shards = []
    for (cat, task, split), group in sorted(groups.items(), key=lambda kv: _group_order(kv[0])):
        sizes = []
        for r in group:
            try:
                sizes.append(sum(store.image_path(p).stat().st_size for p in r.images))
            except FileNotFoundError as e:
                raise MirdataError(f"{e.filename}: no such image file (named by record {r.id})") from None
        n = max(1, math.ceil(sum(sizes) / max_shard_bytes))
        target = sum(sizes) / n
        cut: list[list[Record]] = [[]]
        done = 0
        for r, size in zip(group, sizes, strict=True):
            if cut[-1] and done + size > target * len(cut) and len(cut) < n:
                cut.append([])
            cut[-1].append(r)
            done += size
        shards += [Shard(cat, task, split, k, len(cut), part) for k, part in enumerate(cut)]
    return shards


def _group_order(key: tuple[str, str, str]) -> tuple[int, int]:
    _, task, split = key
    return task_names().index(task), SPLITS.index(split)


# -- writing --------------------------------------------------------------------------------------------------

def _row(store: MIRStore, r: Record) -> dict[str, Any]:
    row = r.to_dict()
    row["meta"] = json.dumps(row["meta"], ensure_ascii=False, sort_keys=True)
    # The Image feature keeps the file name next to the bytes: decode=False gives back the record's paths.
    row["images"] = [{"bytes": _image_bytes(store, p), "path": p} for p in r.images]
    return row


def _leaf_columns(name: str, pa_type: pa.DataType) -> list[str]:
    """Parquet's leaf column paths under a top-level column (options are matched against these)."""
    if isinstance(pa_type, pa.ExtensionType):
        pa_type = pa_type.storage_type
    if pa.types.is_struct(pa_type):
        return [leaf for f in pa_type for leaf in _leaf_columns(f"{name}.{f.name}", f.type)]
    if pa.types.is_list(pa_type) or pa.types.is_large_list(pa_type) or pa.types.is_fixed_size_list(pa_type):
        return _leaf_columns(f"{name}.list.element", pa_type.value_type)
    return [name]


def _writer_options(schema: pa.Schema) -> dict[str, Any]:
    """Image bytes are already compressed: store them plain (no codec, no dictionary) so their pages stay
    byte-identical between releases; every other column gets snappy and dictionaries."""
    compression: dict[str, str] = {}
    dictionary: list[str] = []
    encoding: dict[str, str] = {}
    for f in schema:
        for leaf in _leaf_columns(f.name, f.type):
            if f.name in EMBEDDED_COLUMNS:
                compression[leaf], encoding[leaf] = "none", "PLAIN"
            else:
                compression[leaf] = "snappy"
                dictionary.append(leaf)
    return {"compression": compression, "use_dictionary": dictionary, "column_encoding": encoding,
            "use_content_defined_chunking": CDC_OPTIONS, "write_page_index": True}


def _batches(items: list[Record], size: int) -> Iterator[list[Record]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_shard(store: MIRStore, shard: Shard, path: Path, row_group_rows: int,
                on_rows: Callable[[int], Any] | None = None) -> None:
    """One parquet file, written a row group at a time (only one row group's images are in memory)."""
    schema = FEATURES.arrow_schema
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema, **_writer_options(schema)) as writer:
        for batch in _batches(shard.records, row_group_rows):
            rows = [_row(store, r) for r in batch]
            encoded = FEATURES.encode_batch({name: [row[name] for row in rows] for name in FEATURES})
            writer.write_table(pa.Table.from_pydict(encoded, schema=schema), row_group_size=row_group_rows)
            if on_rows:
                on_rows(len(batch))


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists():  # an image shared by several records
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # the store replaces files by rename, so a hard link never changes under us
    except OSError:
        shutil.copy2(src, dst)


def original_image_name(record: Record, name: str) -> str:
    """Where an image lies under original/: `images/<task>/<bucket>/<name less a leading images/ and task/>`, the
    bucket being two hex digits of the record id's hash, so that a record's images stay together and no folder
    holds more than a few hundred entries even at the paper's scale (records imported from the original release
    keep their file names at the end of the path)."""
    parts = name.split("/")
    if parts[:1] == ["images"]:
        parts = parts[1:]
    if parts[:1] == [record.task] and len(parts) > 1:
        parts = parts[1:]
    bucket = hashlib.sha256(record.id.encode()).hexdigest()[:2]
    return "/".join(["images", record.task, bucket, *parts])


def _write_original(store: MIRStore, records: list[Record], out: Path, on_record: Callable[[], Any]) -> None:
    """all_data_rel.json, and each image under the name that file gives it (see `original_image_name`)."""
    from mirdata.upstream import export_upstream

    folder = out / ORIGINAL
    folder.mkdir(parents=True, exist_ok=True)
    export_upstream(store.root, folder / ORIGINAL_JSON)
    items = json.loads((folder / ORIGINAL_JSON).read_text(encoding="utf-8"))
    for record, item in zip(records, items, strict=True):
        names = [original_image_name(record, name) for name in item.get("images", record.images)]
        item["images"] = names
        for src, name in zip(record.images, names, strict=True):
            dst = (folder / name).resolve()
            if not dst.is_relative_to(folder.resolve()):
                raise MirdataError(f"{store.records_path}: record {record.id} names its original image {name!r}, "
                                   "which would land outside the release folder")
            _link_or_copy(store.image_path(src), dst)
        on_record()
    (folder / ORIGINAL_JSON).write_text(json.dumps(items, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_statistics(store: MIRStore, out: Path) -> dict[str, Any]:
    """The statistics figure and its numbers (as JSON) under assets/; returns the numbers."""
    from mirdata.stats import compute_stats, plot_stats

    stats = compute_stats(store.root)
    stats["dataset"] = "MIR"  # not the path on the releasing machine: the figure's title shows it
    (out / STATS_JSON).parent.mkdir(parents=True, exist_ok=True)
    (out / STATS_JSON).write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    plot_stats(stats, out / STATS_FIGURE)
    return stats


def _audit(store: MIRStore, records: list[Record], allow_failures: bool, show_progress: bool) -> AuditReport:
    """The audit of the folder; a failing one stops the release unless failures are allowed."""
    from mirdata.audit import audit_records, failure_lines

    report = audit_records([r.to_dict() for r in records], store.root, show_progress=show_progress)
    if not report.passed and not allow_failures:
        failed = report.failed_tasks
        raise MirdataError(f"{store.root}: {len(failed)} task(s) fail the audit ({', '.join(failed)}), e.g. "
                           f"{failure_lines(report)[0]}; see `mirdata audit {store.root}`, or release anyway with "
                           "--allow-audit-failures (the card then names the failing tasks)")
    return report


def _check_out(root: Path, out: Path, overwrite: bool) -> None:
    src, dst = root.resolve(), out.resolve()
    if dst == src or src.is_relative_to(dst):
        raise MirdataError(f"{out}: the release folder must not be or contain the dataset folder {root}")
    if dst.is_file():
        raise MirdataError(f"{out}: is a file, not a folder")
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise MirdataError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")


def release_dataset(root: str | Path, out: str | Path, *, overwrite: bool = False, original: bool = True,
                    license: str = "cc-by-4.0", repo_id: str | None = None,
                    max_shard_bytes: int = MAX_SHARD_BYTES, row_group_rows: int = ROW_GROUP_ROWS,
                    show_progress: bool = True, allow_audit_failures: bool = False) -> ReleaseSummary:
    """Write the MIR folder `root` as a Hugging Face dataset repository folder `out` (see the module doc)."""
    from mirdata.release.card import write_card
    from mirdata.release.push import REPO_ID

    t0 = time.perf_counter()
    root, out = Path(root), Path(out)
    if row_group_rows < 1 or max_shard_bytes < 1:
        raise MirdataError("row group rows and shard size must be positive")
    if repo_id is not None and not REPO_ID.fullmatch(repo_id):
        raise MirdataError(f"--repo-id must look like OWNER/NAME, not {repo_id!r}")
    store = MIRStore(root)
    remove_leftovers(out)
    _check_out(root, out, overwrite)
    records = _read_source(store)
    audit = _audit(store, records, allow_audit_failures, show_progress)
    shards = _shards(store, records, max_shard_bytes)

    staging = out.with_name(f".{out.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with progress_bar() as bar:
            job = bar.add_task("writing parquet", total=len(records), visible=show_progress)
            for shard in shards:
                write_shard(store, shard, staging / shard.path, row_group_rows, lambda n: bar.advance(job, n))
            if original:
                job = bar.add_task("original release files", total=len(records), visible=show_progress)
                _write_original(store, records, staging, lambda: bar.advance(job))
        stats = _write_statistics(store, staging)
        counts: dict[tuple[str, str, str], int] = {}
        for shard in shards:
            key = (shard.category, shard.task, shard.split)
            counts[key] = counts.get(key, 0) + len(shard.records)
        summary = ReleaseSummary(out=out, counts=counts, images=sum(len(r.images) for r in records),
                                 shards=[s.path for s in shards], configs=list(config_data_files(counts)),
                                 original=original, audit_failures=audit.failed_tasks)
        (staging / AUDIT_JSON).write_text(json.dumps(audit.to_dict(), indent=2, ensure_ascii=False) + "\n")
        write_card(staging, store, records, summary, stats, license=license, repo_id=repo_id, audit=audit)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.seconds = time.perf_counter() - t0
    return summary


def _replace(staging: Path, out: Path) -> None:
    """Move the finished release into place; the old one goes only once the new one is complete.

    Where the kernel can (Linux), the two folders swap names in one atomic step, so REPO_DIR is never
    missing; elsewhere a kill between the two renames leaves the old release beside it, which the next run
    puts back (`remove_leftovers`)."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists() and _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old release
        return
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False where the system cannot."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: not on this kernel or file system
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def remove_leftovers(out: Path) -> None:
    """Clean up after a release that was killed: put back an old release whose new one never arrived, and
    delete the staging and old folders of runs whose process is gone."""
    for leftover in sorted(out.parent.glob(f".{out.name}.*-*")) if out.parent.is_dir() else []:
        kind, _, pid = leftover.name.removeprefix(f".{out.name}.").rpartition("-")
        if kind not in ("staging", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == "old" and not out.exists():
            os.replace(leftover, out)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of an earlier process that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
