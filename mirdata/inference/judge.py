"""An optional LLM judge for the responses the rules in `extract` cannot read.

The judge sees the options and the response (never the correct answer) and must reply with one option letter
or NONE; anything else counts as NONE, so the judge cannot smuggle a guess in either.
"""

from __future__ import annotations

import re

from mirdata.inference.prompt import text_prompt
from mirdata.models import Runner, Sampling, prompt_seed
from mirdata.schema.record import LETTERS, option_label

JUDGE_TEMPLATE = """A model answered a multiple-choice question. Decide which option its response chose.

Options:
{options}

Response:
\"\"\"
{response}
\"\"\"

Reply with only the letter of the option the response chose as its final answer. If the response does not \
clearly choose exactly one of these options, reply NONE."""

# Only the end of a long response matters for its final answer.
MAX_RESPONSE_CHARS = 4000
_REPLY = re.compile(r"^[\s*_`\"'(\[]*([A-Za-z]+)[\s*_`\"'.)\]]*$")


def parse_judge_reply(reply: str, options: list[str]) -> str | None:
    """The option letter of a judge reply that is exactly one letter (NONE and anything else: None)."""
    m = _REPLY.match(reply or "")
    if not m or len(m.group(1)) != 1:
        return None
    letter = m.group(1).upper()
    letters = [option_label(o) or LETTERS[i] for i, o in enumerate(options)]
    return letter if letter in letters else None


class Judge:
    """Reads unparsed responses with an LLM through any runner, greedily, in batches."""

    def __init__(self, runner: Runner, batch_size: int = 16, max_new_tokens: int = 8):
        self.runner = runner
        self.batch_size = batch_size
        self.sampling = Sampling(n=1, temperature=0.0, max_new_tokens=max_new_tokens)

    @property
    def name(self) -> str:
        return f"{self.runner.backend}:{self.runner.model}"

    def choose(self, items: list[tuple[str, list[str]]]) -> list[str | None]:
        """For each (response, options): the letter the judge reads, or None."""
        out: list[str | None] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            prompts = [text_prompt(JUDGE_TEMPLATE.format(options="\n".join(opts),
                                                         response=response[-MAX_RESPONSE_CHARS:]))
                       for response, opts in batch]
            seeds = [prompt_seed(0, p.text) for p in prompts]
            replies = self.runner.generate(prompts, self.sampling, seeds)
            out.extend(parse_judge_reply(r[0], opts) for r, (_, opts) in zip(replies, batch))
        return out


def read_answers(items: list[tuple[str, list[str]]], judge: Judge | None = None) -> list[str | None]:
    """The option letter of each (response, options) by the rules, then by the judge for what they leave."""
    from mirdata.inference.extract import extract_answer

    answers = [extract_answer(response, options) for response, options in items]
    if judge is not None:
        left = [i for i, a in enumerate(answers) if a is None and items[i][0].strip()]
        for i, letter in zip(left, judge.choose([items[i] for i in left])):
            answers[i] = letter
    return answers
