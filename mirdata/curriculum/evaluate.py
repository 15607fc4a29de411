"""`mirdata evaluate`: accuracy of a predictions file per task, per category and overall. Never a guess.

Every response is read with `inference.extract` (then optionally an LLM judge); a response that names no option
is *unanswered* and counts as wrong, and how many there are is reported next to the accuracy.

Circular evaluation (VLMEvalKit's CircularEval): the predictions hold one line per rotation of a question's
options (`mirdata predict --circular`); a question is right only if every rotation is answered right, and it is
unanswered if any rotation is unanswered.

Grounding (`grounding=True`): beside accuracy, the mean region IoU and image accuracy of the responses, scored by
`mirdata.inference.grounding` (the region and image rewards `rl-train` optimises) against each record's regions; the response to
the options as given (rotation 0) is scored, and records without regions are left out of those means.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.inference.grounding import Grounding
from mirdata.inference.grounding import grounding as score_grounding
from mirdata.inference.judge import Judge, read_answers
from mirdata.inference.prompt import rotate_options
from mirdata.registry import CATEGORIES, task_rank
from mirdata.schema.record import Record
from mirdata.store import MIRStore, atomic_write, iter_jsonl


@dataclass
class GroundingTally:
    grounded: int = 0  # responses scored: those to records with regions
    region_iou: float = 0.0  # sums; to_dict gives the means
    image_accuracy: float = 0.0

    def add(self, score: Grounding) -> None:
        self.grounded += 1
        self.region_iou += score.region
        self.image_accuracy += score.image

    def to_dict(self) -> dict[str, Any]:
        def mean(total: float) -> float | None:
            return round(total / self.grounded, 6) if self.grounded else None

        return {"grounded": self.grounded, "region_iou": mean(self.region_iou),
                "image_accuracy": mean(self.image_accuracy)}


@dataclass
class Tally:
    n: int = 0
    correct: int = 0
    unanswered: int = 0
    grounding: GroundingTally | None = None

    def add(self, correct: bool, unanswered: bool, grounding: Grounding | None = None) -> None:
        self.n += 1
        self.correct += correct
        self.unanswered += unanswered
        if self.grounding is not None and grounding is not None:
            self.grounding.add(grounding)

    def to_dict(self) -> dict[str, Any]:
        d = {"n": self.n, "correct": self.correct,
             "accuracy": round(self.correct / self.n, 6) if self.n else None, "unanswered": self.unanswered}
        return d if self.grounding is None else {**d, **self.grounding.to_dict()}


@dataclass
class Evaluation:
    overall: Tally
    by_category: dict[str, Tally]
    by_task: dict[str, Tally]
    missing: list[str]  # ids of records that have no prediction
    circular: bool

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall.to_dict(),
                "by_category": {k: v.to_dict() for k, v in self.by_category.items()},
                "by_task": {k: v.to_dict() for k, v in self.by_task.items()}}


def read_predictions(path: Path, records: dict[str, Record], circular: bool) -> dict[str, dict[int, str]]:
    """{record id: {rotation: response}}; a bad line, an unknown id or a repeated (id, rotation) names the line."""
    if not path.is_file():
        raise MirdataError(f"{path}: no such predictions file")
    preds: dict[str, dict[int, str]] = defaultdict(dict)
    for lineno, obj, reason in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if reason is not None:
            raise MirdataError(f"{where}: {reason}")
        rid, response, rotation = obj.get("id"), obj.get("response"), obj.get("rotation", 0)
        if not isinstance(rid, str) or not isinstance(response, str):
            raise MirdataError(f"{where}: a prediction needs a string \"id\" and a string \"response\"")
        if rid not in records:
            raise MirdataError(f"{where}: id {rid!r} is not a record of the dataset")
        if not isinstance(rotation, int) or isinstance(rotation, bool) \
                or not 0 <= rotation < len(records[rid].options):
            raise MirdataError(f"{where}: rotation {rotation!r} of {rid} is not in 0..{len(records[rid].options) - 1}")
        if rotation in preds[rid]:
            which = f"{rid} rotation {rotation}" if circular else rid
            raise MirdataError(f"{where}: a second prediction for {which}")
        preds[rid][rotation] = response
    return preds


def evaluate(root: str | Path, predictions: str | Path, circular: bool = False,
             judge: Judge | None = None, grounding: bool = False) -> Evaluation:
    store = MIRStore(root)
    records = {r.id: r for r in store.read()}
    path = Path(predictions)
    preds = read_predictions(path, records, circular)

    # every (record, rotation) to score, with the options as the model saw them
    items: list[tuple[str, int, str, list[str]]] = []
    for rid, by_rotation in preds.items():
        record = records[rid]
        if circular:
            want = set(range(len(record.options)))
            if set(by_rotation) != want:
                raise MirdataError(f"{path}: {rid} has rotations {sorted(by_rotation)}, but --circular needs all of "
                                   f"{sorted(want)}; run `mirdata predict --circular`")
            rotations = sorted(want)
        else:
            if 0 not in by_rotation:
                raise MirdataError(f"{path}: {rid} has no prediction for its options as given (rotation 0)")
            rotations = [0]
        for rot in rotations:
            options, answer = rotate_options(record.options, record.answer, rot)
            items.append((rid, rot, answer, options))
    answers = read_answers([(preds[rid][rot], options) for rid, rot, _, options in items], judge)

    outcome: dict[str, tuple[bool, bool]] = {}  # id -> (all right, any unanswered)
    for (rid, _, answer, _), given in zip(items, answers):
        right, unanswered = outcome.get(rid, (True, False))
        outcome[rid] = (right and given == answer, unanswered or given is None)

    def tally() -> Tally:
        return Tally(grounding=GroundingTally() if grounding else None)

    overall = tally()
    by_category: dict[str, Tally] = {}
    by_task: dict[str, Tally] = {}
    for rid in sorted(outcome, key=lambda i: (task_rank(records[i].task), i)):
        record = records[rid]
        right, unanswered = outcome[rid]
        score = score_grounding(preds[rid][0], record.regions) if grounding else None
        for group in (overall, by_category.setdefault(record.category, tally()),
                      by_task.setdefault(record.task, tally())):
            group.add(right, unanswered, score)
    by_category = {c: by_category[c] for c in [*CATEGORIES, *sorted(set(by_category) - set(CATEGORIES))]
                   if c in by_category}
    missing = sorted(set(records) - set(outcome))
    return Evaluation(overall, by_category, by_task, missing, circular)


def write_json(evaluation: Evaluation, path: str | Path) -> None:
    atomic_write(Path(path), (json.dumps(evaluation.to_dict(), indent=2) + "\n").encode())
