"""`mirdata evaluate`: accuracy of a predictions file per task, per category and overall. Never a guess.

Every response is read with `inference.extract` (then optionally an LLM judge); a response that names no option
is *unanswered* and counts as wrong, and how many there are is reported next to the accuracy.

Circular evaluation (VLMEvalKit's CircularEval): the predictions hold one line per rotation of a question's
options (`mirdata predict --circular`); a question is right only if every rotation is answered right, and it is
unanswered if any rotation is unanswered.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirdata.errors import MirdataError
from mirdata.inference.judge import Judge, read_answers
from mirdata.inference.prompt import rotate_options
from mirdata.schema.record import Record
from mirdata.schema.tasks import CATEGORIES, task_rank
from mirdata.store import MIRStore, atomic_write, iter_jsonl


@dataclass
class Tally:
    n: int = 0
    correct: int = 0
    unanswered: int = 0

    def add(self, correct: bool, unanswered: bool) -> None:
        self.n += 1
        self.correct += correct
        self.unanswered += unanswered

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "correct": self.correct,
                "accuracy": round(self.correct / self.n, 6) if self.n else None, "unanswered": self.unanswered}


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
             judge: Judge | None = None) -> Evaluation:
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

    overall = Tally()
    by_category: dict[str, Tally] = {}
    by_task: dict[str, Tally] = {}
    for rid in sorted(outcome, key=lambda i: (task_rank(records[i].task), i)):
        record = records[rid]
        right, unanswered = outcome[rid]
        overall.add(right, unanswered)
        by_category.setdefault(record.category, Tally()).add(right, unanswered)
        by_task.setdefault(record.task, Tally()).add(right, unanswered)
    by_category = {c: by_category[c] for c in [*CATEGORIES, *sorted(set(by_category) - set(CATEGORIES))]
                   if c in by_category}
    missing = sorted(set(records) - set(outcome))
    return Evaluation(overall, by_category, by_task, missing, circular)


def write_json(evaluation: Evaluation, path: str | Path) -> None:
    atomic_write(Path(path), (json.dumps(evaluation.to_dict(), indent=2) + "\n").encode())
