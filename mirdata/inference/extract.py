"""Which option a model's free-text response chose, or None when that is not clear. Never a guess.

Evidence is read in tiers, strongest first; the first tier with any evidence decides, and only when all of its
evidence names the same option (a tier that names two options, or a letter that is not an option, gives None):

1. the format the prompt asks for, "Your option: X", and \\boxed{X};
2. answer statements: "the answer is X", "Answer: X.", "correct option: (X)", "I choose X", "X is correct";
3. mentions of a single option: "(X)", "option X", unless their clause negates them ("(A) is wrong");
4. a bare label: the response is just "X" / "(x)" / "X." or its last line is, or a line reads "X. <text>";
5. an option's text alone: the response (or its last line) is exactly one option's text.

Letters are read in any case, but a lowercase letter only counts when nothing word-like follows it, so "the
answer is a bit unclear" names no option. When the response has a <conclusion>...</conclusion> section (the
MIR reasoning format) it is read first; the whole response only when the conclusion gives no answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mirdata.schema.record import LETTERS, option_label, option_text

_CONCLUSION = re.compile(r"<conclusion>(.*?)(?:</conclusion>|$)", re.I | re.S)

# Markers after which an answer phrase follows (rest of the line, or the next line when the marker ends one).
_TIER1 = [
    re.compile(r"\byour\s+(?:final\s+)?(?:option|answer|choice)\s*(?:is|:|=|-)\s*", re.I),
]
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_TIER2 = [
    re.compile(r"\b(?:final|correct|right|best|most\s+likely|the|my)?\s*(?:answer|option|choice)\s*"
               r"(?:would\s+be|should\s+be|must\s+be|is|:|=|-)\s*", re.I),
    re.compile(r"\b(?:answer|option|choice)\s*(?:is\s*)?:?\s*(?=\()", re.I),
    re.compile(r"\bI(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|pick|select|go\s+with)\s+", re.I),
    re.compile(r"答案\s*(?:是|为|:)?\s*"),
]
# "B is correct", "(b) is the right answer": the letter comes before the marker.
_LETTER_FIRST = re.compile(r"(?:\(([A-Za-z])\)|\b([A-Z])\b)\s+is\s+(?:the\s+)?(?:correct|right|best|answer)\b")
_TIER3 = [
    re.compile(r"\(([A-Za-z])\)"),
    re.compile(r"\b(?:option|choice)\s+([A-Za-z])\b", re.I),
]
_NEGATION = re.compile(r"\b(?:not|no|never|incorrect|wrong|false|eliminat\w*|rule[sd]?\s+out|except)\b|n't", re.I)
_CLAUSE_END = re.compile(r"[.;!?\n]")

# A letter is a whole answer when one of these (or the end) follows it.
_AFTER_LETTER = r"(?=\s*(?:$|[.,;:!?)\]}'\"*]|\n))"
_LABEL = re.compile(r"^\(?\s*([A-Za-z])\s*[.):]\s+(\S.*)$", re.S)
_LETTER_ONLY = re.compile(r"^[\(\[]?\s*([A-Za-z])\s*[\)\]]?" + _AFTER_LETTER)
_UPPER_THEN_WORD = re.compile(r"^[\(\[]?\s*([A-Z])\s*[\)\]]?(?=\s)")
_BARE = re.compile(r"^[\(\[]?\s*([A-Za-z])\s*[\)\]]?\s*[.:]?\s*$")
_LEAD_WORDS = re.compile(r"^(?:option|choice|letter)\s+", re.I)
_TRIM = " \t\r\n\"'`*_.,;:!?()[]{}<>"


def _normalise(text: str) -> str:
    text = text.replace("：", ":").replace("（", "(").replace("）", ")")
    text = re.sub(r"\*\*|__|`", "", text)  # markdown emphasis and code marks around answers
    text = re.sub(r"\\(?:text|mathrm|textbf)\s*\{([^{}]*)\}", r"\1", text)
    return text


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip(_TRIM)).casefold()


class _Options:
    def __init__(self, options: list[str]):
        self.letters = [option_label(o) or LETTERS[i] for i, o in enumerate(options)]
        self.by_text: dict[str, str] = {}
        for letter, o in zip(self.letters, options):
            self.by_text.setdefault(_key(option_text(o)), letter)

    def letter(self, found: str) -> str:
        """The option letter, or "?" for a letter that is no option (it still counts as an answer given)."""
        up = found.upper()
        return up if up in self.letters else "?"

    def by_exact_text(self, text: str) -> str | None:
        key = _key(text)
        return self.by_text.get(key) if key else None

    def by_text_prefix(self, text: str) -> str | None:
        """The option whose text the phrase starts with (the longest such text), followed by a word boundary."""
        key = _key(text)
        matches = [t for t in self.by_text if key.startswith(t) and (len(key) == len(t) or not key[len(t)].isalnum())]
        return self.by_text[max(matches, key=len)] if matches else None


def _phrase_answer(phrase: str, opts: _Options) -> str | None:
    """The option an answer phrase names ("B", "(b).", "B. the red car", "the red car", "option C")."""
    line = phrase.strip().split("\n", 1)[0].strip().lstrip("*_\"' ")
    line = _LEAD_WORDS.sub("", line)
    if not line:
        return None
    # an option's whole text first: with options "A red car"/"A blue car", "A blue car" is option B
    exact = opts.by_exact_text(line)
    if exact:
        return exact
    label = _LABEL.match(line)
    if label:
        letter = opts.letter(label.group(1))
        rest = label.group(2)
        other = opts.by_exact_text(rest) or opts.by_text_prefix(rest)
        if other is not None and other != letter:
            return "?"  # "B. <the text of option A>" contradicts itself
        if letter != "?" or label.group(1).isupper():
            return letter
    m = _LETTER_ONLY.match(line) or _UPPER_THEN_WORD.match(line)
    if m:
        return opts.letter(m.group(1))
    return opts.by_text_prefix(line)


def _phrases_after(patterns: Iterable[re.Pattern[str]], text: str) -> list[str]:
    out = []
    for pattern in patterns:
        for m in pattern.finditer(text):
            rest = text[m.end():]
            if rest.startswith("\n"):
                rest = rest.lstrip("\n")
            out.append(rest.split("\n", 1)[0])
    return out


def _negated(text: str, start: int, end: int) -> bool:
    lo = max((m.end() for m in _CLAUSE_END.finditer(text, 0, start)), default=0)
    nxt = _CLAUSE_END.search(text, end)
    hi = nxt.start() if nxt else len(text)
    return bool(_NEGATION.search(text[lo:hi]))


def _decide(found: list[str | None]) -> tuple[bool, str | None]:
    """(has evidence, letter): evidence that all names one option gives it; conflicting evidence gives None."""
    named = {f for f in found if f is not None}
    if not named:
        return False, None
    if len(named) == 1 and "?" not in named:
        return True, named.pop()
    return True, None


def _tiers(text: str, opts: _Options) -> Iterable[list[str | None]]:
    yield ([_phrase_answer(p, opts) for p in _phrases_after(_TIER1, text)]
           + [_phrase_answer(m.group(1), opts) for m in _BOXED.finditer(text)])
    tier2 = [_phrase_answer(p, opts) for p in _phrases_after(_TIER2, text)]
    tier2 += [opts.letter(m.group(1) or m.group(2)) for m in _LETTER_FIRST.finditer(text)]
    yield tier2
    tier3: list[str | None] = []
    for pattern in _TIER3:
        for m in pattern.finditer(text):
            letter = m.group(1)
            if letter.islower() and pattern is not _TIER3[0] and not re.match(_AFTER_LETTER, text[m.end():]):
                continue  # "option a bit" is no option
            if opts.letter(letter) != "?" and not _negated(text, m.start(), m.end()):
                tier3.append(opts.letter(letter))
    yield tier3
    lines = [ln.strip() for ln in text.strip().split("\n") if ln.strip()]
    if not lines:
        return
    tier4: list[str | None] = []
    whole = _BARE.match(text.strip()) or _BARE.match(lines[-1])
    if whole:
        tier4.append(opts.letter(whole.group(1)))
    # a line opening with a label ("B. the second image"); several such lines are a list, not an answer
    for line in lines:
        label = _LABEL.match(line)
        if label and (label.group(1).isupper() or opts.letter(label.group(1)) != "?") and not _negated(line, 0, 0):
            tier4.append(_phrase_answer(line, opts))
    yield tier4
    yield [opts.by_exact_text(text), opts.by_exact_text(lines[-1])]


def extract_answer(response: str | None, options: list[str]) -> str | None:
    """The letter of the option `response` chose, or None when no tier names exactly one option."""
    if not response or not response.strip():
        return None
    opts = _Options(options)
    text = _normalise(response)
    sections = [m.group(1) for m in _CONCLUSION.finditer(text)]
    candidates = ([sections[-1]] if sections else []) + [text]
    for candidate in candidates:
        for evidence in _tiers(candidate, opts):
            has_evidence, letter = _decide(evidence)
            if has_evidence:
                return letter
    return None
