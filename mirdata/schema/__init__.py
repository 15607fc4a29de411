"""The data contract: the record model, the pandera schema and its checks, the original release's format."""

from mirdata.schema.checks import RECORD_SCHEMA, Failure, check_records, stated_letters
from mirdata.schema.record import IMAGE_TOKEN, LETTERS, Record, Region, format_options, option_label, option_text
from mirdata.schema.tasks import ALL_TASKS, CATEGORIES, STAGES, TASK_CATEGORY

__all__ = ["ALL_TASKS", "CATEGORIES", "IMAGE_TOKEN", "LETTERS", "RECORD_SCHEMA", "STAGES", "TASK_CATEGORY",
           "Failure", "Record", "Region", "check_records", "format_options", "option_label", "option_text",
           "stated_letters"]
