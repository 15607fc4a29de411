"""The MIR layout store: atomic writes that survive SIGKILL, commit order, resume, bad files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from mirdata.errors import MirdataError
from mirdata.schema.record import Record
from mirdata.store import PARTS, MIRStore, atomic_write

ROOT = Path(__file__).resolve().parents[1]


def record(rid: str, task: str = "speed_comparison", **meta: object) -> Record:
    return Record(id=rid, category="sequential", task=task, images=[f"images/{task}/{rid}_0.png"],
                  question="<image>?", options=["A. x", "B. y"], answer="A", meta=dict(meta))


# A writer that loops store.save_image + store.put until it is killed. Big payloads make each write take a
# while, so a kill at a random moment usually lands inside one.
WRITER = textwrap.dedent("""
    import sys, numpy as np
    from PIL import Image
    from mirdata.schema.record import Record
    from mirdata.store import MIRStore, encode_image

    store = MIRStore(sys.argv[1])
    noise = np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), dtype=np.uint8)
    png = encode_image(Image.fromarray(noise), "png")  # ~3 MB
    i = 0
    while True:
        rid = f"r{i:05d}"
        store.save_image(f"images/speed_comparison/{rid}_0.png", png)
        store.put(Record(id=rid, category="sequential", task="speed_comparison",
                         images=[f"images/speed_comparison/{rid}_0.png"], question="<image>?",
                         options=["A. x", "B. y"], answer="A", meta={"payload": "x" * 2_000_000}))
        i += 1
        if i == 1:
            print("ready", flush=True)
""")


def run_writer_and_kill(root: Path, after_s: float) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(after_s)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_leaves_no_partial_record_or_image(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for after_s in (0.05, 0.23, 0.41):  # the same folder, killed again and again like a crashing build
        run_writer_and_kill(root, after_s)
    store = MIRStore(root)
    parts = sorted((root / PARTS).glob("*.json"))
    assert len(parts) >= 3
    for part in parts:  # every record file whole, and its image whole
        rec = json.loads(part.read_bytes())
        assert rec["id"] == part.stem and len(rec["meta"]["payload"]) == 2_000_000
        with Image.open(root / rec["images"][0]) as im:
            im.load()
    images = [p for p in (root / "images").rglob("*") if p.is_file() and not p.name.startswith(".")]
    for image in images:  # images without a record yet (killed before put) are whole too
        with Image.open(image) as im:
            im.load()
    temporaries = [p for p in root.rglob("*.tmp")]
    assert all(p.name.startswith(".") for p in temporaries)
    assert store.done_ids() == {p.stem for p in parts}  # .tmp files are never counted as records

    n = store.commit(lambda r: r["id"])
    assert n == len(parts)
    lines = (root / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == sorted(p.stem for p in parts)
    assert not any(root.rglob("*.tmp")) and not (root / PARTS).exists()


KILLED_BEFORE_RENAME = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from mirdata import store as store_module

    def stop(src, dst):  # the data is fully written to the temporary file; die before it takes its name
        print("renaming", flush=True)
        time.sleep(60)

    store_module.os.replace = stop
    store_module.atomic_write(Path(sys.argv[1]), b"new content")
""")


def test_kill_between_write_and_rename_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "records.jsonl"
    target.write_bytes(b"old content\n")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BEFORE_RENAME, str(target)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "renaming"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"old content\n"
    [tmp] = [p for p in tmp_path.iterdir() if p != target]
    assert tmp.name.startswith(".records.jsonl.") and tmp.name.endswith(".tmp")
    assert tmp.read_bytes() == b"new content"
    assert MIRStore(tmp_path).remove_temporaries() == 1 and list(tmp_path.iterdir()) == [target]


def test_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    class Boom:  # not bytes: the write fails after the temporary file was opened
        pass

    with pytest.raises(TypeError):
        atomic_write(tmp_path / "x.json", Boom())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_commit_merges_parts_in_order_without_duplicates(tmp_path: Path) -> None:
    store = MIRStore(tmp_path)
    store.write([record("b-1", note="old"), record("d-1")])
    for rid in ("c-1", "a-1", "b-1", "e-1"):  # b-1 again: the newer part wins, once
        store.put(record(rid, note="new"))
    assert store.done_ids() == {"a-1", "b-1", "c-1", "d-1", "e-1"}
    assert store.commit(lambda r: r["id"]) == 5
    rows = store.read_raw()
    assert [r["id"] for r in rows] == ["a-1", "b-1", "c-1", "d-1", "e-1"]
    assert [r["meta"].get("note") for r in rows] == ["new", "new", "new", None, "new"]
    first = store.records_path.read_bytes()

    # killed after records.jsonl was replaced but before .parts/ was removed: committing again is harmless
    store.put(record("a-1", note="new"))
    assert store.commit(lambda r: r["id"]) == 5
    assert store.records_path.read_bytes() == first

    # a sort key decides the order, not the order the parts were written in
    store.put(record("z-0", task="scale_blur"))
    store.commit(lambda r: (r["task"] != "scale_blur", r["id"]))
    assert [r["id"] for r in store.read_raw()][:2] == ["z-0", "a-1"]


def test_round_trip_and_build_info(tmp_path: Path) -> None:
    store = MIRStore(tmp_path)
    recs = [record("a-1"), record("b-2")]
    assert store.write(recs) == 2
    assert store.read() == recs
    assert store.update_build_info(seed=3) == {"seed": 3}
    assert store.update_build_info(records=2) == {"seed": 3, "records": 2}
    assert store.save_image("images/t/x.png", Image.new("RGB", (4, 3))) == "images/t/x.png"
    with Image.open(tmp_path / "images/t/x.png") as im:
        assert im.size == (4, 3)


def test_bad_ids_and_bad_files_are_clear_errors(tmp_path: Path) -> None:
    store = MIRStore(tmp_path)
    for bad in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(MirdataError, match="ids name files"):
            store.put(record(bad))
    with pytest.raises(MirdataError, match="no such file"):
        store.read_raw()
    store.records_path.write_text(json.dumps(record("a-1").to_dict()) + "\n" + '{"id": "b-')
    with pytest.raises(MirdataError, match=r"records.jsonl:2: truncated JSON line"):
        store.read_raw()
    store.records_path.write_text('{"id": "a-1"}\n[1, 2]\n')
    with pytest.raises(MirdataError, match=r"records.jsonl:2: a JSON list, not an object"):
        store.read_raw()
    store.records_path.write_text('{"id": "a-1"}\n')
    with pytest.raises(MirdataError, match=r"records.jsonl:1: not a MIR record"):
        store.read()
    store.build_info_path.write_text("{")
    with pytest.raises(MirdataError, match="build.json: not valid JSON"):
        store.build_info()
    with pytest.raises(MirdataError, match="unknown image format"):
        store.save_image("images/x.gif", Image.new("RGB", (2, 2)))
