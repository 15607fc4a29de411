"""The multi-round LLM annotator: draft each stage, check it against the facts, send the failures back.

Round 1 asks for each stage of each record on its own, from the question, the options, the answer, the facts,
the regions and that stage's template text. The checker (mirdata.annotate.check) judges every draft; a stage
with problems goes back to the model, with its own draft and the list of problems, in the next round. A stage
still failing after the last round keeps its template text: no draft that fails the checker enters a record.

All requests of a round go to the model (`mirdata.models`) as one call (concurrent HTTP requests, or padded
generation in batches), and every reply is cached on disk as it arrives.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from mirdata.annotate.cache import Messages, ResponseCache, conversation_hash
from mirdata.annotate.check import check_stages
from mirdata.models import Prompt, Runner, Sampling
from mirdata.models.local import balanced_object
from mirdata.schema.record import Record
from mirdata.schema.tasks import STAGES

SYSTEM_PROMPT = (
    "You annotate a multiple-choice question about several images with one stage of careful, step-by-step "
    "reasoning. The correct answer and the ground-truth facts are given: everything you write must agree with "
    "them. Refer to image regions only by the ids listed, in square brackets like [r0], and to the images as "
    "image 1, image 2, and so on. Write a number only when it appears in the facts, the region boxes or the "
    "question. Write complete sentences. Reply with a single JSON object and nothing else."
)

STAGE_GUIDES = {
    "summary": "a short plan: what the question asks and how the images will be compared to answer it.",
    "caption": "one caption per image, in image order: what each image shows that matters for the question.",
    "text2region": "tie each phrase of the question to its region: the region id in brackets, its image and "
                   "its box, like \"'the red car' -> [r1] in image 2, box [12, 40, 96, 88]\".",
    "region2region": "relate the regions across the images with the numbers that matter (offsets, speeds, "
                     "depths, sizes, values), citing each region as [r0], [r1], ...",
    "conclusion": "draw the conclusion from the comparison and end with \"so the answer is {answer}.\"; "
                  "name no other option letter.",
}

# Facts can hold a whole scene; past this many characters the prompt shows their start (the reference text
# already states the numbers that matter).
FACTS_BUDGET = 4000

REVISION_PROMPT = "Your {stage} has these problems:\n{problems}\nWrite it again with every problem fixed. {reply_as}"


def reply_shape(stage: str, n_images: int) -> str:
    if stage == "caption":
        items = ", ".join(f'"caption of image {k + 1}"' for k in range(n_images))
        return f'Reply with JSON only: {{"caption": [{items}]}}'
    return f'Reply with JSON only: {{"{stage}": "..."}}'


def reply_prefix(stage: str) -> str:
    """How a reply of `stage` starts (its JSON object, up to the value), for a local model to continue."""
    return f'{{"{stage}": ["' if stage == "caption" else f'{{"{stage}": "'


def first_prompt(record: Record, stage: str, reference: Any) -> Messages:
    """The round-1 conversation for one stage of one record."""
    regions = "\n".join(f"- {r.id}: image {r.image + 1}, box [{', '.join(f'{v:g}' for v in r.box)}], {r.label}"
                        for r in record.regions) or "none"
    reference_text = json.dumps(reference, ensure_ascii=False) if stage == "caption" else reference
    user = "\n".join([
        f"Task: {record.task.replace('_', ' ')} ({record.category})",
        f"Question: {record.question}",
        "Options:",
        *record.options,
        f"Correct answer: {record.answer}",
        f"Ground-truth facts (JSON): {facts_text(record.meta.get('facts', {}))}",
        "Regions:",
        regions,
        f"Reference {stage} (correct; say it in your own clear words and keep every fact, region and number):",
        str(reference_text),
        "",
        f"Write the {stage} stage: {STAGE_GUIDES[stage].format(answer=record.answer)}",
        reply_shape(stage, len(record.images)),
    ])
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def facts_text(facts: Any) -> str:
    text = json.dumps(facts, ensure_ascii=False)
    if len(text) <= FACTS_BUDGET:
        return text
    return f"{text[:FACTS_BUDGET]} ... (cut here; {len(text)} characters in all)"


def revision_prompt(conversation: Messages, reply: str, stage: str, problems: list[str], n_images: int) -> Messages:
    listed = "\n".join(f"- {p}" for p in problems)
    ask = REVISION_PROMPT.format(stage=stage, problems=listed, reply_as=reply_shape(stage, n_images))
    return [*conversation, {"role": "assistant", "content": reply}, {"role": "user", "content": ask}]


# -- reading a chatty model's reply --------------------------------------------------------------------------

_FENCE = re.compile(r"```[\w-]*\s*\n?(.*?)```", re.DOTALL)


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in `text`, tolerating code fences, prose around it, trailing commas and
    Python-style quoting. ValueError says why there is none."""
    blocks = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    cut = False
    for block in blocks:
        for start in (i for i, ch in enumerate(block) if ch == "{"):
            candidate = balanced_object(block, start)
            if candidate is None:
                cut = True
                continue
            parsed = _parse_object(candidate)
            if parsed is not None:
                return parsed
    if cut:
        raise ValueError("the reply's JSON object is cut off (a '{' is never closed)")
    raise ValueError("the reply holds no JSON object")


def _parse_object(candidate: str) -> dict[str, Any] | None:
    for attempt in (candidate, _drop_trailing_commas(candidate)):
        try:
            value = json.loads(attempt)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(attempt)  # {'summary': '...'}: a Python dict, quoted the Python way
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
        if isinstance(value, dict):
            return value
    return None


def _drop_trailing_commas(text: str) -> str:
    """Remove a ',' that only whitespace separates from a closing '}' or ']', outside strings."""
    out, in_string, escaped = [], False, False
    for i, ch in enumerate(text):
        if in_string:
            escaped = ch == "\\" and not escaped
            if ch == '"' and not escaped:
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "," and text[i + 1:].lstrip()[:1] in ("}", "]"):
            continue
        out.append(ch)
    return "".join(out)


def parse_stage_reply(reply: str, stage: str) -> tuple[Any, str | None]:
    """(the stage's value, None), or (None, why the reply gives no usable value)."""
    try:
        obj = extract_json(reply)
    except ValueError as e:
        return None, str(e)
    if stage not in obj:
        keys = ", ".join(map(repr, obj)) or "no keys"
        return None, f"the reply's JSON has no {stage!r} key (it has {keys})"
    value = obj[stage]
    if stage == "caption":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            return None, "\"caption\" must be a JSON list of strings, one per image"
        return [c.strip() for c in value], None
    if not isinstance(value, str):
        return None, f"{stage!r} must be a JSON string"
    return value.strip(), None


# -- the loop ------------------------------------------------------------------------------------------------

@dataclass
class StageDraft:
    """One stage of one record through the rounds."""

    record: Record
    stage: str
    fallback: Any  # the template text (or the record's own, when its task has no template for it)
    conversation: Messages
    prompt_hash: str
    checks: list[dict[str, Any]] = field(default_factory=list)  # per round: the problems of that round's draft
    accepted: Any = None

    def result(self, fallback_source: str) -> tuple[Any, dict[str, Any]]:
        """The text that goes into the record, and the stage's entry in meta["annotation"]["stages"]."""
        won = self.accepted is not None
        return (self.accepted if won else self.fallback), {
            "source": "llm" if won else fallback_source,
            "rounds": len(self.checks),
            "prompt_hash": self.prompt_hash,
            "checks": self.checks,
        }


class LLMAnnotator:
    def __init__(self, runner: Runner, cache: ResponseCache, rounds: int = 2, sampling: Sampling | None = None):
        self.runner = runner
        self.cache = cache
        self.rounds = rounds
        # every reply is one JSON object (SYSTEM_PROMPT): a local model stops once it has closed it
        self.sampling = replace(sampling or Sampling(), n=1, one_json_object=True)
        self.asked = 0  # requests sent to the model
        self.cached = 0  # replies read from the cache

    def draft(self, items: list[tuple[Record, dict[str, Any]]]) -> list[dict[str, StageDraft]]:
        """Run the rounds for (record, fallback stages) pairs; returns each record's drafts by stage."""
        drafts = []
        for record, fallback in items:
            per_stage = {}
            for stage in STAGES:
                conversation = first_prompt(record, stage, fallback[stage])
                per_stage[stage] = StageDraft(record, stage, fallback[stage], conversation,
                                              conversation_hash(conversation))
            drafts.append(per_stage)
        pending = [d for per_stage in drafts for d in per_stage.values()]
        for round_no in range(1, self.rounds + 1):
            if not pending:
                break
            replies = self.ask([d.conversation for d in pending], [reply_prefix(d.stage) for d in pending])
            still_failing = []
            for d, reply in zip(pending, replies):
                problems = self._judge(d, reply)
                d.checks.append({"round": round_no, "problems": problems})
                if not problems:
                    continue
                if round_no < self.rounds:
                    d.conversation = revision_prompt(d.conversation, reply, d.stage, problems, len(d.record.images))
                still_failing.append(d)
            pending = still_failing
        return drafts

    def _judge(self, d: StageDraft, reply: str) -> list[str]:
        value, why_not = parse_stage_reply(reply, d.stage)
        if why_not:
            return [why_not]
        problems = [p.problem for p in check_stages(replace(d.record, **{d.stage: value}), (d.stage,))]
        if not problems:
            d.accepted = value
        return problems

    def ask(self, conversations: list[Messages], prefixes: list[str] | None = None) -> list[str]:
        """Replies for `conversations` (starting with `prefixes`, on a local model): from the cache where there,
        else from the model (cached on arrival)."""
        keys = [ResponseCache.key(self.runner.identity, c, self.sampling) for c in conversations]
        replies: list[str | None] = [self.cache.get(k) for k in keys]
        self.cached += sum(r is not None for r in replies)
        missing = [i for i, r in enumerate(replies) if r is None]
        prompts = [Prompt.from_messages(conversations[i], prefixes[i] if prefixes else "") for i in missing]
        for j, (reply, *_) in self.runner.stream(prompts, self.sampling):
            i = missing[j]
            self.cache.put(keys[i], reply)
            replies[i] = reply
            self.asked += 1
        return replies  # type: ignore[return-value]
