"""Time the schema part of `mirdata validate` (check_records) on 22,257 synthetic records, the size of the
original release, against a baseline measured in the same run: the same rules run the way pandera runs
per-value and per-row checks (`element_wise=True`), i.e. one Python call per value and one pandas row per
record and rule. Both must report exactly the same failures.

    python benchmarks/bench_validate.py [--records 22257] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

import pandera.pandas as pa

from mirdata.schema import checks
from mirdata.schema.checks import check_records, records_frame
from mirdata.registry import category_of, task_names

RELEASE_RECORDS = 22_257


def synthetic_records(n: int, seed: int = 0, fault_rate: float = 0.0) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Records shaped like the release (2-10 images, 2-5 options, a few regions each) and their image sizes;
    `fault_rate` of them carry one fault each."""
    rng = random.Random(seed)
    records, sizes = [], []
    for i in range(n):
        task = task_names()[i % len(task_names())]
        n_images = rng.randint(2, 10)
        n_options = rng.randint(2, 5)
        answer = "ABCDE"[i % n_options]
        images = [f"images/{task}/{task}-s0-{i:06d}_{k}.jpg" for k in range(n_images)]
        record = {
            "id": f"{task}-s0-{i:06d}", "category": category_of(task), "task": task, "images": images,
            "question": "Here are the frames: " + " ".join(f"Image {k + 1}: <image>" for k in range(n_images))
                        + ". Which object moves fastest?",
            "options": [f"{'ABCDE'[k]}. object number {k} of question {i}" for k in range(n_options)],
            "answer": answer,
            "summary": "Compare how far each object moves between consecutive frames.",
            "caption": [f"Frame {k + 1}: a red car on a grey road next to a tree." for k in range(n_images)],
            "text2region": "'the red car' → [r0] in image 1, box [5, 5, 60, 40]",
            "region2region": "[r0] moves 12 px to the right between image 1 and image 2 [r1].",
            "conclusion": f"The red car covers the largest distance, so the answer is {answer}.",
            "regions": [{"id": f"r{k}", "image": k % n_images, "box": [5, 5, 60 + k, 40 + k], "label": "car"}
                        for k in range(rng.randint(1, 6))],
            "difficulty": rng.choice([None, "easy", "hard"]),
            "pass_rate": rng.choice([None, 0.3, 1.0]),
            "meta": {"facts": {"speeds": [rng.random() for _ in range(n_images)]}},
        }
        if rng.random() < fault_rate:
            _break(record, rng)
        records.append(record)
        sizes.append([[448, 336]] * n_images)
    return records, sizes


def _break(record: dict[str, Any], rng: random.Random) -> None:
    fault = rng.randrange(8)
    if fault == 0:
        del record["summary"]
    elif fault == 1:
        record["question"] = record["question"].replace("<image>", "", 1)
    elif fault == 2:
        record["options"][-1] = "Z. a letter out of order"
    elif fault == 3:
        record["conclusion"] = "The car is fastest."
    elif fault == 4:
        record["regions"].append({"id": "r9", "image": 0, "box": [0, 0, 9999, 10], "label": "car"})
    elif fault == 5:
        record["category"] = "spatial" if record["category"] != "spatial" else "analytical"
    elif fault == 6:
        record["pass_rate"] = 1.5
    else:
        record["caption"] = record["caption"][:-1]


def elementwise_schema() -> pa.DataFrameSchema:
    """The same rules, run per value and per row the way `element_wise=True` checks run."""
    absent = checks._ABSENT
    columns = {}
    for name, rules in checks._FIELD_RULES.items():
        column_checks = [pa.Check(lambda v: v is not absent, element_wise=True, ignore_na=False,
                                  error=f"{name}|{checks._MISSING}")]
        column_checks += [pa.Check(lambda v, rule=rule: v is absent or rule(v), element_wise=True, ignore_na=False,
                                   error=f"{name}|{problem}") for problem, rule, _ in rules]
        columns[name] = pa.Column(object, checks=column_checks, nullable=True)
    row_checks = []
    for field, problem, rule, cols in checks._RECORD_RULES:
        if rule in (checks._ids_unique, checks._question_images_unique):  # need every row at once
            row_checks.append(checks._record_check(field, problem, rule, cols))
        else:
            row_checks.append(pa.Check(lambda row, rule=rule, cols=cols: rule(*([row[c]] for c in cols))[0],
                                       element_wise=True, ignore_na=False, error=f"{field}|{problem}"))
    return pa.DataFrameSchema(columns, checks=row_checks)


def baseline_check(records: list[dict[str, Any]], sizes: list[list[Any]]) -> list[checks.Failure]:
    try:
        elementwise_schema().validate(records_frame(records, sizes), lazy=True)
    except pa.errors.SchemaErrors as e:
        return checks._failures(e.failure_cases, records, sizes, None)
    return []


def timed(fn: Any, *args: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result): CPU time stays meaningful on a busy machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=RELEASE_RECORDS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    for label, fault_rate in (("clean", 0.0), ("1% faulty", 0.01)):
        records, sizes = synthetic_records(args.records, fault_rate=fault_rate)
        cold_wall, _, failures = timed(check_records, records, sizes)
        runs = [timed(check_records, records, sizes)[:2] for _ in range(args.repeats)]
        base_wall, base_cpu, base_failures = timed(baseline_check, records, sizes)
        if base_failures != failures:
            raise SystemExit(f"{label}: the baseline and check_records disagree "
                             f"({len(base_failures)} vs {len(failures)} failures)")
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{label:>9}: {args.records} records, {len(failures)} failures\n"
              f"  check_records       median {wall:.3f} s wall, {cpu:.3f} s CPU (first call {cold_wall:.3f} s wall)\n"
              f"  element-wise pandera       {base_wall:.3f} s wall, {base_cpu:.3f} s CPU\n"
              f"  speed-up {base_wall / wall:.1f}x wall, {base_cpu / cpu:.1f}x CPU; goal < 1 s: "
              f"{'met' if wall < 1 else 'missed'} in wall time, {'met' if cpu < 1 else 'missed'} in CPU time "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
