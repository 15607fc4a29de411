"""The grounded template annotator: each task's own `reason()` re-run on a stored record.

A task's `reason` is a pure function of the record's facts, regions and answer and the task's config
(mirdata.builders.base), so replaying it makes no renderer, editor or model. A record's reasoning RNG is
`record_rng(task, seed, index, attempt, purpose=1)`, seeded from its meta, and each task's config comes from the
options of the build that made it (build.json: the image size, for one, shapes some texts), so the text is the one
the build wrote, and the same on every run.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from mirdata.builders.base import BuildOptions, Reasoning, Task, TaskConfig, record_rng, task_class, write_reasoning
from mirdata.errors import MirdataError
from mirdata.schema.record import Record
from mirdata.schema.tasks import STAGES
from mirdata.store import MIRStore

_PATH_OPTIONS = {"out", "source", "steps_csv", "editor_model"}


class TemplateUnavailable(Exception):
    """This record's task has no template text for it (no builder, or facts the builder does not know)."""


class TemplateAnnotator:
    """Template stages for records of any task. No task is set up: each task's `reason` is a classmethod."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.builds = MIRStore(root).build_info().get("builds") or []
        self._tasks: dict[str, tuple[type[Task], TaskConfig]] = {}

    def stages(self, record: Record) -> dict[str, Any]:
        """The five template stages of `record` by name, or TemplateUnavailable saying why there are none."""
        meta = record.meta
        if "facts" not in meta or "seed" not in meta or "index" not in meta:
            raise TemplateUnavailable("meta has no facts, seed and index to write templates from")
        task, config = self._task(record.task)
        rng = record_rng(record.task, int(meta["seed"]), int(meta["index"]), int(meta.get("attempt", 0)), purpose=1)
        try:
            reasoning = write_reasoning(task, record, config, rng)
        except Exception as e:  # facts of another shape (an imported or hand-made record) fail in many ways
            raise TemplateUnavailable(f"{record.task} templates do not fit this record's facts "
                                      f"({type(e).__name__}: {e})") from e
        return reasoning_stages(reasoning)

    def _task(self, name: str) -> tuple[type[Task], TaskConfig]:
        """The task's class (nothing is set up) and the config of the build that made its records."""
        if name not in self._tasks:
            try:
                cls = task_class(name)
                self._tasks[name] = (cls, cls.Config.from_options(self.build_options(name)))
            except (ImportError, AttributeError, KeyError, TypeError, MirdataError) as e:
                raise TemplateUnavailable(f"no builder for task {name!r} ({e})") from e
        return self._tasks[name]

    def build_options(self, task: str) -> BuildOptions:
        """The options of the latest build in build.json that made `task` (the defaults when none did)."""
        stored = next((b.get("options") or {} for b in reversed(self.builds) if task in b.get("tasks", [])), {})
        known = {f.name for f in fields(BuildOptions)}
        values = {k: v for k, v in stored.items() if k in known}
        for k in _PATH_OPTIONS & values.keys():
            values[k] = None if values[k] is None else Path(values[k])
        if "image_size" in values:
            values["image_size"] = tuple(values["image_size"])
        values["out"] = self.root  # the folder may have moved since it was built
        return BuildOptions(**values)


def reasoning_stages(reasoning: Reasoning) -> dict[str, Any]:
    return {stage: getattr(reasoning, stage) for stage in STAGES}
