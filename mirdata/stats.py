"""Dataset statistics: what the paper's statistics figure shows, for any folder in the MIR layout.

`compute_stats` returns plain JSON (the release's dataset card embeds it); `stats_tables` renders it as rich
tables and `plot_stats` draws the figure with matplotlib. Lengths are counted in words (whitespace-split);
a caption's length is one image's caption. Fields of the wrong type are left out of the statistic they feed
(`mirdata validate` reports them), so statistics of a dataset under repair still work.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from mirdata.errors import MirdataError
from mirdata.registry import CATEGORIES, category_of, task_names
from mirdata.schema.record import LETTERS
from mirdata.store import MIRStore

LENGTH_FIELDS = ("question", "summary", "caption", "text2region", "region2region", "conclusion")
HISTOGRAM_BINS = 20


def _distribution(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "min": None, "max": None, "mean": None, "median": None, "p90": None}
    a = np.asarray(values)
    return {"n": int(a.size), "min": int(a.min()), "max": int(a.max()), "mean": round(float(a.mean()), 2),
            "median": float(np.median(a)), "p90": float(np.percentile(a, 90))}


def _words(text: Any) -> int | None:
    return len(text.split()) if isinstance(text, str) else None


def compute_stats(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Statistics of the MIR folder `root` as plain JSON."""
    records = MIRStore(root).read_raw()
    tasks = Counter(r.get("task") for r in records if isinstance(r.get("task"), str))
    categories = Counter(r.get("category") for r in records if isinstance(r.get("category"), str))
    image_lists = [r["images"] for r in records if isinstance(r.get("images"), list)]
    n_images = [len(images) for images in image_lists]
    unique_images = {p for images in image_lists for p in images if isinstance(p, str)}
    n_options = [len(r["options"]) for r in records if isinstance(r.get("options"), list)]

    answers = Counter(r["answer"] for r in records if isinstance(r.get("answer"), str) and r["answer"] in LETTERS)
    letters = LETTERS[: max([*n_options, *(LETTERS.index(a) + 1 for a in answers)], default=0)]
    by_task: dict[str, Counter[str]] = {}
    for r in records:
        if isinstance(r.get("task"), str) and isinstance(r.get("answer"), str):
            by_task.setdefault(r["task"], Counter())[r["answer"]] += 1
    answered = sum(answers.values())

    lengths: dict[str, list[int]] = {name: [] for name in LENGTH_FIELDS}
    for r in records:
        for name in LENGTH_FIELDS:
            texts = r.get(name) if name == "caption" and isinstance(r.get(name), list) else [r.get(name)]
            lengths[name].extend(n for n in map(_words, texts) if n is not None)
    top = max((max(v) for v in lengths.values() if v), default=1)
    edges = np.linspace(0, max(top, 1), HISTOGRAM_BINS + 1)

    difficulty = Counter(r.get("difficulty") if r.get("difficulty") in ("easy", "hard") else "unrated"
                         for r in records)
    known_order = [*task_names(), *sorted(t for t in tasks if category_of(t) is None)]
    return {
        "dataset": str(root),
        "records": len(records),
        "images": sum(n_images),
        "unique_images": len(unique_images),
        "categories": {c: categories.get(c, 0) for c in [*CATEGORIES, *sorted(set(categories) - set(CATEGORIES))]},
        "tasks": {t: tasks.get(t, 0) for t in known_order},
        "images_per_record": {**_distribution(n_images),
                              "counts": {str(k): v for k, v in sorted(Counter(n_images).items())}},
        "options_per_record": {str(k): v for k, v in sorted(Counter(n_options).items())},
        "answer_letters": {letter: answers.get(letter, 0) for letter in letters},
        "answer_shares": {letter: round(answers.get(letter, 0) / answered, 4) if answered else 0.0
                          for letter in letters},
        # Accuracy of always answering the most frequent letter, against the chance of a random guess.
        "majority_letter_accuracy": round(max(answers.values()) / answered, 4) if answered else None,
        "chance_accuracy": round(float(np.mean([1 / n for n in n_options if n])), 4) if n_options else None,
        "answer_letters_by_task": {t: dict(sorted(by_task[t].items())) for t in known_order if t in by_task},
        "annotation_words": {
            name: {**_distribution(values),
                   "histogram": {"edges": [round(float(e), 2) for e in edges],
                                 "counts": np.histogram(values, bins=edges)[0].tolist()}}
            for name, values in lengths.items()
        },
        "difficulty": {k: difficulty.get(k, 0) for k in ("easy", "hard", "unrated")},
    }


# -- tables -----------------------------------------------------------------------------------------------

def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def stats_tables(stats: dict[str, Any]) -> list[Table]:
    """The statistics as rich tables: overview, tasks, images per record, answer letters, annotation lengths."""
    n = stats["records"]
    ipr = stats["images_per_record"]
    overview = Table(title=f"{stats['dataset']}", show_header=False, title_style="bold")
    overview.add_column("what")
    overview.add_column("value", justify="right")
    for what, value in (("records", n), ("images (references)", stats["images"]),
                        ("unique image files", stats["unique_images"]),
                        ("images per record (mean / median / min / max)",
                         " / ".join(_fmt(ipr[k]) for k in ("mean", "median", "min", "max"))),
                        ("difficulty easy / hard / unrated",
                         " / ".join(str(stats["difficulty"][k]) for k in ("easy", "hard", "unrated"))),
                        ("always-majority-letter accuracy / chance",
                         f"{_fmt(stats['majority_letter_accuracy'])} / {_fmt(stats['chance_accuracy'])}")):
        overview.add_row(what, str(value))

    tasks = Table(title="records per category and task", title_style="bold")
    for col, justify in (("category", "left"), ("task", "left"), ("records", "right"), ("share", "right")):
        tasks.add_column(col, justify=justify)
    for task, count in stats["tasks"].items():
        tasks.add_row(category_of(task) or "?", task, str(count), _share(count, n))
    for category, count in stats["categories"].items():
        tasks.add_row(f"[bold]{category}[/]", "[bold](all)[/]", f"[bold]{count}[/]", _share(count, n))

    images = Table(title="images per record", title_style="bold")
    images.add_column("images", justify="right")
    images.add_column("records", justify="right")
    images.add_column("share", justify="right")
    for k, count in ipr["counts"].items():
        images.add_row(k, str(count), _share(count, n))

    letters = Table(title="answer-letter balance", title_style="bold")
    for col in ("letter", "answers", "share"):
        letters.add_column(col, justify="right")
    answered = sum(stats["answer_letters"].values())
    for letter, count in stats["answer_letters"].items():
        letters.add_row(letter, str(count), _share(count, answered))

    lengths = Table(title="annotation lengths (words)", title_style="bold")
    for col, justify in (("stage", "left"), ("texts", "right"), ("mean", "right"), ("median", "right"),
                         ("p90", "right"), ("min", "right"), ("max", "right")):
        lengths.add_column(col, justify=justify)
    for name, d in stats["annotation_words"].items():
        lengths.add_row(name, *(_fmt(d[k]) for k in ("n", "mean", "median", "p90", "min", "max")))
    return [overview, tasks, images, letters, lengths]


# -- the figure -------------------------------------------------------------------------------------------

_CATEGORY_COLORS = {"sequential": "#4c72b0", "spatial": "#55a868", "analytical": "#c44e52"}


def plot_stats(stats: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Draw the statistics figure (tasks, images per record, answer letters, annotation lengths) to `path`."""
    from matplotlib.figure import (
        Figure,  # no pyplot: no GUI backend, safe in threads and on servers
    )
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(13, 9), layout="constrained")
    (ax_tasks, ax_images), (ax_letters, ax_lengths) = fig.subplots(2, 2)
    fig.suptitle(f"{stats['dataset']}: {stats['records']} questions, {stats['images']} images")

    names = list(stats["tasks"])
    ax_tasks.barh(names, [stats["tasks"][t] for t in names],
                  color=[_CATEGORY_COLORS.get(category_of(t) or "", "#999999") for t in names])
    ax_tasks.invert_yaxis()
    ax_tasks.set_xlabel("records")
    ax_tasks.set_title("records per task")
    ax_tasks.legend(handles=[Patch(color=color, label=f"{category} ({stats['categories'].get(category, 0)})")
                             for category, color in _CATEGORY_COLORS.items()], loc="lower right")

    counts = stats["images_per_record"]["counts"]
    ax_images.bar([int(k) for k in counts], list(counts.values()), color="#8172b2")
    ax_images.set_xticks([int(k) for k in counts])
    ax_images.set_xlabel("images in the record")
    ax_images.set_ylabel("records")
    ax_images.set_title(f"images per record (mean {_fmt(stats['images_per_record']['mean'])})")

    letters = stats["answer_letters"]
    ax_letters.bar(list(letters), list(letters.values()), color="#64b5cd")
    if letters:
        ax_letters.axhline(sum(letters.values()) / len(letters), color="black", linestyle="--", linewidth=1,
                           label="uniform")
        ax_letters.legend()
    ax_letters.set_ylabel("answers")
    ax_letters.set_title("answer-letter balance")

    for name, d in stats["annotation_words"].items():
        hist = d["histogram"]
        if d["n"]:
            ax_lengths.stairs(hist["counts"], hist["edges"], label=f"{name} (median {_fmt(d['median'])})")
    ax_lengths.set_xlabel("words")
    ax_lengths.set_ylabel("texts")
    ax_lengths.set_title("annotation lengths per stage")
    if any(d["n"] for d in stats["annotation_words"].values()):
        ax_lengths.legend(fontsize="small")
    for ax in (ax_tasks.xaxis, ax_images.yaxis, ax_letters.yaxis, ax_lengths.yaxis):
        ax.set_major_locator(MaxNLocator(integer=True))

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    except (OSError, ValueError) as e:  # an unwritable folder, or a suffix matplotlib has no writer for
        raise MirdataError(f"{path}: cannot write the figure ({e})") from None
    return path
