"""The original release's format: import-upstream -> validate -> export round trips, every input form,
malformed files, and archives that try to write outside the output folder."""

from __future__ import annotations

import copy
import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.upstream import export_upstream, import_upstream
from mirdata.validate import validate_dir
from mirdata.store import MIRStore
from tests.conftest import write_simple_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def jpeg(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buf, format="JPEG")
    return buf.getvalue()


def item(**changes: Any) -> dict[str, Any]:
    base = {
        "task": "Forced Perspective",
        "question": "Look: <image> and <image>. Which tower is taller?",
        "images": ["pics/a.jpg", "pics/b.jpg"],
        "options": ["A. The left tower", "B. The right tower"],
        "summary": "Compare the towers.",
        "caption": ["A tower.", "Another tower."],
        "text2img": "'the left tower' is in image 1.",
        "img2img": "The right tower is twice as tall.",
        "conclusion": "B",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def write_upstream(tmp_path: Path, items: list[dict[str, Any]]) -> tuple[Path, Path]:
    folder = tmp_path / "upstream_images"
    (folder / "pics").mkdir(parents=True, exist_ok=True)
    (folder / "pics" / "a.jpg").write_bytes(jpeg("red"))
    (folder / "pics" / "b.jpg").write_bytes(jpeg("blue"))
    path = tmp_path / "all_data_rel.json"
    path.write_text(json.dumps(items))
    return path, folder


# -- the shipped sample -------------------------------------------------------------------------------------

def test_examples_round_trip_through_cli(tmp_path: Path) -> None:
    out = tmp_path / "mir"
    result = runner.invoke(app, ["import-upstream", str(EXAMPLES / "all_data_rel.json"),
                                 str(EXAMPLES / "images.zip"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "imported 6 records" in result.stdout
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    exported = tmp_path / "again.json"
    result = runner.invoke(app, ["export", str(out), "--format", "upstream", "--out", str(exported)])
    assert result.exit_code == 0, result.output
    original = json.loads((EXAMPLES / "all_data_rel.json").read_text())
    assert json.loads(exported.read_text()) == original  # every field's content, in the original form
    assert [list(i) for i in json.loads(exported.read_text())] == [list(i) for i in original]  # key order too


def test_examples_normalised_records(tmp_path: Path) -> None:
    out = tmp_path / "mir"
    assert import_upstream(EXAMPLES / "all_data_rel.json", EXAMPLES / "images.zip", out, show_progress=False) == 6
    recs = {r["task"]: r for r in MIRStore(out).read_raw()}
    assert list(recs) == ["speed_comparison", "location_relationship", "chart_analysis", "image_puzzle",
                          "depth_relationship", "weight_comparison"]  # the file's order
    speed = recs["speed_comparison"]
    assert speed["answer"] == "B" and speed["conclusion"] == "The answer is B."
    assert speed["meta"]["upstream"]["originals"]["conclusion"] == "B"
    assert len(speed["caption"]) == 3 and speed["caption"][1].startswith("The red car has moved")
    assert speed["images"][0] == "images/speed_comparison/speed_0001/1.jpg"
    assert recs["location_relationship"]["options"] == ["A. Left of the book", "B. Right of the book",
                                                        "C. On top of the book"]
    assert recs["location_relationship"]["meta"]["reasoning"].startswith("Both viewpoints agree")
    assert recs["image_puzzle"]["options"] == ["A. The first piece", "B. The second piece"]
    assert recs["image_puzzle"]["answer"] == "A"
    depth = recs["depth_relationship"]
    assert depth["answer"] == "B" and depth["conclusion"].endswith("closer there. So the answer is B.")
    assert recs["chart_analysis"]["conclusion"] == "Product Z grew by 50, more than X (10) and Y (2), so the answer is C."
    report = validate_dir(out)
    assert report.ok and not report.warnings


def test_folder_and_zip_give_the_same_records(tmp_path: Path) -> None:
    folder = tmp_path / "extracted"
    with zipfile.ZipFile(EXAMPLES / "images.zip") as z:
        z.extractall(folder)
    import_upstream(EXAMPLES / "all_data_rel.json", EXAMPLES / "images.zip", tmp_path / "a", show_progress=False)
    import_upstream(EXAMPLES / "all_data_rel.json", folder / "images", tmp_path / "b", show_progress=False)
    assert (tmp_path / "a/records.jsonl").read_bytes() == (tmp_path / "b/records.jsonl").read_bytes()
    for rec in MIRStore(tmp_path / "a").read_raw():
        for p in rec["images"]:
            assert (tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes()


def test_import_twice_is_idempotent_and_keeps_other_records(tmp_path: Path) -> None:
    out = tmp_path / "mir"
    write_simple_dataset(out, per_task=1)
    before = [r["id"] for r in MIRStore(out).read_raw()]
    for _ in range(2):
        import_upstream(EXAMPLES / "all_data_rel.json", EXAMPLES / "images.zip", out, show_progress=False)
        ids = [r["id"] for r in MIRStore(out).read_raw()]
        assert ids[:12] == before and len(ids) == len(set(ids)) == 18
    assert len(MIRStore(out).build_info()["imports"]) == 2
    assert validate_dir(out).ok


# -- every input form ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, field, expected", [
    ({"options": {"A": "The left tower", "B": "The right tower"}}, "options",
     ["A. The left tower", "B. The right tower"]),
    ({"options": ["A: The left tower", "B: The right tower"]}, "options", ["A. The left tower", "B. The right tower"]),
    ({"options": ["(A) The left tower", "(B) The right tower"]}, "options",
     ["A. The left tower", "B. The right tower"]),
    ({"options": ["The left tower", "The right tower"]}, "options", ["A. The left tower", "B. The right tower"]),
    ({"options": {"A": 10, "B": 20}}, "options", ["A. 10", "B. 20"]),
    ({"caption": "Image 1: A tower. Image 2: Another tower."}, "caption", ["A tower.", "Another tower."]),
    ({"caption": "Image-1: A tower.\nImage-2: Another tower."}, "caption", ["A tower.", "Another tower."]),
    ({"conclusion": "b"}, "conclusion", "The answer is B."),
    ({"conclusion": "(B)."}, "conclusion", "The answer is B."),
    ({"conclusion": "The right one is taller, so the answer is B."}, "conclusion",
     "The right one is taller, so the answer is B."),
    ({"conclusion": "Option A is shorter; the answer is B."}, "conclusion", "The answer is B."),
    ({"conclusion": "The right one is taller.", "answer": "B"}, "conclusion",
     "The right one is taller. So the answer is B."),
    ({"conclusion": "The right one is taller.", "answer": "B. The right tower"}, "answer", "B"),
    ({"text2img": None, "text2region": "ours", "img2img": None, "region2region": "also ours"}, "text2region", "ours"),
    ({"task": None, "category": "forced_perspective"}, "task", "forced_perspective"),
    ({"task": None, "type": "Forced-Perspective", "category": "spatial"}, "task", "forced_perspective"),
    ({"id": 41}, "id", "41"),
    ({"reasoning": "Twice as tall."}, "meta", {"reasoning": "Twice as tall."}),
])
def test_input_forms_normalise_and_export_back(tmp_path: Path, changes: dict[str, Any], field: str,
                                               expected: Any) -> None:
    original = item(**changes)
    path, folder = write_upstream(tmp_path, [original])
    import_upstream(path, folder, tmp_path / "mir", show_progress=False)
    [rec] = MIRStore(tmp_path / "mir").read_raw()
    if field == "meta":
        assert expected.items() <= rec["meta"].items()
    else:
        assert rec[field] == expected
    assert validate_dir(tmp_path / "mir").ok, validate_dir(tmp_path / "mir").failures
    export_upstream(tmp_path / "mir", tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text()) == [original]


def test_task_option_for_files_without_task(tmp_path: Path) -> None:
    path, folder = write_upstream(tmp_path, [item(task=None), item(task=None, question="<image> <image> Other?")])
    with pytest.raises(MirdataError, match=r"item #1: no task field; pass --task"):
        import_upstream(path, folder, tmp_path / "x", show_progress=False)
    assert import_upstream(path, folder, tmp_path / "mir", task="Forced Perspective", show_progress=False) == 2
    assert {r["task"] for r in MIRStore(tmp_path / "mir").read_raw()} == {"forced_perspective"}
    path, folder = write_upstream(tmp_path, [item(task="view_3d")])
    with pytest.raises(MirdataError, match=r"task 'view_3d' names task view_3d, but --task is forced_perspective"):
        import_upstream(path, folder, tmp_path / "y", task="forced_perspective", show_progress=False)
    with pytest.raises(MirdataError, match=r"--task 'juggling' is not a MIR task"):
        import_upstream(path, folder, tmp_path / "y", task="juggling", show_progress=False)


def test_edited_record_exports_its_new_content(tmp_path: Path) -> None:
    path, folder = write_upstream(tmp_path, [item(options={"A": "The left tower", "B": "The right tower"})])
    import_upstream(path, folder, tmp_path / "mir", show_progress=False)
    store = MIRStore(tmp_path / "mir")
    [rec] = store.read_raw()
    rec["options"] = ["A. The red tower", "B. The blue tower"]
    rec["answer"], rec["conclusion"] = "A", "The red one is taller, so the answer is A."
    store.write([rec])
    export_upstream(tmp_path / "mir", tmp_path / "out.json")
    [out] = json.loads((tmp_path / "out.json").read_text())
    assert out["options"] == ["A. The red tower", "B. The blue tower"]  # the stale original form is dropped
    assert out["conclusion"] == "The red one is taller, so the answer is A."
    assert out["images"] == ["pics/a.jpg", "pics/b.jpg"] and out["task"] == "Forced Perspective"


def test_native_records_round_trip(tmp_path: Path) -> None:
    """A built dataset -> upstream JSON (+ .jsonl) -> import -> the same records, and the same export again."""
    built = tmp_path / "built"
    write_simple_dataset(built, per_task=1)
    for name in ("native.json", "native.jsonl"):
        export_upstream(built, tmp_path / name)
        out = tmp_path / f"again_{name}"
        assert import_upstream(tmp_path / name, built, out, show_progress=False) == 12
        again = MIRStore(out).read_raw()
        for a, b in zip(MIRStore(built).read_raw(), again):
            assert b["meta"].pop("upstream")["file"] == name
            assert a == b
        export_upstream(out, tmp_path / f"re_{name}")
        assert (tmp_path / f"re_{name}").read_text() == (tmp_path / name).read_text()
    assert len((tmp_path / "native.jsonl").read_text().splitlines()) == 12
    (tmp_path / "a_file").write_text("")
    with pytest.raises(MirdataError, match=r"a_file/out.json: cannot write"):
        export_upstream(built, tmp_path / "a_file" / "out.json")


# -- malformed input ----------------------------------------------------------------------------------------

def test_missing_fields_and_wrong_types_name_every_item(tmp_path: Path) -> None:
    items = [item(), item(img2img=None), item(options=5), item(question=None, summary=None), item(caption=3),
             item(conclusion="It is tall."), item(images="pics/a.jpg"), item(images=["pics/nope.jpg", "pics/a.jpg"]),
             item(options=["A. x", "y"]), item(id="a/b"), item(summary=["x"]), item(regions=[{"id": "r0"}])]
    path, folder = write_upstream(tmp_path, items)
    with pytest.raises(MirdataError) as err:
        import_upstream(path, folder, tmp_path / "mir", show_progress=False)
    message = str(err.value)
    assert "11 of 12 items cannot be imported, nothing was written" in message
    for expected in ("item #2: missing required field img2img",
                     "item #3: options must be a list of strings or an object {letter: text}, got 5",
                     "item #4: missing required fields question, summary",
                     "item #5: caption must be a list of strings or one string, got 3",
                     "item #6: conclusion states no answer letter and there is no answer field",
                     "item #7: images must be a list of paths, got 'pics/a.jpg'",
                     "item #8: image 'pics/nope.jpg' is not in",
                     "item #9: some options have letter labels and some do not",
                     "item #10: id 'a/b' must be letters, digits",
                     "item #11: summary must be a string, got a list of 1",
                     "item #12: regions must be objects with id, image, box"):
        assert expected in message, expected
    assert "item #1:" not in message
    assert not (tmp_path / "mir").exists()


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path, folder = write_upstream(tmp_path, [item(id="q1"), item(id="q1", question="<image> <image> again?")])
    with pytest.raises(MirdataError, match=r"item #2: id 'q1' is also the id of item #1"):
        import_upstream(path, folder, tmp_path / "mir", show_progress=False)


@pytest.mark.parametrize("content, problem", [
    ("", "empty file"),
    ("  \n", "empty file"),
    ('[{"question": "x"}, {"quest', "not valid JSON at line 1, column 22: Unterminated string starting at (the "
                                    "file ends early: truncated?)"),
    ('[{"question": "x"}, 3]', "item #2 is 3, not an object"),
    ('"just a string"', "expected a JSON array of items, got 'just a string'"),
    ('{"question": "x"}\n{"question": "y"}\n{"quest', ":3: truncated JSON line"),
    ('{"question": "x"}\n{"quest\n{"question": "y"}\n', ":2: not valid JSON"),
    ('{"question": "x"}\n[1]\n', ":2: a list of 1, not an object"),
])
def test_malformed_json_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "all_data_rel.json"
    path.write_text(content)
    with pytest.raises(MirdataError, match="all_data_rel.json") as err:
        import_upstream(path, tmp_path, tmp_path / "mir", show_progress=False)
    assert problem in str(err.value)
    assert not (tmp_path / "mir").exists()


def test_truncated_array_says_so(tmp_path: Path) -> None:
    text = json.dumps([item(), item()], indent=2)
    path = tmp_path / "all_data_rel.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(MirdataError, match=r"the file ends early: truncated\?"):
        import_upstream(path, tmp_path, tmp_path / "mir", show_progress=False)


def test_text_file_named_jpg_stops_the_import_before_anything_is_written(tmp_path: Path) -> None:
    path, folder = write_upstream(tmp_path, [item()])
    (folder / "pics" / "b.jpg").write_text("not an image at all")
    with pytest.raises(MirdataError, match=r"1 of 2 images cannot be imported, nothing was written:\n  "
                                           r"pics/b.jpg: does not decode as an image \(UnidentifiedImageError"):
        import_upstream(path, folder, tmp_path / "mir", show_progress=False)
    assert not (tmp_path / "mir" / "images").exists() and not (tmp_path / "mir" / "records.jsonl").exists()


# -- archives -----------------------------------------------------------------------------------------------

def make_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for info, data in entries:
            z.writestr(info, data)
    return path


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


@pytest.mark.parametrize("bad_entry, problem", [
    (("../evil.jpg", b"x"), "refusing entry '../evil.jpg': '..' would leave the output folder"),
    (("pics/../../evil.jpg", b"x"), "refusing entry 'pics/../../evil.jpg': '..' would leave the output folder"),
    (("/etc/evil.jpg", b"x"), "refusing entry '/etc/evil.jpg': an absolute path"),
    (symlink_entry("pics/link.jpg", "/etc/passwd"), "refusing entry 'pics/link.jpg': a symbolic link"),
    (("pics/huge.jpg", b"\0" * 5000), "refusing entry 'pics/huge.jpg': 5000 bytes, more than the limit of 4096 "
         "(--max-entry-mb)"),
])
def test_zip_slip_and_friends_are_refused(tmp_path: Path, bad_entry: tuple[Any, bytes], problem: str) -> None:
    archive = make_zip(tmp_path / "images.zip", [("pics/a.jpg", jpeg()), ("pics/b.jpg", jpeg()), bad_entry])
    path, _ = write_upstream(tmp_path, [item()])
    with pytest.raises(MirdataError) as err:
        import_upstream(path, archive, tmp_path / "out" / "mir", max_entry_bytes=4096, show_progress=False)
    assert str(err.value) == f"{archive}: {problem}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.jpg").exists()


def test_zip_import_via_cli_and_bad_archives(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "images.zip", [("images/pics/a.jpg", jpeg()), ("images/pics/b.jpg", jpeg("blue"))])
    path, _ = write_upstream(tmp_path, [item()])
    result = runner.invoke(app, ["import-upstream", str(path), str(archive), "--out", str(tmp_path / "mir")])
    assert result.exit_code == 0, result.output
    [rec] = MIRStore(tmp_path / "mir").read_raw()
    assert rec["images"] == ["images/forced_perspective/pics/a.jpg", "images/forced_perspective/pics/b.jpg"]
    (tmp_path / "notzip.zip").write_text("hello")
    result = runner.invoke(app, ["import-upstream", str(path), str(tmp_path / "notzip.zip"), "--out",
                                 str(tmp_path / "x")])
    assert result.exit_code == 1 and "notzip.zip: not a zip archive or a folder" in result.stderr
    result = runner.invoke(app, ["import-upstream", str(path), str(tmp_path / "nothing"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "no such folder or file" in result.stderr
    assert "Traceback" not in result.output


def test_ambiguous_image_names_are_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "images.zip", [("one/a.jpg", jpeg()), ("two/a.jpg", jpeg()), ("b.jpg", jpeg())])
    path, _ = write_upstream(tmp_path, [item(images=["a.jpg", "b.jpg"])])
    with pytest.raises(MirdataError, match=r"item #1: image 'a.jpg' is not in .*more than one file matches"):
        import_upstream(path, archive, tmp_path / "mir", show_progress=False)
    path, _ = write_upstream(tmp_path, [item(images=["./two/a.jpg", "extracted\\b.jpg"])])  # a longer path names one
    assert import_upstream(path, archive, tmp_path / "mir", show_progress=False) == 1
    [rec] = MIRStore(tmp_path / "mir").read_raw()
    assert rec["images"] == ["images/forced_perspective/two/a.jpg", "images/forced_perspective/b.jpg"]


def test_regions_of_native_items_are_checked(tmp_path: Path) -> None:
    regions = [{"id": "r0", "image": 1, "box": [1, 1, 40, 10], "label": "tower"}]
    path, folder = write_upstream(tmp_path, [item(regions=copy.deepcopy(regions))])
    import_upstream(path, folder, tmp_path / "mir", show_progress=False)
    [failure] = validate_dir(tmp_path / "mir").failures
    assert failure.field == "regions" and "lies outside image 1 (32x24)" in failure.problem


def test_interrupted_import_resumes_in_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mirdata import upstream

    real_save = MIRStore.save_image
    saved: list[str] = []

    def failing_save(self: MIRStore, relpath: str, image: Any, fmt: str | None = None) -> str:
        if len(saved) == 7:  # the fourth item's images: three records are stored by then
            raise MirdataError("disk went away")
        saved.append(relpath)
        return real_save(self, relpath, image, fmt)

    monkeypatch.setattr(MIRStore, "save_image", failing_save)
    out = tmp_path / "mir"
    with pytest.raises(MirdataError, match="disk went away"):
        import_upstream(EXAMPLES / "all_data_rel.json", EXAMPLES / "images.zip", out, show_progress=False)
    # the import's finished records wait in its own folder, which a build never commits
    assert not (out / "records.jsonl").exists() and len(MIRStore(out, parts=upstream.IMPORT_PARTS).done_ids()) == 3
    assert MIRStore(out).done_ids() == set()
    monkeypatch.setattr(MIRStore, "save_image", real_save)
    saved.clear()
    assert import_upstream(EXAMPLES / "all_data_rel.json", EXAMPLES / "images.zip", out, show_progress=False) == 6
    ids = [r["id"] for r in MIRStore(out).read_raw()]
    assert ids == [f"{t}-u{k:06d}" for k, t in enumerate(["speed_comparison", "location_relationship",
                                                           "chart_analysis", "image_puzzle", "depth_relationship",
                                                           "weight_comparison"])]
    assert validate_dir(out).ok
