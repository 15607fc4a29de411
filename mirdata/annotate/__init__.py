"""The five reasoning stages: grounded templates, multi-round LLM drafting, and the checker that judges both."""

from mirdata.annotate.check import Problem, check_stages
from mirdata.annotate.runner import ANNOTATORS, annotate_dir

__all__ = ["ANNOTATORS", "Problem", "annotate_dir", "check_stages"]
