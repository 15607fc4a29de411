"""The MIR layout on disk: DIR/records.jsonl, DIR/images/<task>/..., DIR/build.json.

Every file is written to a temporary name and renamed into place, so a process killed at any moment leaves
either the old file or the new one, never half of one. While a build runs, each finished record is its own
small file under DIR/.parts/ (written after its images); `commit` merges them into records.jsonl in a fixed
order. A resumed build skips the ids already there, so it ends with the same bytes as an unbroken run.

One writer at a time: a command that changes a folder holds DIR/.lock (an advisory `flock`, so a killed
holder releases it with its death) and writes its pid and command into it; a second writer is refused with one
line naming them. Every reader goes through `parse_json_line`, which turns any malformed line into a reason
(never an exception): bad UTF-8, nesting or integers beyond the limits below, NaN, lone surrogates.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from mirdata.errors import MirdataError
from mirdata.paths import resolve_inside
from mirdata.schema.record import Record

RECORDS = "records.jsonl"
IMAGES = "images"
BUILD_INFO = "build.json"
PARTS = ".parts"
LOCK = ".lock"

IMAGE_FORMATS = {"jpg": "JPEG", "png": "PNG"}


TMP_SUFFIX = ".tmp"
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # record ids name files

# Limits of what a reader accepts from one JSON line; nothing the package writes comes near them.
MAX_LINE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64  # integers are limited by Python itself (sys.get_int_max_str_digits(), 4300 digits)
# Largest image (width x height) any command decodes; a decompression bomb stops at its header.
MAX_IMAGE_PIXELS = int(os.environ.get("MIRDATA_MAX_IMAGE_PIXELS", 64_000_000))
_SURROGATE = re.compile("[\ud800-\udfff]")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename.

    The temporary name is hidden (leading dot), ends in .tmp and is unique per process and thread, so
    concurrent writers never share one and readers that glob for records or images never see it.
    A failure (no space, read-only, a file where a folder should be) is an OSError naming `path` itself.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}{TMP_SUFFIX}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
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


def decode_image(source: Path | bytes, name: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Decode a whole image file (a truncated one fails here, not later) within the pixel limit.

    Any failure is a MirdataError naming `name`: missing, a folder, not an image, too many pixels."""
    limit = max_pixels or MAX_IMAGE_PIXELS
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except FileNotFoundError:
        raise MirdataError(f"{name}: no such image file") from None
    except IsADirectoryError:
        raise MirdataError(f"{name}: is a folder, not an image file") from None
    except Image.DecompressionBombError:
        raise MirdataError(f"{name}: has more than {limit} pixels (a decompression bomb?)") from None
    except Exception as e:  # PIL raises many types for undecodable files
        raise MirdataError(f"{name}: does not decode as an image ({type(e).__name__}: {e})") from None
    width, height = im.size
    try:
        if width * height > limit:
            raise MirdataError(f"{name}: {width}x{height} is more than {limit} pixels (raise "
                               "MIRDATA_MAX_IMAGE_PIXELS to accept it)")
        try:
            im.load()  # reads the whole file and, for a path, closes it
        except Exception as e:
            raise MirdataError(f"{name}: does not decode as an image ({type(e).__name__}: {e})") from None
    except MirdataError:
        im.close()
        raise
    return im


def _parse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _content_problem(obj: Any) -> str | None:
    """Too deep, or a string no UTF-8 writer can write again (a lone surrogate)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            return "holds a lone surrogate (\\ud800-\\udfff), which is not text"
    return None


_DECODER = json.JSONDecoder(parse_constant=_parse_constant)
# A lone surrogate can only come from a \\u escape (UTF-8 decoding refuses one): the walk runs only then.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def load_json(text: str) -> Any:
    """`json.loads` within the limits above: json.JSONDecodeError for bad syntax, ValueError(the reason) for
    a value no reader should take (too deep, a huge integer, NaN, a lone surrogate)."""
    try:
        obj = _DECODER.decode(text.strip())
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        if "integer string conversion" in str(e):
            e = f"an integer of more than {sys.get_int_max_str_digits()} digits"
        raise ValueError(f"not usable JSON ({e})") from None
    if text.count("[") + text.count("{") > MAX_DEPTH or _SURROGATE_ESCAPE.search(text):
        problem = _content_problem(obj)
        if problem:
            raise ValueError(problem)
    return obj


def parse_json_line(raw: bytes | str) -> tuple[Any, str | None]:
    """(the JSON value, None), or (None, why it is unusable): the one parser every reader of lines uses."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return None, f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
    try:
        return load_json(raw), None
    except json.JSONDecodeError as e:
        return None, f"not valid JSON ({e.msg} at column {e.colno})"
    except ValueError as e:
        return None, str(e)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, object, None) for good lines and (line number, None, reason) for bad ones."""
    with open(path, "rb") as f:
        lineno = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):
            lineno += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the line without holding it
                yield lineno, None, f"line longer than {MAX_LINE_BYTES} bytes"
                continue
            if not raw.strip():
                continue
            obj, reason = parse_json_line(raw)
            if reason is not None:
                if not raw.endswith(b"\n") and reason.startswith("not valid JSON"):
                    reason = "truncated JSON line"
                yield lineno, None, reason
            elif not isinstance(obj, dict):
                yield lineno, None, f"a JSON {type(obj).__name__}, not an object"
            else:
                yield lineno, obj, None


class MIRStore:
    """One dataset folder in the MIR layout."""

    def __init__(self, root: str | os.PathLike[str], parts: str = PARTS):
        self.root = Path(root)
        self.parts = parts  # the folder of finished records not committed yet; an import keeps its own

    @property
    def records_path(self) -> Path:
        return self.root / RECORDS

    @property
    def build_info_path(self) -> Path:
        return self.root / BUILD_INFO

    @property
    def parts_dir(self) -> Path:
        return self.root / self.parts

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
        info, reason = parse_json_line(self.build_info_path.read_bytes())
        if reason is not None:
            raise MirdataError(f"{self.build_info_path}: {reason}")
        if not isinstance(info, dict):
            raise MirdataError(f"{self.build_info_path}: a JSON {type(info).__name__}, not an object")
        return info

    def image_path(self, relpath: str) -> Path:
        """The real path of an image a record names, refused unless it lies inside the folder."""
        return resolve_inside(self.root, relpath)

    # -- one writer at a time ------------------------------------------------------------------------------

    @contextmanager
    def writing(self, command: str, create: bool = False) -> Iterator[None]:
        """Hold the folder's writer lock while the block runs; refuse (one line) if another process holds it.

        The lock is an flock on DIR/.lock, so the kernel drops it when its holder dies: a lock file left by a
        killed run names a dead pid and is simply taken over."""
        if self.root.exists() and not self.root.is_dir():
            raise MirdataError(f"{self.root}: is a file, not a folder")
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise MirdataError(f"{self.records_path}: no such file (is {self.root} a MIR dataset folder?)")
        path = self.root / LOCK
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                os.close(fd)
                held, _ = parse_json_line(holder) if holder.strip() else ({}, None)
                held = held if isinstance(held, dict) else {}
                raise MirdataError(f"{self.root}: another writer is at work (pid {held.get('pid', '?')}, "
                                   f"`mirdata {held.get('command', '?')}`, {path.name}); wait for it to finish "
                                   "and run this again") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file between our open and lock: lock the new one
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command,
                                      "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode(), 0)
            yield
        finally:
            path.unlink(missing_ok=True)
            os.close(fd)

    # -- writing ---------------------------------------------------------------------------------------

    def write(self, records: Iterable[Record | dict[str, Any]]) -> int:
        """Replace records.jsonl with `records`, atomically. Returns the number written."""
        try:
            lines = [(r.to_json() if isinstance(r, Record) else _dump(r)) + "\n" for r in records]
        except ValueError as e:  # NaN or infinity: JSON cannot hold it, and nothing is written
            raise MirdataError(f"{self.records_path}: cannot write a record ({e})") from None
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
        parts = sorted(self.parts_dir.glob("*.json")) if self.parts_dir.is_dir() else []
        for part in parts:
            rec, reason = parse_json_line(part.read_bytes())
            if reason is not None or not isinstance(rec, dict) or "id" not in rec:
                # cannot happen with atomic writes, but never merge garbage
                raise MirdataError(f"{part}: {reason or 'not a record'}; delete it and build again")
            merged[rec["id"]] = rec
        n = self.write(sorted(merged.values(), key=sort_key))
        for part in parts:  # only what this commit merged: a part that arrived since stays for the next one
            part.unlink(missing_ok=True)
        self.remove_temporaries()
        try:
            self.parts_dir.rmdir()
        except OSError:
            pass  # absent, or holds parts merged by no one yet
        return n

    def remove_temporaries(self) -> int:
        """Delete the temporary files a killed writer left behind (call when no writer runs). Returns how many."""
        stale = [p for p in self.root.rglob(f".*{TMP_SUFFIX}") if p.is_file()] if self.root.is_dir() else []
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)


def _dump(d: dict[str, Any]) -> str:
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
