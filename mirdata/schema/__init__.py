"""The data contract: the record model, the pandera schema and its checks, the original release's format.

Names are imported on first use, so `mirdata.schema.tasks` and `mirdata.schema.record` stay light: build
workers and the CLI's start-up do not pay for pandas and pandera until something validates.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RECORD_SCHEMA": "checks", "Failure": "checks", "check_records": "checks", "stated_letters": "checks",
    "IMAGE_TOKEN": "record", "LETTERS": "record", "Record": "record", "Region": "record",
    "format_options": "record", "option_label": "record", "option_text": "record",
    "STAGES": "tasks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
