"""The question-family engine: a task's families are data (its spec file), applied here the same way for every task.

A family (mirdata.registry.Family) has the texts that ask it, the name of the answer rule that solves it, and the
names of the constraints that reject a degenerate or shortcut draw (a tie, an answer a text-only guesser could
pick, a relation too close to see). The task registers the rules and constraints as plain functions of its
facts; the engine chooses the family for a record, checks the constraints, solves the answer and writes the
question text, so a task's `sample` reads as: draw facts, reject degenerate ones, solve, phrase.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from mirdata.builders.options import Slot, pick, pick_balanced
from mirdata.registry import Family, TaskSpec

AnswerRule = Callable[[Any], Any]  # facts -> the answer (the correct option's text, or what it is made from)
Constraint = Callable[[Any], bool]  # facts -> True when the draw is fine, False when it is degenerate


class QuestionFamilies:
    """The families of one task, bound to the answer rules and constraints its code registers."""

    def __init__(self, spec: TaskSpec, rules: Mapping[str, AnswerRule], constraints: Mapping[str, Constraint]):
        self.spec = spec
        missing = sorted({f.answer for f in spec.families.values()} - set(rules)) + sorted(
            {c for f in spec.families.values() for c in f.constraints} - set(constraints))
        if missing:
            raise ValueError(f"task {spec.name!r}: its spec names rules or constraints its code does not register: "
                             f"{', '.join(missing)}")
        self.rules, self.constraints = dict(rules), dict(constraints)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.spec.families)

    def __getitem__(self, family: Family | str) -> Family:
        return family if isinstance(family, Family) else self.spec.families[family]

    def choose(self, slot: Slot, label: str | None = None) -> Family:
        """The family of the record at `slot`: every run of len(families) records asks each family once, in an
        order hashed from (task, seed, run), so families are balanced and not guessable from the index.
        `label` keys the hash (default: "<task> family")."""
        return self[pick_balanced(slot, list(self.names), label or f"{self.spec.name} family")]

    def cycle(self, slot: Slot) -> Family:
        """The family at `slot.index`, taken in turn (the index is not a shortcut where every family has the
        same options and answer balance)."""
        return self[self.names[slot.index % len(self.names)]]

    def degenerate(self, family: Family | str, facts: Any, among: Collection[str] | None = None) -> str | None:
        """The first constraint of `family` that these facts break (the draw must be redrawn), or None.
        `among`: check only those of its constraints (a task whose draw is checked at several points)."""
        family = self[family]
        return next((c for c in family.constraints
                     if (among is None or c in among) and not self.constraints[c](facts)), None)

    def solve(self, family: Family | str, facts: Any) -> Any:
        return self.rules[self[family].answer](facts)

    def text(self, family: Family | str, rng: np.random.Generator, **fields: Any) -> str:
        """One of the family's question texts, drawn by `rng`, with `fields` filled in."""
        return pick_text(rng, self[family].texts).format(**fields)

    def phrase(self, key: str, rng: np.random.Generator | None = None, **fields: Any) -> Any:
        """The spec's phrase table `key`: with an RNG, one of its variants drawn and filled with `fields`."""
        phrases = self.spec.phrases[key]
        if rng is None:
            return phrases
        return pick_text(rng, phrases).format(**fields)


def pick_text(rng: np.random.Generator, variants: Any) -> str:
    """One of `variants` (a list of texts, or a single text), drawn by `rng` exactly as `pick` draws."""
    return variants if isinstance(variants, str) else pick(rng, variants)
