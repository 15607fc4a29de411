"""The reasoning chain as one text: how a record's five steps are written, asked for and read back.

Every step is wrapped in its tag (`<summary>…</summary>` … `<conclusion>…</conclusion>`), in chain order; captions
are one line per image (`Image 1: …`). `parse_chain` splits a model's answer back into its steps. A prompt that gives
some steps and asks for the others (`chain_prompt`) names what to write in words, never by tag, so a model's input
holds no step of its target. The curriculum's stages, the `chain` prompt of `predict` and `difficulty`, and the
rewards of `rl-train` all use this one format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mirdata.schema.record import Record
from mirdata.schema.tasks import STAGES as CHAIN

# What each step asks for, in words: a prompt lists the steps it asks for this way.
STEP_REQUESTS = {
    "summary": "a short summary of what the question asks",
    "caption": "a caption for each image",
    "text2region": "which image regions the question's words refer to",
    "region2region": "how those regions relate across the images",
    "conclusion": "a conclusion that states the answer letter",
}


def step_text(record: Record, step: str) -> str:
    if step == "caption":
        return "\n".join(f"Image {k + 1}: {caption}" for k, caption in enumerate(record.caption))
    return getattr(record, step)


def tagged(record: Record, steps: Sequence[str]) -> str:
    """The record's `steps`, each wrapped in its tag, one after the other."""
    return "\n".join(f"<{step}>{step_text(record, step)}</{step}>" for step in steps)


def chain_prompt(record: Record, given: Sequence[str], asked: Sequence[str]) -> str:
    """The question and options, the `given` steps tagged, and a request for the `asked` steps in words."""
    parts = [record.question, "Options:\n" + "\n".join(record.options)]
    if given:
        parts.append(tagged(record, given))
    opening = "Continue the reasoning with" if given else "Answer with"
    parts.append(f"{opening} {_join_words([STEP_REQUESTS[s] for s in asked])}.")
    return "\n".join(parts)


def _join_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


_TAG_RE = re.compile(r"<(" + "|".join(CHAIN) + r")>(.*?)</\1>", re.S)


def parse_chain(text: str) -> dict[str, str]:
    """The tagged steps of a model's answer: {"summary": ..., "conclusion": ...}; the last one wins if repeated."""
    return {m.group(1): m.group(2).strip() for m in _TAG_RE.finditer(text)}
