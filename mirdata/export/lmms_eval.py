"""An lmms-eval task folder for MIR: `lmms-eval --include_path TASKDIR --tasks mir`.

What `write_task_folder` writes:

* `_default_template_yaml`: how every task reads the release (`dataset_path`) and prompts and scores a question;
* `mir.yaml`, the group `mir` of `mir_easy` and `mir_hard` (config `all`, one task per split), and a group
  `mir_<category>` per category of `mir_<category>_easy` / `mir_<category>_hard` (the category's config);
* `utils.py`, which imports the task functions below from mirdata (so `pip install mirbench-tools` in the
  environment lmms-eval runs in).

A question is prompted as `mirdata predict` prompts it ("mir" format: question, options, "Your option: X"), with each
image at its `<image>` place. `doc_to_messages` gives the interleaved chat turn: lmms-eval's chat models (the Qwen
ones among them) drop `<image>` from plain text and put every image first, which loses the order a MIR question is
about. `doc_to_visual` + `doc_to_text` are there for the models that take images and text apart.

Scoring reads the answer with mirdata's extractor (never a guess: a response that names no option is wrong and
counted as unanswered). Every task reports `accuracy` and `unanswered`, and the accuracy of each category and task
its split holds (a metric per name, averaged over that category's or task's questions only).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError

GROUP = "mir"
TEMPLATE = "_default_template_yaml"
UTILS = "utils.py"
TASK_FUNCTIONS = ("doc_to_visual", "doc_to_text", "doc_to_messages", "process_results")
GENERATION = {"max_new_tokens": 1024, "temperature": 0.0, "top_p": 1.0, "do_sample": False, "num_beams": 1}

_UTILS_SOURCE = '''"""MIR task functions for lmms-eval; they live in mirdata (pip install mirbench-tools)."""

from mirdata.export.lmms_eval import doc_to_messages, doc_to_text, doc_to_visual, process_results  # noqa: F401
'''


# -- the task functions (run inside lmms-eval) --------------------------------------------------------------

def _prompt(doc: dict[str, Any], images: list[Any]):
    from mirdata.inference.prompt import build_prompt
    from mirdata.schema.record import Record

    record = Record(id=str(doc["id"]), category=doc["category"], task=doc["task"],
                    images=[f"image {k + 1}" for k in range(len(images))], question=doc["question"],
                    options=list(doc["options"]), answer=doc["answer"])
    return build_prompt(record, images)


def doc_to_visual(doc: dict[str, Any]) -> list[Any]:
    """The question's images, in the order of its `<image>` placeholders."""
    return [image.convert("RGB") for image in doc["images"]]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The prompt's text, with an `<image>` marker where each image goes. lmms-eval calls it on rows without
    their images (it drops image columns to build requests), so it needs only the question."""
    from PIL import Image

    from mirdata.schema.record import IMAGE_TOKEN

    stand_in = Image.new("RGB", (1, 1))  # only its place in the prompt counts
    return _prompt(doc, [stand_in] * doc["question"].count(IMAGE_TOKEN)).text


def doc_to_messages(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> list[dict[str, Any]]:
    """One user turn whose content interleaves text and images in the question's order."""
    content = [{"type": "text", "text": part} if isinstance(part, str) else {"type": "image", "url": part}
               for part in _prompt(doc, doc_to_visual(doc)).parts]
    return [{"role": "user", "content": content}]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """Right (1.0) or wrong (0.0) under `accuracy`, the question's category and its task; `unanswered` is 1.0 when
    the response names no option."""
    from mirdata.inference.extract import extract_answer

    letter = extract_answer(results[0] if results else None, list(doc["options"]))
    right = float(letter == doc["answer"])
    return {"accuracy": right, "unanswered": float(letter is None), doc["category"]: right, doc["task"]: right}


# -- the folder ------------------------------------------------------------------------------------------------

def _metric(name: str, higher_is_better: bool = True) -> dict[str, Any]:
    return {"metric": name, "aggregation": "mean", "higher_is_better": higher_is_better}


def _metrics(names: Iterable[str]) -> list[dict[str, Any]]:
    return [_metric("accuracy"), _metric("unanswered", higher_is_better=False), *map(_metric, names)]


def write_task_folder(source_path: str | Path, out: str | Path, dataset_path: str | None = None) -> list[str]:
    """Write the task folder for the dataset at `source_path` (MIR folder or release) to `out`; lmms-eval reads the
    data from `dataset_path` (a release folder or Hub id; by default `source_path` when it is a release). Returns
    the names of the tasks and groups written."""
    import yaml

    from mirdata.registry import CATEGORIES, task_names
    from mirdata.release.source import SPLITS, open_source

    source = open_source(source_path)
    if dataset_path is None:
        if not source.is_release:
            raise MirdataError(f"{source_path}: lmms-eval reads a released dataset; release this folder first "
                               "(`mirdata release DIR --out REL`) and export REL, or name the release with "
                               "--dataset-path PATH_OR_HUB_ID")
        dataset_path = str(source.path.absolute())
    counts = source.counts()
    if not counts:
        raise MirdataError(f"{source_path}: no records to evaluate")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def present(split: str, category: str | None = None) -> tuple[list[str], list[str]]:
        keys = [(c, t) for (s, c, t) in counts if s == split and (category is None or c == category)]
        cats = [c for c in CATEGORIES if any(k[0] == c for k in keys)]
        return cats, [t for t in task_names() if any(k[1] == t for k in keys)]

    files: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}
    for category in (None, *CATEGORIES):
        group = GROUP if category is None else f"{GROUP}_{category}"
        for split in SPLITS:
            cats, tasks = present(split, category)
            if not tasks:
                continue
            name = f"{group}_{split}"
            # every name process_results returns must be declared: lmms-eval looks up each one's aggregation
            files[f"{name}.yaml"] = {"task": name, "include": TEMPLATE, "dataset_name": category or "all",
                                     "test_split": split, "metric_list": _metrics([*cats, *tasks])}
            groups.setdefault(group, []).append(name)
    for group, tasks in groups.items():
        files[f"{group}.yaml"] = {"group": group, "task": tasks, "aggregate_metric_list": [
            {"metric": m, "aggregation": "mean", "weight_by_size": True} for m in ("accuracy", "unanswered")]}

    functions = "".join(f"{name}: !function utils.{name}\n" for name in TASK_FUNCTIONS)
    template = (yaml.safe_dump({"dataset_path": dataset_path, "output_type": "generate_until",
                                "doc_to_target": "answer", "generation_kwargs": GENERATION}, sort_keys=False)
                + functions)
    (out / TEMPLATE).write_text(template)
    (out / UTILS).write_text(_UTILS_SOURCE)
    for name, content in files.items():
        (out / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return [*groups, *(n for tasks in groups.values() for n in tasks)]
