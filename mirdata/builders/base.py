"""What every task builder shares: options, the task contract, and the build runner.

The task contract (`Task`): a task is registered by its spec (mirdata.registry) and implemented by a Task
subclass, with
* `Config`, its typed configuration (a `TaskConfig` dataclass, filled from the build options);
* `Facts`, the typed facts a record keeps in meta (a TypedDict): every number its answer and reasoning rest on;
* `sample(slot, rng)`: draw facts from the RNG, make the images and regions, solve the answer, return a
  `Sample` (or None: this draw cannot be proven right, draw again);
* `reason(facts, regions, answer, config, rng)`: the five reasoning stages, written from the facts and the
  regions alone: no renderer, editor or model, so a stored record's stages can be written again anywhere;
* `answer_rules` and `constraints`, the functions its spec's question families name (mirdata.builders.families).

A record is a pure function of (task, seed, index): `sample` gets an RNG seeded from exactly those three.
The runner saves the images, makes the record, writes its stages, and stores it. Building is then a map over
indices (`BuildStep`) that any executor runs; a resumed build skips the ids already stored.
"""

from __future__ import annotations

import math
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints, is_typeddict

import numpy as np
from PIL import Image

import mirdata
from mirdata.builders.families import AnswerRule, Constraint, QuestionFamilies
from mirdata.builders.options import Slot, pick  # noqa: F401  (pick: the builders draw with it)
from mirdata.errors import MirdataError
from mirdata.executors import Executor, Step
from mirdata.executors.local import LocalExecutor
from mirdata.progress import progress_bar
from mirdata.registry import (CATEGORIES, TaskSpec, category_of, task_names, task_rank, task_spec, task_specs,
                              tasks_of)
from mirdata.schema.checks import stated_letters
from mirdata.schema.record import Record, Region
from mirdata.store import IMAGES, MIRStore

# Attempts per index before a task gives up: a builder that cannot prove its answer asks for another draw.
MAX_ATTEMPTS = 20


@dataclass
class BuildOptions:
    """Every `mirdata build` option. Tasks read the ones that concern them."""

    out: Path = Path("mir_data")
    seed: int = 0
    num: int = 10  # records per task
    workers: int = 1
    image_size: tuple[int, int] = (448, 336)  # width, height
    image_format: str = "jpg"
    source: Path | None = None  # real videos / images instead of the procedural default
    steps_csv: Path | None = None  # step annotations (video, start_s, end_s, step) for cooking_process
    on_error: str = "skip"  # a bad source file: skip it and report, or fail the build
    renderer: str | None = None  # spatial: renderer name (None: the default)
    views: int | None = None  # spatial: views per scene (None: the task's default)
    device: str = "cpu"
    editor: str = "classical"  # analytical: image editor backend
    editor_model: Path | None = None
    annotator: str = "template"
    annotator_options: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # --set KEY=VALUE: fields of a task's own Config

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


@dataclass
class Sample:
    """What a task makes for one index, before it is a stored record."""

    question: str  # with one <image> per image, in order
    options: list[str]  # "A. ..." labels
    answer: str  # a letter
    images: list[Image.Image]
    regions: list[Region] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # the ground truth, kept in meta
    generator: str = ""  # which generator made the images


@dataclass
class Reasoning:
    summary: str
    caption: list[str]
    text2region: str
    region2region: str
    conclusion: str


@dataclass(frozen=True)
class TaskConfig:
    """The build options every task reads. A task with options of its own subclasses it; `from_options` fills a
    field from the BuildOptions field of the same name, or from `--set NAME=VALUE` (converted to its type)."""

    seed: int = 0
    image_size: tuple[int, int] = (448, 336)  # width, height
    image_format: str = "jpg"
    on_error: str = "skip"

    @classmethod
    def from_options(cls, options: BuildOptions) -> TaskConfig:
        hints = get_type_hints(cls)
        values = {}
        for f in fields(cls):
            if f.name in options.settings and hasattr(options, f.name):
                raise MirdataError(f"--set {f.name}: it is a build option; use --{f.name.replace('_', '-')}")
            if f.name in options.settings:
                values[f.name] = _setting(f.name, options.settings[f.name], hints[f.name])
            elif hasattr(options, f.name):
                values[f.name] = getattr(options, f.name)
        return cls(**values)


def _setting(name: str, text: str, kind: Any) -> Any:
    """`--set NAME=TEXT` as the config field's type (bool, int, float, str, Path, or optional ones)."""
    text = str(text)
    if get_origin(kind) in (Union, UnionType):  # an optional field: its one other type
        kind = next(k for k in get_args(kind) if k is not type(None))
    if kind not in (bool, int, float, str, Path):
        raise MirdataError(f"--set {name}: a field of type {kind} cannot be set from the command line")
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError("not true or false")
            return text.lower() in ("true", "1", "yes")
        return kind(text)
    except ValueError as e:
        raise MirdataError(f"--set {name}={text}: {e}") from None


class Task(ABC):
    """One registered task (see the module docstring for the contract). Subclasses implement `sample` and
    `reason`; the name, category and question families come from the task's spec."""

    Config: ClassVar[type[TaskConfig]] = TaskConfig
    Facts: ClassVar[type] = dict
    answer_rules: ClassVar[dict[str, AnswerRule]] = {}
    constraints: ClassVar[dict[str, Constraint]] = {}

    def __init__(self, spec: TaskSpec, options: BuildOptions):
        self.spec = spec
        self.options = options
        self.config = self.Config.from_options(options)
        self.families = self.question_families(spec)
        # Source files a task could not use: {"file": ..., "reason": ...}; they go into build.json.
        self.skipped: list[dict[str, str]] = []

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def category(self) -> str:
        return self.spec.category

    @classmethod
    def registered_spec(cls) -> TaskSpec:
        """The spec this class is registered under: how a classmethod such as `reason` reaches its phrases."""
        path = f"{cls.__module__}:{cls.__qualname__}"
        found = [s for s in task_specs().values() if s.builder is cls or s.builder == path]
        if len(found) != 1:
            raise MirdataError(f"{path} is the builder of {len(found)} registered tasks, not of one")
        return found[0]

    @classmethod
    def question_families(cls, spec: TaskSpec) -> QuestionFamilies:
        return QuestionFamilies(spec, cls.answer_rules, cls.constraints)

    @abstractmethod
    def sample(self, slot: Slot, rng: np.random.Generator) -> Sample | None:
        """Make the sample at `slot`, or None when this draw cannot be proven right (the runner draws again)."""

    @classmethod
    @abstractmethod
    def reason(cls, facts: Any, regions: list[Region], answer: str, config: TaskConfig,
               rng: np.random.Generator) -> Reasoning:
        """The five reasoning stages, written from the facts, the regions and the answer letter alone."""

    def slot(self, index: int) -> Slot:
        """The record at `index` of this build, as the option engine keys its balanced choices."""
        return Slot(self.name, self.config.seed, index)

    def close(self) -> None:
        """Release renderers, models, open files."""


class Regions:
    """The one region allocator: the regions of one record, with ids r<start>, r<start+1>, ... in the order
    they are added."""

    def __init__(self, start: int = 0):
        self.items: list[Region] = []
        self.start = start

    def _next_id(self) -> str:
        return f"r{self.start + len(self.items)}"

    def add(self, image: int, box: list[float] | tuple[float, ...], label: str) -> str:
        """A region with the box as given (floats)."""
        rid = self._next_id()
        self.items.append(Region(rid, image, [float(v) for v in box], label))
        return rid

    def add_pixels(self, image: int, box: list[float] | tuple[float, ...], label: str,
                   size: tuple[int, int]) -> str | None:
        """A region whose box is rounded outwards to whole pixels inside an image of `size` (width, height);
        None, and nothing added, when less than 2 pixels of it are left either way."""
        w, h = size
        x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
        x1, y1 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        rid = self._next_id()
        self.items.append(Region(id=rid, image=image, box=[x0, y0, x1, y1], label=label))
        return rid


def conclude(body: str, letter: str) -> str:
    """The conclusion stage: `body` ending in ", so the answer is X."; a body that would state another letter
    (as `stated_letters` reads it) is a builder bug."""
    text = f"{body.rstrip('. ')}, so the answer is {letter}."
    if stated_letters(text) != {letter}:
        raise ValueError(f"conclusion states {sorted(stated_letters(text))}, not {letter}: {text!r}")
    return text


def join_and(items: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def cite(region: Region) -> str:
    """A region as the reasoning cites it: '[r1] in image 2, box [12, 40, 96, 88]' (pixels rounded)."""
    box = ", ".join(str(int(round(v))) for v in region.box)
    return f"[{region.id}] in image {region.image + 1}, box [{box}]"


def regions_by_id(record: Record) -> dict[str, Region]:
    return {r.id: r for r in record.regions}


# -- the registry ---------------------------------------------------------------------------------------

def task_class(task: str) -> type[Task]:
    """The Task subclass that implements a registered task."""
    spec = task_spec(task)
    cls = spec.load_builder()
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise MirdataError(f"task {task!r}: its builder {spec.builder!r} is not a mirdata Task subclass")
    return cls


def make_task(task: str, options: BuildOptions) -> Task:
    """The registered task, set up to build with `options`."""
    return task_class(task)(task_spec(task), options)


def write_reasoning(task: type[Task], record: Record, config: TaskConfig, rng: np.random.Generator) -> Reasoning:
    """The stages of a record, from its facts, regions and answer (no task is set up, no media or model made)."""
    return task.reason(record.meta["facts"], record.regions, record.answer, config, rng)


def resolve_tasks(category: str | None, tasks: list[str] | None) -> list[str]:
    """The tasks to build, in the release order."""
    if tasks:
        unknown = [t for t in tasks if category_of(t) is None]
        if unknown:
            raise MirdataError(f"unknown task(s): {', '.join(unknown)}; tasks are: {', '.join(task_names())}")
        if category and any(category_of(t) != category for t in tasks):
            raise MirdataError(f"task(s) {', '.join(t for t in tasks if category_of(t) != category)} "
                               f"are not in category {category!r}")
        return [t for t in task_names() if t in tasks]
    if category is None:
        return list(task_names())
    if category not in CATEGORIES:
        raise MirdataError(f"unknown category {category!r}; categories are: {', '.join(CATEGORIES)}")
    return list(tasks_of(category))


def record_id(task: str, seed: int, index: int) -> str:
    return f"{task}-s{seed}-{index:06d}"


def record_rng(task: str, seed: int, index: int, attempt: int, purpose: int = 0) -> np.random.Generator:
    """The RNG of one record: seeded by (task, seed, index, attempt) only, never by worker or order."""
    return np.random.default_rng([zlib.crc32(task.encode()), seed, index, attempt, purpose])


def record_sort_key(record: dict[str, Any]) -> tuple[int, str]:
    task = record.get("task")
    return (task_rank(task), str(record.get("id")))


# -- running one record -------------------------------------------------------------------------------

def make_record(task: Task, index: int) -> tuple[Record, list[Image.Image]] | None:
    """Build the record at `index` (drawing again while the task cannot prove an answer), reasoning included."""
    opts = task.options
    for attempt in range(MAX_ATTEMPTS):
        sample = task.sample(task.slot(index), record_rng(task.name, opts.seed, index, attempt))
        if sample is not None:
            break
    else:
        return None
    check_facts(task.Facts, sample.facts, task.name)
    rid = record_id(task.name, opts.seed, index)
    paths = [f"{IMAGES}/{task.name}/{rid}_{k}.{opts.image_format}" for k in range(len(sample.images))]
    record = Record(
        id=rid,
        category=task.category,
        task=task.name,
        images=paths,
        question=sample.question,
        options=sample.options,
        answer=sample.answer,
        regions=sample.regions,
        meta={
            "generator": sample.generator,
            "seed": opts.seed,
            "index": index,
            "attempt": attempt,
            "mirdata_version": mirdata.__version__,
            "facts": sample.facts,
            "annotation": {"annotator": "template"},
        },
    )
    rng = record_rng(task.name, opts.seed, index, attempt, purpose=1)
    stages = write_reasoning(type(task), record, task.config, rng)
    record.summary, record.caption = stages.summary, stages.caption
    record.text2region, record.region2region, record.conclusion = (
        stages.text2region, stages.region2region, stages.conclusion)
    return record, sample.images


def check_facts(facts_type: type, facts: dict[str, Any], task: str) -> None:
    """A sample's facts hold every key its task's `Facts` TypedDict requires and no key it does not declare (a
    builder bug, not a bad draw)."""
    if not is_typeddict(facts_type):
        return
    missing = sorted(facts_type.__required_keys__ - facts.keys())
    unknown = sorted(facts.keys() - facts_type.__required_keys__ - facts_type.__optional_keys__)
    if missing or unknown:
        raise ValueError(f"{task}: facts do not match {facts_type.__name__}: missing {missing}, undeclared {unknown}")


def store_record(store: MIRStore, task: Task, index: int) -> str | None:
    """Build and store one record; images first, then the record, so a stored record's images are whole."""
    made = make_record(task, index)
    if made is None:
        return None
    record, images = made
    for path, image in zip(record.images, images):
        store.save_image(path, image, task.options.image_format)
    store.put(record)
    return record.id


# -- the runner ------------------------------------------------------------------------------------------

_worker_tasks: dict[str, Task] = {}
_worker_options: BuildOptions | None = None


def _worker_init(options: BuildOptions) -> None:
    global _worker_options
    _worker_options = options


def _worker_task(name: str) -> Task:
    if name not in _worker_tasks:
        _worker_tasks[name] = make_task(name, _worker_options)
    return _worker_tasks[name]


def _worker_build(name: str, index: int) -> tuple[str, int, str | None, str | None, list[dict[str, str]]]:
    task = _worker_task(name)
    try:
        rid = store_record(MIRStore(_worker_options.out), task, index)
        error = None if rid else f"no provable sample after {MAX_ATTEMPTS} attempts"
    except MirdataError as e:
        if _worker_options.on_error == "fail":
            raise
        rid, error = None, str(e)
    skipped, task.skipped = task.skipped, []
    return name, index, rid, error, skipped


class BuildStep(Step):
    """Build and store the records at (task, index) items; a worker sets its tasks up once. Yields, per item,
    (task, index, record id or None, why not built, source files skipped)."""

    name = "build"

    def __init__(self, options: BuildOptions, tasks: list[str]):
        self.options, self.tasks = options, tasks

    def setup(self) -> None:
        _worker_init(self.options)
        try:
            for name in self.tasks:
                _worker_task(name)
        except BaseException:
            _close_worker_tasks()
            raise

    def run(self, items: Sequence[tuple[str, int]], rank: int = 0, world_size: int = 1) -> Iterator[tuple]:
        for name, index in items:
            yield _worker_build(name, index)

    def close(self) -> None:
        _close_worker_tasks()


def run_build(options: BuildOptions, tasks: list[str], show_progress: bool = True,
              executor: Executor | None = None) -> dict[str, Any]:
    """Build `options.num` records of each task into `options.out` on `executor` (default: local, with
    `options.workers` processes); resumes a killed build, whichever executor ran it. Returns the summary."""
    executor = executor or LocalExecutor(options.workers)
    if options.image_format not in ("jpg", "png"):
        raise MirdataError(f"--format must be jpg or png, not {options.image_format!r}")
    if options.on_error not in ("skip", "fail"):
        raise MirdataError(f"--on-error must be skip or fail, not {options.on_error!r}")
    known = {f.name for t in tasks for f in fields(task_class(t).Config)}
    unknown = sorted(set(options.settings) - known)
    if unknown:
        raise MirdataError(f"--set {', '.join(unknown)}: not a config field of {', '.join(tasks)} "
                           f"(their fields: {', '.join(sorted(known))})")
    store = MIRStore(options.out)
    store.root.mkdir(parents=True, exist_ok=True)
    done = store.done_ids()
    todo = [(t, i) for t in tasks for i in range(options.num) if record_id(t, options.seed, i) not in done]
    start = time.perf_counter()
    failures: list[dict[str, Any]] = []
    skipped_sources: dict[str, dict[str, str]] = {}

    def collect(name: str, index: int, rid: str | None, error: str | None, skipped: list[dict[str, str]]) -> None:
        if error:
            failures.append({"task": name, "index": index, "reason": error})
        for s in skipped:
            skipped_sources[s["file"]] = s

    with progress_bar(transient=not show_progress) as bar:
        job = bar.add_task(f"building {', '.join(tasks)}" if len(tasks) <= 2 else f"building {len(tasks)} tasks",
                           total=len(tasks) * options.num, completed=len(tasks) * options.num - len(todo))
        # Set every task up before any work: a bad option (an unknown editor, a missing model folder, a
        # source folder with no videos) stops the build at once, not after other tasks have run.
        step = BuildStep(options, tasks)
        step.setup()
        try:
            if not executor.in_process:
                step.close()  # the workers set up their own

            def done(result: tuple) -> None:
                collect(*result)
                bar.advance(job)

            executor.run(step, todo, done)
        finally:
            step.close()
    seconds = time.perf_counter() - start
    total = store.commit(record_sort_key)
    counts: dict[str, int] = {}
    for obj in store.read_raw():
        counts[obj["task"]] = counts.get(obj["task"], 0) + 1
    run = {
        "tasks": tasks,
        "options": options.to_json(),
        "built": len(todo) - len(failures),
        "resumed_from": len(tasks) * options.num - len(todo),
        "executor": executor.name,
        "seconds": round(seconds, 3),
        "records_per_second": round((len(todo) - len(failures)) / seconds, 3) if seconds > 0 and todo else None,
        "failed": failures,
        "skipped_sources": sorted(skipped_sources.values(), key=lambda s: s["file"]),
    }
    info = store.build_info()
    store.update_build_info(
        package="mirbench-tools", version=mirdata.__version__, counts=counts, records=total,
        builds=[*info.get("builds", []), run])
    return run


def _close_worker_tasks() -> None:
    for task in _worker_tasks.values():
        task.close()
    _worker_tasks.clear()
