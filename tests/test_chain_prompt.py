"""`predict`/`difficulty --prompt chain`: ask a `curriculum-train` model in the format it was trained on (stage 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.curriculum import train
from mirdata.curriculum.difficulty import DifficultySettings, rate_difficulty
from mirdata.curriculum.stages import stage_example
from mirdata.errors import MirdataError
from mirdata.inference.predict import PredictSettings, predict
from mirdata.inference.prompt import build_prompt, load_images, rotate_options
from mirdata.models import hf_messages
from mirdata.schema.chain import parse_chain
from mirdata.store import MIRStore
from mirdata.testing import ScriptedRunner
from tests.conftest import write_simple_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_chain_prompt_is_the_stage_5_input_with_images_in_place(simple_dataset: Path) -> None:
    records = MIRStore(simple_dataset).read()
    asked: list = []
    runner = ScriptedRunner(lambda prompt, k, seed: asked.append(prompt) or "the answer is A.")
    predict(simple_dataset, runner, simple_dataset / "p.jsonl", PredictSettings(prompt="chain"), show_progress=False)
    assert [p.text for p in asked] == [stage_example(r, 5).prompt for r in records]
    for prompt, r in zip(asked, records):
        assert prompt.images and [im.size for im in prompt.images] == \
            [im.size for im in load_images(r, simple_dataset)]
        # question and options only: no reasoning step goes in
        assert parse_chain(prompt.text) == {} and r.summary not in prompt.text
    assert {line["prompt"] for line in _lines(simple_dataset / "p.jsonl")} == {"chain"}
    with pytest.raises(MirdataError, match="holds responses to --prompt chain"):
        predict(simple_dataset, runner, simple_dataset / "p.jsonl", PredictSettings(), show_progress=False)


def test_chain_prompt_rotates_the_options_like_the_mir_prompt(simple_dataset: Path) -> None:
    record = MIRStore(simple_dataset).read()[0]
    images = load_images(record, simple_dataset)
    rotated, _ = rotate_options(record.options, record.answer, 1)
    text = build_prompt(record, images, rotation=1, format="chain").text
    assert "\n".join(rotated) in text and "\n".join(record.options) not in text


def test_chain_prompt_renders_exactly_as_the_trainer_rendered_it(tiny_vlm: Path, simple_dataset: Path) -> None:
    from transformers import AutoProcessor
    from trl.data_utils import prepare_multimodal_messages

    processor = AutoProcessor.from_pretrained(tiny_vlm)
    records = MIRStore(simple_dataset).read()[:4]
    rows = train._dataset([stage_example(r, 5) for r in records], simple_dataset, max_pixels=None)
    for record, row in zip(records, rows, strict=True):
        trained = prepare_multimodal_messages(row["prompt"], images=row["images"])  # as TRL's collator does
        asked = build_prompt(record, load_images(record, simple_dataset), format="chain")
        assert processor.apply_chat_template(hf_messages(asked), add_generation_prompt=True, tokenize=False) == \
            processor.apply_chat_template(trained, add_generation_prompt=True, tokenize=False)


def test_difficulty_asks_in_the_chosen_format_and_caches_each_apart(simple_dataset: Path) -> None:
    # a stand-in for a curriculum-trained model: it writes the chain only when asked in its own format
    def respond(prompt, k, seed):
        if prompt.text.rstrip().endswith("a conclusion that states the answer letter."):
            return "<summary>s</summary>\n<conclusion>Unlike (C), so the answer is B.</conclusion>"
        return "I cannot tell."

    runner = ScriptedRunner(respond)
    chain = rate_difficulty(simple_dataset, runner, DifficultySettings(samples=2, prompt="chain"),
                            show_progress=False)
    records = MIRStore(simple_dataset).read()
    assert chain["prompt"] == "chain" and chain["unanswered_samples"] == 0
    assert all(r.pass_rate == (1.0 if r.answer == "B" else 0.0) for r in records)
    mir = rate_difficulty(simple_dataset, runner, DifficultySettings(samples=2), show_progress=False)
    assert mir["asked_this_run"] == len(records)  # the chain answers are not reused for the mir prompt
    assert mir["unanswered_samples"] == 2 * len(records)
    assert json.loads((simple_dataset / "build.json").read_text())["difficulty"]["prompt"] == "mir"


def test_a_curriculum_trained_model_answers_predict_prompt_chain(tiny_vlm: Path, tmp_path: Path) -> None:
    """Train stage 5 until the tiny model writes one record's chain, then predict and evaluate in that format."""
    root = tmp_path / "data"
    write_simple_dataset(root, per_task=1)
    store = MIRStore(root)
    records = store.read()
    hard = next(r for r in records if r.answer == "B")
    hard.difficulty, hard.summary, hard.caption = "hard", "Compare.", [f"Frame {k + 1}." for k in range(len(hard.images))]
    hard.text2region, hard.region2region = "[r0] and [r1].", "Unlike option A, [r1] differs."
    hard.conclusion = "So the answer is B."
    easy = next(r for r in records if r.answer == "A")
    easy.difficulty = "easy"
    store.write([easy, hard])
    _invoke("curriculum-train", "--data", str(root), "--model", str(tiny_vlm), "--output-dir", str(tmp_path / "run"),
            "--stages", "5", "--hard-fraction", "1", "--epochs-per-stage", "150", "--learning-rate", "1e-2",
            "--logging-steps", "50")
    trained = tmp_path / "run" / "stage-5"

    store.write([hard])
    preds = tmp_path / "preds.jsonl"
    _invoke("predict", str(root), "--backend", "transformers", "--model", str(trained), "--out", str(preds),
            "--prompt", "chain", "--max-new-tokens", "300", "--device", "cpu")
    [line] = _lines(preds)
    assert line["prompt"] == "chain"
    steps = parse_chain(line["response"])
    assert steps["conclusion"] == "So the answer is B." and set(steps) == {
        "summary", "caption", "text2region", "region2region", "conclusion"}
    _invoke("evaluate", str(root), str(preds), "--json", str(tmp_path / "e.json"))
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["overall"] == {"n": 1, "correct": 1, "accuracy": 1.0, "unanswered": 0}

    _invoke("difficulty", str(root), "--backend", "transformers", "--model", str(trained), "--prompt", "chain",
            "--samples", "2", "--temperature", "0", "--max-new-tokens", "300", "--device", "cpu")
    [rated] = MIRStore(root).read()
    assert rated.pass_rate == 1.0
