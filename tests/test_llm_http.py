"""The OpenAI-compatible backend and the multi-round loop against a chat server the tests run on localhost."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import write_simple_dataset

from mirdata.annotate import annotate_dir, check_stages
from mirdata.models import ModelError, Prompt, Sampling
from mirdata.models.server import OpenAIRunner
from mirdata.schema.record import Record
from mirdata.store import MIRStore
from mirdata.validate import validate_dir

API_KEY = "sk-test-8f3a61d0c2b94e7aa5c1"
MESSAGES = [{"role": "user", "content": "Say hi as JSON."}]


class ChatServer:
    """A chat-completions server on a free port. `script` lists what the first requests get ("429", "500",
    "timeout", "malformed", "401", "hang"); every later request gets `answer(request body)` as the reply."""

    def __init__(self, answer: Callable[[dict], str] = lambda body: '{"ok": "hi"}', script: tuple[str, ...] = (),
                 delay: float = 1.0):
        self.answer = answer
        self.script = list(script)
        self.delay = delay
        self.requests: list[dict] = []  # every request body, in arrival order
        self.headers: list[dict[str, str]] = []
        self.answered: Counter[str] = Counter()  # sha256 of each body the server answered, with a count
        self.hung = threading.Event()  # set when a request is held with "hang"
        self.release = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with server.lock:
                    server.requests.append(json.loads(raw))
                    server.headers.append(dict(self.headers))
                    behaviour = server.script.pop(0) if server.script else "answer"
                if behaviour == "429":
                    self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
                elif behaviour == "500":
                    self._send(500, b'{"error": "boom"}')
                elif behaviour == "401":
                    echoed = f'{{"error": "bad key {self.headers.get("Authorization")}"}}'
                    self._send(401, echoed.encode())
                elif behaviour == "timeout":
                    time.sleep(server.delay)
                    self._send(200, _completion('{"late": "yes"}'))
                elif behaviour == "malformed":
                    self._send(200, b'{"choices": [{"message": ')
                elif behaviour == "hang":
                    server.hung.set()
                    server.release.wait(30)
                else:
                    reply = server.answer(json.loads(raw))
                    with server.lock:
                        server.answered[hashlib.sha256(raw).hexdigest()] += 1
                    self._send(200, _completion(reply))

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def __enter__(self) -> ChatServer:  # noqa: PYI034 (a plain class, never subclassed)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(content: str) -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()


def _client(server: ChatServer, **kw: object) -> OpenAIRunner:
    return OpenAIRunner("fake-model", base_url=server.url, api_key=API_KEY, backoff=0.01, **kw)


def _ask(runner: OpenAIRunner, sampling: Sampling = Sampling()) -> str:
    (replies,) = runner.generate([Prompt.from_messages(MESSAGES)], sampling)
    return replies[0]


# -- the HTTP backend ----------------------------------------------------------------------------------------

def test_retries_429_500_timeout_and_malformed_json_then_succeeds():
    with ChatServer(script=("429", "500", "timeout", "malformed")) as server:
        reply = _ask(_client(server, timeout=0.3), Sampling(max_new_tokens=7))
    assert reply == '{"ok": "hi"}'
    assert len(server.requests) == 5
    body = server.requests[-1]
    assert body["model"] == "fake-model" and body["messages"] == MESSAGES and body["max_tokens"] == 7
    assert all(h["Authorization"] == f"Bearer {API_KEY}" for h in server.headers)


def test_gives_up_after_the_last_retry_and_says_why():
    with ChatServer(script=("500",) * 3) as server, \
            pytest.raises(ModelError, match=r"no answer after 3 tries \(last: HTTP 500\)"):
        _ask(_client(server, retries=2))
    assert len(server.requests) == 3


def test_client_errors_are_not_retried_and_never_show_the_key():
    with ChatServer(script=("401",)) as server, pytest.raises(ModelError) as err:
        _ask(_client(server))
    assert len(server.requests) == 1
    assert "HTTP 401" in str(err.value) and "Bearer ***" in str(err.value)
    assert API_KEY not in str(err.value) and API_KEY not in repr(_client(server))


def test_concurrent_batch_returns_every_reply_at_its_position():
    def echo(body: dict) -> str:
        return json.dumps({"echo": body["messages"][0]["content"]})

    conversations = [[{"role": "user", "content": f"question {i}"}] for i in range(12)]
    with ChatServer(answer=echo, script=("500", "429")) as server:
        prompts = [Prompt.from_messages(c) for c in conversations]
        replies = dict(_client(server, concurrency=4).stream(prompts, Sampling()))
    assert sorted(replies) == list(range(12))
    assert all(json.loads(replies[i][0])["echo"] == f"question {i}" for i in range(12))
    assert len(server.requests) == 14


# -- the multi-round loop, with a scripted model ---------------------------------------------------------------

def handmade_dataset(root: Path, per_task: int = 1) -> list[Record]:
    """Schema-valid records whose meta holds facts but no build provenance, as imported records have: their
    tasks' templates cannot replay them, so the records' own (checked) stages are the fallback."""
    records = write_simple_dataset(root, per_task=per_task)
    for r in records:
        r.meta = {"facts": r.meta["facts"]}
    MIRStore(root).write(records)
    return records


def _stage(body: dict) -> str:
    return re.search(r"Write the (\w+) stage", body["messages"][1]["content"]).group(1)


def _reference(body: dict, stage: str) -> str:
    prompt = body["messages"][1]["content"]
    return re.search(rf"Reference {stage} \(.*?\):\n(.*?)\n\n", prompt, re.DOTALL).group(1)


def _answer_letter(body: dict) -> str:
    return re.search(r"Correct answer: ([A-Z])", body["messages"][1]["content"]).group(1)


def scripted_model(body: dict) -> str:
    """Round 1 (2 messages) and round 2 (4 messages) drafts, each stage failing or passing on purpose."""
    stage, round_no = _stage(body), len(body["messages"]) // 2
    if stage == "summary":  # chatty but right at once
        return 'Sure! Here it is:\n```json\n{"summary": "Compare the square in each image, then pick the larger.",}\n```'
    if stage == "caption":  # one caption short, then fixed
        n = 1 if round_no == 1 else 2
        return json.dumps({"caption": [f"A red square in image {k + 1}." for k in range(n)]})
    if stage == "text2region":  # a region that does not exist, twice
        return '{"text2region": "\'the larger square\' refers to [r9] in image 1."}'
    if stage == "region2region":  # a number the facts do not back, twice
        return '{"region2region": "[r0] has side 999 px and [r1] is bigger."}'
    letter = _answer_letter(body)
    wrong = "B" if letter == "A" else "A"
    return json.dumps({"conclusion": f"So the answer is {wrong if round_no == 1 else letter}."})


def test_loop_sends_failures_back_and_never_keeps_a_failing_draft(tmp_path):
    originals = {r.id: r for r in handmade_dataset(tmp_path)}
    with ChatServer(answer=scripted_model) as server:
        summary = annotate_dir(tmp_path, annotator="llm", backend="openai", model="fake-model",
                               base_url=server.url, api_key=API_KEY, rounds=2, workers=3, show_progress=False)
    assert summary["requests"] == 12 * 9 and summary["cached"] == 0  # 5 drafts, then 4 revisions per record
    assert summary["sources"] == {"summary": {"llm": 12}, "caption": {"llm": 12}, "text2region": {"existing": 12},
                                  "region2region": {"existing": 12}, "conclusion": {"llm": 12}}
    assert summary["failing"] == 0 and summary["no_template"] == 12

    revisions = [b for b in server.requests if len(b["messages"]) == 4]
    t2r = next(b for b in revisions if _stage(b) == "text2region")
    assert "[r9]" in t2r["messages"][2]["content"]  # the model sees its own draft ...
    assert "r9 that do not exist" in t2r["messages"][3]["content"]  # ... and what is wrong with it

    for record in MIRStore(tmp_path).read():
        original, stages = originals[record.id], record.meta["annotation"]["stages"]
        assert record.meta["annotation"]["model"] == "fake-model" and record.meta["annotation"]["rounds"] == 2
        assert check_stages(record) == []
        assert record.summary == "Compare the square in each image, then pick the larger."
        assert stages["summary"]["rounds"] == 1 and stages["summary"]["checks"] == [{"round": 1, "problems": []}]
        assert record.caption == ["A red square in image 1.", "A red square in image 2."]
        assert stages["caption"]["checks"][0]["problems"] == ["1 captions for 2 images"]
        assert record.conclusion.endswith(f"the answer is {record.answer}.")
        assert [len(c["problems"]) for c in stages["conclusion"]["checks"]] == [1, 0]
        for stage in ("text2region", "region2region"):  # failed both rounds: the fallback text stays
            assert getattr(record, stage) == getattr(original, stage)
            assert stages[stage]["source"] == "existing" and stages[stage]["rounds"] == 2
            assert all(c["problems"] for c in stages[stage]["checks"])
            assert re.fullmatch(r"[0-9a-f]{16}", stages[stage]["prompt_hash"])
    assert validate_dir(tmp_path).ok


def _good_model(body: dict) -> str:
    """A model that rewrites nothing: the reference text, which passes the checker."""
    stage = _stage(body)
    reference = _reference(body, stage)
    return json.dumps({stage: json.loads(reference) if stage == "caption" else reference})


def test_killed_run_resumes_from_the_cache_and_no_key_is_written_or_printed(tmp_path, capsys):
    root = tmp_path / "data"
    handmade_dataset(root)
    before = (root / "records.jsonl").read_bytes()
    answered_before_kill = 17
    script = ("answer",) * answered_before_kill + ("hang",)
    with ChatServer(answer=_good_model, script=script) as server:
        env = {**os.environ, "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": server.url}
        proc = subprocess.Popen([sys.executable, "-m", "mirdata", "annotate", str(root), "--annotator", "llm",
                                 "--backend", "openai", "--model", "fake-model"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            while not server.hung.wait(0.2) and proc.poll() is None:
                pass  # wait for the held request, or for the run to end on its own (a failure)
        finally:
            proc.kill()
            out, err = proc.communicate()
        assert server.hung.is_set(), f"the run ended before the held request: {err.decode()[-2000:]}"
        assert proc.returncode != 0
        assert (root / "records.jsonl").read_bytes() == before  # nothing half-written
        assert sum(server.answered.values()) == answered_before_kill

        summary = annotate_dir(root, annotator="llm", backend="openai", model="fake-model", base_url=server.url,
                               api_key=API_KEY, show_progress=True)
    assert summary["cached"] == answered_before_kill
    assert summary["requests"] == 12 * 5 - answered_before_kill
    assert max(server.answered.values()) == 1  # no question was answered twice
    assert all(h.get("Authorization") == f"Bearer {API_KEY}" for h in server.headers)
    assert summary["sources"]["conclusion"] == {"llm": 12} and validate_dir(root).ok

    captured = capsys.readouterr()
    printed = out + err + (captured.out + captured.err).encode()
    assert API_KEY.encode() not in printed
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(".cache" in p.parts for p in written)
    assert not [p for p in written if API_KEY.encode() in p.read_bytes()]


def test_build_with_the_llm_annotator_annotates_what_it_built(tmp_path):
    from typer.testing import CliRunner

    from mirdata.cli import app

    out = tmp_path / "built"
    with ChatServer(answer=_good_model) as server:
        result = CliRunner().invoke(app, ["build", "--task", "chart_analysis", "--task", "view_3d", "--num", "1",
                                          "--image-size", "224x168", "--out", str(out), "--annotator", "llm",
                                          "--backend", "openai", "--model", "fake-model", "--base-url", server.url,
                                          "--rounds", "3"])
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 2 * 5  # the template text passes at once: one draft per stage
    records = MIRStore(out).read()
    assert [r.task for r in records] == ["view_3d", "chart_analysis"]
    for record in records:
        annotation = record.meta["annotation"]
        assert (annotation["annotator"], annotation["model"], annotation["rounds"]) == ("llm", "fake-model", 3)
        assert {e["source"] for e in annotation["stages"].values()} == {"llm"}
    assert json.loads((out / "build.json").read_text())["annotation"]["requests"] == 10
    assert validate_dir(out).ok


def test_the_backend_follows_from_the_options(tmp_path, monkeypatch):
    from mirdata.annotate.runner import annotation_model
    from mirdata.errors import MirdataError

    def make_backend(*args: object, **kw: object):
        return annotation_model(*args, **kw).load()

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MirdataError, match="needs --backend"):
        make_backend(None, "some-model")
    chat = make_backend(None, "served-model", base_url="http://127.0.0.1:9/v1/")
    assert (chat.backend, chat.url, chat.name) == ("openai", "http://127.0.0.1:9/v1/chat/completions", "served-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.1:8000/v1")
    assert make_backend(None, "served-model").url == "http://10.0.0.1:8000/v1/chat/completions"
    with pytest.raises(MirdataError, match="needs --model"):
        make_backend("openai", None)
    with pytest.raises(MirdataError, match="no such model file"):
        make_backend("transformers", str(tmp_path / "missing.gguf"))
    with pytest.raises(MirdataError, match="must be openai or transformers"):
        make_backend("vllm", "m")
