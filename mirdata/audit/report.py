"""Run the audit over a folder's records and report it: as JSON, as a rich table and as a figure."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

import mirdata
from mirdata.audit import checks
from mirdata.audit.guessers import (
    METHODS,
    answer_runs,
    evaluate_guessers,
    permutation_p,
)
from mirdata.audit.texts import TaskTexts
from mirdata.errors import MirdataError
from mirdata.progress import progress_bar
from mirdata.registry import task_rank
from mirdata.schema.record import LETTERS, parse_options
from mirdata.store import MIRStore

DEFAULT_RUNS = 100
_TRAILING_NUMBER = re.compile(r"(\d+)$")
# Below this many records in all, worker processes cost more than they save.
_PARALLEL_FROM = 2_000


@dataclass
class AuditSettings:
    min_gap: float = 5.0  # points of accuracy over chance that count as a shortcut
    alpha: float = 0.01
    seed: int = 0
    runs: int = DEFAULT_RUNS  # permutation runs

    def __post_init__(self) -> None:
        if self.runs < 100:
            raise MirdataError(f"--runs must be at least 100 (a p-value below 0.01 needs 100 runs), not {self.runs}")
        if not 0 < self.alpha < 1:
            raise MirdataError(f"--alpha must lie between 0 and 1, not {self.alpha}")
        if self.min_gap < 0:
            raise MirdataError(f"--min-gap must not be negative, not {self.min_gap}")


@dataclass
class AuditReport:
    tasks: dict[str, dict[str, Any]]
    overall: dict[str, Any]
    settings: AuditSettings
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def passed(self) -> bool:
        return all(t["passed"] for t in self.tasks.values())

    @property
    def failed_tasks(self) -> list[str]:
        return [name for name, t in self.tasks.items() if not t["passed"]]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "tasks": self.tasks, "overall": self.overall, "date": self.date,
                "version": mirdata.__version__,
                "settings": {"min_gap": self.settings.min_gap, "alpha": self.settings.alpha,
                             "seed": self.settings.seed, "runs": self.settings.runs, "methods": list(METHODS)}}


# -- reading ----------------------------------------------------------------------------------------------------

def _fields_problem(r: dict[str, Any]) -> str | None:
    """What keeps a record from being audited, or None."""
    for name in ("id", "task", "question"):
        if not isinstance(r.get(name), str) or not r[name]:
            return f"'{name}' is missing or not a non-empty string"
    options, images = r.get("options"), r.get("images")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
        return "'options' must be a list of two or more strings"
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        return "'images' must be a list of file names"
    answer = r.get("answer")
    if not isinstance(answer, str) or answer not in LETTERS[: len(options)]:
        return f"'answer' must be one of the option letters {LETTERS[0]}-{LETTERS[len(options) - 1]}, not {answer!r}"
    return None


def read_for_audit(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The folder's records, each with what the audit needs; a record that lacks it is one error line."""
    store = MIRStore(root)
    raw = store.read_raw()
    if not raw:
        raise MirdataError(f"{store.records_path}: no records to audit")
    for line, r in enumerate(raw, start=1):
        problem = _fields_problem(r)
        if problem:
            rid = r.get("id") if isinstance(r.get("id"), str) else "?"
            raise MirdataError(f"{store.records_path}:{line}: record {rid}: {problem}; run `mirdata validate {root}`")
    if len(raw) < 2:
        raise MirdataError(f"{store.records_path}: 1 record; the audit compares records with each other and "
                           "needs at least 2")
    return raw


def record_index(r: dict[str, Any], position: int) -> int:
    """The index a record was built at: the number its id ends in, else its place among its task's records."""
    m = _TRAILING_NUMBER.search(r["id"])
    return int(m.group(1)) if m else position


# -- the audit --------------------------------------------------------------------------------------------------

def audit_dir(root: str | os.PathLike[str], *, tasks: Iterable[str] | None = None,
              settings: AuditSettings | None = None, workers: int | None = None,
              show_progress: bool = False) -> AuditReport:
    raw = read_for_audit(root)
    return audit_records(raw, Path(root), tasks=tasks, settings=settings, workers=workers,
                         show_progress=show_progress)


def audit_records(records: list[dict[str, Any]], root: Path, *, tasks: Iterable[str] | None = None,
                  settings: AuditSettings | None = None, workers: int | None = None,
                  show_progress: bool = False) -> AuditReport:
    """Audit `records` (dicts as in records.jsonl; their images are read from under `root` for their hashes).

    The letter-from-index check and the shared-image check look at every record, also when `tasks` picks some."""
    settings = settings or AuditSettings()
    by_task: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_task.setdefault(r["task"], []).append(i)
    names = sorted(by_task, key=lambda t: (task_rank(t), t))
    if tasks is not None:
        wanted = list(tasks)
        unknown = [t for t in wanted if t not in by_task]
        if unknown:
            raise MirdataError(f"{root}: no records of task(s) {', '.join(unknown)}; it has {', '.join(names)}")
        names = [t for t in names if t in wanted]

    answers = np.array([LETTERS.index(r["answer"]) for r in records])
    n_options = np.array([len(r["options"]) for r in records])
    index = np.zeros(len(records), dtype=np.int64)
    for members in by_task.values():
        for position, i in enumerate(members):
            index[i] = record_index(records[i], position)
    jobs = []
    for name in names:
        members = by_task[name]
        others = [(index[m], n_options[m], answers[m]) for t, m in ((t, np.array(v)) for t, v in by_task.items())
                  if t != name]
        jobs.append((name, root, [records[i] for i in members], answers[members], n_options[members],
                     index[members], others, settings))

    results = _run(jobs, workers, show_progress, parallel=len(records) >= _PARALLEL_FROM)
    task_reports = {name: report for name, report, _, _ in results}
    # images are hashed in the task jobs; records of tasks left out are hashed here, they may share images too
    hashes: dict[int, list[str]] = {}
    for name, _, _, task_hashes in results:
        hashes.update(zip(by_task[name], task_hashes))
    rest = [i for t, members in by_task.items() if t not in task_reports for i in members]
    hashes.update(zip(rest, checks.image_hashes(root, [records[i] for i in rest])))
    owners = checks.image_owners([hashes[i] for i in range(len(records))])
    for name, report in task_reports.items():
        report["shared_images"] = checks.shared_images(owners, [hashes[i] for i in range(len(records))],
                                                       by_task[name])
        report["failures"] = _failures(report)
        report["passed"] = not report["failures"]

    # the overall test: tasks the guessers could be cross-validated on, their points added run by run
    guessed = [(t, h) for t, _, h, _ in results if h is not None]
    n = sum(task_reports[t]["n"] for t, _ in guessed)
    overall: dict[str, Any] = {"n": n, "chance": None, "blind_accuracy": None, "p_value": None}
    if guessed:
        per_run = np.sum([h for _, h in guessed], axis=0) / n
        chance = float(np.mean([1 / len(records[i]["options"]) for t, _ in guessed for i in by_task[t]]))
        overall.update(chance=round(chance, 4), blind_accuracy=round(float(per_run[0]), 4),
                       p_value=permutation_p(per_run))
    overall["tasks_failed"] = [t for t in names if not task_reports[t]["passed"]]
    overall["passed"] = not overall["tasks_failed"]
    return AuditReport(tasks=task_reports, overall=overall, settings=settings)


def _run(jobs: list[tuple], workers: int | None, show_progress: bool, parallel: bool) -> list[tuple]:
    workers = min(workers or len(os.sched_getaffinity(0)), len(jobs))
    with progress_bar(transient=True) as bar:
        job = bar.add_task("auditing tasks", total=len(jobs), visible=show_progress)
        if workers <= 1 or not parallel:
            done = map(_audit_task_alone, jobs)
        else:
            from joblib import Parallel, delayed

            done = Parallel(n_jobs=workers, return_as="generator")(delayed(_audit_task_alone)(a) for a in jobs)
        results = []
        for result in done:
            results.append(result)
            bar.advance(job)
        return results


def _audit_task_alone(args: tuple) -> tuple:
    """audit_task with one BLAS thread: its matrices are small, and threads of a busy BLAS waiting on each other
    cost more than the products (fifty times more, measured on 2 shared cores); workers give the parallelism."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return audit_task(*args)


def audit_task(name: str, root: Path, records: list[dict[str, Any]], answers: np.ndarray, n_options: np.ndarray,
               index: np.ndarray, others: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
               settings: AuditSettings) -> tuple[str, dict[str, Any], np.ndarray | None, list[list[str]]]:
    """One task's report (but for the images it shares with other tasks), the points its selected guesser scored
    in each run (for the overall test; None when it has one record) and its image hashes."""
    questions = [r["question"] for r in records]
    options = [[text for _, text in parse_options(r["options"])] for r in records]
    texts = TaskTexts(questions, options)  # all the blind guessers ever see
    chance = float(np.mean(1 / n_options))
    runs = answer_runs(answers, n_options, settings.runs, settings.seed, name)
    guess = evaluate_guessers(texts, runs, index, seed=settings.seed) if texts.n >= 2 else None
    gap = 100 * (guess.accuracy - chance) if guess else 0.0
    credit, compared = checks.index_credit(index, n_options, others, texts.valid)
    hashes = checks.image_hashes(root, records)

    notes = []
    if int(n_options.max()) == 2:
        notes.append("every record has 2 options: edit_centre and fewest_swaps cannot tell two options apart "
                     "and score chance")
    if guess is None:
        notes.append("1 record: nothing to cross-validate the blind guessers on, so they were not run")
    elif texts.n < 30:
        notes.append(f"{texts.n} records: the tests have little power this small")
    report = {
        "n": texts.n, "chance": round(chance, 4), "blind_accuracy": round(guess.accuracy, 4) if guess else None,
        "best_method": _mode(guess.fold_methods) if guess else None, "p_value": guess.p_value if guess else None,
        "passed": None,  # set with the failures, once the images shared with other tasks are known
        "blind_passed": guess is None or not (gap > settings.min_gap and guess.p_value < settings.alpha),
        "gap_points": round(gap, 2), "fold_methods": guess.fold_methods if guess else [],
        "folds": guess.folds if guess else 0,
        "methods": {m: {"accuracy": round(guess.method_accuracy[m], 4), "p_value": guess.method_p[m]}
                    for m in METHODS} if guess else {},
        "letter_balance": checks.letter_balance(answers, n_options, alpha=settings.alpha, min_gap=settings.min_gap,
                                                seed=settings.seed),
        "letter_from_index": checks.letter_from_index(credit, compared, runs, chance, alpha=settings.alpha,
                                                      min_gap=settings.min_gap),
        "options": checks.option_extremes(texts, answers, alpha=settings.alpha),
        "duplicates": checks.duplicates(questions, options, hashes),
        "shared_images": None,
        "images_per_question": checks.images_per_question([r["images"] for r in records]),
        "failures": [], "notes": notes,
    }
    return name, report, guess.selected_hits if guess else None, hashes


def _failures(t: dict[str, Any]) -> list[str]:
    """Why a task report fails, one short sentence per failed check."""
    failures = []
    if not t["blind_passed"]:
        failures.append(f"blind {100 * t['blind_accuracy']:.1f}% vs chance {100 * t['chance']:.1f}% "
                        f"({t['best_method']}, p={t['p_value']:.3g})")
    failures += [f"letters with {k} options: {100 * b['max_over_fair'] / int(k):.1f}% on one letter "
                 f"(p={b['p_value']:.3g})" for k, b in t["letter_balance"].items() if not b["passed"]]
    index, opts, dups, shared, per_q = (t["letter_from_index"], t["options"], t["duplicates"], t["shared_images"],
                                        t["images_per_question"])
    if not index["passed"]:
        failures.append(f"letter predictable from the index: {100 * index['accuracy']:.1f}% "
                        f"(p={index['p_value']:.3g})")
    if opts["never_right_count"]:
        failures.append(f"{opts['never_right_count']} option text(s) never right, e.g. "
                        f"\"{opts['never_right'][0]['text']}\" (offered {opts['never_right'][0]['offered']})")
    if opts["always_right_count"]:
        failures.append(f"{opts['always_right_count']} option text(s) always right, e.g. "
                        f"\"{opts['always_right'][0]['text']}\"")
    if not dups["passed"]:
        failures.append(f"{dups['exact_duplicates']} record(s) repeat another one whole")
    if not shared["passed"]:
        failures.append(f"{shared['records']} record(s) share {shared['files']} byte-identical image file(s) "
                        "with other records")
    if not per_q["passed"]:
        failures.append(f"a question with {per_q['min']} image(s)")
    return failures


def _mode(methods: list[str]) -> str:
    """The method most folds picked (ties: the first in METHODS)."""
    return max(METHODS, key=lambda m: (methods.count(m), -METHODS.index(m)))


# -- rendering --------------------------------------------------------------------------------------------------

def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _p(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def failed_checks(t: dict[str, Any]) -> list[str]:
    """Short names of the checks a task report fails: blind, letters, index, options, repeats, images."""
    names = []
    if not t["blind_passed"]:
        names.append("blind")
    for name, ok in (("letters", all(b["passed"] for b in t["letter_balance"].values())),
                     ("index", t["letter_from_index"]["passed"]), ("options", t["options"]["passed"]),
                     ("repeats", t["duplicates"]["passed"]), ("shared images", t["shared_images"]["passed"]),
                     ("images/question", t["images_per_question"]["passed"])):
        if not ok:
            names.append(name)
    return names


def audit_table(report: AuditReport) -> Table:
    """One row per task: the blind baseline against chance and the checks it fails (`failure_lines` says why)."""
    table = Table(title=f"audit {report.date[:10]}: text-only guessers against chance", title_style="bold")
    for col, justify in (("task", "left"), ("n", "right"), ("chance", "right"), ("blind", "right"), ("p", "right"),
                         ("method", "left"), ("fails", "left")):
        table.add_column(col, justify=justify, no_wrap=col != "fails")
    for name, t in report.tasks.items():
        fails = failed_checks(t)
        table.add_row(name, str(t["n"]), _pct(t["chance"]), _pct(t["blind_accuracy"]), _p(t["p_value"]),
                      t["best_method"] or "-", f"[bold red]{', '.join(fails)}[/]" if fails else "[green]-[/]")
    o = report.overall
    table.add_row("[bold]overall[/]", str(o["n"]), _pct(o["chance"]), _pct(o["blind_accuracy"]), _p(o["p_value"]), "", f"[bold red]{len(o['tasks_failed'])} tasks[/]" if o["tasks_failed"]
                  else "[green]-[/]")
    return table


def failure_lines(report: AuditReport) -> list[str]:
    """'task: why it fails', one line per failed check."""
    return [f"{name}: {why}" for name, t in report.tasks.items() for why in t["failures"]]


_BAR_COLOURS = {"task passes": "#55a868", "task fails another check": "#dd8452", "beats chance (fails)": "#c44e52"}


def _bar_kind(t: dict[str, Any]) -> str:
    if not t["blind_passed"]:
        return "beats chance (fails)"
    return "task passes" if t["passed"] else "task fails another check"


def plot_audit(report: AuditReport, path: str | os.PathLike[str]) -> Path:
    """Blind accuracy against chance per task: bars for the blind baseline, a tick for chance."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = list(report.tasks)
    blind = [100 * (report.tasks[t]["blind_accuracy"] or 0.0) for t in names]
    chance = [100 * report.tasks[t]["chance"] for t in names]
    colours = [_BAR_COLOURS[_bar_kind(report.tasks[t])] for t in names]
    fig = Figure(figsize=(max(6.0, 0.7 * len(names) + 2), 4.5), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(names))
    ax.bar(x, blind, width=0.6, color=colours)
    chance_mark = ax.scatter(x, chance, marker="_", s=600, color="black", zorder=3)
    gap_mark = ax.scatter(x, [c + report.settings.min_gap for c in chance], marker="_", s=600, color="grey", zorder=3)
    handles = [Patch(color=c, label=f"blind accuracy: {kind}") for kind, c in _BAR_COLOURS.items()]
    ax.legend([*handles, chance_mark, gap_mark],
              [h.get_label() for h in handles] + ["chance", f"chance + {report.settings.min_gap:g} points"],
              fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xticks(x, names, rotation=40, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Text-only guessers against chance ({report.date[:10]})")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    except (OSError, ValueError) as e:
        raise MirdataError(f"{path}: cannot write the figure ({e})") from None
    return path
