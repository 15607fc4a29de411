"""`mirdata push` against a local stand-in for the Hub's HTTP API: the calls it makes and its error lines."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub
import pytest
import yaml
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.errors import MirdataError
from mirdata.release import push_dataset

TOKEN = "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"


class StandInHub(ThreadingHTTPServer):
    """Answers the few endpoints an upload of small files uses, and records every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization header
        self.created: list[dict] = []
        self.validated: list[str] = []  # README.md contents checked through /api/validate-yaml
        self.branches: list[str] = []
        self.commits: list[dict] = []  # {"revision", "header", "files": {path: bytes}}
        self.refuse: dict[str, int] = {}  # path prefix -> status to answer instead
        self.lfs = False  # True: ask for every file through the large-file (hf_xet) path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: StandInHub

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            self.send_header("X-Error-Message", body.get("error", ""))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, self.headers.get("Authorization")))
        for prefix, status in self.server.refuse.items():
            if self.path.startswith(prefix):
                return self._reply(status, {"error": f"refused with {status}"})
        self._reply(404, {"error": "not served by the stand-in"})

    def do_POST(self) -> None:
        hub = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        hub.requests.append(("POST", self.path, self.headers.get("Authorization")))
        for prefix, status in hub.refuse.items():
            if self.path.startswith(prefix):
                return self._reply(status, {"error": f"refused with {status}"})
        parts = self.path.split("?")[0].strip("/").split("/")
        if self.path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            try:
                yaml.safe_load(content.split("---\n")[1])
            except yaml.YAMLError as e:
                return self._reply(400, {"errors": [{"message": f"YAML does not parse: {e.problem}"}]})
            hub.validated.append(content)
            return self._reply(200, {"warnings": []})
        if self.path == "/api/repos/create":
            request = json.loads(body)
            hub.created.append(request)
            repo = f"{request['organization']}/{request['name']}"
            return self._reply(200, {"url": f"{hub.url}/datasets/{repo}"})
        if parts[:2] == ["api", "datasets"] and parts[4] == "branch":
            hub.branches.append("/".join(parts[5:]))
            return self._reply(200, {})
        if parts[:2] == ["api", "datasets"] and parts[4] == "preupload":
            files = json.loads(body)["files"]
            return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "lfs" if hub.lfs else "regular",
                                                "shouldIgnore": False,
                                                "oid": None} for f in files]})
        if parts[:2] == ["api", "datasets"] and parts[4] == "commit":
            commit = {"revision": "/".join(parts[5:]), "files": {}}
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "header":
                    commit["header"] = item["value"]
                elif item["key"] == "file":
                    commit["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            hub.commits.append(commit)
            repo = "/".join(parts[2:4])
            return self._reply(200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/{'1' * 40}", "commitOid": "1" * 40,
                                     "pullRequestUrl": None})
        self._reply(404, {"error": f"no such endpoint {self.path}"})


@pytest.fixture
def hub() -> Iterator[StandInHub]:
    server = StandInHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return TOKEN


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))


@pytest.fixture
def release_dir(tmp_path: Path) -> Path:
    """A small folder shaped like a release (what push checks and uploads)."""
    repo = tmp_path / "repo"
    (repo / "data" / "spatial" / "view_3d").mkdir(parents=True)
    (repo / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# MIR\n")
    (repo / "data" / "spatial" / "view_3d" / "easy-00000-of-00001.parquet").write_bytes(bytes(range(256)) * 40)
    (repo / "original").mkdir()
    (repo / "original" / "all_data_rel.json").write_text("[]")
    (repo / "original" / ".all_data_rel.json.123.tmp").write_text("half-written")
    return repo


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")}


def test_push_creates_the_dataset_repo_and_uploads_every_file(hub, token, release_dir):
    url = push_dataset(release_dir, "someone/mir", private=True, endpoint=hub.url)
    assert url == f"{hub.url}/datasets/someone/mir"
    [created] = hub.created
    assert (created["organization"], created["name"], created["type"]) == ("someone", "mir", "dataset")
    assert created.get("visibility") == "private" or created.get("private") is True
    uploaded = {path: data for commit in hub.commits for path, data in commit["files"].items()}
    assert uploaded == local_files(release_dir)  # the half-written .tmp file stays home
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in hub.requests)
    assert {c["revision"] for c in hub.commits} == {"main"}
    assert hub.validated == [(release_dir / "README.md").read_text()]


def test_card_metadata_the_hub_refuses_is_named(hub, token, release_dir):
    (release_dir / "README.md").write_text("---\nlicense: [cc-by-4.0\n---\n# MIR\n")
    with pytest.raises(MirdataError, match=r"^README\.md: the Hub refused the card's metadata: YAML does not parse"):
        push_dataset(release_dir, "someone/mir", endpoint=hub.url)
    assert hub.commits == []


def test_push_to_a_branch_creates_it_and_commits_there(hub, token, release_dir):
    push_dataset(release_dir, "someone/mir", revision="v2", endpoint=hub.url)
    assert hub.branches == ["v2"]
    assert hub.commits and {c["revision"] for c in hub.commits} == {"v2"}
    # without --private the namespace's default visibility applies
    assert "private" not in hub.created[0] and "visibility" not in hub.created[0]


def test_without_a_token_push_fails_with_one_clear_line(no_token, release_dir, hub):
    with pytest.raises(MirdataError, match=r"^no Hugging Face token: set HF_TOKEN or log in"):
        push_dataset(release_dir, "someone/mir", endpoint=hub.url)
    assert hub.requests == []
    result = CliRunner().invoke(app, ["push", str(release_dir), "--repo-id", "someone/mir"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: no Hugging Face token: set HF_TOKEN or log in with `hf auth login`"]


@pytest.mark.parametrize("status, expected", [
    (401, "refused the token (401 Unauthorized)"),
    (403, "refused permission to write to someone/mir (403 Forbidden)"),
    (500, "answered 500 while pushing someone/mir"),
])
def test_refusals_become_one_line_without_the_token(hub, token, release_dir, status, expected):
    hub.refuse["/api/repos/create"] = status
    with pytest.raises(MirdataError) as err:
        push_dataset(release_dir, "someone/mir", endpoint=hub.url)
    message = str(err.value)
    assert expected in message and "\n" not in message and TOKEN not in message
    assert hub.commits == []


def test_refused_commit_is_reported_too(hub, token, release_dir):
    hub.refuse["/api/datasets/someone/mir/commit"] = 403
    with pytest.raises(MirdataError, match="403 Forbidden"):
        push_dataset(release_dir, "someone/mir", endpoint=hub.url)


def test_network_failure_is_one_line(token, release_dir):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MirdataError, match=r"^network failure talking to http://127\.0\.0\.1:\d+ .*resumes$") as err:
        push_dataset(release_dir, "someone/mir", endpoint=f"http://127.0.0.1:{port}")
    assert TOKEN not in str(err.value)


def test_offline_mode_is_named(hub, token, release_dir, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(MirdataError, match="^HF_HUB_OFFLINE is set: unset it to push to the Hub$"):
        push_dataset(release_dir, "someone/mir", endpoint=hub.url)
    assert hub.requests == []


def test_cli_push_reports_refused_permission(hub, token, release_dir, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)  # what HF_ENDPOINT sets
    hub.refuse["/api/repos/create"] = 403
    result = CliRunner().invoke(app, ["push", str(release_dir), "--repo-id", "someone/mir", "--private"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "403 Forbidden" in lines[0]
    assert TOKEN not in result.output


def test_bad_arguments_are_refused_before_any_request(hub, token, release_dir, tmp_path):
    with pytest.raises(MirdataError, match="not a release folder"):
        push_dataset(tmp_path / "nothing", "someone/mir", endpoint=hub.url)
    with pytest.raises(MirdataError, match="OWNER/NAME"):
        push_dataset(release_dir, "just-a-name", endpoint=hub.url)
    assert hub.requests == []


@pytest.mark.parametrize("status, expected", [
    (401, "refused the token (401 Unauthorized)"),
    (403, "refused permission to write to someone/mir (403 Forbidden)"),
])
def test_refusals_inside_the_large_file_transfer_are_one_line_too(hub, token, release_dir, monkeypatch, status,
                                                                   expected):
    """Large files go through hf_xet, which raises its own errors (ConnectionError with the status in the text)."""
    hub.lfs = True
    hub.refuse["/api/datasets/someone/mir/xet-write-token/"] = status
    with pytest.raises(MirdataError) as err:
        push_dataset(release_dir, "someone/mir", endpoint=hub.url)
    message = str(err.value)
    assert expected in message and "\n" not in message and TOKEN not in message
    assert any("xet-write-token" in path for _, path, _ in hub.requests)  # the transfer layer was reached
    assert hub.commits == []

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    result = CliRunner().invoke(app, ["push", str(release_dir), "--repo-id", "someone/mir"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {message}"]
