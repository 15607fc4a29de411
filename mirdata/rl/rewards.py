"""Rewards for reinforcement learning on MIR, in TRL's form `f(completions, **columns) -> list[float]`.

`completions` are strings, or chat-message lists as TRL passes them for conversational prompts (the assistant's
text is read). The dataset's columns arrive as keyword lists, one entry per completion: `answer` (the letter),
`options` (`"A. …"` strings) and `regions` (`{id, image, box, label}` dicts, `image` 0-based as in the record).
Every function returns one float per completion, never raises on any text, and returns None (TRL leaves the
sample out of that reward) where the reward does not apply: a record with no regions has no grounding to score.

* `accuracy_reward`: 1 when the letter stated in the completion's last `<conclusion>` section is the answer, else
  0. The letter is read by `mirdata.inference.extract`, so a conclusion that names no option, or hedges between
  two, scores 0; so does a completion with no `<conclusion>`.
* `format_reward`: the share of the five steps (`<summary>…</summary>` … `<conclusion>…</conclusion>`, as
  `curriculum-train` teaches them) that the completion writes as non-empty tagged sections in chain order: the
  longest run of steps in chain order, over 5. All five in order score 1; `<summary>` then `<conclusion>` scores
  0.4; the five in reverse order score 0.2.
* `region_reward` and `image_reward`: the two scores of `mirdata.inference.grounding` (the same ones `evaluate
  --grounding` reports): the cited boxes matched one-to-one to the true regions by IoU, and the share of cited
  boxes stated in the right image. Citing exactly the true boxes in their images scores 1 on both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from mirdata.inference.extract import extract_answer
from mirdata.inference.grounding import grounding
from mirdata.schema.chain import CHAIN, parse_chain


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as it is, a chat-message list as its assistant turns' text."""
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, (list, tuple)):
        return ""
    texts = []
    for message in completion:
        if not isinstance(message, dict) or message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, (list, tuple)):
            texts.extend(p["text"] for p in content
                         if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
    return "\n".join(texts)


_CONCLUSION = re.compile(r"<conclusion>(.*?)</conclusion>", re.S | re.I)


def stated_letter(text: str, options: Sequence[str]) -> str | None:
    """The option letter the last `<conclusion>…</conclusion>` of `text` states, or None."""
    sections = _CONCLUSION.findall(text)
    return extract_answer(sections[-1], list(options)) if sections else None


def chain_order_score(text: str) -> float:
    """The format reward of one text: the longest run of the five steps in chain order, over 5."""
    steps = [CHAIN.index(step) for step, body in parse_chain(text).items() if body]
    longest: list[int] = []  # longest[k]: length of the longest in-order run ending at steps[k]
    for k, position in enumerate(steps):
        longest.append(1 + max((longest[j] for j in range(k) if steps[j] < position), default=0))
    return max(longest, default=0) / len(CHAIN)


# -- the rewards, in TRL's form ----------------------------------------------------------------------------

def accuracy_reward(completions: list[Any], answer: list[str], options: list[Sequence[str]],
                    **_: Any) -> list[float]:
    return [float(stated_letter(completion_text(c), opts) == ans)
            for c, ans, opts in zip(completions, answer, options)]


def format_reward(completions: list[Any], **_: Any) -> list[float]:
    return [chain_order_score(completion_text(c)) for c in completions]


def region_reward(completions: list[Any], regions: list[Sequence[Any]], **_: Any) -> list[float | None]:
    return [_score(completion_text(c), truth, "region") for c, truth in zip(completions, regions)]


def image_reward(completions: list[Any], regions: list[Sequence[Any]], **_: Any) -> list[float | None]:
    return [_score(completion_text(c), truth, "image") for c, truth in zip(completions, regions)]


def _score(text: str, regions: Sequence[Any], which: str) -> float | None:
    result = grounding(text, regions or [])
    return None if result is None else getattr(result, which)


RewardFunction = Callable[..., list]

# The names `--rewards` takes, in the order the defaults list them.
REWARDS: dict[str, RewardFunction] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "region": region_reward,
    "image": image_reward,
}
