"""yes_but_satire from a user folder of real two-panel images and a CSV of explanations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from mirdata.builders.analytical import find_gutter
from mirdata.builders.base import BuildOptions, run_build
from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.schema.record import LETTERS, option_text
from mirdata.validate import validate_dir

runner = CliRunner()
EXPLANATIONS = [
    "A gym advert shows fit people, but the gym is empty.",
    "The phone promises all-day battery, but it dies by noon.",
    "The car ad shows open roads, but the real road is jammed.",
    "The menu photo shows a huge burger, but the served one is tiny.",
]


def two_panel(path: Path, seed: int, gutter_at: float) -> None:
    """Two different panels side by side with a white gutter between them."""
    rng = np.random.default_rng(seed)
    w, h = 300, 140
    im = Image.fromarray(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8))
    d = ImageDraw.Draw(im)
    g = int(w * gutter_at)
    d.rectangle([g - 3, 0, g + 3, h], fill="white")
    d.ellipse([20, 20, 80, 80], fill="red")
    im.save(path)


def make_folder(root: Path) -> Path:
    root.mkdir()
    rows = []
    for k, text in enumerate(EXPLANATIONS):
        two_panel(root / f"pair{k}.png", k, 0.45 + 0.03 * k)
        rows.append({"image": f"pair{k}.png", "explanation": text})
    (root / "broken.jpg").write_bytes(b"not an image at all")
    rows.append({"image": "broken.jpg", "explanation": "A broken file."})
    rows.append({"image": "missing.png", "explanation": "A file that is not there."})
    with open(root / "explanations.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["image", "explanation"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_gutter_is_found_off_centre() -> None:
    for at in (0.42, 0.5, 0.57):
        path_free = np.random.default_rng(1).integers(0, 255, size=(100, 400, 3), dtype=np.uint8)
        g = int(400 * at)
        path_free[:, g - 2:g + 3] = 255
        assert abs(find_gutter(path_free) - g) <= 2
    assert find_gutter(np.random.default_rng(2).integers(0, 255, size=(50, 200, 3)).astype(np.uint8)) in range(80, 121)


def test_folder_builds_valid_records_and_reports_bad_files(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "satire")
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", "--task", "yes_but_satire", "--num", "4", "--out", str(out),
                                 "--source", str(folder)])
    assert result.exit_code == 0, result.output
    printed = "".join(result.output.split())  # the console wraps long paths
    assert "broken.jpg:doesnotdecode" in printed and "missing.png:filedoesnotexist" in printed
    assert validate_dir(out).ok
    recs = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(recs) == 4
    for k, r in enumerate(recs):
        f = r["meta"]["facts"]
        assert f["file"] == f"pair{k}.png" and f["explanation"] == EXPLANATIONS[k]
        assert option_text(r["options"][LETTERS.index(r["answer"])]) == EXPLANATIONS[k]
        assert {option_text(o) for o in r["options"]} == set(EXPLANATIONS)  # distractors: the other rows
        # The two stored panels are the two halves split at the drawn gutter.
        g = int(300 * (0.45 + 0.03 * k))
        assert abs(f["gutter_x"] - g) <= 3
        widths = [Image.open(out / p).size[0] for p in r["images"]]
        assert sum(widths) == 300 and abs(widths[0] - g) <= 3
    info = json.loads((out / "build.json").read_text())
    skipped = {Path(s["file"]).name: s["reason"] for s in info["builds"][-1]["skipped_sources"]}
    assert set(skipped) == {"broken.jpg", "missing.png"}
    assert "does not decode" in skipped["broken.jpg"] and "does not exist" in skipped["missing.png"]


def test_more_records_than_rows_is_reported_not_repeated(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "satire")
    run = run_build(BuildOptions(out=tmp_path / "out", num=5, source=folder), ["yes_but_satire"], show_progress=False)
    assert run["built"] == 4
    assert run["failed"] == [{"task": "yes_but_satire", "index": 4,
                              "reason": f"{folder / 'explanations.csv'}: has 4 usable rows; record 4 would repeat one"}]


def test_on_error_fail_stops_at_the_bad_file(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "satire")
    with pytest.raises(MirdataError, match="broken.jpg: does not decode"):
        run_build(BuildOptions(out=tmp_path / "out", num=1, source=folder, on_error="fail"), ["yes_but_satire"],
                  show_progress=False)


def test_bad_csv_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "satire"
    folder.mkdir()
    (folder / "explanations.csv").write_text("picture,text\na.png,hello\n")
    run = run_build(BuildOptions(out=tmp_path / "out", num=1, source=folder), ["yes_but_satire"], show_progress=False)
    assert "needs the columns image and explanation" in run["failed"][0]["reason"]
    empty = tmp_path / "empty"
    empty.mkdir()
    run = run_build(BuildOptions(out=tmp_path / "out2", num=1, source=empty), ["yes_but_satire"], show_progress=False)
    assert "no explanations.csv" in run["failed"][0]["reason"]
