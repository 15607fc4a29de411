"""Shared fixtures: small MIR datasets the tests make themselves."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mirdata.registry import category_of, task_names
from mirdata.schema.record import Record, Region, format_options
from mirdata.store import MIRStore


@pytest.fixture(autouse=True, scope="session")
def fresh_datasets_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`datasets` keys its cache of a local parquet folder on the folder's name and file metadata, not the bytes, so
    a release written where an earlier session wrote a different one could load the stale copy: each session
    gets its own cache."""
    import datasets

    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("datasets_cache")


def write_simple_dataset(root: Path, per_task: int = 2, seed: int = 0, size: tuple[int, int] = (96, 64)) -> list[Record]:
    """A schema-valid MIR folder covering all 12 tasks: coloured squares; the question asks which image shows
    the larger square. Answers, regions and the five stages follow from how the images were drawn."""
    rng = np.random.default_rng(seed)
    store = MIRStore(root)
    records = []
    for task in task_names():
        for i in range(per_task):
            rid = f"{task}-t{seed}-{i:03d}"
            sides = rng.choice(np.arange(8, 40), size=2, replace=False).tolist()
            paths, regions, captions = [], [], []
            for k, side in enumerate(sides):
                im = Image.new("RGB", size, "white")
                x0, y0 = 10 + k * 5, 8
                ImageDraw.Draw(im).rectangle([x0, y0, x0 + side, y0 + side], fill=(200, 40 * k, 40))
                # a grey corner pixel numbers the image: no two records share image bytes (the audit fails that)
                im.putpixel((size[0] - 1, size[1] - 1), (len(records) % 250, len(records) // 250, 100 + k))
                paths.append(store.save_image(f"images/{task}/{rid}_{k}.png", im))
                regions.append(Region(f"r{k}", k, [x0, y0, x0 + side + 1, y0 + side + 1], "square"))
                captions.append(f"A red square of side {side} px on a white background.")
            larger = int(np.argmax(sides))
            options = format_options(["the first image", "the second image"])
            answer = "AB"[larger]
            records.append(Record(
                id=rid, category=category_of(task), task=task, images=paths,
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
    (root / "build.json").write_text(json.dumps({"counts": {t: per_task for t in task_names()}}))
    return records


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of records.jsonl and every image, by relative path (build.json holds timings: left out)."""
    files = [root / "records.jsonl", *sorted((root / "images").rglob("*"))]
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


@contextmanager
def interrupted_at_second_step(trainer_class: type) -> Iterator[None]:
    """Inside, `trainer_class` raises KeyboardInterrupt as it starts its second training step (a killed run)."""
    original = trainer_class.training_step
    steps = []

    def crash_on_second_step(self, *a, **kw):
        steps.append(1)
        if len(steps) == 2:
            raise KeyboardInterrupt
        return original(self, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer_class, "training_step", crash_on_second_step)
        yield


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


class LocalJSONServer:
    """An HTTP server on 127.0.0.1 answering every POST with `respond(path, headers, body bytes)` ->
    (status, JSON payload); `url` ends in /v1, as OpenAI-compatible base URLs do."""

    def __init__(self, respond: Callable[[str, Any, bytes], tuple[int, Any]]):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                status, payload = respond(self.path, self.headers, self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
