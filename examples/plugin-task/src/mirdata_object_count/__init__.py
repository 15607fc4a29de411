"""object_count, a mirdata task registered from its own package.

This module is what the `mirdata.tasks` entry point names, and mirdata loads it whenever it lists its tasks, so
it only reads the spec file: the builder (mirdata_object_count.task) is imported when a build or an annotation
needs it.
"""

from pathlib import Path

from mirdata.registry import TaskSpec

SPEC = TaskSpec.from_file(Path(__file__).with_name("object_count.yaml"))
