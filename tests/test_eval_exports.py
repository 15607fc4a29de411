"""`mirdata export --format lmms-eval | vlmevalkit`: evaluation sets that load back to the release's questions.

The lmms-eval tests call the functions the task YAML names, on rows loaded from the release the way lmms-eval loads
them; `test_lmms_eval_loads_the_task_folder` runs lmms-eval itself (pip install "lmms-eval>=0.7").
"""

from __future__ import annotations

import base64
import csv
import importlib.util
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml
from conftest import write_simple_dataset
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.export.lmms_eval import write_task_folder
from mirdata.export.vlmevalkit import write_tsv
from mirdata.registry import CATEGORIES
from mirdata.release import release_dataset
from mirdata.schema.record import Region
from mirdata.store import MIRStore

MANY = 12  # images of the one long question: past VLMEvalKit's one-digit <image k>


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A rated MIR folder (12 tasks x 2 records, one question with 12 images) and its release."""
    base = tmp_path_factory.mktemp("evalsets")
    root = base / "mir"
    records = write_simple_dataset(root, per_task=2)
    store = MIRStore(root)
    long = records[0]
    long.images = []
    for k in range(MANY):  # image k is a flat colour with k+1 white dots: each one tells which it is
        im = Image.new("RGB", (40, 30), (20 * k, 255 - 20 * k, 90))
        for d in range(k + 1):
            ImageDraw.Draw(im).point((2 + 3 * d, 2), fill="white")
        long.images.append(store.save_image(f"images/{long.task}/{long.id}_many_{k}.png", im))
    long.question = "Look: " + " then ".join("<image>" for _ in range(MANY)) + ". Which view comes first?"
    long.caption = [f"View {k + 1}." for k in range(MANY)]
    long.regions = [Region("r0", 0, [0, 0, 10, 10], "view"), Region("r1", 1, [0, 0, 10, 10], "view")]
    for i, r in enumerate(records):
        r.difficulty, r.pass_rate = ("hard", 0.2) if i % 3 == 0 else ("easy", 0.9)
    store.write(records)
    repo = base / "repo"
    release_dataset(root, repo, original=False, show_progress=False)
    return root, repo, {r.id: r for r in records}


class _TaskLoader(yaml.SafeLoader):
    pass


_TaskLoader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))


def read_yaml(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_TaskLoader)


def task_config(taskdir: Path, name: str) -> dict:
    """A task's YAML merged over the file it includes, as lmms-eval reads it."""
    own = read_yaml(taskdir / f"{name}.yaml")
    return {**read_yaml(taskdir / own.pop("include")), **own}


def task_function(taskdir: Path, config: dict, key: str):
    kind, dotted = config[key]
    assert kind == "function"
    module_name, attribute = dotted.split(".")
    spec = importlib.util.spec_from_file_location(f"mir_task_{module_name}", taskdir / f"{module_name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def docs(config: dict) -> datasets.Dataset:
    return datasets.load_dataset(config["dataset_path"], config["dataset_name"], split=config["test_split"])


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def taskdir(release, tmp_path_factory) -> Path:
    _, repo, _ = release
    out = tmp_path_factory.mktemp("lmms") / "mir-task"
    write_task_folder(repo, out)
    return out


def test_lmms_eval_folder_has_the_group_splits_and_categories(taskdir, release):
    _, repo, records = release
    group = read_yaml(taskdir / "mir.yaml")
    assert group["group"] == "mir" and group["task"] == ["mir_easy", "mir_hard"]
    for split in ("easy", "hard"):
        config = task_config(taskdir, f"mir_{split}")
        assert (config["dataset_path"], config["dataset_name"], config["test_split"]) == (str(repo.absolute()),
                                                                                           "all", split)
        assert len(docs(config)) == sum(r.difficulty == split for r in records.values())
    for category in CATEGORIES:
        assert read_yaml(taskdir / f"mir_{category}.yaml")["task"] == [f"mir_{category}_easy", f"mir_{category}_hard"]
        config = task_config(taskdir, f"mir_{category}_hard")
        assert config["dataset_name"] == category
        assert {d["category"] for d in docs(config)} == {category}


def test_doc_to_messages_interleaves_text_and_images_in_question_order(taskdir, release):
    root, _, records = release
    config = task_config(taskdir, "mir_hard")
    to_messages = task_function(taskdir, config, "doc_to_messages")
    to_visual = task_function(taskdir, config, "doc_to_visual")
    seen_long = False
    for doc in docs(config):
        record = records[doc["id"]]
        (turn,) = to_messages(doc)
        assert turn["role"] == "user"
        content = turn["content"]
        images = [part["url"] for part in content if part["type"] == "image"]
        assert len(images) == len(record.images) == record.question.count("<image>")
        for image, path in zip(images, record.images, strict=True):
            assert np.array_equal(pixels(image), pixels(Image.open(root / path)))
        assert [pixels(v).tolist() for v in to_visual(doc)] == [pixels(i).tolist() for i in images]
        # text pieces sit between the images exactly where the question's placeholders are
        text = "".join(part["text"] if part["type"] == "text" else "<image>" for part in content)
        assert text.startswith(record.question)
        assert all(option in text for option in record.options) and "Your option" in text
        # lmms-eval builds its requests from rows whose image columns it dropped
        without_images = {k: v for k, v in doc.items() if k != "images"}
        assert task_function(taskdir, config, "doc_to_text")(without_images) == text
        seen_long |= len(images) == MANY
    assert seen_long


def test_process_results_reads_messy_answers_and_scores_each_task_and_category(taskdir, release):
    _, _, records = release
    config = task_config(taskdir, "mir_easy")
    score = task_function(taskdir, config, "process_results")
    declared = {m["metric"] for m in config["metric_list"]}
    totals: dict[str, list[float]] = {}
    for k, doc in enumerate(docs(config)):
        right = doc["answer"]
        wrong = "B" if right == "A" else "A"
        response = [f"**Answer:** ({right.lower()})", f"The correct option is {right}.", f"Your option: {wrong}",
                    "I cannot tell from these pictures.", f"\\boxed{{{right}}}"][k % 5]
        metrics = score(doc, [response])
        assert set(metrics) <= declared  # lmms-eval needs an aggregation for every metric returned
        expected = 1.0 if k % 5 in (0, 1, 4) else 0.0
        assert metrics["accuracy"] == metrics[doc["task"]] == metrics[doc["category"]] == expected
        assert metrics["unanswered"] == (1.0 if k % 5 == 3 else 0.0)
        for name, value in metrics.items():
            totals.setdefault(name, []).append(value)
    easy = [r for r in records.values() if r.difficulty == "easy"]
    assert len(totals["accuracy"]) == len(easy)
    for task in {r.task for r in easy}:
        assert len(totals[task]) == sum(r.task == task for r in easy)


def test_lmms_eval_needs_a_release_to_read(release, tmp_path):
    root, repo, _ = release
    with pytest.raises(MirdataError, match="lmms-eval reads a released dataset"):
        write_task_folder(root, tmp_path / "t")
    write_task_folder(root, tmp_path / "t", dataset_path="someone/MIR")
    assert read_yaml(tmp_path / "t" / "_default_template_yaml")["dataset_path"] == "someone/MIR"


def test_lmms_eval_loads_the_task_folder(taskdir, release):
    pytest.importorskip("lmms_eval")
    from lmms_eval.tasks import TaskManager, get_task_dict

    _, _, records = release
    manager = TaskManager(include_path=str(taskdir), include_defaults=False)
    assert {"mir", "mir_easy", "mir_hard"} <= set(manager.all_tasks)

    def leaves(tree):
        for key, value in tree.items():
            yield from leaves(value) if isinstance(value, dict) else [(key, value)]

    # "chat" is how lmms-eval loads tasks for chat models (doc_to_messages), "simple" for the others
    for task_type in ("chat", "simple"):
        tasks = dict(leaves(get_task_dict(["mir"], manager, task_type=task_type)))
        assert set(tasks) == {"mir_easy", "mir_hard"}
        for name, task in tasks.items():
            split = name.removeprefix("mir_")
            test_docs = list(task.test_docs())
            assert sorted(d["id"] for d in test_docs) == sorted(r.id for r in records.values() if r.difficulty == split)
            doc = test_docs[0]
            n_images = len(records[doc["id"]].images)
            if task_type == "chat":
                (turn,) = task.doc_to_messages(doc)
                assert sum(part["type"] == "image" for part in turn["content"]) == n_images
            else:
                assert len(task.doc_to_visual(doc)) == n_images == task.doc_to_text(doc).count("<image>")
            metrics = task.process_results(doc, [f"Your option: {doc['answer']}"])
            assert metrics["accuracy"] == 1.0
            assert set(metrics) <= set(task.aggregation())


# -- VLMEvalKit ----------------------------------------------------------------------------------------------

def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.mark.parametrize("from_release", [True, False])
def test_vlmevalkit_tsv_decodes_back_to_the_questions_and_images(release, tmp_path, from_release):
    root, repo, records = release
    written = write_tsv(repo if from_release else root, tmp_path)
    assert [(p.name, n) for p, n in written] == [
        ("MIR_easy.tsv", sum(r.difficulty == "easy" for r in records.values())),
        ("MIR_hard.tsv", sum(r.difficulty == "hard" for r in records.values()))]
    raw = (tmp_path / "MIR_hard.tsv").read_text().splitlines()
    assert all(field.startswith('"') and field.endswith('"') for line in raw for field in line.split("\t"))
    seen = set()
    for split in ("easy", "hard"):
        rows = read_tsv(tmp_path / f"MIR_{split}.tsv")
        assert [row["index"] for row in rows] == [str(k) for k in range(len(rows))]
        for row in rows:
            record = records[row["id"]]
            seen.add(record.id)
            n = len(record.images)
            numbered = [f"<image {k}>" for k in range(1, n + 1)]
            assert all(tag in row["question"] for tag in numbered) and "<image>" not in row["question"]
            back = row["question"]
            for tag in numbered:
                back = back.replace(tag, "<image>")
            assert back == record.question
            images = json.loads(row["image"])
            assert [base64.b64decode(b) for b in images] == [(root / p).read_bytes() for p in record.images]
            letters = [o.split(".")[0] for o in record.options]
            assert [row[letter] for letter in letters] == [o.split(". ", 1)[1] for o in record.options]
            assert row["answer"] == record.answer
            assert (row["category"], row["l2-category"], row["split"]) == (record.task, record.category, split)
    assert seen == set(records)
    config = json.loads((tmp_path / "mir_config.json").read_text())
    assert config["data"] == {name: {"class": "MIRDataset", "dataset": name} for name in ("MIR_easy", "MIR_hard")}


def test_vlmevalkit_dataset_class_interleaves_ten_and_more_images(release, tmp_path, monkeypatch):
    pytest.importorskip("vlmeval")
    root, repo, records = release
    write_tsv(repo, tmp_path)
    monkeypatch.setenv("LMUData", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    from mir_vlmevalkit import MIRDataset

    dataset = MIRDataset("MIR_hard")
    for k in range(len(dataset)):
        line = dataset.data.iloc[k]
        record = records[line["id"]]
        parts = dataset.build_prompt(line)
        images = [p["value"] for p in parts if p["type"] == "image"]
        assert len(images) == len(record.images)
        expected = [Image.open(root / p) for p in record.images]
        assert [pixels(Image.open(path)).tolist() for path in images] == [pixels(im).tolist() for im in expected]
        text = "".join(p["value"] if p["type"] == "text" else "<image>" for p in parts)
        assert record.question in text


def test_cli_exports_both_formats(release, tmp_path):
    _, repo, _ = release
    lmms = CliRunner().invoke(app, ["export", str(repo), "--format", "lmms-eval", "--out", str(tmp_path / "t")])
    assert lmms.exit_code == 0, lmms.output
    assert "--include_path" in lmms.output and (tmp_path / "t" / "utils.py").is_file()
    vlm = CliRunner().invoke(app, ["export", str(repo), "--format", "vlmevalkit", "--out", str(tmp_path / "v")])
    assert vlm.exit_code == 0, vlm.output
    assert "MIR_easy.tsv" in vlm.output and (tmp_path / "v" / "MIR_hard.tsv").is_file()
    missing = CliRunner().invoke(app, ["export", str(tmp_path / "nothing"), "--format", "vlmevalkit", "--out",
                                       str(tmp_path / "w")])
    assert missing.exit_code == 1 and "neither a MIR folder" in missing.output
