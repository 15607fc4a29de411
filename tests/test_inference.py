"""Inference: the tiny model, prompts with images in place, the transformers/vLLM/OpenAI runners, predict."""

from __future__ import annotations

import base64
import io
import json
import sys
import types
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.inference.extract import extract_answer
from mirdata.inference.predict import PredictSettings, predict
from mirdata.inference.prompt import INSTRUCTION, build_prompt, fit_pixels, load_images, rotate_options
from mirdata.models import Sampling, hf_messages, make_runner, prompt_seed
from mirdata.models.server import OpenAIRunner
from mirdata.registry import task_names
from mirdata.schema.record import Record, format_options
from mirdata.store import MIRStore
from mirdata.testing import ScriptedRunner, make_tiny_vlm
from tests.conftest import LocalJSONServer


@pytest.fixture(scope="module")
def tiny_runner(tiny_vlm: Path):
    with make_runner("transformers", str(tiny_vlm), device="cpu") as runner:
        yield runner


def _record(question: str, n_images: int, options: list[str], answer: str = "A") -> Record:
    return Record(id="q1", category="spatial", task="view_3d", images=[f"images/{k}.png" for k in range(n_images)],
                  question=question, options=format_options(options), answer=answer)


# -- the tiny model ------------------------------------------------------------------------------------------

def test_tiny_vlm_loads_with_the_auto_classes_and_is_deterministic(tiny_vlm: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm)
    processor = AutoProcessor.from_pretrained(tiny_vlm)
    assert type(model).__name__ == "Idefics3ForConditionalGeneration"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert processor.chat_template is not None
    again = make_tiny_vlm(tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (tiny_vlm / "model.safetensors").read_bytes()
    other = make_tiny_vlm(tmp_path / "other", seed=1)
    assert (other / "model.safetensors").read_bytes() != (tiny_vlm / "model.safetensors").read_bytes()


# -- prompts -------------------------------------------------------------------------------------------------

def test_prompt_puts_each_image_at_its_placeholder() -> None:
    red, blue, green = (Image.new("RGB", (8, 8), c) for c in ("red", "blue", "green"))
    record = _record("First <image> then <image>, finally <image>. Which is red?", 3, ["one", "two", "three"])
    prompt = build_prompt(record, [red, blue, green])
    assert prompt.parts[0] == "First "
    assert prompt.parts[1] is red and prompt.parts[3] is blue and prompt.parts[5] is green
    assert prompt.parts[2] == " then " and prompt.parts[4] == ", finally "
    assert prompt.parts[6].startswith(". Which is red?\n\nOptions:\nA. one\nB. two\nC. three\n\n")
    assert prompt.parts[6].endswith(INSTRUCTION)
    content = hf_messages(prompt)[0]["content"]
    assert [c["type"] for c in content] == ["text", "image", "text", "image", "text", "image", "text"]
    # an image first: no empty text part before it
    assert build_prompt(_record("<image><image> same?", 2, ["yes", "no"]), [red, blue]).parts[:2] == [red, blue]


def test_prompt_rejects_a_placeholder_count_that_differs_from_the_images() -> None:
    with pytest.raises(MirdataError, match="2 <image> placeholders but 1 images"):
        build_prompt(_record("<image> and <image>", 2, ["a", "b"]), [Image.new("RGB", (4, 4))])


def test_rotation_moves_the_options_and_the_answer_with_them() -> None:
    options = format_options(["red", "green", "blue", "black"])
    assert rotate_options(options, "C", 0) == (options, "C")
    assert rotate_options(options, "C", 1) == (format_options(["green", "blue", "black", "red"]), "B")
    assert rotate_options(options, "A", 1) == (format_options(["green", "blue", "black", "red"]), "D")
    for r in range(4):
        rotated, answer = rotate_options(options, "B", r)
        assert rotated[ord(answer) - 65].endswith("green")


def test_fit_pixels_keeps_the_area_within_bounds_and_the_aspect_ratio() -> None:
    image = Image.new("RGB", (400, 200))
    small = fit_pixels(image, max_pixels=20_000)
    assert small.width * small.height <= 20_000 and abs(small.width / small.height - 2) < 0.05
    large = fit_pixels(image, min_pixels=320_000)
    assert large.width * large.height >= 320_000 and abs(large.width / large.height - 2) < 0.05
    assert fit_pixels(image, 1_000, 100_000) is image


def test_load_images_names_a_missing_or_broken_file(simple_dataset: Path) -> None:
    record = MIRStore(simple_dataset).read()[0]
    assert [im.mode for im in load_images(record, simple_dataset)] == ["RGB", "RGB"]
    (simple_dataset / record.images[1]).write_bytes(b"not an image")
    with pytest.raises(MirdataError, match=f"{record.images[1]}.*does not decode"):
        load_images(record, simple_dataset)
    (simple_dataset / record.images[0]).unlink()
    with pytest.raises(MirdataError, match=f"{record.images[0]}.*does not exist"):
        load_images(record, simple_dataset)


# -- the transformers runner -----------------------------------------------------------------------------------

def test_transformers_runner_renders_the_images_in_place(tiny_runner, simple_dataset: Path) -> None:
    record = MIRStore(simple_dataset).read()[0]
    prompt = build_prompt(record, load_images(record, simple_dataset))
    text = tiny_runner.processor.apply_chat_template(hf_messages(prompt), add_generation_prompt=True)
    assert "Here is one image: <image> and another: <image>. Which image" in text
    assert text.endswith("Assistant:")


def test_transformers_runner_samples_n_per_prompt_reproducibly(tiny_runner, simple_dataset: Path) -> None:
    records = MIRStore(simple_dataset).read()[:3]
    prompts = [build_prompt(r, load_images(r, simple_dataset)) for r in records]
    seeds = [prompt_seed(0, r.id) for r in records]
    sampling = Sampling(n=3, temperature=0.7, top_p=0.8, max_new_tokens=6)
    first = tiny_runner.generate(prompts, sampling, seeds)
    assert [len(r) for r in first] == [3, 3, 3] and all(isinstance(s, str) for r in first for s in r)
    assert tiny_runner.generate(prompts, sampling, seeds) == first
    assert tiny_runner.generate(prompts, sampling, [s + 1 for s in seeds]) != first


def test_batched_greedy_generation_matches_one_at_a_time(tiny_runner, simple_dataset: Path) -> None:
    records = MIRStore(simple_dataset).read()[:4]
    prompts = [build_prompt(r, load_images(r, simple_dataset)) for r in records]
    greedy = Sampling(n=2, max_new_tokens=6)
    batched = tiny_runner.generate(prompts, greedy, [0, 1, 2, 3])
    single = [tiny_runner.generate([p], greedy, [k])[0] for k, p in enumerate(prompts)]
    assert batched == single
    assert all(len(r) == 2 and r[0] == r[1] for r in batched)  # greedy: one response, repeated


def test_runner_loading_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(MirdataError, match="not a model folder"):
        make_runner("transformers", str(tmp_path))
    with pytest.raises(MirdataError, match="needs --base-url"):
        make_runner("openai", "some-model")
    with pytest.raises(MirdataError, match="unknown backend"):
        make_runner("llamafile", "x")


def test_vllm_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now raises ImportError
    with pytest.raises(MirdataError, match="pip install vllm"):
        make_runner("vllm", str(tmp_path))


def test_vllm_runner_sends_a_batch_and_all_its_samples_in_one_chat_call(monkeypatch: pytest.MonkeyPatch,
                                                                         tiny_vlm: Path) -> None:
    """Against a stand-in `vllm` module with the documented LLM.chat / SamplingParams interface."""
    calls: dict[str, list] = {"init": [], "chat": []}

    class SamplingParams:
        def __init__(self, **kwargs: object):
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs: object):
            calls["init"].append(kwargs)

        def chat(self, messages, sampling_params, use_tqdm):
            calls["chat"].append((messages, sampling_params))
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"Your option: A ({k}, {j})")
                                                   for j in range(p.kwargs["n"])])
                    for k, p in enumerate(sampling_params)]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    runner = make_runner("vllm", str(tiny_vlm), max_images=3)
    assert calls["init"] == [{"model": str(tiny_vlm), "dtype": "auto", "limit_mm_per_prompt": {"image": 3}}]
    prompts = [build_prompt(_record("<image> or <image>?", 2, ["a", "b"]), [Image.new("RGB", (4, 4))] * 2)] * 3
    out = runner.generate(prompts, Sampling(n=4, temperature=0.7, top_p=0.8, max_new_tokens=9), [5, 6, 7])
    assert out == [[f"Your option: A ({k}, {j})" for j in range(4)] for k in range(3)]
    ((messages, params),) = calls["chat"]
    assert len(messages) == 3 and [c["type"] for c in messages[0][0]["content"]] == \
        ["image_url", "text", "image_url", "text"]
    assert [p.kwargs for p in params] == [{"n": 4, "temperature": 0.7, "top_p": 0.8, "max_tokens": 9, "seed": s}
                                          for s in (5, 6, 7)]
    greedy = runner.generate(prompts[:1], Sampling(n=3), [1])
    assert greedy == [["Your option: A (0, 0)"] * 3] and calls["chat"][-1][1][0].kwargs["n"] == 1


# -- the OpenAI-compatible runner, against a local server ----------------------------------------------------

class _Server(LocalJSONServer):
    """A local chat-completions endpoint: records every request; answers with `choices_per_call` choices."""

    def __init__(self, choices_per_call: int | None = None, fail_first: int = 0, status: int = 503):
        self.requests: list[dict] = []
        self.choices_per_call = choices_per_call
        self.failures_left = fail_first
        self.status = status
        super().__init__(self._respond)

    def _respond(self, path: str, headers, raw: bytes) -> tuple[int, dict]:
        body = json.loads(raw)
        body["_path"], body["_auth"] = path, headers.get("Authorization")
        self.requests.append(body)
        if self.failures_left > 0:
            self.failures_left -= 1
            return self.status, {"error": {"message": "busy, try later"}}
        n = body["n"] if self.choices_per_call is None else min(body["n"], self.choices_per_call)
        choices = [{"index": k, "message": {"role": "assistant",
                                            "content": f"Your option: B (seed {body['seed']}, {k})"}}
                   for k in range(n)]
        return 200, {"choices": choices}


@pytest.fixture
def server_factory():
    servers: list[_Server] = []

    def make(**kwargs: object) -> _Server:
        servers.append(_Server(**kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_openai_runner_sends_images_as_data_urls_in_place(server_factory) -> None:
    server = server_factory()
    red, blue = Image.new("RGB", (30, 20), "red"), Image.new("RGB", (16, 16), "blue")
    prompt = build_prompt(_record("Look: <image> vs <image>. Which is red?", 2, ["left", "right"]), [red, blue])
    runner = OpenAIRunner("served-model", base_url=server.url + "/", api_key="k123")
    out = runner.generate([prompt], Sampling(n=3, temperature=0.7, top_p=0.8, max_new_tokens=50), [42])
    assert out == [[f"Your option: B (seed 42, {k})" for k in range(3)]]
    (request,) = server.requests
    assert request["_path"] == "/v1/chat/completions" and request["_auth"] == "Bearer k123"
    assert (request["model"], request["n"], request["temperature"], request["top_p"], request["max_tokens"]) == \
        ("served-model", 3, 0.7, 0.8, 50)
    content = request["messages"][0]["content"]
    assert [c["type"] for c in content] == ["text", "image_url", "text", "image_url", "text"]
    decoded = []
    for part in (content[1], content[3]):
        url = part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        decoded.append(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    assert decoded[0].size == (30, 20) and decoded[0].getpixel((3, 3)) == (255, 0, 0)
    assert decoded[1].size == (16, 16) and decoded[1].getpixel((3, 3)) == (0, 0, 255)


def test_openai_runner_asks_again_when_the_server_returns_fewer_choices(server_factory) -> None:
    server = server_factory(choices_per_call=1)
    runner = OpenAIRunner("m", base_url=server.url)
    out = runner.generate([build_prompt(_record("<image><image>?", 2, ["a", "b"]), [Image.new("RGB", (4, 4))] * 2)],
                          Sampling(n=3, temperature=1.0), [7])
    assert len(out[0]) == 3 and [r["n"] for r in server.requests] == [3, 2, 1]
    assert [r["seed"] for r in server.requests] == [7, 8, 9]  # each extra call samples anew


def test_openai_runner_retries_busy_servers_and_reports_hard_errors(server_factory) -> None:
    busy = server_factory(fail_first=2, status=503)
    runner = OpenAIRunner("m", base_url=busy.url, backoff=0.0)
    prompt = build_prompt(_record("<image><image>?", 2, ["a", "b"]), [Image.new("RGB", (4, 4))] * 2)
    assert runner.generate([prompt], Sampling(), [0])[0][0].startswith("Your option: B")
    assert len(busy.requests) == 3
    broken = server_factory(fail_first=5, status=400)
    with pytest.raises(MirdataError, match="HTTP 400.*busy, try later"):
        OpenAIRunner("m", base_url=broken.url, backoff=0.0).generate([prompt], Sampling(), [0])
    assert len(broken.requests) == 1  # a bad request is not retried
    down = server_factory()
    url = down.url
    down.close()
    with pytest.raises(MirdataError, match="cannot reach the server"):
        OpenAIRunner("m", base_url=url, backoff=0.0, timeout=5).generate([prompt], Sampling(), [0])


# -- predict -----------------------------------------------------------------------------------------------

def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_predict_end_to_end_with_the_tiny_model(tiny_vlm: Path, simple_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.jsonl"
    result = CliRunner().invoke(app, ["predict", str(simple_dataset), "--backend", "transformers", "--model",
                                      str(tiny_vlm), "--out", str(out), "--max-new-tokens", "6", "--batch-size", "8",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    lines = _lines(out)
    ids = [r.id for r in MIRStore(simple_dataset).read()]
    assert [line["id"] for line in lines] == ids
    assert all(isinstance(line["response"], str) and line["model"] == str(tiny_vlm) for line in lines)
    assert "rotation" not in lines[0]
    evaluated = CliRunner().invoke(app, ["evaluate", str(simple_dataset), str(out), "--json", str(tmp_path / "e.json")])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((tmp_path / "e.json").read_text())
    records = {r.id: r for r in MIRStore(simple_dataset).read()}
    answers = [extract_answer(line["response"], records[line["id"]].options) for line in lines]
    assert report["overall"] == {
        "n": len(ids), "correct": sum(a == records[line["id"]].answer for a, line in zip(answers, lines)),
        "accuracy": report["overall"]["accuracy"], "unanswered": sum(a is None for a in answers)}
    assert {task: t["n"] for task, t in report["by_task"].items()} == {task: 2 for task in task_names()}


def test_predict_circular_writes_every_rotation_and_resumes_after_a_torn_line(simple_dataset: Path,
                                                                              tmp_path: Path) -> None:
    records = MIRStore(simple_dataset).read()
    runner = ScriptedRunner(lambda prompt, k, seed: "The answer is A.")
    out = tmp_path / "preds.jsonl"
    settings = PredictSettings(batch_size=5, circular=True)
    summary = predict(simple_dataset, runner, out, settings, show_progress=False)
    assert summary["prompts"] == sum(len(r.options) for r in records) == len(_lines(out))
    assert {(line["id"], line["rotation"]) for line in _lines(out)} == \
        {(r.id, k) for r in records for k in range(len(r.options))}
    # a kill mid-write leaves a torn last line and loses the rest: the rerun drops the torn line, asks the rest
    text = out.read_text()
    keep = text.splitlines(keepends=True)[:20]
    out.write_text("".join(keep) + keep[-1][:15])
    runner.calls.clear()
    again = predict(simple_dataset, runner, out, settings, show_progress=False)
    assert again["asked_this_run"] == sum(runner.calls) == summary["prompts"] - 20
    lines = _lines(out)
    assert len(lines) == summary["prompts"]
    assert len({(line["id"], line["rotation"]) for line in lines}) == len(lines)
    with pytest.raises(MirdataError, match="holds responses of another model"):
        predict(simple_dataset, ScriptedRunner(runner.respond, model="other"), out, settings, show_progress=False)


def test_predict_rejects_bad_settings() -> None:
    with pytest.raises(MirdataError, match="top-p"):
        PredictSettings(top_p=0.0)
    with pytest.raises(MirdataError, match="batch-size"):
        PredictSettings(batch_size=0)


# -- one model stack -------------------------------------------------------------------------------------------

def test_one_loaded_model_serves_annotate_and_predict(tiny_runner, tiny_vlm: Path, tmp_path: Path) -> None:
    """The same TransformersRunner drafts reasoning for `annotate` (text turns whose questions hold `<image>`
    placeholders as text; each reply continues its JSON start) and answers image prompts for `predict`."""
    import json as json_

    from conftest import write_simple_dataset

    from mirdata.annotate import annotate_dir
    from mirdata.annotate.llm import reply_prefix
    from mirdata.schema.tasks import STAGES

    root = tmp_path / "one"
    MIRStore(root).write(write_simple_dataset(root, per_task=1)[:1])
    summary = annotate_dir(root, annotator="llm", backend=tiny_runner, rounds=1, max_new_tokens=4,
                           show_progress=False)
    assert (summary["backend"], summary["model"]) == ("transformers", tiny_vlm.name)
    assert summary["requests"] == len(STAGES) and summary["cached"] == 0
    replies = [json_.loads(p.read_text())["reply"] for p in (root / ".cache" / "annotate").rglob("*.json")]
    # every reply goes on from its stage's JSON start: one reply per stage, each beginning with that start
    assert sorted(next(s for s in STAGES if r.startswith(reply_prefix(s))) for r in replies) == sorted(STAGES)

    out = tmp_path / "preds.jsonl"
    done = predict(root, tiny_runner, out, PredictSettings(max_new_tokens=4), show_progress=False)
    assert done["prompts"] == 1 and _lines(out)[0]["model"] == tiny_runner.model
