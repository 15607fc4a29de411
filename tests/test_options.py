"""The option engine: balanced, unpredictable positions and distractors that give nothing away, measured over many
draws with counts computed here (not with the engine's helpers)."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import binomtest, chisquare

from mirdata.builders.options import (Slot, answer_position, comparable_lengths, number_options, ordering_distractors,
                                      place_answer, special_is_answer)


def kendall(a: tuple, b: tuple) -> int:
    """Pairs that two orders of the same items put the other way round."""
    where = {x: k for k, x in enumerate(b)}
    return sum(where[x] > where[y] for x, y in combinations(a, 2))


def test_positions_are_exactly_balanced_per_task_seed_and_option_count() -> None:
    for n in (2, 3, 4, 5):
        counts = Counter(answer_position(Slot("view_3d", 11, i), n) for i in range(n * 50))
        assert counts == {k: 50 for k in range(n)}


def test_the_same_index_under_two_seeds_or_tasks_agrees_only_by_chance() -> None:
    indices = range(2000)
    for a, b in [(Slot("view_3d", 1, 0), Slot("view_3d", 2, 0)), (Slot("view_3d", 1, 0), Slot("scale_blur", 1, 0))]:
        same = sum(answer_position(Slot(a.task, a.seed, i), 4) == answer_position(Slot(b.task, b.seed, i), 4)
                   for i in indices)
        assert binomtest(same, len(indices), 0.25).pvalue > 0.01, same


def test_place_answer_puts_the_correct_text_at_the_letter_it_returns() -> None:
    rng = np.random.default_rng(0)
    for i in range(40):
        options, letter = place_answer("right", ["w1", "w2", "w3"], Slot("motion_detection", 5, i), rng)
        assert options["ABCD".index(letter)] == f"{letter}. right"
        assert sorted(o[3:] for o in options) == ["right", "w1", "w2", "w3"]


def test_ordering_distractors_are_not_centred_on_the_answer() -> None:
    rng = np.random.default_rng(1)
    one_swap, to_answer, between = 0, [], []
    draws = 3000
    for _ in range(draws):
        answer = tuple(rng.permutation(5))
        wrong = ordering_distractors(answer, rng, 3)
        assert len(set(wrong)) == 3 and answer not in wrong
        assert all(sorted(w) == sorted(answer) for w in wrong)
        one_swap += sum(kendall(answer, w) == 1 for w in wrong)
        to_answer += [kendall(answer, w) for w in wrong]
        between += [kendall(x, y) for x, y in combinations(wrong, 2)]
    # Uniform over the 119 other orders: 4 of them are one adjacent swap away.
    assert binomtest(one_swap, 3 * draws, 4 / 119).pvalue > 0.001
    # The answer is as far from the distractors as they are from each other (mean 5 pairs out of 10).
    assert abs(np.mean(to_answer) - np.mean(between)) < 0.1


def test_number_options_put_the_answer_at_every_rank_equally_often() -> None:
    rng = np.random.default_rng(2)
    ranks = Counter()
    for _ in range(2000):
        value = int(rng.integers(20, 80))
        wrong = number_options(value, rng, 3, step=4, fmt=lambda v: f"{round(v)}%", quantum=1)
        values = sorted([value, *(int(w.rstrip("%")) for w in wrong)])
        assert len(set(values)) == 4 and all(w.endswith("%") for w in wrong)
        assert min(b - a for a, b in zip(values, values[1:])) >= 4
        ranks[values.index(value)] += 1
    assert chisquare([ranks[k] for k in range(4)]).pvalue > 0.001


def test_number_options_respect_bounds_and_avoid_round_totals() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        wrong = number_options(30, rng, 3, step=5, fmt=lambda v: str(round(v)), quantum=1,
                               low=0, high=100, avoid_totals=[100])
        values = [30, *map(int, wrong)]
        assert all(0 <= v <= 100 for v in values)
        assert all(a + b != 100 for a, b in combinations(values, 2))
    # At the lower bound the answer can only be the smallest.
    assert all(min(map(int, number_options(0, rng, 3, step=1, fmt=lambda v: str(round(v)), low=0))) > 0
               for _ in range(20))
    with pytest.raises(ValueError):
        number_options(5, rng, 3, step=10, fmt=str, low=0, high=10)


def test_a_special_option_is_right_at_its_share() -> None:
    for n in (3, 4):
        hits = [special_is_answer(Slot("weight_comparison", 0, i), n) for i in range(n * 30)]
        assert sum(hits) == 30
        assert all(sum(hits[k:k + n]) == 1 for k in range(0, len(hits), n))


def test_comparable_lengths() -> None:
    assert comparable_lengths(["the red cube", "the blue cone", "the green ring"])
    assert not comparable_lengths(["red", "the large blue cone behind the tree"])
