"""The option engine: the one way builders make answer options, so that no task builds a text shortcut by accident.

A text-only guesser sees the question and the option texts. Whatever it can read from them must say nothing about
which option is right. So:

* **Positions.** The correct option's letter comes from a hashed permutation over runs of consecutive indices,
  keyed by (task, seed, number of options): exactly balanced over a build, and different for every task and seed,
  so the letter cannot be predicted from the record id.
* **Orderings.** Distractors are uniformly random permutations of the same items, never neighbours of the answer
  (one swap, the reversal): the answer is then no "centre" of the options.
* **Numbers.** The answer's rank among the options is uniform (smallest, largest, in between at their fair share),
  the gaps are jittered, every value has the same format, and no two options add up to a total the caller names.
* **Categories.** `balanced_index` picks which category is right so that each is right at its fair share over a
  build; a special option ("Cannot be determined", "none") offered among k options is right at 1/k.
* **Texts.** Options of one question are of comparable length (`comparable_lengths`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import permutations
from math import factorial
from typing import Any, TypeVar

import numpy as np

from mirdata.schema.record import LETTERS, format_options

T = TypeVar("T")


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One of `items`, drawn by `rng`."""
    return items[int(rng.integers(len(items)))]


@dataclass(frozen=True)
class Slot:
    """Where a record sits in a build: what balanced choices are keyed on (never the record's own RNG)."""

    task: str
    seed: int
    index: int


def balanced_index(slot: Slot, n: int, stream: str) -> int:
    """A choice among `n` for this record: over each run of `n` consecutive indices every choice comes once.

    The order inside a run is a permutation hashed from (stream, task, seed, n, run), so two streams, two tasks or
    two seeds give unrelated orders, and no choice follows `index mod n`.
    """
    if n < 1:
        raise ValueError("balanced_index needs n >= 1")
    run = np.random.default_rng([zlib.crc32(stream.encode()), zlib.crc32(slot.task.encode()), slot.seed % (1 << 32),
                                 n, slot.index // n])
    return int(run.permutation(n)[slot.index % n])


def answer_position(slot: Slot, n_options: int) -> int:
    """The 0-based position of the correct option of the record at `slot` with `n_options` options."""
    return balanced_index(slot, n_options, "answer position")


def place_answer(correct: str, distractors: list[str], slot: Slot, rng: np.random.Generator) -> tuple[list[str], str]:
    """Options with the correct text at `answer_position`; returns the "A. ..." labels and the letter.

    `distractors` are all the other options, special ones such as "Cannot be determined" included: they are
    shuffled by `rng`, so no option keeps a fixed place. Duplicate texts are a builder bug.
    """
    texts = list(distractors)
    if correct in texts or len(set(texts)) != len(texts):
        raise ValueError(f"duplicate option texts: {correct!r} vs {distractors!r}")
    rng.shuffle(texts)
    position = answer_position(slot, len(texts) + 1)
    texts.insert(position, correct)
    return format_options(texts), LETTERS[position]


def distinct_distractors(correct: str, candidates: Iterable[str], count: int) -> list[str]:
    """The first `count` different candidates that are not `correct`, in order.

    `candidates` is read lazily, so a generator of random draws is consumed only as far as needed.
    """
    picked: list[str] = []
    for text in candidates:
        if text != correct and text not in picked:
            picked.append(text)
            if len(picked) == count:
                break
    return picked


def ordering_distractors(correct: Sequence[T], rng: np.random.Generator, count: int) -> list[tuple[T, ...]]:
    """`count` different orders of `correct`'s items, each drawn uniformly from all the other orders.

    Uniform draws make the answer no closer to the distractors than they are to each other, so neither the option
    "most similar to all the others" nor the one "fewest swaps from all the others" finds it.
    """
    items, answer = list(correct), tuple(correct)
    if len(set(items)) != len(items):
        raise ValueError(f"ordering items must be distinct: {items!r}")
    if factorial(len(items)) - 1 < count:
        raise ValueError(f"{len(items)} items have fewer than {count} other orders")
    if len(items) <= 5:  # small: draw from the full list of other orders
        others = [p for p in permutations(answer) if p != answer]
        return [others[k] for k in rng.choice(len(others), size=count, replace=False)]
    picked: list[tuple[T, ...]] = []
    while len(picked) < count:
        order = tuple(items[k] for k in rng.permutation(len(items)))
        if order != answer and order not in picked:
            picked.append(order)
    return picked


def number_options(value: float, rng: np.random.Generator, count: int, step: float,
                   fmt: Callable[[float], str] = str, quantum: float | None = None, low: float | None = None,
                   high: float | None = None, avoid_totals: Iterable[float] = ()) -> list[str]:
    """`count` distractor texts for the number `value`, on both sides of it.

    The answer's rank among all `count + 1` values is uniform among the ranks the bounds allow; neighbouring
    values are `step` to `2 * step` apart (jittered, so no gap pattern marks the answer); every text comes from
    `fmt`, so all share one format and rounding; with `quantum`, values are first snapped to its multiples (the
    precision `fmt` shows), and the checks below apply to the snapped values. No two of the values (the answer's included) add up to one of
    `avoid_totals`, and no text repeats. Raises ValueError when the bounds leave no room.
    """
    totals = [float(t) for t in avoid_totals]
    n = count + 1
    answer_text = fmt(value)
    # Ranks the bounds allow even with the narrowest gaps.
    ranks = [r for r in range(n) if (low is None or value - r * step >= low)
             and (high is None or value + (n - 1 - r) * step <= high)]
    for _ in range(200):
        if not ranks:
            break
        rank = ranks[int(rng.integers(len(ranks)))]
        gaps = step * (1 + rng.random(n - 1))
        values = value + np.concatenate([-np.cumsum(gaps[:rank])[::-1], [0.0], np.cumsum(gaps[rank:])])
        if quantum:
            values = np.round(values / quantum) * quantum
            values[rank] = value
        if low is not None and values.min() < low or high is not None and values.max() > high:
            continue
        texts = [fmt(float(v)) for v in values]
        if len(set(texts)) != n or answer_text not in texts:
            continue
        tolerance = (quantum or 0) / 2 + 1e-9 * max(1.0, abs(value))
        if any(abs(a + b - t) <= tolerance for t in totals
               for i, a in enumerate(values) for b in values[i + 1:]):
            continue
        return [t for t in texts if t != answer_text]
    raise ValueError(f"no {count} distinct options around {answer_text} with step {step} in [{low}, {high}]")


def special_is_answer(slot: Slot, n_options: int, stream: str = "special option") -> bool:
    """Whether a special option ("Cannot be determined", "none of them") offered among `n_options` options is the
    answer of this record: exactly one record in each run of `n_options` indices, so it is right at its share."""
    return balanced_index(slot, n_options, stream) == 0


def comparable_lengths(texts: Sequence[str], max_ratio: float = 1.5) -> bool:
    """Whether the options of one question are of comparable length: the longest at most `max_ratio` times the
    shortest (so option length carries little about which is right)."""
    lengths = [len(t) for t in texts]
    return max(lengths) <= max_ratio * max(1, min(lengths))


def pick_balanced(slot: Slot, items: Sequence[Any], stream: str) -> Any:
    """One of `items`, each right at its fair share over a build (see `balanced_index`)."""
    return items[balanced_index(slot, len(items), stream)]
