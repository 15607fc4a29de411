"""`mirdata audit`: planted text-only shortcuts are caught, honest tasks pass, bad input is one line."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from conftest import write_simple_dataset
from mirdata.audit import AuditSettings, audit_dir
from mirdata.audit.guessers import fit_logistic
from mirdata.audit.texts import swap_distance
from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.release import release_dataset
from mirdata.store import MIRStore

LETTERS = "ABCDEFGH"
WORDS = ("red", "blue", "green", "tall", "small", "round", "square", "left", "right", "upper", "lower", "bright",
         "dark", "wooden", "metal", "glass", "stone", "paper", "striped", "dotted", "old", "new", "wide", "narrow")
PER_TASK = 120


class Folder:
    """Writes a MIR folder of synthetic records: two tiny images each, every image's bytes unique."""

    def __init__(self, root: Path):
        self.root, self.records, self.count = root, [], 0

    def add(self, task: str, question: str, options: list[str], answer: int, **extra) -> None:
        rid = f"{task}-s0-{sum(r['task'] == task for r in self.records):06d}"
        images = []
        for k in range(2):
            self.count += 1
            path = f"images/{task}/{rid}_{k}.png"
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            pixels = np.zeros((4, 4, 3), dtype=np.uint8)
            pixels.reshape(-1)[:4] = np.frombuffer(self.count.to_bytes(4, "big"), dtype=np.uint8)
            Image.fromarray(pixels).save(self.root / path)
            images.append(path)
        self.records.append({"id": rid, "category": "analytical", "task": task, "images": images,
                             "question": question, "options": [f"{LETTERS[j]}. {t}" for j, t in enumerate(options)],
                             "answer": LETTERS[answer], "conclusion": f"so the answer is {LETTERS[answer]}.",
                             "meta": {"answer_text": options[answer]}, **extra})

    def write(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.records))
        return self.root


def balanced_letters(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.permutation(np.resize(np.arange(k), n))


def add_word_task(folder: Folder, task: str, rng: np.random.Generator, letters: np.ndarray, k: int) -> None:
    """A record per letter: k random single-word options, the answer at that letter; nothing gives it away."""
    for position in letters:
        folder.add(task, "<image> <image> Which one?", [str(t) for t in rng.choice(WORDS, k, replace=False)],
                   int(position))


def phrase(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS, size=words))


def place(rng: np.random.Generator, correct: str, distractors: list[str], position: int) -> list[str]:
    options = list(rng.permutation(distractors))
    options.insert(position, correct)
    return options


def ordering(items: list[str]) -> str:
    return ", ".join(items)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One folder, one planted shortcut per task, plus an honest task; the letters are balanced and random."""
    rng = np.random.default_rng(7)
    folder = Folder(tmp_path_factory.mktemp("audit") / "planted")
    for task in ("longest_answer", "one_swap_orders", "never_right_option", "honest"):
        for position in balanced_letters(rng, PER_TASK, 4):
            if task == "longest_answer":  # the answer has 5-6 words, every distractor 2-3
                correct = phrase(rng, int(rng.integers(5, 7)))
                options = place(rng, correct, [phrase(rng, int(rng.integers(2, 4))) for _ in range(3)], position)
                folder.add(task, "Image one: <image> Image two: <image> What changed?", options, int(position))
            elif task == "one_swap_orders":  # each wrong order is the right one with two items exchanged
                right = [f"image {i}" for i in rng.permutation(4) + 1]
                wrong = []
                for i, j in itertools.combinations(range(4), 2):
                    swapped = list(right)
                    swapped[i], swapped[j] = swapped[j], swapped[i]
                    wrong.append(ordering(swapped))
                picked = [wrong[w] for w in rng.choice(len(wrong), size=3, replace=False)]
                options = place(rng, ordering(right), picked, position)
                folder.add(task, "<image> <image> Which order is right?", options, int(position))
            elif task == "never_right_option":  # "none of them moves" offered every time, never right
                texts = [str(t) for t in rng.choice(WORDS, size=3, replace=False)]
                options = [texts[0], texts[1], texts[2]]
                options.insert(int(rng.integers(4)), "none of them moves")
                right = [j for j, t in enumerate(options) if t != "none of them moves"]
                folder.add(task, "<image> <image> Which one moves?", options, int(rng.choice(right)))
            else:  # random orderings, the answer one of them at random: nothing in the text gives it away
                perms = [ordering([f"image {i}" for i in p + 1]) for p in (rng.permutation(4) for _ in range(8))]
                distinct = list(dict.fromkeys(perms))[:4]
                if len(distinct) < 4:
                    continue
                folder.add(task, "<image> <image> Which order is right?", distinct, int(position))
    root = folder.write()
    return audit_dir(root, settings=AuditSettings(seed=3), workers=1).to_dict()


def test_json_has_the_keys_the_issue_names(planted):
    assert set(planted) >= {"passed", "tasks"}
    for t in planted["tasks"].values():
        assert set(t) >= {"n", "chance", "blind_accuracy", "best_method", "p_value", "passed"}
    assert planted["passed"] is False


def test_answer_always_the_longest_is_caught(planted):
    t = planted["tasks"]["longest_answer"]
    assert not t["passed"] and not t["blind_passed"]
    assert t["methods"]["longest"]["accuracy"] == 1.0
    assert t["blind_accuracy"] > 0.9 and t["p_value"] < 0.01


def test_wrong_orders_one_swap_from_the_right_one_are_caught(planted):
    t = planted["tasks"]["one_swap_orders"]
    assert not t["passed"] and not t["blind_passed"]
    assert t["methods"]["fewest_swaps"]["accuracy"] > 0.8
    assert t["blind_accuracy"] > 0.6 and t["p_value"] < 0.01


def test_option_offered_always_and_never_right_is_caught(planted):
    t = planted["tasks"]["never_right_option"]
    assert not t["passed"]
    assert t["options"]["never_right"] == [{"text": "none of them moves", "offered": PER_TASK}]
    assert t["options"]["always_right_count"] == 0 and any("never right" in f for f in t["failures"])


def test_random_balanced_options_pass(planted):
    t = planted["tasks"]["honest"]
    assert t["passed"], t["failures"]
    assert abs(t["blind_accuracy"] - 0.25) < 0.1 and t["p_value"] > 0.01
    assert t["letter_from_index"]["passed"] and t["options"]["never_right_count"] == 0


def test_letter_given_by_the_index_is_caught(tmp_path):
    """Two tasks whose letter is the same function of the record index (what a position hash of the index
    alone gives): each task's letters are predictable from the other's."""
    rng = np.random.default_rng(11)
    by_index = balanced_letters(rng, 150, 4)
    folder = Folder(tmp_path / "index")
    for task in ("first", "second"):
        add_word_task(folder, task, rng, by_index, 4)
    report = audit_dir(folder.write(), settings=AuditSettings(seed=1), workers=1).to_dict()
    for t in report["tasks"].values():
        assert t["letter_from_index"]["accuracy"] == 1.0 and not t["letter_from_index"]["passed"]
        assert t["blind_passed"] and t["letter_balance"]["4"]["passed"]


def test_byte_identical_images_and_repeated_records_fail(tmp_path):
    rng = np.random.default_rng(5)
    folder = Folder(tmp_path / "shared")
    add_word_task(folder, "reused", rng, balanced_letters(rng, 40, 4), 4)
    folder.records[1]["images"] = folder.records[0]["images"]  # the same files, so the same bytes
    folder.records[1]["options"] = folder.records[0]["options"]
    t = audit_dir(folder.write(), workers=1).tasks["reused"]
    assert t["shared_images"] == {"records": 2, "files": 2, "passed": False}
    assert t["duplicates"]["exact_duplicates"] == 1 and not t["passed"]


def test_swap_distance_counts_exchanges():
    assert swap_distance(["a", "b", "c", "d"], ["a", "b", "c", "d"]) == 0
    assert swap_distance(["a", "b", "c", "d"], ["c", "b", "a", "d"]) == 1
    assert swap_distance(["a", "b", "c", "d"], ["b", "c", "d", "a"]) == 3  # a 4-cycle needs three exchanges
    assert swap_distance(["a", "b", "c", "d"], ["d", "c", "b", "a"]) == 2  # the reversal: two exchanges


def test_batched_logistic_regression_is_sklearns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = np.stack([(rng.random(400) < 1 / (1 + np.exp(-(x @ rng.normal(scale=0.7, size=6) - 1)))).astype(float)
                  for _ in range(3)], axis=1)
    w = fit_logistic(np.hstack([np.ones((400, 1)), x]).astype(np.float32), y.astype(np.float32), steps=200)
    for r in range(3):
        ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x, y[:, r])
        np.testing.assert_allclose(w[1:, r], ref.coef_[0], atol=2e-3)
        np.testing.assert_allclose(w[0, r], ref.intercept_[0], atol=2e-3)


# -- the command ------------------------------------------------------------------------------------------------

def run_cli(*args: str):
    return CliRunner().invoke(app, ["audit", *map(str, args)])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for fragment in fragments:
        assert fragment in " ".join(result.output.split()), result.output


def test_cli_writes_json_and_plot_and_exits_1_on_a_failure(tmp_path):
    rng = np.random.default_rng(2)
    folder = Folder(tmp_path / "longest")
    for position in balanced_letters(rng, 60, 4):
        correct = phrase(rng, 6)
        folder.add("longest_answer", "<image> <image> What changed?",
                   place(rng, correct, [phrase(rng, 2) for _ in range(3)], int(position)), int(position))
    result = run_cli(folder.write(), "--json", tmp_path / "a.json", "--plot", tmp_path / "a.png", "--seed", "1")
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["passed"] is False and report["tasks"]["longest_answer"]["best_method"] == "longest"
    assert "longest_answer: blind" in " ".join(result.output.split())
    assert Image.open(tmp_path / "a.png").size[0] > 100


def test_cli_bad_input_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli(empty), "records.jsonl: no such file")
    (empty / "records.jsonl").write_text("")
    assert_one_line_error(run_cli(empty), "no records to audit")

    folder = Folder(tmp_path / "one")
    folder.add("single", "<image> <image> Which?", ["a", "b", "c"], 0)
    assert_one_line_error(run_cli(folder.write()), "1 record", "at least 2")

    folder = Folder(tmp_path / "missing")
    for i in range(4):
        folder.add("t", "<image> <image> Which?", ["a", "b", "c"], i % 3)
    del folder.records[2]["answer"]
    assert_one_line_error(run_cli(folder.write()), "records.jsonl:3", "'answer'")
    folder.records[2]["answer"], folder.records[1]["options"] = "A", "A. a"
    assert_one_line_error(run_cli(folder.write()), "records.jsonl:2", "'options'")


def test_cli_a_task_of_two_options_is_audited_with_a_note(tmp_path):
    rng = np.random.default_rng(4)
    folder = Folder(tmp_path / "two")
    add_word_task(folder, "pairs", rng, balanced_letters(rng, 40, 2), 2)
    result = run_cli(folder.write())
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "pairs: every record has 2 options" in text and "passed" in text


# -- the release ------------------------------------------------------------------------------------------------

def test_release_refuses_a_failing_folder_unless_allowed_and_the_card_names_the_failures(tmp_path):
    store = MIRStore(tmp_path / "mir")
    write_simple_dataset(store.root, per_task=2)
    raw = store.read_raw()
    for i, r in enumerate(raw):
        r["difficulty"], r["pass_rate"] = ("easy", 0.9) if i % 2 else ("hard", 0.1)
    reused = [r for r in raw if r["task"] == "view_3d"]
    reused[1]["images"][0] = reused[0]["images"][0]  # one file in two records
    store.write(raw)
    with pytest.raises(MirdataError, match=r"1 task\(s\) fail the audit \(view_3d\).*--allow-audit-failures"):
        release_dataset(store.root, tmp_path / "repo", show_progress=False)
    assert not (tmp_path / "repo").exists()

    summary = release_dataset(store.root, tmp_path / "repo", show_progress=False, allow_audit_failures=True)
    assert summary.audit_failures == ["view_3d"]
    card = (tmp_path / "repo" / "README.md").read_text()
    audit_section = card[card.index("## Audit"):card.index("## Fields")]
    assert "**Released with audit failures**" in audit_section and "`view_3d`" in audit_section
    assert "view_3d: 2 record(s) share 1 byte-identical image file(s)" in audit_section
    assert "| `speed_comparison` | 2 | 50.0% |" in audit_section
    report = json.loads((tmp_path / "repo" / "assets" / "audit.json").read_text())
    assert report["passed"] is False and report["tasks"]["view_3d"]["shared_images"]["records"] == 2
