"""Builders: one module per category, one small class per task (see base.py for the interface)."""

from mirdata.builders.base import BuildOptions, Reasoning, Sample, Task, run_build
from mirdata.builders.options import place_answer

__all__ = ["BuildOptions", "Reasoning", "Sample", "Task", "place_answer", "run_build"]
