"""The MIR layout on disk: DIR/records.jsonl, DIR/images/<task>/..., DIR/build.json.

Every file is written to a temporary name and renamed into place, so a process killed at any moment leaves
either the old file or the new one, never half of one. While a build runs, each finished record is its own
small file under DIR/.parts/ (written after its images); `commit` merges them into records.jsonl in a fixed
order. A resumed build skips the ids already there, so it ends with the same bytes as an unbroken run.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from mirdata.errors import MirdataError
from mirdata.schema.record import Record

RECORDS = "records.jsonl"
IMAGES = "images"
BUILD_INFO = "build.json"
PARTS = ".parts"

IMAGE_FORMATS = {"jpg": "JPEG", "png": "PNG"}


TMP_SUFFIX = ".tmp"
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # record ids name files


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename.

    The temporary name is hidden (leading dot), ends in .tmp and is unique per process and thread, so
    concurrent writers never share one and readers that glob for records or images never see it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def encode_image(image: Image.Image, fmt: str) -> bytes:
    """Deterministic bytes for an image: no metadata, fixed quality."""
    buf = io.BytesIO()
    if fmt == "jpg":
        image.convert("RGB").save(buf, format="JPEG", quality=92, subsampling=0)
    elif fmt == "png":
        image.save(buf, format="PNG", optimize=False, compress_level=6)
    else:
        raise MirdataError(f"unknown image format {fmt!r}: choose one of {', '.join(IMAGE_FORMATS)}")
    return buf.getvalue()


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, object, None) for good lines and (line number, None, reason) for bad ones."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                reason = "truncated JSON line" if not raw.endswith(b"\n") else f"not valid JSON ({e.msg})"
                yield lineno, None, reason
                continue
            if not isinstance(obj, dict):
                yield lineno, None, f"a JSON {type(obj).__name__}, not an object"
                continue
            yield lineno, obj, None


class MIRStore:
    """One dataset folder in the MIR layout."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    @property
    def records_path(self) -> Path:
        return self.root / RECORDS

    @property
    def build_info_path(self) -> Path:
        return self.root / BUILD_INFO

    @property
    def parts_dir(self) -> Path:
        return self.root / PARTS

    def exists(self) -> bool:
        return self.records_path.is_file()

    # -- reading ---------------------------------------------------------------------------------------

    def read_raw(self) -> list[dict[str, Any]]:
        """All records as plain dicts; a bad line is an error naming the file and line."""
        if not self.records_path.is_file():
            raise MirdataError(f"{self.records_path}: no such file (is {self.root} a MIR dataset folder?)")
        out = []
        for lineno, obj, reason in iter_jsonl(self.records_path):
            if reason is not None:
                raise MirdataError(f"{self.records_path}:{lineno}: {reason}")
            out.append(obj)
        return out

    def read(self) -> list[Record]:
        records = []
        for i, d in enumerate(self.read_raw(), start=1):
            try:
                records.append(Record.from_dict(d))
            except (KeyError, TypeError, ValueError) as e:
                raise MirdataError(f"{self.records_path}:{i}: not a MIR record ({e!r}); run `mirdata validate`") from e
        return records

    def build_info(self) -> dict[str, Any]:
        if not self.build_info_path.is_file():
            return {}
        try:
            return json.loads(self.build_info_path.read_text())
        except json.JSONDecodeError as e:
            raise MirdataError(f"{self.build_info_path}: not valid JSON ({e.msg})") from e

    def image_path(self, relpath: str) -> Path:
        return self.root / relpath

    # -- writing ---------------------------------------------------------------------------------------

    def write(self, records: Iterable[Record | dict[str, Any]]) -> int:
        """Replace records.jsonl with `records`, atomically. Returns the number written."""
        lines = [(r.to_json() if isinstance(r, Record) else _dump(r)) + "\n" for r in records]
        atomic_write(self.records_path, "".join(lines).encode("utf-8"))
        return len(lines)

    def save_image(self, relpath: str, image: Image.Image | bytes, fmt: str | None = None) -> str:
        """Write one image under the dataset folder, atomically; returns `relpath`."""
        data = image if isinstance(image, bytes) else encode_image(image, fmt or relpath.rsplit(".", 1)[-1])
        atomic_write(self.root / relpath, data)
        return relpath

    def update_build_info(self, **entries: Any) -> dict[str, Any]:
        """Merge top-level keys into build.json, atomically."""
        info = self.build_info()
        info.update(entries)
        atomic_write(self.build_info_path, (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode())
        return info

    # -- building: one file per finished record, merged by commit --------------------------------------

    def put(self, record: Record) -> None:
        """Store one finished record (its images must already be saved)."""
        if not SAFE_ID.fullmatch(record.id):
            raise MirdataError(f"record id {record.id!r}: use letters, digits, '.', '_' or '-' (ids name files)")
        atomic_write(self.parts_dir / f"{record.id}.json", record.to_json().encode("utf-8"))

    def done_ids(self) -> set[str]:
        """Ids already complete: committed in records.jsonl or waiting in .parts/."""
        ids = {p.stem for p in self.parts_dir.glob("*.json")} if self.parts_dir.is_dir() else set()
        if self.records_path.is_file():
            ids.update(obj["id"] for _, obj, _ in iter_jsonl(self.records_path) if obj and "id" in obj)
        return ids

    def commit(self, sort_key: Callable[[dict[str, Any]], Any]) -> int:
        """Merge .parts/ into records.jsonl (one record per id, ordered by `sort_key`), then drop .parts/."""
        merged: dict[str, dict[str, Any]] = {}
        if self.records_path.is_file():
            merged.update((r["id"], r) for r in self.read_raw())
        if self.parts_dir.is_dir():
            for part in sorted(self.parts_dir.glob("*.json")):
                try:
                    rec = json.loads(part.read_bytes())
                except json.JSONDecodeError as e:  # cannot happen with atomic writes, but never merge garbage
                    raise MirdataError(f"{part}: not valid JSON ({e.msg}); delete it and build again") from e
                merged[rec["id"]] = rec
        n = self.write(sorted(merged.values(), key=sort_key))
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.remove_temporaries()
        return n

    def remove_temporaries(self) -> int:
        """Delete the temporary files a killed writer left behind (call when no writer runs). Returns how many."""
        stale = [p for p in self.root.rglob(f".*{TMP_SUFFIX}") if p.is_file()] if self.root.is_dir() else []
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)


def _dump(d: dict[str, Any]) -> str:
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
