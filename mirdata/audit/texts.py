"""What a blind guesser may see of one task: the question texts and the option texts, nothing else.

`TaskTexts` holds them as padded arrays (records × the most options), computes the option heuristics once
as *credit matrices* and the features of the logistic regression once as a matrix. A credit matrix gives each
option the share of a point the heuristic earns if that option is the answer: 1 for its pick, 1/m to each of
m tied picks (the expected score of breaking the tie at random, so no tie is ever broken by letter), 1/k to
every option when it abstains. A heuristic's accuracy for any answer vector is then a gather and a mean,
which is what lets the permutation test rescore thousands of answer vectors at numpy speed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, HashingVectorizer

from mirdata.schema.record import IMAGE_TOKEN

# The option heuristics, in the order the selection breaks ties (simplest first).
HEURISTICS = ("longest", "shortest", "question_overlap", "edit_centre", "fewest_swaps")

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# What separates the items of an ordering: "3, 1, 2", "Wool > Soap > Rice", "row 1: 3, 1; row 2: 2, 4", "a → b".
_ORDER_SEPARATOR = re.compile(r"\s*(?:,|;|:|>|<|→|->|←|\bthen\b)\s*")
HASHED_WORDS = 24


def normalise(text: str) -> str:
    """Case and spacing folded: the same option text written twice is one text."""
    return " ".join(text.lower().split())


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower().replace(IMAGE_TOKEN, " ")) if w not in ENGLISH_STOP_WORDS}


def ordering_items(text: str) -> list[str] | None:
    """The items of an option that lists an order, or None when it does not list two or more."""
    items = [s for s in _ORDER_SEPARATOR.split(normalise(text)) if s]
    return items if len(items) >= 2 else None


def swap_distance(a: list[str], b: list[str]) -> int:
    """The fewest exchanges of two items that turn ordering `a` into ordering `b` (the Cayley distance):
    the length minus the number of cycles of the permutation between them. Repeated items pair up in order."""
    slots: dict[str, list[int]] = {}
    for pos, item in enumerate(b):
        slots.setdefault(item, []).append(pos)
    perm = [slots[item].pop(0) for item in a]
    seen = [False] * len(perm)
    cycles = 0
    for start in range(len(perm)):
        if not seen[start]:
            cycles += 1
            j = start
            while not seen[j]:
                seen[j] = True
                j = perm[j]
    return len(perm) - cycles


def credit_from_scores(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Credit matrix of "pick the highest score": the tied best options share the point."""
    masked = np.where(valid, scores, -np.inf)
    best = masked.max(axis=1, keepdims=True)
    picked = valid & np.isclose(masked, best, rtol=1e-9, atol=1e-12)
    return picked / picked.sum(axis=1, keepdims=True)


@dataclass
class TaskTexts:
    """One task's questions and option texts, padded to the most options of any record."""

    questions: list[str]
    options: list[list[str]]
    n_options: np.ndarray = field(init=False)  # k per record
    valid: np.ndarray = field(init=False)  # (records, max k): the option exists
    text_ids: np.ndarray = field(init=False)  # (records, max k): id of the normalised option text, -1 padding
    texts: list[str] = field(init=False)  # normalised option text per id

    def __post_init__(self) -> None:
        self.n_options = np.array([len(o) for o in self.options])
        width = int(self.n_options.max())
        self.valid = np.arange(width)[None, :] < self.n_options[:, None]
        ids: dict[str, int] = {}
        self.text_ids = np.full(self.valid.shape, -1)
        for i, opts in enumerate(self.options):
            for j, text in enumerate(opts):
                self.text_ids[i, j] = ids.setdefault(normalise(text), len(ids))
        self.texts = list(ids)

    @property
    def n(self) -> int:
        return len(self.questions)

    def _per_option(self, values: list[list[float]], fill: float = 0.0) -> np.ndarray:
        out = np.full(self.valid.shape, fill, dtype=float)
        for i, row in enumerate(values):
            out[i, : len(row)] = row
        return out

    # -- raw per-option measurements -------------------------------------------------------------------

    def lengths(self) -> np.ndarray:
        return self._per_option([[len(normalise(t)) for t in opts] for opts in self.options])

    def word_counts(self) -> np.ndarray:
        return self._per_option([[len(t.split()) for t in opts] for opts in self.options])

    def question_overlap(self) -> np.ndarray:
        rows = []
        for q, opts in zip(self.questions, self.options):
            words = content_words(q)
            rows.append([len(content_words(t) & words) for t in opts])
        return self._per_option(rows)

    def edit_distance(self) -> np.ndarray:
        """Mean normalised edit distance of each option to the record's other options."""
        rows = []
        for opts in self.options:
            d = cdist([normalise(t) for t in opts], [normalise(t) for t in opts],
                      scorer=Levenshtein.normalized_distance)
            rows.append((d.sum(axis=1) / max(len(opts) - 1, 1)).tolist())
        return self._per_option(rows)

    def swap_distance(self) -> tuple[np.ndarray, np.ndarray]:
        """Summed swap distance of each ordering option to the record's other orderings, and where that applies:
        options listing the same items as most of the record's options, in records with three or more of them
        (with two, each is as far from the other as the other from it)."""
        total = np.zeros(self.valid.shape)
        applies = np.zeros(self.valid.shape, dtype=bool)
        for i, opts in enumerate(self.options):
            items = [ordering_items(t) for t in opts]
            keys = Counter(tuple(sorted(it)) for it in items if it)
            if not keys:
                continue
            key, count = keys.most_common(1)[0]
            members = [j for j, it in enumerate(items) if it and tuple(sorted(it)) == key]
            if count < 3:
                continue
            for j in members:
                total[i, j] = sum(swap_distance(items[j], items[m]) for m in members if m != j)
                applies[i, j] = True
        return total, applies

    # -- the heuristics as credit matrices ---------------------------------------------------------------

    def heuristic_credits(self) -> dict[str, np.ndarray]:
        lengths = self.lengths()
        swaps, orderings = self.swap_distance()
        in_ordering = orderings.any(axis=1, keepdims=True)
        # fewest swaps chooses among the orderings; a record without orderings leaves every option tied
        swap_valid = np.where(in_ordering, orderings, self.valid)
        return {
            "longest": credit_from_scores(lengths, self.valid),
            "shortest": credit_from_scores(-lengths, self.valid),
            "question_overlap": credit_from_scores(self.question_overlap(), self.valid),
            "edit_centre": credit_from_scores(-self.edit_distance(), self.valid),
            "fewest_swaps": credit_from_scores(np.where(in_ordering, -swaps, 0.0), swap_valid),
        }

    # -- features of the logistic regression --------------------------------------------------------------

    def features(self, credits: dict[str, np.ndarray]) -> np.ndarray:
        """(records, max k, features): option-text features and question × option features, each standardised
        over the task's options (labels play no part, so using every record here peeks at no answer)."""
        lengths, words = self.lengths(), self.word_counts()
        overlap, edit = self.question_overlap(), self.edit_distance()
        swaps, orderings = self.swap_distance()
        final_question = [q.rsplit(IMAGE_TOKEN, 1)[-1] for q in self.questions]
        asked = self._per_option([[len(content_words(t) & content_words(fq)) for t in opts]
                                  for fq, opts in zip(final_question, self.options)])
        numbers = self._numbers()
        columns = [
            _within_record(lengths, self.valid), _within_record(words, self.valid),
            _within_record(overlap, self.valid), _within_record(asked, self.valid),
            _within_record(-edit, self.valid), _within_record(np.where(orderings, -swaps, 0.0), self.valid),
            overlap, asked, orderings.astype(float), *(credits[h] for h in HEURISTICS),
            np.isfinite(numbers).astype(float), _numeric_rank(numbers, self.valid), _round_partner(numbers),
        ]
        hashed = HashingVectorizer(n_features=HASHED_WORDS, alternate_sign=False, binary=True, norm=None,
                                   ngram_range=(1, 2))
        flat = [t for opts in self.options for t in opts]
        words_matrix = hashed.transform(flat).toarray()
        per_option = np.zeros((*self.valid.shape, HASHED_WORDS))
        per_option[self.valid] = words_matrix  # row-major order of valid options = order of `flat`
        x = np.concatenate([np.stack(columns, axis=-1), per_option], axis=-1)
        on = x[self.valid]
        mean, std = on.mean(axis=0), on.std(axis=0)
        x = (x - mean) / np.where(std > 0, std, 1.0)
        x[~self.valid] = 0.0
        return x

    def _numbers(self) -> np.ndarray:
        rows = []
        for opts in self.options:
            found = [_NUMBER.search(t.replace(",", "")) for t in opts]
            rows.append([float(m.group()) if m else np.nan for m in found])
        return self._per_option(rows, fill=np.nan)


def _within_record(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Values centred and scaled within each record: what distinguishes an option from its neighbours."""
    count = valid.sum(axis=1, keepdims=True)
    mean = np.where(valid, values, 0.0).sum(axis=1, keepdims=True) / count
    spread = np.sqrt(np.where(valid, (values - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    return np.where(valid, (values - mean) / np.where(spread > 0, spread, 1.0), 0.0)


def _numeric_rank(numbers: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rank of an option's number among the record's numeric options, scaled to [0, 1]; 0.5 when not numeric."""
    filled = np.where(np.isfinite(numbers) & valid, numbers, np.inf)
    ranks = filled.argsort(axis=1).argsort(axis=1).astype(float)
    counted = np.isfinite(filled).sum(axis=1, keepdims=True)
    scaled = ranks / np.maximum(counted - 1, 1)
    return np.where(np.isfinite(filled), scaled, 0.5)


def _round_partner(numbers: np.ndarray) -> np.ndarray:
    """1 where the option's number and another option's add up to a round total (a multiple of 10)."""
    total = numbers[:, :, None] + numbers[:, None, :]
    width = numbers.shape[1]
    off_diagonal = ~np.eye(width, dtype=bool)[None]
    with np.errstate(invalid="ignore"):
        round_total = np.isfinite(total) & (np.abs(total / 10 - np.round(total / 10)) < 1e-9) & (np.abs(total) >= 10)
    return (round_total & off_diagonal).any(axis=2).astype(float)
