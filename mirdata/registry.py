"""The task registry: every task mirdata can build, each from its spec; the one source of the task list.

A spec (`TaskSpec`) is data: the task's name, its category, what it asks, how mirdata makes it (its definition),
its question families, and where its implementation lives (`builder`, "module:Class", imported only to build or
to write reasoning). The twelve built-in specs are the YAML files in mirdata/tasks/. Other packages add tasks
through the entry-point group `mirdata.tasks`: each entry point names a TaskSpec, or the path of a spec file.
A plugin that cannot be loaded is reported in one line (`plugin_problems`) and skipped; the built-in tasks
still work. Keep a plugin's entry-point module light: the registry loads it whenever the task list is read.

This module sits at the bottom of the layers: it imports only mirdata.errors and the standard library.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from mirdata.errors import MirdataError

ENTRY_POINT_GROUP = "mirdata.tasks"

# MIR's three categories, in release order; every task belongs to one of them.
CATEGORIES: tuple[str, ...] = ("sequential", "spatial", "analytical")

BUILTIN_SPECS = Path(__file__).parent / "tasks"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Family:
    """One question family: the texts that ask it, the answer rule that solves it, and the constraints that
    reject a degenerate or shortcut draw of it (each names a check the task registers)."""

    name: str
    answer: str
    texts: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """A registered task. `builder` is a "module:attribute" path (or the class itself)."""

    name: str
    category: str
    asks: str  # what the task asks, in one sentence
    definition: str  # how mirdata makes it: what is drawn, the margins, why a viewer can answer
    builder: str | type
    families: Mapping[str, Family] = field(default_factory=dict)
    family_key: str = "family"  # the facts key a record stores its family under
    phrases: Mapping[str, Any] = field(default_factory=dict)  # the task's other text variants, by name
    aliases: tuple[str, ...] = ()  # other spellings of the name (the original release's)
    rank: int | None = None  # built-in tasks' place in the release order; plugins come after them, by name
    source: str = "mirdata"  # the distribution that registered it

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"task name {self.name!r} must be snake_case (a-z, 0-9, _)")
        if self.category not in CATEGORIES:
            raise ValueError(f"task {self.name!r}: category {self.category!r} is not one of {', '.join(CATEGORIES)}")
        for name, family in self.families.items():
            if name != family.name:
                raise ValueError(f"task {self.name!r}: family {name!r} is filed as {family.name!r}")

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TaskSpec:
        """A spec from its YAML file (the format of mirdata/tasks/*.yaml)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ValueError(f"{path}: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a task spec must be a mapping")
        return cls.from_dict({**data, **overrides}, where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "spec") -> TaskSpec:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        missing = sorted({"name", "category", "asks", "definition", "builder"} - set(data))
        if unknown or missing:
            raise ValueError(f"{where}: " + "; ".join(
                ([f"unknown keys {', '.join(unknown)}"] if unknown else [])
                + ([f"missing keys {', '.join(missing)}"] if missing else [])))
        families = {}
        for name, fam in (data.get("families") or {}).items():
            if not isinstance(fam, Mapping) or "answer" not in fam:
                raise ValueError(f"{where}: family {name!r} needs an `answer` rule")
            families[name] = Family(name=name, answer=str(fam["answer"]), texts=tuple(fam.get("texts") or ()),
                                    constraints=tuple(fam.get("constraints") or ()))
        values = {**data, "families": families, "aliases": tuple(data.get("aliases") or ()),
                  "asks": " ".join(str(data["asks"]).split()), "definition": " ".join(str(data["definition"]).split())}
        return cls(**values)

    def load_builder(self) -> Any:
        """The object `builder` names ("module:attribute"), imported now."""
        target = self.builder
        if not isinstance(target, str):
            return target
        module, _, attribute = target.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in attribute.split(".") if attribute else ():
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise MirdataError(f"task {self.name!r}: cannot load its builder {target!r} ({type(e).__name__}: {e})") \
                from None
        return obj


@dataclass(frozen=True)
class Registry:
    tasks: dict[str, TaskSpec]  # in release order
    problems: tuple[str, ...]  # one line per plugin that could not be registered


def _builtin_specs() -> list[TaskSpec]:
    specs = [TaskSpec.from_file(p) for p in sorted(BUILTIN_SPECS.glob("*.yaml"))]
    return sorted(specs, key=lambda s: (s.rank is None, s.rank, s.name))


def _plugin_specs(entry_point: metadata.EntryPoint) -> list[TaskSpec]:
    loaded = entry_point.load()
    items = loaded if isinstance(loaded, (list, tuple)) else [loaded]
    dist = entry_point.dist.name if entry_point.dist else "?"
    specs = []
    for item in items:
        if isinstance(item, (str, Path)):
            item = TaskSpec.from_file(item)
        if not isinstance(item, TaskSpec):
            raise TypeError(f"it names a {type(item).__name__}, not a TaskSpec or a spec file")
        specs.append(TaskSpec(**{**item.__dict__, "rank": None, "source": dist}))
    return specs


@cache
def registry() -> Registry:
    """Every registered task (loaded once per process)."""
    tasks = {s.name: s for s in _builtin_specs()}
    problems = []
    plugins: list[TaskSpec] = []
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        where = f"plugin task entry point {ep.name!r} ({ep.value})"
        try:
            found = _plugin_specs(ep)
        except Exception as e:  # a plugin's import can fail in any way; it must not stop mirdata
            problems.append(f"{where}: {type(e).__name__}: {' '.join(str(e).split())}; skipped")
            continue
        for spec in found:
            clash = tasks.get(spec.name) or next((p for p in plugins if p.name == spec.name), None)
            if clash:
                problems.append(f"{where}: task {spec.name!r} is already registered by {clash.source}; skipped")
            else:
                plugins.append(spec)
    for spec in sorted(plugins, key=lambda s: s.name):
        tasks[spec.name] = spec
    return Registry(tasks=tasks, problems=tuple(problems))


def register(spec: TaskSpec) -> None:
    """Add a task to this process's registry (a notebook, a test). Packages use the entry-point group instead,
    so that every process, a build's workers included, sees their tasks."""
    tasks = registry().tasks
    if spec.name in tasks:
        raise MirdataError(f"task {spec.name!r} is already registered by {tasks[spec.name].source}")
    tasks[spec.name] = spec


def unregister(name: str) -> None:
    registry().tasks.pop(name, None)


def task_specs() -> dict[str, TaskSpec]:
    return registry().tasks


def task_names() -> tuple[str, ...]:
    """Every task in release order: built-ins by rank, then plugins by name."""
    return tuple(registry().tasks)


def task_spec(name: str) -> TaskSpec:
    spec = registry().tasks.get(name)
    if spec is None:
        raise MirdataError(f"unknown task {name!r}; tasks are: {', '.join(task_names())}")
    return spec


def category_of(task: str) -> str | None:
    spec = registry().tasks.get(task)
    return spec.category if spec else None


def tasks_of(category: str) -> tuple[str, ...]:
    return tuple(n for n, s in registry().tasks.items() if s.category == category)


def task_rank(task: str) -> int:
    """A task's place in the release order; a name outside it sorts after every task."""
    names = task_names()
    return names.index(task) if task in names else len(names)


def plugin_problems() -> tuple[str, ...]:
    return registry().problems


def normalize_name(name: str) -> str:
    """'Forced Perspective', 'forced-perspective' and 'forced_perspective' all become 'forced_perspective'."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def task_id(name: str) -> str | None:
    """The task id for a task name in any spelling its spec knows, or None if it names no task."""
    key = normalize_name(name)
    for spec in registry().tasks.values():
        if key == spec.name or key in spec.aliases:
            return spec.name
    return None
