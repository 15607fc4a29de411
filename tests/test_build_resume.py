"""The build runner's promises, on every category's real builders: same seed → same bytes; a build killed with
SIGKILL midway and started again ends with exactly the output of an unbroken run; --workers gives the same."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mirdata.store import PARTS

NUM = 6  # records per task: enough that a kill lands midway


def build_cmd(category: str, out: Path, workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "mirdata", "build", "--category", category, "--num", str(NUM),
            "--out", str(out), "--seed", "3", "--image-size", "160x120", "--workers", str(workers)]


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of records.jsonl and every image, by relative path (build.json holds timings: left out)."""
    files = [root / "records.jsonl", *sorted((root / "images").rglob("*"))]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def kill_midway(cmd: list[str], out: Path) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        parts = out / PARTS
        if parts.is_dir() and len(list(parts.glob("*.json"))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("category", ["sequential", "spatial", "analytical"])
def test_killed_build_resumes_to_identical_output(tmp_path: Path, category: str) -> None:
    unbroken, resumed = tmp_path / "unbroken", tmp_path / "resumed"
    subprocess.run(build_cmd(category, unbroken), check=True, capture_output=True)

    kill_midway(build_cmd(category, resumed), resumed)
    assert not (resumed / "records.jsonl").exists() or tree_digest(resumed) != tree_digest(unbroken)
    subprocess.run(build_cmd(category, resumed), check=True, capture_output=True)

    assert tree_digest(resumed) == tree_digest(unbroken)
    ids = [json.loads(line)["id"] for line in (resumed / "records.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 4 * NUM
    assert not (resumed / PARTS).exists()
    runs = json.loads((resumed / "build.json").read_text())["builds"]
    assert runs[-1]["resumed_from"] >= 3


def test_workers_give_the_same_bytes(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(build_cmd("sequential", one, workers=1), check=True, capture_output=True)
    subprocess.run(build_cmd("sequential", two, workers=2), check=True, capture_output=True)
    assert tree_digest(one) == tree_digest(two)
