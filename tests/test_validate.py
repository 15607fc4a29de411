"""`mirdata validate`: a hand-made bad dataset gets every fault in one report; a good one passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.validate import validate_dir
from tests.conftest import write_simple_dataset

runner = CliRunner()


def test_good_dataset_passes(simple_dataset: Path) -> None:
    result = runner.invoke(app, ["validate", str(simple_dataset)])
    assert result.exit_code == 0, result.output
    assert "24 records" in result.stdout and "valid" in result.stdout
    report = json.loads(runner.invoke(app, ["validate", str(simple_dataset), "--json"]).stdout)
    assert report["ok"] is True and report["records"] == 24 and report["failures"] == [] and report["warnings"] == []


def make_bad_dataset(root: Path) -> dict[tuple[int | None, str], str]:
    """One fault of every kind, each on its own line of records.jsonl; returns (line, field) -> problem start."""
    write_simple_dataset(root, per_task=2)
    lines = (root / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    expected: dict[tuple[int | None, str], str] = {}

    def fault(k: int, field: str, problem: str) -> dict:
        expected[(k + 1, field)] = problem
        return records[k]

    fault(0, "summary", "required field is missing").pop("summary")
    fault(1, "category", "must be one of").update(category="visual")
    fault(2, "task", "task does not belong to its category").update(task="chart_analysis")
    r = fault(3, "question", "number of <image> placeholders differs from the number of images")
    r["question"] = r["question"].replace("<image>", "", 1)
    fault(4, "caption", "number of captions differs").update(caption=["only one"])
    fault(5, "options", "option labels are not contiguous").update(options=["A. x", "C. y"])
    fault(6, "options", "two options have the same text").update(options=["A. same", "B. same"])
    fault(7, "answer", "answer is not one of the option labels").update(answer="D", conclusion="So the answer is D.")
    fault(8, "conclusion", "conclusion does not state the answer letter").update(conclusion="It is larger.")
    fault(9, "regions", "region 'r0' box").update(regions=[{"id": "r0", "image": 0, "box": [0, 0, 500, 9],
                                                              "label": "sq"}])
    fault(10, "regions", "region 'r1' names image 7").update(regions=[{"id": "r1", "image": 7, "box": [0, 0, 5, 5],
                                                                         "label": "sq"}])
    fault(11, "difficulty", "must be easy, hard or null").update(difficulty="medium")
    fault(12, "pass_rate", "must be a number in [0, 1] or null").update(pass_rate=-0.5)
    dup = fault(13, "id", "id is used by an earlier record")
    dup["id"] = records[14]["id"]
    records[14], records[13] = records[13], records[14]  # the duplicate comes second
    expected[(15, "id")] = expected.pop((14, "id"))
    same = fault(15, "question", "same question and images as an earlier record")
    same["images"], same["question"] = records[16]["images"], records[16]["question"]
    records[15], records[16] = records[16], records[15]
    expected[(17, "question")] = expected.pop((16, "question"))
    # files: a missing image, a text file named .png, a truncated image, an unused image
    (root / records[17]["images"][0]).unlink()
    expected[(18, "images[0]")] = f"{records[17]['images'][0]}: file does not exist"
    (root / records[18]["images"][1]).write_text("this is text, not a PNG")
    expected[(19, "images[1]")] = f"{records[18]['images'][1]}: does not decode as an image"
    png = root / records[19]["images"][0]
    png.write_bytes(png.read_bytes()[:60])
    expected[(20, "images[0]")] = f"{records[19]['images'][0]}: does not decode as an image"
    Image.new("RGB", (8, 8)).save(root / "images" / "stray.png")
    out = [json.dumps(r) for r in records]
    out.insert(21, "{not json")
    expected[(22, "(line)")] = "records.jsonl: not valid JSON"
    out.append(json.dumps(records[-1])[:40])  # a truncated last line: a writer killed mid-line
    expected[(len(out), "(line)")] = "records.jsonl: truncated JSON line"
    (root / "records.jsonl").write_text("\n".join(out))
    return expected


def test_bad_dataset_reports_every_fault_at_once(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    expected = make_bad_dataset(root)
    result = runner.invoke(app, ["validate", str(root), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "records", "failures", "warnings", "schema_seconds", "file_seconds"}
    assert report["ok"] is False and report["records"] == 24  # the two bad lines are no records
    assert all(set(f) == {"line", "record", "field", "problem", "severity"} for f in report["failures"])
    found = {(f["line"], f["field"]): f["problem"] for f in report["failures"]}
    for key, problem in expected.items():
        assert key in found and found[key].startswith(problem), (key, problem, found.get(key))
    assert set(found) == set(expected)  # and nothing else: the untouched records pass
    # the stray file, and the two images of the record whose images were replaced by another record's
    unused = {"images/stray.png", "images/forced_perspective/forced_perspective-t0-001_0.png",
              "images/forced_perspective/forced_perspective-t0-001_1.png"}
    assert sorted(report["warnings"], key=lambda w: w["problem"]) == [
        {"line": None, "record": "", "field": "images", "problem": f"{p}: not used by any record",
         "severity": "warning"} for p in sorted(unused)]
    assert {f["severity"] for f in report["failures"]} == {"error"}
    assert found[(2, "category")] == "must be one of sequential, spatial, analytical, got 'visual'"


def test_bad_dataset_table_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "bad"
    expected = make_bad_dataset(root)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns when stdout is no terminal
    result = runner.invoke(app, ["validate", str(root)])
    assert result.exit_code == 1
    assert f"{len(expected)} failures" in result.stdout and "3 warnings" in result.stdout
    assert "what is wrong" in result.stdout and "images/stray.png: not used by any record" in result.stdout


def test_unused_images_are_only_warnings(simple_dataset: Path) -> None:
    Image.new("RGB", (8, 8)).save(simple_dataset / "images" / "speed_comparison" / "extra.jpg")
    (simple_dataset / "images" / "speed_comparison" / ".extra.jpg.123-4.tmp").write_bytes(b"partial")
    report = validate_dir(simple_dataset)
    assert report.ok and [w.problem for w in report.warnings] == [
        "images/speed_comparison/extra.jpg: not used by any record"]
    result = runner.invoke(app, ["validate", str(simple_dataset)])
    assert result.exit_code == 0 and result.stdout.split()[:2] == ["1", "warning"]


def test_no_files_skips_decoding(simple_dataset: Path) -> None:
    first = json.loads((simple_dataset / "records.jsonl").read_text().splitlines()[0])
    (simple_dataset / first["images"][0]).unlink()
    assert not validate_dir(simple_dataset).ok
    assert runner.invoke(app, ["validate", str(simple_dataset), "--no-files"]).exit_code == 0


@pytest.mark.parametrize("content, problem", [
    ("", "records.jsonl holds no records"),
    ("\n\n", "records.jsonl holds no records"),
    ('["a list"]\n', "records.jsonl: a JSON list, not an object"),
])
def test_empty_or_odd_records_file(tmp_path: Path, content: str, problem: str) -> None:
    (tmp_path / "records.jsonl").write_text(content)
    result = runner.invoke(app, ["validate", str(tmp_path), "--json"])
    assert result.exit_code == 1
    assert [f["problem"] for f in json.loads(result.stdout)["failures"]] == [problem]


def test_missing_folder_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error:") and "records.jsonl: no such file" in result.stderr
    assert "Traceback" not in result.output
