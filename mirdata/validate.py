"""`mirdata validate DIR`: the pandera schema plus the file checks (every image exists and decodes)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.progress import progress_bar
from mirdata.schema.checks import Failure, check_records
from mirdata.schema.record import is_dataset_relpath
from mirdata.store import IMAGES, MIRStore, decode_image, iter_jsonl

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class Report:
    records: int
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)
    schema_seconds: float = 0.0
    file_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "failures": [f.to_dict() for f in self.failures],
            "warnings": [w.to_dict() for w in self.warnings],
            "schema_seconds": round(self.schema_seconds, 4),
            "file_seconds": round(self.file_seconds, 4),
        }


def image_size(path: Path) -> tuple[int, int]:
    """Decode the whole image (a truncated file fails here, not later) and return (width, height)."""
    with decode_image(path, path) as im:
        return im.size


def _probe(path: Path | str) -> tuple[tuple[int, int] | None, str | None]:
    if isinstance(path, str):  # why the path was refused
        return None, path
    if not path.exists():
        return None, "file does not exist"
    try:
        return image_size(path), None
    except MirdataError as e:
        return None, str(e).removeprefix(f"{path}: ")


def validate_dir(root: str | Path, check_files: bool = True, show_progress: bool = False) -> Report:
    store = MIRStore(root)
    if not store.records_path.is_file():
        raise MirdataError(f"{store.records_path}: no such file (is {root} a MIR dataset folder?)")
    raw: list[dict[str, Any]] = []
    lines: list[int] = []
    report = Report(records=0)
    for lineno, obj, reason in iter_jsonl(store.records_path):
        if reason is not None:
            report.failures.append(Failure(lineno, "", "(line)", f"{store.records_path.name}: {reason}"))
        else:
            raw.append(obj)
            lines.append(lineno)
    report.records = len(raw)
    if not raw and not report.failures:
        report.failures.append(Failure(None, "", "(file)", f"{store.records_path.name} holds no records"))

    sizes = None
    if check_files:
        t0 = time.perf_counter()
        sizes = _check_files(store, raw, lines, report, show_progress)
        report.file_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    report.failures.extend(check_records(raw, sizes, lines))
    report.schema_seconds = time.perf_counter() - t0
    report.failures.sort(key=lambda f: (f.line or 0, f.field))
    return report


def _check_files(store: MIRStore, raw: list[dict[str, Any]], lines: list[int], report: Report,
                 show_progress: bool) -> list[list[Any] | None]:
    paths: dict[str, Path | str] = {}  # a path a record names -> its real path, or why it is refused
    for r in raw:
        if isinstance(r.get("images"), list):
            for p in r["images"]:
                if isinstance(p, str) and is_dataset_relpath(p) and p not in paths:  # the schema reports the others
                    try:
                        paths[p] = store.image_path(p)
                    except MirdataError as e:
                        paths[p] = str(e).removeprefix(f"{store.root}: image path {p!r} ")
    results: dict[str, tuple[tuple[int, int] | None, str | None]] = {}
    with progress_bar(transient=True) as bar, ThreadPoolExecutor(4) as pool:
        job = bar.add_task("decoding images", total=len(paths), visible=show_progress)
        for rel, res in zip(paths, pool.map(_probe, paths.values())):
            results[rel] = res
            bar.advance(job)

    sizes: list[list[Any] | None] = []
    for r, line in zip(raw, lines):
        imgs = r.get("images")
        if not isinstance(imgs, list):
            sizes.append(None)
            continue
        row = []
        for k, p in enumerate(imgs):
            size, problem = results.get(p, (None, None)) if isinstance(p, str) else (None, None)
            if problem:
                report.failures.append(Failure(line, str(r.get("id", "")), f"images[{k}]", f"{p}: {problem}"))
            row.append(list(size) if size else None)
        sizes.append(row)

    images_dir = store.root / IMAGES
    if images_dir.is_dir():
        used = {path for path in paths.values() if isinstance(path, Path)}
        for f in sorted(images_dir.rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") \
                    and f.resolve() not in used:
                report.warnings.append(Failure(None, "", "images", f"{f.relative_to(store.root)}: not used by any record",
                                               severity="warning"))
    return sizes
