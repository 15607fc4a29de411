"""Reading back a MIR folder or a released dataset folder, for the commands that take either.

Both give the same rows: the record's fields (with `meta` decoded) and the bytes of its images in order. A
release is read with `datasets` (images undecoded); a MIR folder with the store. Either way every record must be
rated easy or hard, as a release is split by difficulty.

An image that a release names by path instead of embedding it is read only from inside the release folder, so a
parquet file cannot make us copy /etc/passwd or ~/.ssh anywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.release.layout import SPLITS, decode_row
from mirdata.schema.record import is_dataset_relpath

COLUMNS = ("id", "category", "task", "images", "question", "options", "answer", "summary", "caption", "text2region",
           "region2region", "conclusion", "difficulty")


@dataclass(frozen=True)
class Source:
    path: Path
    is_release: bool

    def rows(self, with_images: bool = True) -> Iterator[dict[str, Any]]:
        """Rows in release order (split, then task order). With `with_images`, `images` holds the images' names
        and `image_bytes` their bytes; without, rows have neither."""
        yield from (self._release_rows(with_images) if self.is_release else self._folder_rows(with_images))

    def counts(self) -> Counter[tuple[str, str, str]]:
        """Records per (split, category, task)."""
        return Counter((r["difficulty"], r["category"], r["task"]) for r in self.rows(with_images=False))

    def _folder_rows(self, with_images: bool) -> Iterator[dict[str, Any]]:
        from mirdata.registry import task_rank
        from mirdata.store import MIRStore

        store = MIRStore(self.path)
        records = store.read()
        unrated = [r.id for r in records if r.difficulty not in SPLITS]
        if unrated:
            raise MirdataError(f"{store.records_path}: {len(unrated)} of {len(records)} records have no difficulty "
                               f"(e.g. {unrated[0]!r}); rate them first with `mirdata difficulty`")
        for r in sorted(records, key=lambda r: (SPLITS.index(r.difficulty), task_rank(r.task))):
            row = r.to_dict()
            if with_images:
                row["image_bytes"] = [_read(store.image_path(p), r.id) for p in r.images]
            else:
                del row["images"]
            yield row

    def _release_rows(self, with_images: bool) -> Iterator[dict[str, Any]]:
        import datasets

        try:
            loaded = datasets.load_dataset(str(self.path))
        except Exception as e:  # datasets raises many types for a broken folder
            raise MirdataError(f"{self.path}: cannot load the released dataset ({type(e).__name__}: {e})") from e
        for split in SPLITS:
            if split not in loaded:
                continue
            part = loaded[split]
            missing = [c for c in COLUMNS if c not in part.column_names]
            if missing:
                raise MirdataError(f"{self.path}: the released dataset lacks the column(s) {', '.join(missing)}")
            part = part.cast_column("images", datasets.List(datasets.Image(decode=False)))
            if not with_images:
                part = part.remove_columns("images")
            for row in part:
                row = decode_row(row)
                if with_images:
                    images = row["images"]
                    row["images"] = [image["path"] or "" for image in images]
                    row["image_bytes"] = [_embedded(self.path, row, image) for image in images]
                yield row


def open_source(path: str | Path) -> Source:
    path = Path(path)
    if (path / "records.jsonl").is_file():
        return Source(path, is_release=False)
    if path.is_dir() and any(path.glob("data/**/*.parquet")):
        return Source(path, is_release=True)
    raise MirdataError(f"{path}: neither a MIR folder (no records.jsonl) nor a released dataset folder (no "
                       "data/**/*.parquet)")


def _read(path: Path, record_id: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise MirdataError(f"{path}: cannot read the image of record {record_id!r} ({e.strerror})") from None


def _embedded(release: Path, row: dict[str, Any], image: dict[str, Any]) -> bytes:
    if image["bytes"] is not None:
        return image["bytes"]
    name = image["path"] or ""
    target = (release / name).resolve()
    if not name or not is_dataset_relpath(name) or not target.is_relative_to(release.resolve()):
        raise MirdataError(f"{release}: record {row['id']!r} names the image {name!r}, which lies outside the "
                           "release folder; only images embedded in the parquet or stored inside the release "
                           "are read")
    return _read(target, row["id"])
