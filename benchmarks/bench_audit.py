"""Time `mirdata audit` on 22,257 synthetic records (the original release's size, 12 tasks, about 6.2 images
each written as small unique files) against the same guessers run without vectorisation, in the same run.

The vectorised audit is the library's `audit_records`: every permutation run rescored with array operations, the
count-based learners counted for all runs in one `bincount`, the logistic regression fitted for all runs at
once. The baseline runs the same family the plain way: for each run and each training set, Python loops over
records and options for the heuristics and the counts, and one scikit-learn LogisticRegression fit per run and
training set. It is timed on one task for a few runs and extrapolated linearly to every task and every run (the
work per run is the same for every run; it trains every model of the nested cross-validation but scores only the
outer ones, so if anything it is faster than a plain implementation); its accuracies on the real answers are
checked against the audit's.

    python benchmarks/bench_audit.py [--records 22257] [--workers 2] [--baseline-runs 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from joblib.externals.loky import get_reusable_executor
from rapidfuzz.distance import Levenshtein
from sklearn.linear_model import LogisticRegression

from mirdata.audit import AuditSettings, audit_records, failure_lines
from mirdata.audit.guessers import METHODS, answer_runs, record_folds
from mirdata.audit.texts import HEURISTICS, TaskTexts, content_words, normalise, ordering_items, swap_distance
from mirdata.schema.record import LETTERS, parse_options
from mirdata.registry import category_of, task_names

RELEASE_RECORDS = 22_257
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "brown")
SHAPES = ("cube", "ring", "cone", "tree", "car", "tower", "star", "hexagon")


def synthetic_records(n: int, root: Path, seed: int = 0) -> list[dict]:
    """Records of three option kinds (orderings, object names, numbers), 2-5 options, 2-10 images each; every
    image a small file of its own. The answers are random and exactly balanced per task and option count, as a
    good build makes them: nothing to find, so every guesser runs in full."""
    rng = np.random.default_rng(seed)
    tasks = [task_names()[i % len(task_names())] for i in range(n)]
    option_counts = rng.integers(2, 6, size=n)
    letters = np.zeros(n, dtype=int)
    for task, k in {(t, int(k)) for t, k in zip(tasks, option_counts)}:
        group = [i for i in range(n) if tasks[i] == task and option_counts[i] == k]
        letters[group] = rng.permutation(np.resize(np.arange(k), len(group)))
    records = []
    for i in range(n):
        task = tasks[i]
        rid = f"{task}-s0-{i // len(task_names()):06d}"
        k = int(option_counts[i])
        n_images = int(rng.integers(2, 11))
        kind = i % 3
        if kind == 0:
            items = [f"image {j + 1}" for j in range(max(k, 3))]
            texts: list[str] = []
            while len(texts) < k:
                text = ", ".join(rng.permutation(items))
                if text not in texts:
                    texts.append(text)
        elif kind == 1:
            texts = [f"the {c} {s}" for c, s in zip(rng.choice(COLOURS, k, replace=False),
                                                    rng.choice(SHAPES, k, replace=False))]
        else:
            texts = [f"{v:.1f} thousand units" for v in rng.choice(np.arange(10, 500), k, replace=False) / 10]
        images = []
        for j in range(n_images):
            rel = f"images/{task}/{rid}_{j}.bin"
            images.append(rel)
        records.append({"id": rid, "category": category_of(task), "task": task, "images": images,
                        "question": "Here: " + " ".join("<image>" for _ in images) + " Which one is it?",
                        "options": [f"{LETTERS[j]}. {t}" for j, t in enumerate(texts)],
                        "answer": LETTERS[letters[i]]})
    for task in task_names():
        (root / "images" / task).mkdir(parents=True, exist_ok=True)
    for r in records:
        for rel in r["images"]:
            (root / rel).write_bytes(rel.encode())  # unique bytes per file
    return records


# -- the same guessers, one record and one run at a time -----------------------------------------------------

def _tied(scores: list[float], answer: int) -> float:
    best = max(scores)
    tied = [j for j, s in enumerate(scores) if abs(s - best) <= 1e-6 * abs(best) + 1e-9]
    return 1 / len(tied) if answer in tied else 0.0


def _heuristic_scores(question: str, options: list[str]) -> dict[str, list[float]]:
    lengths = [len(normalise(t)) for t in options]
    words = content_words(question)
    overlap = [len(content_words(t) & words) for t in options]
    edit = [sum(Levenshtein.normalized_distance(normalise(a), normalise(b)) for b in options) / (len(options) - 1)
            for a in options]
    items = [ordering_items(t) for t in options]
    keys = Counter(tuple(sorted(it)) for it in items if it)
    swaps = [0.0] * len(options)
    if keys and keys.most_common(1)[0][1] >= 3:
        key = keys.most_common(1)[0][0]
        members = [j for j, it in enumerate(items) if it and tuple(sorted(it)) == key]
        swaps = [-sum(swap_distance(items[j], items[m]) for m in members if m != j) if j in members else -np.inf
                 for j in range(len(options))]
    return {"longest": lengths, "shortest": [-v for v in lengths], "question_overlap": overlap,
            "edit_centre": [-v for v in edit], "fewest_swaps": swaps}


def baseline_task(texts: TaskTexts, runs: np.ndarray, folds: np.ndarray, positions: np.ndarray, features: np.ndarray,
                  n_runs: int) -> tuple[float, dict[str, float]]:
    """Seconds for `n_runs` runs of the whole family (heuristics, letter priors, option-text prior, logistic
    regression; every training set of the nested cross-validation), and the accuracies of run 0."""
    k_folds = int(folds.max()) + 1
    exclusions = [(f,) for f in range(k_folds)] + list(itertools.combinations(range(k_folds), 2))
    t0 = time.perf_counter()
    accuracy: dict[str, float] = {}
    for r in range(n_runs):
        answers = runs[r]
        points = dict.fromkeys(METHODS, 0.0)
        for i in range(texts.n):  # the heuristics recompute their picks for every run, as a loop over records
            scores = _heuristic_scores(texts.questions[i], texts.options[i])
            for name in HEURISTICS:
                points[name] += _tied(scores[name], int(answers[i]))
        for excluded in exclusions:
            train = [i for i in range(texts.n) if folds[i] not in excluded]
            letters: dict[object, Counter] = {}
            right, offered = Counter(), Counter()
            for i in train:
                k = int(texts.n_options[i])
                letters.setdefault(("majority", k), Counter())[int(answers[i])] += 1
                letters.setdefault(("position", k, int(positions[i]) % k), Counter())[int(answers[i])] += 1
                for j, t in enumerate(texts.options[i]):
                    offered[normalise(t)] += 1
                    right[normalise(t)] += j == answers[i]
            rows = [(i, j) for i in train for j in range(int(texts.n_options[i]))]
            x = np.array([features[i, j] for i, j in rows])
            y = np.array([int(answers[i] == j) for i, j in rows])
            model = LogisticRegression(C=1.0, max_iter=200).fit(x, y) if 0 < y.sum() < y.size else None
            if len(excluded) == 1:
                for i in np.flatnonzero(folds == excluded[0]):
                    k = int(texts.n_options[i])
                    a = int(answers[i])
                    for name, key in (("majority_letter", ("majority", k)),
                                      ("letter_by_position", ("position", k, int(positions[i]) % k))):
                        counts = letters.get(key, Counter())
                        points[name] += _tied([counts[j] for j in range(k)], a)
                    rates = [(right[normalise(t)] + 1 / k) / (offered[normalise(t)] + 1) for t in texts.options[i]]
                    points["option_text_prior"] += _tied(rates, a)
                    lr = model.decision_function(features[i, :k]) if model else np.zeros(k)
                    points["logistic_regression"] += _tied(list(lr), a)
        if r == 0:
            accuracy = {m: p / texts.n for m, p in points.items()}
    return time.perf_counter() - t0, accuracy


def _cpu_seconds() -> float:
    """User + system time of this process and of its finished children (the audit's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=RELEASE_RECORDS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-runs", type=int, default=2, help="runs the baseline is timed on")
    args = parser.parse_args()
    settings = AuditSettings()
    root = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        t0 = time.perf_counter()
        records = synthetic_records(args.records, root)
        images = sum(len(r["images"]) for r in records)
        print(f"{args.records} records, {images} image files written in {time.perf_counter() - t0:.1f} s")

        load = os.getloadavg()[0]
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        report = audit_records(records, root, settings=settings, workers=args.workers)
        fast = time.perf_counter() - t0
        get_reusable_executor().shutdown(wait=True)  # reap the workers, so their CPU time is counted
        cpu = _cpu_seconds() - cpu0
        print(f"vectorised audit: {fast:.1f} s wall, {cpu:.1f} s CPU in all processes ({settings.runs} permutation "
              f"runs, {args.workers} workers, 12 tasks, image hashing included; load average {load:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after); passed: {report.passed} {failure_lines(report)}")

        task = task_names()[0]
        members = [r for r in records if r["task"] == task]
        texts = TaskTexts([r["question"] for r in members],
                          [[t for _, t in parse_options(r["options"])] for r in members])
        answers = np.array([LETTERS.index(r["answer"]) for r in members])
        positions = np.arange(len(members))
        runs = answer_runs(answers, texts.n_options, settings.runs, settings.seed, task)
        features = texts.features(texts.heuristic_credits())
        seconds, accuracy = baseline_task(texts, runs, record_folds(texts.n, settings.seed), positions, features,
                                          args.baseline_runs)
        per_run = seconds / args.baseline_runs
        slow = per_run * (settings.runs + 1) * len(records) / len(members)
        audited = report.tasks[task]["methods"]
        exact = [m for m in METHODS if m != "logistic_regression"]
        worst = max(abs(accuracy[m] - audited[m]["accuracy"]) for m in exact)
        print(f"unvectorised: {per_run:.1f} s per run on {task} ({len(members)} records), timed over "
              f"{args.baseline_runs} runs; extrapolated to {settings.runs + 1} runs and {len(records)} records: "
              f"{slow:.0f} s")
        print(f"same accuracies on the real answers: heuristics and count-based learners within {worst:.1e}; "
              f"logistic regression {accuracy['logistic_regression']:.4f} (scikit-learn) vs "
              f"{audited['logistic_regression']['accuracy']:.4f} (batched)")
        print(f"audit of {len(records)} records: {fast:.1f} s wall, {cpu:.1f} s CPU (target < 60 s on 2 cores); "
              f"speed-up {slow / fast:.0f}× (wall against extrapolated wall, same machine, same run)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
