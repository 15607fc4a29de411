"""VLMEvalKit's TSV format for MIR: `MIR_easy.tsv` and `MIR_hard.tsv`, a run config and the dataset class it names.

Each TSV row is one question, every field quoted: `index`, `id` (the record id), `question` with `<image 1>` ...
`<image N>` where the images go, one column per option letter (`A`, `B`, ...; empty where a question has fewer
options), `answer`, `image` (a JSON list of the images as base64, in order), `category` (the task), `l2-category`
(the category) and `split`.

VLMEvalKit's own interleaving prompt (`MMMUDataset`) reads one digit after `<image ` and stops at `<image 10>`,
and its generic multiple-choice class puts every image before the text. So next to the TSV files we write
`mir_vlmevalkit.py`, a dataset class `MIRDataset` that reads these files from `$LMUData` and interleaves text and
images at every `<image k>`, any k, and `run_mir.py`, which registers it and starts VLMEvalKit's `run.py` with
`mir_config.json`:

    cp MIR_*.tsv $LMUData/ && python run_mir.py /path/to/VLMEvalKit/run.py --config mir_config.json
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from mirdata.errors import MirdataError
from mirdata.schema.record import LETTERS, option_text
from mirdata.store import atomic_write

CONFIG = "mir_config.json"
DATASET_MODULE = "mir_vlmevalkit.py"
LAUNCHER = "run_mir.py"
IMAGE_NUMBERED = "<image {}>"

_DATASET_SOURCE = '''"""MIR for VLMEvalKit: multiple-choice questions whose text interleaves up to any number of images.

The TSV files (MIR_easy.tsv, MIR_hard.tsv) go in $LMUData; `<image k>` in a question marks where image k goes.
"""

import re

from vlmeval.dataset.image_mcq import ImageMCQDataset
from vlmeval.smp import LMUDataRoot, load
import os.path as osp

_IMAGE_REF = re.compile(r"<image (\\d+)>")


class MIRDataset(ImageMCQDataset):
    DATASET_URL = {"MIR_easy": "", "MIR_hard": ""}
    DATASET_MD5 = {}

    def load_data(self, dataset):
        return load(osp.join(LMUDataRoot(), f"{dataset}.tsv"))

    def build_prompt(self, line):
        msgs = super().build_prompt(line)
        images = [m["value"] for m in msgs if m["type"] == "image"]
        text = "".join(m["value"] for m in msgs if m["type"] == "text")
        parts, start = [], 0
        for ref in _IMAGE_REF.finditer(text):
            if text[start:ref.start()]:
                parts.append(dict(type="text", value=text[start:ref.start()]))
            parts.append(dict(type="image", value=images[int(ref.group(1)) - 1]))
            start = ref.end()
        if text[start:]:
            parts.append(dict(type="text", value=text[start:]))
        return parts
'''

_LAUNCHER_SOURCE = '''"""Run VLMEvalKit with the MIR dataset class: python run_mir.py /path/to/VLMEvalKit/run.py --config mir_config.json"""

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vlmeval.dataset  # noqa: E402

from mir_vlmevalkit import MIRDataset  # noqa: E402

vlmeval.dataset.MIRDataset = MIRDataset
run_py = sys.argv.pop(1)
sys.argv[0] = run_py
runpy.run_path(run_py, run_name="__main__")
'''


def numbered_question(question: str) -> str:
    """`<image>` placeholders numbered in order: `<image 1>`, `<image 2>`, ..."""
    pieces = question.split("<image>")
    return pieces[0] + "".join(IMAGE_NUMBERED.format(k) + piece for k, piece in enumerate(pieces[1:], start=1))


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_tsv(source_path: str | Path, out: str | Path) -> list[tuple[Path, int]]:
    """Write MIR_<split>.tsv for each split of the dataset at `source_path` (MIR folder or release), the run config,
    the dataset class and its launcher, to the folder `out`. Returns (file, questions) per TSV written."""
    from mirdata.release.source import SPLITS, open_source

    source = open_source(source_path)
    by_split: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for row in source.rows():
        by_split[row["difficulty"]].append(row)
    if not any(by_split.values()):
        raise MirdataError(f"{source_path}: no records to export")
    width = max(len(row["options"]) for rows in by_split.values() for row in rows)
    letters = list(LETTERS[:width])
    out = Path(out)
    written = []
    for split, rows in by_split.items():
        if not rows:
            continue
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["index", "id", "question", *letters, "answer", "image", "category", "l2-category", "split"])
        for index, row in enumerate(rows):
            options = [option_text(o) for o in row["options"]]
            writer.writerow([index, row["id"], numbered_question(row["question"]),
                             *(options + [""] * (width - len(options))), row["answer"],
                             json.dumps([_base64(b) for b in row["image_bytes"]]), row["task"], row["category"],
                             split])
        path = out / f"MIR_{split}.tsv"
        atomic_write(path, buffer.getvalue().encode("utf-8"))
        written.append((path, len(rows)))
    config = {"model": {"Qwen2.5-VL-7B-Instruct": {}},  # any model name VLMEvalKit supports
              "data": {path.stem: {"class": "MIRDataset", "dataset": path.stem} for path, _ in written}}
    atomic_write(out / CONFIG, (json.dumps(config, indent=2) + "\n").encode())
    atomic_write(out / DATASET_MODULE, _DATASET_SOURCE.encode())
    atomic_write(out / LAUNCHER, _LAUNCHER_SOURCE.encode())
    return written
