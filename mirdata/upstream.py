"""The original release's format: `all_data_rel.json` (+ `images.zip`) into the MIR layout, and back out.

An upstream item has: question (with `<image>` tags), images, options (a list `"A. ..."` or an object
`{"A": ...}`), summary, caption (a list, or one string "Image 1: ... Image 2: ..."), text2img, img2img,
conclusion (a bare letter or a sentence stating it), optional reasoning, and optionally a task/category/type
field naming the task in either spelling ("Forced Perspective" or `forced_perspective`). The file is a JSON
array, or JSON Lines with one item per line.

Import normalises each item into a MIR record (options "A. ...", one caption per image, a conclusion sentence
that states the answer letter) and keeps in `meta["upstream"]` what it changed: the original values, the keys
it does not map (task/category/type among them), the original image paths and the key order. Export writes
an original value back as long as normalising it still gives the record's current value, so an
import -> export round trip gives back every field's content, and an edited record exports its new content.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from mirdata.errors import MirdataError
from mirdata.progress import progress_bar
from mirdata.registry import category_of, task_id, task_names
from mirdata.schema.checks import describe, stated_letters
from mirdata.schema.record import (
    LETTERS,
    Record,
    Region,
    format_options,
    is_dataset_relpath,
    parse_option,
)
from mirdata.store import (
    IMAGES,
    MAX_IMAGE_PIXELS,
    SAFE_ID,
    MIRStore,
    atomic_write,
    decode_image,
    load_json,
)

# Upstream stage names -> ours (either spelling is read).
STAGE_NAMES = {"text2img": "text2region", "img2img": "region2region"}
REQUIRED = ("question", "images", "options", "summary", "caption", "text2img", "img2img", "conclusion")
TASK_KEYS = ("task", "category", "type")
# Keys import maps onto record fields; every other key is kept verbatim in meta["upstream"]["extra"].
MAPPED = {"id", "question", "images", "options", "answer", "summary", "caption", "text2img", "text2region",
          "img2img", "region2region", "conclusion", "reasoning", "regions", "difficulty", "pass_rate", "meta"}
# What export writes for a record that was not imported (so that importing it again gives the same record).
NATIVE_KEYS = ("id", "task", "category", "question", "images", "options", "answer", "summary", "caption",
               "text2img", "img2img", "conclusion", "reasoning", "regions", "difficulty", "pass_rate", "meta")
MAX_ENTRY_BYTES = 256 * 1024 * 1024
# Bounds on an archive, checked from its directory before any entry is read (each has an import-upstream option).
MAX_TOTAL_BYTES = 64 * 1024**3
MAX_ENTRIES = 2_000_000
MAX_NAME_LENGTH = 1024
# An import keeps its unfinished records apart from a build's: a build never adopts what a failed import left.
IMPORT_PARTS = ".import-parts"
MAX_LISTED_ERRORS = 20

_UPSTREAM_OPTION = re.compile(r"^\s*\(?([A-Z])\s*(?:\)|[.:])\s*(.*)$", re.DOTALL)  # "A. x", "A: x", "A) x", "(A) x"
_CAPTION_MARK = re.compile(r"Image[\s_-]*(\d+)\s*[:.]", re.IGNORECASE)
_BARE_LETTER = re.compile(r"\(?([A-Za-z])\)?\.?")
_ANSWER_PHRASE = re.compile(r"\b(?i:answer)\s*(?i:is|:)?\s*\(?([A-Z])\b")


class _ItemError(Exception):
    """One item cannot be imported; collected and reported together with the others."""


# -- reading the JSON -----------------------------------------------------------------------------------------

def load_items(path: str | os.PathLike[str]) -> list[tuple[str, dict[str, Any]]]:
    """The items of an upstream file as (how to name it in a message, item)."""
    path = Path(path)
    if not path.is_file():
        raise MirdataError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise MirdataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not text.strip():
        raise MirdataError(f"{path}: empty file, expected a JSON array of items or JSON Lines")
    try:
        data = load_json(text)
    except ValueError as e:
        if not isinstance(e, json.JSONDecodeError):
            raise MirdataError(f"{path}: {e}") from None
        if text.lstrip().startswith("{"):
            return list(_json_lines(path, text))
        at_end = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string")
        ending = " (the file ends early: truncated?)" if at_end else ""
        raise MirdataError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}{ending}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise MirdataError(f"{path}: expected a JSON array of items, got {describe(data)}")
    items = []
    for k, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise MirdataError(f"{path}: item #{k} is {describe(item)}, not an object")
        items.append((f"item #{k}", item))
    return items


def _json_lines(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    lines = text.split("\n")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = load_json(line)
        except ValueError as e:
            if not isinstance(e, json.JSONDecodeError):
                raise MirdataError(f"{path}:{lineno}: {e}") from None
            last = lineno == len(lines) or not any(rest.strip() for rest in lines[lineno:])
            reason = "truncated JSON line" if last and not text.endswith("\n") else f"not valid JSON ({e.msg})"
            raise MirdataError(f"{path}:{lineno}: {reason}") from None
        if not isinstance(item, dict):
            raise MirdataError(f"{path}:{lineno}: {describe(item)}, not an object")
        yield f"line {lineno}", item


# -- the images: a folder or a zip archive ---------------------------------------------------------------------

class ImageSource:
    """The files of IMAGES (a folder or a .zip), looked up by the paths the items use."""

    def __init__(self, location: str | os.PathLike[str], max_entry_bytes: int = MAX_ENTRY_BYTES,
                 max_total_bytes: int = MAX_TOTAL_BYTES, max_entries: int = MAX_ENTRIES,
                 max_name_length: int = MAX_NAME_LENGTH):
        self.location = Path(location)
        self.max_entry_bytes = max_entry_bytes
        self.max_total_bytes = max_total_bytes
        self.max_entries = max_entries
        self.max_name_length = max_name_length
        self._zip: zipfile.ZipFile | None = None
        if self.location.is_dir():
            names = [p.relative_to(self.location).as_posix() for p in sorted(self.location.rglob("*"))
                     if p.is_file() and not p.name.startswith(".")]
        elif self.location.is_file():
            names = self._open_zip()
        else:
            raise MirdataError(f"{self.location}: no such folder or file (IMAGES is images.zip or a folder)")
        self.names = names
        # Every path suffix ("a/b/c.jpg", "b/c.jpg", "c.jpg") -> the one file it names (None when ambiguous),
        # so items may name files with or without the archive's leading folders.
        self._by_suffix: dict[str, str | None] = {}
        for name in names:
            parts = name.split("/")
            for k in range(len(parts)):
                suffix = "/".join(parts[k:])
                self._by_suffix[suffix] = name if suffix not in self._by_suffix else None

    def _open_zip(self) -> list[str]:
        try:
            self._zip = zipfile.ZipFile(self.location)
        except (zipfile.BadZipFile, OSError) as e:
            raise MirdataError(f"{self.location}: not a zip archive or a folder ({e})") from None
        infos = self._zip.infolist()
        if len(infos) > self.max_entries:
            raise MirdataError(f"{self.location}: refusing an archive of {len(infos)} entries, more than the limit "
                               f"of {self.max_entries} (--max-entries)")
        total = sum(info.file_size for info in infos)
        if total > self.max_total_bytes:
            raise MirdataError(f"{self.location}: refusing an archive that unpacks to {total} bytes, more than "
                               f"the limit of {self.max_total_bytes} (--max-total-mb)")
        names = []
        for info in infos:
            name = info.filename
            if len(name) > self.max_name_length:
                raise MirdataError(f"{self.location}: refusing entry {name[:60]!r}...: a name of {len(name)} "
                                   f"characters, more than the limit of {self.max_name_length} (--max-name-length)")
            if info.is_dir():
                continue
            if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
                raise MirdataError(f"{self.location}: refusing entry {name!r}: an absolute path")
            if ".." in re.split(r"[/\\]", name):
                raise MirdataError(f"{self.location}: refusing entry {name!r}: '..' would leave the output folder")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise MirdataError(f"{self.location}: refusing entry {name!r}: a symbolic link")
            if info.file_size > self.max_entry_bytes:
                raise MirdataError(f"{self.location}: refusing entry {name!r}: {info.file_size} bytes, more than "
                                   f"the limit of {self.max_entry_bytes} (--max-entry-mb)")
            if not PurePosixPath(name).name.startswith("."):
                names.append(name)
        return names

    def resolve(self, path: str) -> str | None:
        """The file an item's image path names: the longest suffix of it that names exactly one file."""
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        for k in range(len(parts)):
            name = self._by_suffix.get("/".join(parts[k:]))
            if name is not None:
                return name
        return None

    def read(self, name: str) -> bytes:
        if self._zip is None:
            return (self.location / name).read_bytes()
        try:
            with self._zip.open(name) as f:
                data = f.read(self.max_entry_bytes + 1)
        except (zipfile.BadZipFile, RuntimeError, OSError, EOFError) as e:  # corrupt or encrypted entry
            raise MirdataError(f"{self.location}: cannot read entry {name!r} ({e})") from None
        if len(data) > self.max_entry_bytes:
            raise MirdataError(f"{self.location}: refusing entry {name!r}: larger than {self.max_entry_bytes} bytes")
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


# -- normalising one item's fields -----------------------------------------------------------------------------

def normalize_options(value: Any) -> list[str]:
    """A list ("A. x", "A: x", "(A) x" or unlabelled texts) or an object {"A": x} -> ["A. x", ...]."""
    if isinstance(value, dict):
        options = []
        for key, text in value.items():
            label = str(key).strip().strip("().:").upper()
            if len(label) != 1 or label not in LETTERS:
                raise _ItemError(f"options key {key!r} is not an option letter")
            if not isinstance(text, (str, int, float)) or isinstance(text, bool):
                raise _ItemError(f"option {label} must be text, got {describe(text)}")
            options.append(f"{label}. {str(text).strip()}")
        return options
    if not isinstance(value, list) or not all(isinstance(o, str) for o in value):
        raise _ItemError(f"options must be a list of strings or an object {{letter: text}}, got {describe(value)}")
    matches = [_UPSTREAM_OPTION.match(o) for o in value]
    if all(matches):
        return [f"{m.group(1)}. {m.group(2).strip()}" for m in matches]
    if any(matches):
        raise _ItemError("some options have letter labels and some do not")
    return format_options([o.strip() for o in value])


def normalize_caption(value: Any) -> list[str]:
    """A list of captions, or one string "Image 1: ... Image 2: ..." -> one caption per image."""
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        return list(value)
    if not isinstance(value, str):
        raise _ItemError(f"caption must be a list of strings or one string, got {describe(value)}")
    marks = list(_CAPTION_MARK.finditer(value))
    if not marks:
        return [value.strip()]
    ends = [m.start() for m in marks[1:]] + [len(value)]
    return [value[m.end():end].strip() for m, end in zip(marks, ends)]


def normalize_answer(value: Any) -> str:
    """'B', 'b', '(B)', 'B. a red car' -> 'B'."""
    if isinstance(value, str):
        letter = _bare_letter(value) or parse_option(value)[0]
        if letter:
            return letter
    raise _ItemError(f"answer must be an option letter, got {describe(value)}")


def _bare_letter(text: str) -> str | None:
    """'B', 'b', '(B)', 'B.' -> 'B'; anything longer -> None."""
    m = _BARE_LETTER.fullmatch(text.strip())
    return m.group(1).upper() if m else None


def answer_from_conclusion(conclusion: str) -> str:
    """The letter a conclusion gives as the answer: a bare letter, the one letter it states, or the one letter
    an 'answer is X' phrase names when it mentions other options too."""
    bare = _bare_letter(conclusion)
    if bare:
        return bare
    letters = stated_letters(conclusion)
    if len(letters) == 1:
        return letters.pop()
    phrased = {m.group(1) for m in _ANSWER_PHRASE.finditer(conclusion)}
    if len(phrased) == 1:
        return phrased.pop()
    if not letters:
        raise _ItemError(f"conclusion states no answer letter and there is no answer field: {describe(conclusion)}")
    raise _ItemError(f"conclusion states several letters ({', '.join(sorted(letters))}) and there is no answer "
                     f"field: {describe(conclusion)}")


def normalize_conclusion(conclusion: str, answer: str) -> str:
    """A sentence that states `answer` and only it: kept as it is when it already does."""
    if _bare_letter(conclusion):
        return f"The answer is {answer}."
    if stated_letters(conclusion) == {answer}:
        return conclusion
    if not stated_letters(conclusion):
        return f"{conclusion.rstrip()} So the answer is {answer}."
    return f"The answer is {answer}."  # it also names other letters; the original stays in meta


def normalize_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _ItemError(f"id must be a string or an integer, got {describe(value)}")
    rid = str(value)
    if not SAFE_ID.fullmatch(rid):
        raise _ItemError(f"id {rid!r} must be letters, digits, '.', '_' or '-' (it names files)")
    return rid


_NORMALIZERS = {"options": normalize_options, "caption": normalize_caption, "answer": normalize_answer,
                "id": normalize_id}


def _text(item: dict[str, Any], key: str) -> str:
    value = item[key]
    if not isinstance(value, str):
        raise _ItemError(f"{key} must be a string, got {describe(value)}")
    return value


def _stage(item: dict[str, Any], upstream_name: str) -> str:
    """text2img / img2img, or our names for them."""
    return _text(item, upstream_name if upstream_name in item else STAGE_NAMES[upstream_name])


def _task(item: dict[str, Any], fallback: str | None) -> str:
    for key in TASK_KEYS:
        value = item.get(key)
        found = task_id(value) if isinstance(value, str) else None
        if found:
            if fallback and found != fallback:
                raise _ItemError(f"{key} {value!r} names task {found}, but --task is {fallback}")
            return found
    if fallback:
        return fallback
    named = {k: item[k] for k in TASK_KEYS if k in item}
    hint = f" ({', '.join(f'{k} {v!r}' for k, v in named.items())} names no MIR task)" if named else ""
    raise _ItemError(f"no task field{hint}; pass --task")


def item_to_record(item: dict[str, Any], position: int, task: str | None, source: ImageSource,
                   file_name: str) -> tuple[Record, dict[str, str]]:
    """One upstream item -> (record, {record image path: file in IMAGES})."""
    missing = [k for k in REQUIRED if k not in item and STAGE_NAMES.get(k) not in item]
    if missing:
        raise _ItemError(f"missing required field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    task = _task(item, task)
    originals: dict[str, Any] = {}

    def normalized(key: str) -> Any:
        value = _NORMALIZERS[key](item[key])
        if value != item[key]:
            originals[key] = item[key]
        return value

    options = normalized("options")
    caption = normalized("caption")
    conclusion = _text(item, "conclusion")
    answer = normalized("answer") if "answer" in item else answer_from_conclusion(conclusion)
    record_conclusion = normalize_conclusion(conclusion, answer)
    if record_conclusion != conclusion:
        originals["conclusion"] = conclusion
    rid = normalized("id") if "id" in item else f"{task}-u{position:06d}"

    images = item["images"]
    if not isinstance(images, list) or not images or not all(isinstance(p, str) and p for p in images):
        raise _ItemError(f"images must be a list of paths, got {describe(images)}")
    files: dict[str, str] = {}
    paths, upstream_paths = [], {}
    for path in images:
        name = source.resolve(path)
        if name is None:
            raise _ItemError(f"image {path!r} is not in {source.location} (or more than one file matches)")
        dest = _dest_path(task, name)
        files[dest] = name
        paths.append(dest)
        if dest != path:
            upstream_paths[dest] = path

    regions = item.get("regions", [])
    if not isinstance(regions, list) or not all(isinstance(r, dict) for r in regions):
        raise _ItemError(f"regions must be a list of objects, got {describe(regions)}")
    meta = item.get("meta", {})
    if not isinstance(meta, dict):
        raise _ItemError(f"meta must be an object, got {describe(meta)}")
    meta = dict(meta)
    meta.pop("upstream", None)
    if "reasoning" in item:
        meta["reasoning"] = item["reasoning"]
    meta["upstream"] = {
        "file": file_name,
        "position": position,
        "keys": list(item),
        "extra": {k: v for k, v in item.items() if k not in MAPPED},
        "originals": originals,
        "images": upstream_paths,
    }
    try:
        regions = [Region.from_dict(r) for r in regions]
    except (KeyError, TypeError, ValueError) as e:
        raise _ItemError(f"regions must be objects with id, image, box [x0, y0, x1, y1], label ({e!r})") from None
    labels = [parse_option(o)[0] for o in options]
    if answer not in labels:
        raise _ItemError(f"answer {answer!r} is not one of the option letters ({', '.join(map(str, labels))})")
    pass_rate = item.get("pass_rate")
    if pass_rate is not None and (type(pass_rate) not in (int, float) or not math.isfinite(pass_rate)
                                  or not 0 <= pass_rate <= 1):
        raise _ItemError(f"pass_rate must be a number in [0, 1] or null, got {describe(pass_rate)}")
    if item.get("difficulty") not in (None, "easy", "hard"):
        raise _ItemError(f"difficulty must be easy, hard or null, got {describe(item.get('difficulty'))}")
    record = Record(
        id=rid, category=category_of(task), task=task, images=paths, question=_text(item, "question"),
        options=options, answer=answer, summary=_text(item, "summary"), caption=caption,
        text2region=_stage(item, "text2img"), region2region=_stage(item, "img2img"), conclusion=record_conclusion,
        regions=regions, difficulty=item.get("difficulty"), pass_rate=item.get("pass_rate"), meta=meta,
    )
    return record, files


def _dest_path(task: str, name: str) -> str:
    """images/<task>/<the file's path in IMAGES, less a leading images/ and <task>/ folder>."""
    parts = name.split("/")
    for lead in (IMAGES, task):
        if len(parts) > 1 and parts[0] == lead:
            parts = parts[1:]
    dest = "/".join([IMAGES, task, *parts])
    if not is_dataset_relpath(dest):
        raise _ItemError(f"image file {name!r} cannot be stored under the dataset folder")
    return dest


# -- import --------------------------------------------------------------------------------------------------

def import_upstream(json_path: str | os.PathLike[str], images: str | os.PathLike[str], out: str | os.PathLike[str],
                    task: str | None = None, max_entry_bytes: int = MAX_ENTRY_BYTES,
                    max_total_bytes: int = MAX_TOTAL_BYTES, max_entries: int = MAX_ENTRIES,
                    max_name_length: int = MAX_NAME_LENGTH, max_image_pixels: int = MAX_IMAGE_PIXELS,
                    show_progress: bool = True) -> int:
    """Import an upstream file and its images into the MIR layout at `out`; returns the records imported.

    Every item is checked, and every image it names decoded, before anything is written; all problems are
    reported at once. Images and records are written atomically through MIRStore; records already in `out`
    with other ids are kept, and so are their images: a new image whose name is taken by a different file is
    stored under a name of its own.
    """
    if task is not None:
        named = task_id(task)
        if named is None:
            raise MirdataError(f"--task {task!r} is not a MIR task; tasks are: {', '.join(task_names())}")
        task = named
    json_path = Path(json_path)
    start = time.perf_counter()
    items = load_items(json_path)
    source = ImageSource(images, max_entry_bytes, max_total_bytes, max_entries, max_name_length)
    store = MIRStore(out, parts=IMPORT_PARTS)
    try:
        records, files = _convert(items, task, source, json_path)
        with store.writing("import-upstream", create=True):
            files = _check_images(records, files, source, store, max_image_pixels, show_progress)
            existing = [r["id"] for r in store.read_raw()] if store.exists() else []
            order = {rid: k for k, rid in enumerate(dict.fromkeys([*existing, *(r.id for r in records)]))}
            written: set[str] = set()
            with progress_bar(transient=not show_progress) as bar:
                job = bar.add_task(f"importing {json_path.name}", total=len(records), visible=show_progress)
                for record, record_files in zip(records, files):
                    if not _already_put(store, record):  # a killed import's finished records are kept
                        for dest, name in record_files.items():
                            if dest not in written:
                                store.save_image(dest, source.read(name))
                                written.add(dest)
                        store.put(record)
                    bar.advance(job)
            total = store.commit(lambda r: order.get(r["id"], len(order)))
            info = store.build_info()
            store.update_build_info(
                records=total,
                imports=[*info.get("imports", []), {"file": str(json_path), "images": str(images), "task": task,
                                                    "records": len(records),
                                                    "seconds": round(time.perf_counter() - start, 3)}])
    finally:
        source.close()
    return len(records)


def _already_put(store: MIRStore, record: Record) -> bool:
    part = store.parts_dir / f"{record.id}.json"
    return part.is_file() and part.read_bytes() == record.to_json().encode("utf-8")


def _check_images(records: list[Record], files: list[dict[str, str]], source: ImageSource, store: MIRStore,
                  max_pixels: int, show_progress: bool) -> list[dict[str, str]]:
    """Decode every image the records use before anything is written, and give each new image whose name is
    taken in the dataset folder by a different file a name of its own (the stem plus a hash of the content).
    Returns each record's {dataset path: file in IMAGES} after renaming; the records are updated in place."""
    digests: dict[str, str] = {}
    errors = []
    names = list(dict.fromkeys(name for record_files in files for name in record_files.values()))
    with progress_bar(transient=True) as bar:
        job = bar.add_task("decoding images", total=len(names), visible=show_progress)
        for name in names:
            try:
                data = source.read(name)
                decode_image(data, name, max_pixels).close()
                digests[name] = hashlib.sha256(data).hexdigest()
            except MirdataError as e:
                errors.append(str(e))
            bar.advance(job)
    if errors:
        raise MirdataError(f"{source.location}: {len(errors)} of {len(names)} images cannot be imported, nothing "
                           f"was written:{_listed(errors)}")
    out = []
    for record, record_files in zip(records, files):
        placed: dict[str, str] = {}
        for dest, name in record_files.items():
            path = store.image_path(dest)
            final = dest
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() != digests[name]:
                stem, dot, ext = dest.rpartition(".")
                final = f"{stem}-{digests[name][:12]}.{ext}" if dot and "/" not in ext else f"{dest}-{digests[name][:12]}"
                store.image_path(final)  # still inside the folder
                record.images = [final if p == dest else p for p in record.images]
                upstream_names = record.meta["upstream"]["images"]
                upstream_names[final] = upstream_names.pop(dest, dest)
            placed[final] = name
        out.append(placed)
    return out


def _convert(items: list[tuple[str, dict[str, Any]]], task: str | None, source: ImageSource,
             json_path: Path) -> tuple[list[Record], list[dict[str, str]]]:
    records, files, errors = [], [], []
    seen: dict[str, str] = {}
    dest_source: dict[str, str] = {}
    for position, (where, item) in enumerate(items):
        try:
            record, record_files = item_to_record(item, position, task, source, json_path.name)
            if record.id in seen:
                raise _ItemError(f"id {record.id!r} is also the id of {seen[record.id]}")
            for dest, name in record_files.items():
                if dest_source.setdefault(dest, name) != name:
                    raise _ItemError(f"images {dest_source[dest]!r} and {name!r} would both be stored as {dest}")
        except _ItemError as e:
            errors.append(f"{where}: {e}")
            continue
        seen[record.id] = where
        records.append(record)
        files.append(record_files)
    if errors:
        raise MirdataError(f"{json_path}: {len(errors)} of {len(items)} items cannot be imported, nothing was "
                           f"written:{_listed(errors)}")
    return records, files


def _listed(errors: list[str]) -> str:
    """The first problems, one per indented line, and how many more there are."""
    more = f"\n  ... and {len(errors) - MAX_LISTED_ERRORS} more" if len(errors) > MAX_LISTED_ERRORS else ""
    return "".join(f"\n  {e}" for e in errors[:MAX_LISTED_ERRORS]) + more


# -- export --------------------------------------------------------------------------------------------------

def record_to_item(record: dict[str, Any]) -> dict[str, Any]:
    """One MIR record -> an upstream item: the imported item's own form while it still says the same thing."""
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    upstream = meta.get("upstream") if isinstance(meta.get("upstream"), dict) else None
    keys = upstream["keys"] if upstream else [k for k in NATIVE_KEYS if k != "reasoning" or "reasoning" in meta]
    extra = upstream.get("extra", {}) if upstream else {}
    originals = upstream.get("originals", {}) if upstream else {}
    image_paths = upstream.get("images", {}) if upstream else {}

    def current(key: str) -> Any:
        if key == "images":
            return [image_paths.get(p, p) for p in record["images"]]
        if key in STAGE_NAMES:
            return record[STAGE_NAMES[key]]
        if key in ("text2region", "region2region"):
            return record[key]
        if key == "reasoning":
            return meta.get("reasoning")
        if key == "meta":
            return {k: v for k, v in meta.items()
                    if k != "upstream" and not (k == "reasoning" and "reasoning" in keys)}
        if key == "regions":
            return record.get("regions", [])
        return record.get(key)

    item = {}
    for key in keys:
        if key in extra:
            item[key] = extra[key]
        elif key in originals and _still_says(key, originals[key], record):
            item[key] = originals[key]
        else:
            item[key] = current(key)
    return item


def _still_says(key: str, original: Any, record: dict[str, Any]) -> bool:
    try:
        if key == "conclusion":
            return normalize_conclusion(original, record["answer"]) == record["conclusion"]
        return _NORMALIZERS[key](original) == record.get(key)
    except (_ItemError, KeyError, TypeError):
        return False


def export_upstream(root: str | os.PathLike[str], out_file: str | os.PathLike[str]) -> int:
    """Write the records of the MIR folder `root` as upstream items: a JSON array, or JSON Lines when
    `out_file` ends in .jsonl. Returns the number of items written."""
    store = MIRStore(root)
    records = store.read_raw()
    missing = [(k, f) for k, r in enumerate(records, start=1) for f in ("id", "task", "images", "answer", "conclusion")
               if f not in r]
    if missing:
        k, f = missing[0]
        raise MirdataError(f"{store.records_path}: record {k} has no {f}; run `mirdata validate`")
    items = [record_to_item(r) for r in records]
    out_file = Path(out_file)
    if out_file.suffix == ".jsonl":
        text = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)
    else:
        text = json.dumps(items, ensure_ascii=False, indent=2) + "\n"
    try:
        atomic_write(out_file, text.encode("utf-8"))
    except OSError as e:
        raise MirdataError(f"{out_file}: cannot write ({e.strerror})") from None
    return len(items)
