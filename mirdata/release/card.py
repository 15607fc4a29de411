"""The dataset card (README.md) of a release: YAML metadata the Hub reads, then what is inside and how it was made.

The YAML is written with huggingface_hub's DatasetCardData, so its keys are the ones the Hub understands:
configs with their data_files (one glob per split), license, task categories, size category, languages.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import DatasetCard, DatasetCardData

import mirdata
from mirdata.registry import CATEGORIES, task_specs, tasks_of
from mirdata.release.layout import (AUDIT_JSON, DEFAULT_CONFIG, DEFAULT_REPO_ID, ORIGINAL, ORIGINAL_JSON, SPLITS,
                                    STATS_FIGURE, STATS_JSON, ReleaseSummary, config_data_files)
from mirdata.schema.record import Record
from mirdata.store import MIRStore

if TYPE_CHECKING:
    from mirdata.audit import AuditReport

CITATION = """\
@article{du2025mir,
  title   = {From Easy to Hard: The MIR Benchmark for Progressive Interleaved Multi-Image Reasoning},
  author  = {Du, Hang and Zhang, Jiayang and Nan, Guoshun and Deng, Wendi and Chen, Zhenyan and
             Zhang, Chenyang and Xiao, Wang and Huang, Shan and Pan, Yuqi and Qi, Tao and Leng, Sicong},
  journal = {arXiv preprint arXiv:2509.17040},
  year    = {2025}
}"""

FIELDS = [
    ("id", "string", "Stable id: the same build seed and arguments give the same id."),
    ("category", "string", "sequential, spatial or analytical."),
    ("task", "string", "One of the tasks below (snake_case)."),
    ("images", "list of images", "The images, in the order of the `<image>` placeholders in the question."),
    ("question", "string", "The question, with one `<image>` placeholder where each image belongs."),
    ("options", "list of strings", "`\"A. ...\"`, `\"B. ...\"` ... the choices."),
    ("answer", "string", "The letter of the correct option."),
    ("summary", "string", "Reasoning stage 1: the plan."),
    ("caption", "list of strings", "Reasoning stage 2: one caption per image."),
    ("text2region", "string", "Reasoning stage 3: which words of the question refer to which region, "
                              "cited as `[r0]`, `[r1]` ..."),
    ("region2region", "string", "Reasoning stage 4: how the regions relate across images."),
    ("conclusion", "string", "Reasoning stage 5: the conclusion; it states the answer letter."),
    ("regions", "list of {id, image, box, label}", "The regions the stages cite: `image` is the 0-based "
                                                   "image index, `box` is [x0, y0, x1, y1] in pixels."),
    ("difficulty", "string", "easy or hard (the split)."),
    ("pass_rate", "float or null", "Fraction of the expert model's samples that answered right."),
    ("meta", "string (JSON)", "Provenance: generator, seed, index, package version, the ground-truth facts "
                     "(every number the reasoning states), how the stages were annotated."),
]


# The Hub's size_categories values, each with the row count it stops below.
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
                   (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"),
                   (1_000_000_000_000, "100B<n<1T"))


def size_category(n: int) -> str:
    """The Hub's size_categories value for n rows."""
    for bound, name in SIZE_CATEGORIES:
        if n < bound:
            return name
    return "n>1T"


def card_data(summary: ReleaseSummary, license: str) -> DatasetCardData:
    configs = []
    for name, splits in config_data_files(summary.counts).items():
        entry: dict[str, Any] = {"config_name": name}
        if name == DEFAULT_CONFIG:
            entry["default"] = True
        entry["data_files"] = [{"split": split, "path": globs[0] if len(globs) == 1 else globs}
                               for split, globs in splits.items()]
        configs.append(entry)
    return DatasetCardData(
        pretty_name="MIR: Multi-image Interleaved Reasoning",
        license=license,
        language=["en"],
        task_categories=["visual-question-answering", "multiple-choice", "image-text-to-text"],
        size_categories=[size_category(summary.records)],
        tags=["multi-image", "interleaved", "reasoning", "chain-of-thought", "grounding", "curriculum-learning"],
        configs=configs,
    )


def write_card(folder: Path, store: MIRStore, records: list[Record], summary: ReleaseSummary,
               stats: dict[str, Any], *, license: str, repo_id: str | None, audit: AuditReport | None = None) -> Path:
    body = render_body(store, records, summary, stats, repo_id or DEFAULT_REPO_ID, audit)
    card = DatasetCard(f"---\n{card_data(summary, license).to_yaml()}\n---\n\n{body}")
    path = folder / "README.md"
    card.save(path)
    return path


# -- the body -------------------------------------------------------------------------------------------------

def render_body(store: MIRStore, records: list[Record], summary: ReleaseSummary, stats: dict[str, Any],
                repo_id: str, audit: AuditReport | None = None) -> str:
    info = store.build_info()
    images = [len(r.images) for r in records]
    parts = [
        "# MIR: Multi-image Interleaved Reasoning",
        f"{summary.records:,} multiple-choice questions over {summary.images:,} images "
        f"({statistics.mean(images):.1f} per question, {min(images)} to {max(images)}). Each question "
        "interleaves its text with several images and needs reasoning *across* them. Every record carries five "
        "reasoning stages (summary, captions, text-to-region, region-to-region, conclusion) and the image "
        "regions they cite, so the set serves both as a benchmark and as staged curriculum training data. "
        + _origin_text(records),
        "## Load it",
        "```python\nfrom datasets import load_dataset\n\n"
        f'mir = load_dataset("{repo_id}")                              # config "{DEFAULT_CONFIG}": '
        "every task\n"
        f'hard_spatial = load_dataset("{repo_id}", "spatial", split="hard")\n'
        'record = hard_spatial[0]\nrecord["images"][0]   # a PIL image; record["question"] has one <image> '
        "per image\n```",
        "Any `datasets` 4.x reads it (4.0 and later). `meta` is a JSON string; decode it with "
        "`json.loads(record[\"meta\"])`.",
        "## Contents",
        _counts_table(summary),
        _configs_text(summary),
        "## Statistics",
        f"![Statistics of this release]({STATS_FIGURE})",
        _stats_text(stats, STATS_JSON),
        *(["## Audit", _audit_text(audit, AUDIT_JSON)] if audit is not None else []),
        "## Fields",
        _table(["field", "type", "description"], [[f"`{n}`", t, d] for n, t, d in FIELDS]),
        "## How it was made",
        _tasks_text(records),
        _stages_text(records),
        _difficulty_text(records, info),
        _provenance_text(info),
    ]
    if summary.original:
        parts += [
            "## The original release's files",
            f"`{ORIGINAL}/{ORIGINAL_JSON}` holds every record in the original release's JSON format (`text2img` "
            f"and `img2img` for text-to-region and region-to-region) and `{ORIGINAL}/images/` holds the image "
            f"files it names, relative to `{ORIGINAL}/`, so the original evaluation and training scripts run "
            "on this release unchanged. Images lie in `images/<task>/<bucket>/`, the bucket two hex digits of "
            "the record id's hash, so that no folder holds more than a few hundred files.",
        ]
    parts += ["## Citation", f"```bibtex\n{CITATION}\n```"]
    return "\n\n".join(parts) + "\n"


def _imported(record: Record) -> bool:
    return "upstream" in record.meta  # set by `mirdata import-upstream`


def _origin_text(records: list[Record]) -> str:
    imported = sum(map(_imported, records))
    built = len(records) - imported
    by_construction = ("answers are ground truth by construction: each is computed from facts the generator "
                       "produced, and those facts ship with the record")
    if not imported:
        return f"The {by_construction}."
    text = (f"{imported:,} questions come from the original release (imported with `mirdata import-upstream`; "
            "their text, answers and reasoning as published)")
    return text + (f"; the other {built:,} were built, and their {by_construction}." if built else ".")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _counts_table(summary: ReleaseSummary) -> str:
    def row(label: str, keep: Any) -> list[Any]:
        by_split = [sum(n for (c, t, s), n in summary.counts.items() if keep(c, t) and s == split)
                    for split in SPLITS]
        return [label, *(f"{n:,}" for n in by_split), f"{sum(by_split):,}"]

    rows = []
    for cat in CATEGORIES:
        present = [t for t in tasks_of(cat) if any(k[1] == t for k in summary.counts)]
        if not present:
            continue
        rows += [row(f"`{t}`", lambda c, tt, t=t: tt == t) for t in present]
        rows.append(row(f"**{cat}**", lambda c, tt, cat=cat: c == cat))
    rows.append(row("**all**", lambda c, t: True))
    return _table(["task", *SPLITS, "total"], rows)


def _stats_text(stats: dict[str, Any], json_path: str) -> str:
    """The figure's numbers that a reader wants at a glance; all of them are in `json_path`."""
    per = stats["images_per_record"]
    rows = [["images", f"{stats['images']:,} ({stats['unique_images']:,} distinct files)"],
            ["images per question", f"{per['mean']} on average, {per['min']} to {per['max']}"],
            ["options per question", ", ".join(f"{k}: {v:,}" for k, v in stats["options_per_record"].items())],
            ["answer letters", ", ".join(f"{k} {100 * v:.1f}%" for k, v in stats["answer_shares"].items())]]
    if stats.get("majority_letter_accuracy") is not None:
        rows.append(["always answering the commonest letter",
                     f"{100 * stats['majority_letter_accuracy']:.1f}% right (chance: "
                     f"{100 * stats['chance_accuracy']:.1f}%)"])
    for name, words in stats["annotation_words"].items():
        if words["n"]:
            rows.append([f"words in {name}", f"mean {words['mean']}, median {words['median']:g}, "
                                             f"90th percentile {words['p90']:g}"])
    return _table(["statistic", "value"], rows) + f"\n\nEvery number behind the figure: `{json_path}`."


def _audit_text(audit: AuditReport, json_path: str) -> str:
    """Blind baselines against chance per task, the method that reached them, and what failed."""
    settings = audit.settings
    text = (f"`mirdata audit` on {audit.date[:10]}: text-only guessers that see the question and the option texts "
            "but never an image (letter priors, option heuristics such as the longest option or the one closest "
            "to the others, an option-text prior and a logistic regression, cross-validated with the method "
            "chosen on the other folds) against chance, with a permutation test over "
            f"{settings.runs} redrawn answer sets. A task fails when its blind accuracy beats chance by more than "
            f"{settings.min_gap:g} points at p < {settings.alpha:g}, or when its letters, options, repeated "
            "records or shared images fail a check.")
    rows = [[f"`{name}`", t["n"], f"{100 * t['chance']:.1f}%",
             *((f"{100 * t['blind_accuracy']:.1f}%", f"`{t['best_method']}`", f"{t['p_value']:.3g}")
               if t["blind_accuracy"] is not None else ("-", "- (1 record)", "-")),
             "pass" if t["passed"] else "**fail**"]
            for name, t in audit.tasks.items()]
    o = audit.overall
    if o["blind_accuracy"] is not None:
        rows.append(["**all**", o["n"], f"{100 * o['chance']:.1f}%", f"{100 * o['blind_accuracy']:.1f}%", "",
                     f"{o['p_value']:.3g}", "pass" if o["passed"] else "**fail**"])
    parts = [text, _table(["task", "n", "chance", "blind accuracy", "method", "p", "audit"], rows)]
    if audit.failed_tasks:
        from mirdata.audit import failure_lines

        parts.append(f"**Released with audit failures** (`--allow-audit-failures`): "
                     f"{', '.join(f'`{t}`' for t in audit.failed_tasks)}. A model may answer these from the text "
                     "alone; report their scores apart. What failed:\n"
                     + "\n".join(f"- {line}" for line in failure_lines(audit)))
    parts.append(f"The whole report: `{json_path}`.")
    return "\n\n".join(parts)


def _configs_text(summary: ReleaseSummary) -> str:
    tasks = [c for c in summary.configs if c != DEFAULT_CONFIG and c not in CATEGORIES]
    cats = [c for c in summary.configs if c in CATEGORIES]
    return (f"Configs: `{DEFAULT_CONFIG}` (the default: every record), one per category "
            f"({', '.join(f'`{c}`' for c in cats)}) and one per task ({', '.join(f'`{t}`' for t in tasks)}). "
            "They read the same parquet files under `data/<category>/<task>/`, so nothing is stored twice. "
            "Splits: `easy` and `hard`, the difficulty rating described below; a config lists only the splits "
            "it has records for. Every record is rated: the release refuses a folder with unrated records rather "
            "than put them in a third split that a curriculum would have to know to skip.")


def _tasks_text(records: list[Record]) -> str:
    generators: dict[str, Counter[str]] = {}
    for r in records:
        counter = generators.setdefault(r.task, Counter())
        if r.meta.get("generator"):
            counter[str(r.meta["generator"])] += 1
    lines = ["**The tasks.** A built record is made from facts sampled with a seeded random generator (one record "
             "is a pure function of task, seed and index); the answer and the distractors are computed from "
             "those facts, and the correct letter is spread evenly over the option letters."
             + (" Imported records keep the original release's content." if any(map(_imported, records)) else "")]
    for task, spec in task_specs().items():
        if task in generators:
            text = f"- `{task}` ({spec.category}). *Asks:* {spec.asks} *Made:* {spec.definition}"
            if generators[task]:
                text += " Images by: " + ", ".join(f"`{g}`" for g, _ in generators[task].most_common()) + "."
            lines.append(text)
    return "\n".join(lines)


def _stages_text(records: list[Record]) -> str:
    annotators = Counter(str(a) for r in records if (a := (r.meta.get("annotation") or {}).get("annotator")))
    text = ("**The reasoning stages.** The grounded template annotator writes the five stages from the facts, "
            "so they agree with the answer; the multi-round LLM annotator drafts them with a language model, "
            "checks each draft against the facts in code and keeps the template text for any stage that still "
            "fails.")
    if annotators:
        used = ", ".join(f"`{a}` ({n:,} records)" for a, n in annotators.most_common())
        text += f" Annotators used here: {used}; per-stage details are in `meta.annotation`."
    return text


# build.json["difficulty"] entries that describe one run rather than the rating
_RUN_ONLY = {"asked_this_run", "seconds", "records", "counts", "cuts", "unanswered_share"}


def _difficulty_text(records: list[Record], info: dict[str, Any]) -> str:
    settings = info.get("difficulty")
    greedy = isinstance(settings, dict) and settings.get("temperature") == 0
    lines = ["**The difficulty.** An expert vision-language model answered each question "
             + ("once, greedily" if greedy else "several times (sampled, not greedy)")
             + "; `pass_rate` is the fraction of its answers that were right, and the rating puts the questions it "
             "mostly got right in `easy` and the others in `hard`."]
    if isinstance(settings, dict) and settings:
        settings = {k: _model_name(v) if k in ("model", "judge") else v for k, v in settings.items()}
        model, samples = settings.get("model"), settings.get("samples")
        if settings.get("rule") == "threshold":
            rule = f"a question is easy when its pass rate is at least {settings.get('threshold')}"
        elif settings.get("rule") == "adaptive":
            rule = (f"within each task, the {settings.get('quantile')} share of questions with the lowest pass "
                    "rates is hard (so every task keeps both levels)")
        else:
            rule = f"rule `{settings.get('rule')}`"
        asked = "greedily (temperature 0), once per question" if greedy else f"{samples} times per question"
        lines.append(f"Here: `{model}` answered {asked}; {rule}.")
        rows = [[f"`{k}`", f"`{v}`"] for k, v in settings.items()
                if k not in _RUN_ONLY and not isinstance(v, (dict, list))]
        lines.append(_table(["setting", "value"], rows))
    rows = []
    for split in ("easy", "hard"):
        rates = [r.pass_rate for r in records if r.difficulty == split and r.pass_rate is not None]
        if rates:
            rows.append([split, f"{len(rates):,}", f"{min(rates):.2f}", f"{statistics.mean(rates):.2f}",
                         f"{max(rates):.2f}"])
    if rows:
        lines.append(_table(["split", "rated", "min pass rate", "mean", "max"], rows))
    return "\n\n".join(lines)


def _model_name(model: Any) -> Any:
    """A model loaded from a local folder is named by that folder: the releasing machine's paths stay private."""
    if isinstance(model, str) and Path(model).is_absolute():
        return Path(model).name
    return model


def _provenance_text(info: dict[str, Any]) -> str:
    builds = info.get("builds") or []
    seeds = sorted({b.get("options", {}).get("seed") for b in builds if b.get("options", {}).get("seed") is not None})
    text = (f"**Provenance.** Released with mirbench-tools {mirdata.__version__}"
            + (f" from a build with seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}" if seeds else "")
            + "; the build's settings are in each record's `meta`.")
    return text
