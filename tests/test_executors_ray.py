"""The Ray executor on a local two-CPU cluster: every step gives the bytes the local executor gives, also when a
worker dies midway and when a build started locally is finished on Ray.

Ray starts once for the module (starting it is the slow part); each run starts its own actors.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import ray
from conftest import tree_digest, write_simple_dataset
from typer.testing import CliRunner

from mirdata.builders.base import BuildOptions, run_build
from mirdata.cli import app
from mirdata.curriculum.difficulty import CACHE, DifficultySettings, rate_difficulty
from mirdata.executors import Step
from mirdata.executors.local import LocalExecutor
from mirdata.executors.ray import RayExecutor
from mirdata.models import RunnerSpec, make_runner
from mirdata.registry import CATEGORIES, tasks_of
from mirdata.store import PARTS, MIRStore

# The wrappers below live in this module, which Ray's workers cannot import: ship them by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

SEED, NUM, SIZE = 5, 2, (96, 72)


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()


def options(out: Path) -> BuildOptions:
    return BuildOptions(out=out, seed=SEED, num=NUM, image_size=SIZE)


@pytest.fixture(scope="module")
def local_builds(tmp_path_factory) -> dict[str, dict[str, str]]:
    """Each category built by the local executor in this process: the reference digests."""
    root = tmp_path_factory.mktemp("local")
    digests = {}
    for category, tasks in ((c, tasks_of(c)) for c in CATEGORIES):
        run_build(options(root / category), list(tasks), show_progress=False)
        digests[category] = tree_digest(root / category)
    return digests


def test_ray_build_matches_local_sequential_from_the_cli(tmp_path: Path, local_builds) -> None:
    out = tmp_path / "ray"
    result = CliRunner().invoke(app, ["build", "--category", "sequential", "--num", str(NUM), "--out", str(out),
                                      "--seed", str(SEED), "--image-size", "96x72", "--executor", "ray"])
    assert result.exit_code == 0, result.output
    assert tree_digest(out) == local_builds["sequential"]
    assert json.loads((out / "build.json").read_text())["builds"][-1]["executor"] == "ray"


@pytest.mark.parametrize("category", ["spatial", "analytical"])
def test_ray_build_matches_local(tmp_path: Path, local_builds, category: str) -> None:
    run = run_build(options(tmp_path), list(tasks_of(category)), show_progress=False, executor=RayExecutor())
    assert run["built"] == NUM * len(tasks_of(category)) and not run["failed"]
    assert tree_digest(tmp_path) == local_builds[category]


class ExitOnce(Step):
    """Runs a step, but the first worker to finish an item exits at once, before it can report the item (its
    files are written): Ray must restart the actor and run the item again."""

    def __init__(self, inner: Step, marker: Path):
        self.inner, self.marker = inner, marker

    def setup(self) -> None:
        self.inner.setup()

    def run(self, items, rank=0, world_size=1):
        results = list(self.inner.run(items, rank, world_size))
        try:
            self.marker.open("x").close()
        except FileExistsError:
            yield from results
            return
        os._exit(1)

    def close(self) -> None:
        self.inner.close()


class DyingRay(RayExecutor):
    def __init__(self, marker: Path):
        super().__init__()
        self.marker = marker

    def run(self, step, items, on_result):
        super().run(ExitOnce(step, self.marker), items, on_result)


def test_a_killed_ray_worker_gives_the_same_bytes(tmp_path: Path, local_builds) -> None:
    marker = tmp_path / "died"
    out = tmp_path / "out"
    run = run_build(options(out), list(tasks_of("sequential")), show_progress=False, executor=DyingRay(marker))
    assert marker.exists(), "no worker died"
    assert run["built"] == NUM * 4
    assert tree_digest(out) == local_builds["sequential"]


class StopAfter(LocalExecutor):
    """The local executor, interrupted (like a Ctrl-C) after `n` items."""

    def __init__(self, n: int):
        super().__init__(1)
        self.n = n

    def run(self, step, items, on_result):
        def counted(result):
            on_result(result)
            self.n -= 1
            if self.n == 0:
                raise KeyboardInterrupt

        super().run(step, items, counted)


def test_a_build_started_locally_resumes_on_ray(tmp_path: Path, local_builds) -> None:
    tasks = list(tasks_of("analytical"))
    with pytest.raises(KeyboardInterrupt):
        run_build(options(tmp_path), tasks, show_progress=False, executor=StopAfter(3))
    assert len(list((tmp_path / PARTS).glob("*.json"))) == 3 and not (tmp_path / "records.jsonl").exists()
    run = run_build(options(tmp_path), tasks, show_progress=False, executor=RayExecutor())
    assert (run["resumed_from"], run["built"]) == (3, NUM * len(tasks) - 3)
    assert tree_digest(tmp_path) == local_builds["analytical"]


@pytest.mark.usefixtures("one_torch_thread")
def test_ray_difficulty_writes_the_local_pass_rates(tmp_path: Path, tiny_vlm: Path) -> None:
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    write_simple_dataset(local, per_task=1)
    shutil.copytree(local, on_ray)
    settings = DifficultySettings(samples=3, temperature=1.0, top_p=1.0, max_new_tokens=6, batch_size=5, seed=2)
    with make_runner("transformers", str(tiny_vlm), device="cpu") as runner:
        here = rate_difficulty(local, runner, settings, show_progress=False)
    spec = RunnerSpec("transformers", str(tiny_vlm), {"device": "cpu"})
    there = rate_difficulty(on_ray, spec, settings, show_progress=False, executor=RayExecutor())
    assert here["asked_this_run"] == there["asked_this_run"] == 12
    # the same samples, read the same way: every response of every record is the local one
    caches = [sorted((root / CACHE).rglob("*.json")) for root in (local, on_ray)]
    assert [p.name for p in caches[0]] == [p.name for p in caches[1]] and len(caches[0]) == 12
    for a, b in zip(*caches):
        assert json.loads(a.read_text())["responses"] == json.loads(b.read_text())["responses"]
    assert [r["pass_rate"] for r in MIRStore(local).read_raw()] == [r["pass_rate"] for r in MIRStore(on_ray).read_raw()]
    assert (local / "records.jsonl").read_bytes() == (on_ray / "records.jsonl").read_bytes()


@pytest.mark.usefixtures("one_torch_thread")
def test_ray_predict_writes_the_local_lines(tmp_path: Path, tiny_vlm: Path) -> None:
    from mirdata.inference.predict import PredictSettings, predict

    root = tmp_path / "data"
    write_simple_dataset(root, per_task=1)
    settings = PredictSettings(max_new_tokens=5, batch_size=5, circular=True)
    with make_runner("transformers", str(tiny_vlm), device="cpu") as runner:
        predict(root, runner, tmp_path / "local.jsonl", settings, show_progress=False)
    spec = RunnerSpec("transformers", str(tiny_vlm), {"device": "cpu"})
    predict(root, spec, tmp_path / "ray.jsonl", settings, show_progress=False, executor=RayExecutor())
    lines = (tmp_path / "local.jsonl").read_text().splitlines()
    assert len(lines) == 24  # 12 records, 2 rotations each, in record order
    assert (tmp_path / "ray.jsonl").read_text().splitlines() == lines
