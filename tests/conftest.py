"""Shared fixtures: small MIR datasets the tests make themselves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mirdata.schema.record import Record, Region, format_options
from mirdata.schema.tasks import ALL_TASKS, TASK_CATEGORY
from mirdata.store import MIRStore


def write_simple_dataset(root: Path, per_task: int = 2, seed: int = 0, size: tuple[int, int] = (96, 64)) -> list[Record]:
    """A schema-valid MIR folder covering all 12 tasks: coloured squares; the question asks which image shows
    the larger square. Answers, regions and the five stages follow from how the images were drawn."""
    rng = np.random.default_rng(seed)
    store = MIRStore(root)
    records = []
    for task in ALL_TASKS:
        for i in range(per_task):
            rid = f"{task}-t{seed}-{i:03d}"
            sides = rng.choice(np.arange(8, 40), size=2, replace=False).tolist()
            paths, regions, captions = [], [], []
            for k, side in enumerate(sides):
                im = Image.new("RGB", size, "white")
                x0, y0 = 10 + k * 5, 8
                ImageDraw.Draw(im).rectangle([x0, y0, x0 + side, y0 + side], fill=(200, 40 * k, 40))
                paths.append(store.save_image(f"images/{task}/{rid}_{k}.png", im))
                regions.append(Region(f"r{k}", k, [x0, y0, x0 + side + 1, y0 + side + 1], "square"))
                captions.append(f"A red square of side {side} px on a white background.")
            larger = int(np.argmax(sides))
            options = format_options(["the first image", "the second image"])
            answer = "AB"[larger]
            records.append(Record(
                id=rid, category=TASK_CATEGORY[task], task=task, images=paths,
                question="Here is one image: <image> and another: <image>. Which image shows the larger square?",
                options=options, answer=answer,
                summary="Compare the side of the square in each image.",
                caption=captions,
                text2region="'the larger square' refers to [r0] in image 1 and [r1] in image 2.",
                region2region=f"[r0] has side {sides[0]} px and [r1] has side {sides[1]} px.",
                conclusion=f"The square in image {larger + 1} is larger, so the answer is {answer}.",
                regions=regions,
                meta={"facts": {"sides": sides}, "seed": seed, "index": i},
            ))
    store.write(records)
    (root / "build.json").write_text(json.dumps({"counts": {t: per_task for t in ALL_TASKS}}))
    return records


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of records.jsonl and every image, by relative path (build.json holds timings: left out)."""
    files = [root / "records.jsonl", *sorted((root / "images").rglob("*"))]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


@pytest.fixture
def simple_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "simple"
    write_simple_dataset(root)
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models' steps are too small to share out: on a shared 2-core machine two threads wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random vision-language model and its processor, written to a folder (no download)."""
    from mirdata.testing import make_tiny_vlm

    return make_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-vlm")
