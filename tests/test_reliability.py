"""The package's promises under attack and faults, each through the `mirdata` command: no key or token is
printed or stored, nothing outside DIR is read, one writer at a time, no check fails open, every bad input and
every file-system failure is one line naming the file, no network wait is unbounded, no leftovers."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PIL import Image
from typer.testing import CliRunner

from mirdata.cli import app
from mirdata.store import LOCK, PARTS, MIRStore
from tests.conftest import LocalJSONServer, write_simple_dataset

KEY = "sk-test-0123456789abcdefSECRET"
cli = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):
    return cli.invoke(app, [str(a) for a in args], env=env)


def one_error_line(result) -> str:
    """The command failed with exactly one 'error: ...' line and no traceback; returns that line."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "mir"
    write_simple_dataset(root, per_task=1)
    return root


def rate_all(root: Path) -> None:
    store = MIRStore(root)
    raw = store.read_raw()
    for k, r in enumerate(raw):
        r["pass_rate"], r["difficulty"] = (0.0, "hard") if k % 2 else (1.0, "easy")
    store.write(raw)


# -- a local OpenAI-compatible server that misbehaves ----------------------------------------------------------

class EchoServer(LocalJSONServer):
    """Answers every chat request with `status` and a body that echoes the request's Authorization header."""

    def __init__(self, status: int):
        self.requests = 0
        self.status = status
        super().__init__(self._respond)

    def _respond(self, path: str, headers, raw: bytes) -> tuple[int, dict]:
        self.requests += 1
        echoed = f"Authorization: {headers.get('Authorization')}"
        if self.status == 200:
            return 200, {"choices": [{"message": {"role": "assistant", "content": f"{echoed}. Your option: A"}}]}
        return self.status, {"error": {"message": f"invalid key; you sent {echoed}"}}


@pytest.fixture
def echo_401() -> Iterator[EchoServer]:
    server = EchoServer(401)
    yield server
    server.close()


@pytest.fixture
def echo_200() -> Iterator[EchoServer]:
    server = EchoServer(200)
    yield server
    server.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket on 127.0.0.1 that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


# -- secrets ----------------------------------------------------------------------------------------------------

class TestSecrets:
    def test_a_401_that_echoes_the_key_prints_no_key(self, dataset: Path, echo_401: EchoServer) -> None:
        result = run("difficulty", dataset, "--backend", "openai", "--model", "m", "--base-url", echo_401.url,
                     "--api-key", KEY, "--samples", "1", "--retries", "0")
        line = one_error_line(result)
        assert "HTTP 401" in line and "***" in line
        assert KEY not in result.output and "0123456789abcdef" not in result.output

    def test_a_key_echoed_in_a_reply_is_never_stored(self, dataset: Path, echo_200: EchoServer) -> None:
        result = run("difficulty", dataset, "--backend", "openai", "--model", "m", "--base-url", echo_200.url,
                     "--api-key", KEY, "--samples", "1", "--threshold", "0.5")
        assert result.exit_code == 0, result.output
        assert echo_200.requests == 12
        cached = list((dataset / ".cache").rglob("*.json"))
        assert cached and all(KEY.encode() not in p.read_bytes() for p in cached)
        assert b"Authorization: Bearer ***" in cached[0].read_bytes()
        assert KEY.encode() not in all_bytes(dataset)

    def test_annotate_stores_no_echoed_key(self, dataset: Path, echo_200: EchoServer) -> None:
        result = run("annotate", dataset, "--annotator", "llm", "--backend", "openai", "--model", "m",
                     "--base-url", echo_200.url, "--rounds", "1", env={"OPENAI_API_KEY": KEY})
        assert result.exit_code == 0, result.output
        assert echo_200.requests > 0
        assert KEY.encode() not in all_bytes(dataset) and KEY not in result.output


# -- reads outside DIR ---------------------------------------------------------------------------------------------

def point_outside(root: Path, tmp_path: Path) -> tuple[Path, bytes]:
    """Replace the first record's second image by a symlink to a PNG outside DIR; returns it and its bytes."""
    secret = tmp_path / "outside" / "private.png"
    secret.parent.mkdir()
    Image.new("RGB", (96, 64), (1, 2, 3)).save(secret)
    image = root / MIRStore(root).read_raw()[0]["images"][1]
    image.unlink()
    image.symlink_to(secret)
    return secret, secret.read_bytes()


class TestOutsideDir:
    def test_preview_refuses_a_symlink_out_of_dir(self, dataset: Path, tmp_path: Path) -> None:
        secret, _ = point_outside(dataset, tmp_path)
        page = tmp_path / "page.html"
        line = one_error_line(run("preview", dataset, "--out", page))
        assert f"resolves to {secret}, outside {dataset}" in line
        assert not page.exists()

    def test_validate_reports_a_symlink_out_of_dir(self, dataset: Path, tmp_path: Path) -> None:
        secret, _ = point_outside(dataset, tmp_path)
        result = run("validate", dataset, "--json")
        assert result.exit_code == 1
        [failure] = json.loads(result.output)["failures"]
        assert failure["field"] == "images[1]" and f"resolves to {secret}" in failure["problem"]

    def test_release_ships_no_outside_file(self, dataset: Path, tmp_path: Path) -> None:
        _, secret_bytes = point_outside(dataset, tmp_path)
        rate_all(dataset)
        line = one_error_line(run("release", dataset, "--out", tmp_path / "repo"))
        assert "images[1]" in line and "outside" in line
        assert not (tmp_path / "repo").exists()

    def test_predict_sends_no_outside_file(self, dataset: Path, tmp_path: Path, echo_200: EchoServer) -> None:
        point_outside(dataset, tmp_path)
        result = run("predict", dataset, "--backend", "openai", "--model", "m", "--base-url", echo_200.url,
                     "--out", tmp_path / "predictions.jsonl")
        assert "outside" in one_error_line(result)
        assert echo_200.requests == 0

    def test_export_names_no_outside_file(self, dataset: Path, tmp_path: Path) -> None:
        point_outside(dataset, tmp_path)
        rate_all(dataset)
        result = run("export", dataset, "--format", "swift", "--stage", "0", "--out", tmp_path / "stage0.jsonl")
        assert "outside" in one_error_line(result)

    def test_a_nul_in_an_image_path_is_one_failure(self, dataset: Path) -> None:
        store = MIRStore(dataset)
        raw = store.read_raw()
        raw[2]["images"][0] = "images/a\x00b.png"
        store.write(raw)
        result = run("validate", dataset, "--json")
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert [f["line"] for f in json.loads(result.output)["failures"]] == [3]


# -- one writer at a time -----------------------------------------------------------------------------------------

class TestConcurrentWriters:
    @pytest.mark.parametrize("command", [
        ["annotate"],
        ["build", "--task", "view_3d", "--num", "1", "--image-size", "64x48", "--out"],
        ["difficulty", "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"],
    ], ids=lambda c: c[0])
    def test_a_second_writer_is_refused_while_one_works(self, dataset: Path, command: list[str]) -> None:
        before = (dataset / "records.jsonl").read_bytes()
        with MIRStore(dataset).writing("build"):  # a build at work in this folder
            args = [*command, dataset] if command[-1] == "--out" else [command[0], dataset, *command[1:]]
            line = one_error_line(run(*args))
            assert f"pid {os.getpid()}" in line and "`mirdata build`" in line
            assert "pid" in json.loads((dataset / LOCK).read_text()) and "another writer" in line
        assert (dataset / "records.jsonl").read_bytes() == before
        assert not (dataset / LOCK).exists()

    def test_a_stale_lock_of_a_dead_process_is_taken_over(self, dataset: Path) -> None:
        dead = subprocess.Popen(["true"])
        dead.wait()
        (dataset / LOCK).write_text(json.dumps({"pid": dead.pid, "command": "build"}))
        assert run("annotate", dataset).exit_code == 0
        assert not (dataset / LOCK).exists()

    def test_a_build_never_adopts_a_failed_imports_records(self, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        examples = Path(__file__).resolve().parents[1] / "examples"
        out = tmp_path / "mir"
        real_save = MIRStore.save_image
        saved: list[str] = []

        def disk_full_after_three(self: MIRStore, relpath: str, image, fmt=None) -> str:
            if len(saved) == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root / relpath))
            saved.append(relpath)
            return real_save(self, relpath, image, fmt)

        monkeypatch.setattr(MIRStore, "save_image", disk_full_after_three)
        line = one_error_line(run("import-upstream", examples / "all_data_rel.json", examples / "images.zip",
                                  "--out", out))
        assert line.endswith("No space left on device") and str(out) in line
        monkeypatch.setattr(MIRStore, "save_image", real_save)
        result = run("build", "--task", "image_puzzle", "--num", "1", "--out", out, "--image-size", "64x48")
        assert result.exit_code == 0, result.output
        assert [r["task"] for r in MIRStore(out).read_raw()] == ["image_puzzle"]


# -- no check fails open -------------------------------------------------------------------------------------------

class TestFailOpen:
    def test_many_options_do_not_switch_off_the_label_check(self, dataset: Path) -> None:
        store = MIRStore(dataset)
        raw = store.read_raw()
        raw[0]["options"] = [f"{chr(65 + k % 26)}. option {k}" for k in range(27)]
        raw[5]["options"] = ["A. the first image", "C. the second image"]
        store.write(raw)
        failures = json.loads(run("validate", dataset, "--json", "--no-files").output)["failures"]
        assert {(f["line"], f["field"]) for f in failures if "contiguous" in f["problem"]} == {(1, "options"),
                                                                                            (6, "options")}

    def test_release_refuses_what_validate_refuses(self, dataset: Path, tmp_path: Path) -> None:
        rate_all(dataset)
        store = MIRStore(dataset)
        raw = store.read_raw()
        image = dataset / raw[4]["images"][0]
        Image.open(image).convert("RGB").save(image.with_suffix(".jpg"), quality=90)
        image.unlink()
        data = image.with_suffix(".jpg").read_bytes()
        image.with_suffix(".jpg").write_bytes(data[: len(data) // 2])  # a truncated JPEG
        raw[4]["images"][0] = raw[4]["images"][0].removesuffix(".png") + ".jpg"
        raw[7]["regions"][0]["box"] = [-5, 2, 20, 20]  # a negative box
        store.write(raw)
        assert run("validate", dataset).exit_code == 1
        line = one_error_line(run("release", dataset, "--out", tmp_path / "repo"))
        assert "2 failures" in line and "images[0]" in line and "regions" in line
        assert not (tmp_path / "repo").exists()

    @pytest.mark.parametrize("field, value, problem", [
        ("pass_rate", "NaN", "not usable JSON (NaN is not a JSON number)"),
        ("answer", '"E"', "answer 'E' is not one of the option letters (A, B)"),
    ])
    def test_import_checks_items_before_writing_anything(self, tmp_path: Path, field: str, value: str,
                                                         problem: str) -> None:
        folder = tmp_path / "upstream"
        (folder / "pics").mkdir(parents=True)
        for name in ("a.png", "b.png"):
            Image.new("RGB", (32, 24), "white").save(folder / "pics" / name)
        item = {"question": "<image> or <image>?", "images": ["pics/a.png", "pics/b.png"],
                "options": ["A. left", "B. right"], "summary": "s", "caption": ["c", "d"], "text2img": "t",
                "img2img": "i", "conclusion": "The answer is A.", "task": "view_3d", field: "__VALUE__"}
        (tmp_path / "items.json").write_text(json.dumps([item]).replace('"__VALUE__"', value))
        result = run("import-upstream", tmp_path / "items.json", folder, "--out", tmp_path / "mir")
        one_error_line(result)
        assert problem in result.output  # the line, or the list of items under it
        assert not (tmp_path / "mir" / "images").exists()

    def test_a_zip_of_zeros_writes_nothing(self, tmp_path: Path) -> None:
        archive = tmp_path / "images.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for name in ("pics/a.png", "pics/b.png"):
                z.writestr(name, b"\0" * 4_000_000)
        assert archive.stat().st_size < 100_000
        item = {"question": "<image> or <image>?", "images": ["pics/a.png", "pics/b.png"],
                "options": ["A. left", "B. right"], "summary": "s", "caption": ["c", "d"], "text2img": "t",
                "img2img": "i", "conclusion": "The answer is A.", "task": "view_3d"}
        (tmp_path / "items.json").write_text(json.dumps([item]))
        line = one_error_line(run("import-upstream", tmp_path / "items.json", archive, "--out", tmp_path / "mir"))
        assert "2 of 2 images cannot be imported, nothing was written" in line
        assert not (tmp_path / "mir" / "images").exists()
        line = one_error_line(run("import-upstream", tmp_path / "items.json", archive, "--out", tmp_path / "mir",
                                  "--max-total-mb", "5"))
        assert "unpacks to 8000000 bytes, more than the limit of 5242880 (--max-total-mb)" in line

    def test_a_second_import_keeps_the_first_imports_images(self, tmp_path: Path) -> None:
        out = tmp_path / "mir"
        colours = {}
        for run_number, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
            folder = tmp_path / f"upstream{run_number}"
            (folder / "pics").mkdir(parents=True)
            for name in ("a.png", "b.png"):
                Image.new("RGB", (32, 24), colour).save(folder / "pics" / name)
            item = {"id": f"item{run_number}", "question": "<image> or <image>?",
                    "images": ["pics/a.png", "pics/b.png"], "options": ["A. left", "B. right"], "summary": "s",
                    "caption": ["c", "d"], "text2img": "t", "img2img": "i", "conclusion": "The answer is A.",
                    "task": "view_3d"}
            (tmp_path / f"items{run_number}.json").write_text(json.dumps([item]))
            result = run("import-upstream", tmp_path / f"items{run_number}.json", folder, "--out", out)
            assert result.exit_code == 0, result.output
            colours[f"item{run_number}"] = colour
        records = MIRStore(out).read_raw()
        assert sorted(r["id"] for r in records) == ["item0", "item1"]
        for r in records:  # every record still shows its own pictures
            assert len(set(r["images"])) == 2
            for p in r["images"]:
                assert Image.open(out / p).convert("RGB").getpixel((5, 5)) == colours[r["id"]]


# -- malformed input -----------------------------------------------------------------------------------------------

# Each spoils a whole, valid record line in one way.
BAD_LINES = [
    (lambda line: line.replace(b'"summary":"', b'"summary":"caf\xe9 '), "not UTF-8 (byte 0xe9 at column"),
    (lambda line: b"[" * 100_000, "nested deeper than 64 levels"),
    (lambda line: line.replace(b'"meta":{', b'"meta":{"n":' + b"7" * 5000 + b","), "an integer of more than 4300 digits"),
    (lambda line: line.replace(b'"summary":"', b'"summary":"\\ud800'), "lone surrogate"),
]


class TestMalformedInput:
    @pytest.mark.parametrize("command", ["stats", "preview", "annotate", "export", "difficulty"])
    @pytest.mark.parametrize("bad, reason", BAD_LINES, ids=["utf8", "depth", "bigint", "surrogate"])
    def test_every_reader_names_file_line_and_reason(self, dataset: Path, tmp_path: Path, command: str,
                                                     bad, reason: str) -> None:
        lines = (dataset / "records.jsonl").read_bytes().splitlines(keepends=True)
        lines[2] = bad(lines[2].rstrip(b"\n")) + b"\n"
        assert lines[2] != (dataset / "records.jsonl").read_bytes().splitlines(keepends=True)[2]
        (dataset / "records.jsonl").write_bytes(b"".join(lines))
        extra = {"stats": [], "preview": ["--out", tmp_path / "p.html"], "annotate": [],
                 "export": ["--format", "upstream", "--out", tmp_path / "x.json"],
                 "difficulty": ["--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"]}
        line = one_error_line(run(command, dataset, *extra[command]))
        assert line.startswith(f"error: {dataset / 'records.jsonl'}:3: ") and reason in line

    def test_validate_lists_a_bad_line_as_a_failure(self, dataset: Path) -> None:
        lines = (dataset / "records.jsonl").read_bytes().splitlines(keepends=True)
        lines[1] = b"[" * 100_000 + b"\n"
        (dataset / "records.jsonl").write_bytes(b"".join(lines))
        result = run("validate", dataset, "--json")
        assert result.exit_code == 1
        [failure] = json.loads(result.output)["failures"]
        assert failure["line"] == 2 and "nested deeper than 64 levels" in failure["problem"]

    def test_a_decompression_bomb_is_refused_by_its_header(self, dataset: Path, tmp_path: Path) -> None:
        image = dataset / MIRStore(dataset).read_raw()[0]["images"][0]
        Image.new("1", (20_000, 10_000)).save(image)  # 200 megapixels in a small file
        assert image.stat().st_size < 1_000_000
        line = one_error_line(run("preview", dataset, "--out", tmp_path / "p.html", "--num", "1"))
        assert f"{image}: 20000x10000 is more than 64000000 pixels" in line or "more than" in line
        assert str(image) in line

    def test_an_image_path_that_is_a_folder(self, dataset: Path, tmp_path: Path) -> None:
        rate_all(dataset)
        image = dataset / MIRStore(dataset).read_raw()[0]["images"][0]
        image.unlink()
        image.mkdir()
        line = one_error_line(run("release", dataset, "--out", tmp_path / "repo"))
        assert "images[0]" in line and "is a folder" in line

    def test_bad_options_are_one_line(self, dataset: Path, tmp_path: Path) -> None:
        result = run("build", "--task", "view_3d", "--num", "1", "--seed", "-1", "--out", tmp_path / "b")
        assert result.exit_code == 2 and "Traceback" not in result.output and "--seed" in result.output
        a_file = tmp_path / "file"
        a_file.write_text("x")
        line = one_error_line(run("build", "--task", "view_3d", "--num", "1", "--out", a_file))
        assert f"{a_file}: is a file, not a folder" in line
        folder = tmp_path / "folder"
        folder.mkdir()
        line = one_error_line(run("preview", dataset, "--out", folder))
        assert line == f"error: {folder}: Is a directory"


# -- the file system fails -----------------------------------------------------------------------------------------

@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch):
    """Make every rename into `root` fail as a full (or read-only) disk would."""
    real_replace = os.replace

    def arm(root: Path, code: int = errno.ENOSPC) -> None:
        def replace(src, dst, *args, **kwargs):
            if str(dst).startswith(str(root)):
                raise OSError(code, os.strerror(code))
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)

    return arm


class TestDiskFull:
    @pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
    def test_annotate_names_the_file_and_keeps_the_records(self, dataset: Path, full_disk, code: int) -> None:
        before = (dataset / "records.jsonl").read_bytes()
        full_disk(dataset, code)
        line = one_error_line(run("annotate", dataset))
        assert line == f"error: {dataset / 'records.jsonl'}: {os.strerror(code)}"
        assert (dataset / "records.jsonl").read_bytes() == before
        assert not list(dataset.rglob("*.tmp"))

    def test_build_names_the_file(self, tmp_path: Path, full_disk) -> None:
        out = tmp_path / "b"
        full_disk(out)
        line = one_error_line(run("build", "--task", "image_puzzle", "--num", "1", "--out", out,
                                  "--image-size", "64x48"))
        assert line.startswith(f"error: {out}/") and line.endswith("No space left on device")

    def test_preview_names_the_file(self, dataset: Path, tmp_path: Path, full_disk) -> None:
        full_disk(tmp_path / "pages")
        line = one_error_line(run("preview", dataset, "--out", tmp_path / "pages" / "p.html", "--num", "2"))
        assert line == f"error: {tmp_path / 'pages' / 'p.html'}: No space left on device"


# -- no unbounded network wait -------------------------------------------------------------------------------------

class TestHangs:
    def test_annotate_gives_up_on_a_silent_server(self, dataset: Path, silent_server: str) -> None:
        line = one_error_line(run("annotate", dataset, "--annotator", "llm", "--backend", "openai", "--model", "m",
                                  "--base-url", silent_server + "/v1", "--timeout", "0.5", "--retries", "0"))
        assert "no answer after 1 tries" in line and "timed out" in line

    @pytest.mark.parametrize("command", ["difficulty", "predict"])
    def test_inference_gives_up_on_a_silent_server(self, dataset: Path, tmp_path: Path, silent_server: str,
                                                   command: str) -> None:
        extra = ["--out", tmp_path / "p.jsonl"] if command == "predict" else ["--samples", "1"]
        line = one_error_line(run(command, dataset, "--backend", "openai", "--model", "m", "--base-url",
                                  silent_server + "/v1", "--timeout", "0.5", "--retries", "0", *extra))
        assert "cannot reach the server" in line and "timed out" in line

    def test_push_gives_up_on_a_silent_hub(self, dataset: Path, tmp_path: Path, silent_server: str) -> None:
        rate_all(dataset)
        assert run("release", dataset, "--out", tmp_path / "repo", "--no-original").exit_code == 0
        env = {**os.environ, "HF_ENDPOINT": silent_server, "HF_TOKEN": "hf_" + "x" * 30,
               "PYTHONPATH": os.pathsep.join(sys.path)}
        env.pop("HF_HUB_OFFLINE", None)
        done = subprocess.run([sys.executable, "-m", "mirdata", "push", str(tmp_path / "repo"), "--repo-id",
                               "me/mir", "--timeout", "1"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "network failure" in done.stderr and "ReadTimeout" in done.stderr
        assert "x" * 30 not in done.stderr


# -- leftovers -----------------------------------------------------------------------------------------------------

def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class TestLeftovers:
    def test_workers_end_when_the_build_is_killed(self, tmp_path: Path) -> None:
        out = tmp_path / "b"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen([sys.executable, "-m", "mirdata", "build", "--category", "spatial", "--num", "30",
                                 "--workers", "2", "--out", str(out), "--image-size", "64x48"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        workers: list[psutil.Process] = []
        try:
            for _ in range(3000):  # until both workers have finished a record
                workers = [p for p in psutil.Process(proc.pid).children()
                           if "spawn_main" in " ".join(p.cmdline())]
                if len(workers) == 2 and (out / PARTS).is_dir() and len(list((out / PARTS).glob("*.json"))) >= 2:
                    break
                time.sleep(0.05)
            assert len(workers) == 2 and proc.poll() is None
            os.kill(proc.pid, signal.SIGKILL)  # the parent only
            proc.wait()
            gone, alive = psutil.wait_procs(workers, timeout=60)
            assert not alive
        finally:
            for p in workers:
                if p.is_running():
                    p.kill()
            if proc.poll() is None:
                proc.kill()

    def test_release_cleans_what_a_killed_release_left(self, dataset: Path, tmp_path: Path) -> None:
        rate_all(dataset)
        repo = tmp_path / "repo"
        assert run("release", dataset, "--out", repo, "--no-original").exit_code == 0
        pid = dead_pid()
        # killed between its two renames: the old release moved aside, the new one still staged
        os.replace(repo, tmp_path / f".repo.old-{pid}")
        (tmp_path / f".repo.staging-{pid}").mkdir()
        (tmp_path / f".repo.staging-{pid}" / "half.parquet").write_bytes(b"PAR1")
        line = one_error_line(run("release", dataset, "--out", repo, "--no-original"))
        assert "folder exists and is not empty" in line  # the old release is back in place, kept
        assert (repo / "README.md").is_file()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".repo")) == []
        result = run("release", dataset, "--out", repo, "--no-original", "--overwrite")
        assert result.exit_code == 0, result.output
        assert (repo / "README.md").is_file() and not list(tmp_path.glob(".repo.*"))

    def test_an_overwrite_killed_midway_leaves_a_release_in_place(self, dataset: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        rate_all(dataset)
        repo = tmp_path / "repo"
        assert run("release", dataset, "--out", repo, "--no-original").exit_code == 0
        real_replace = os.replace
        moved_away: list[str] = []

        def killed_after_moving_the_release_away(src, dst, *args, **kwargs):
            if moved_away:
                raise KeyboardInterrupt  # the kill lands between the two renames
            real_replace(src, dst, *args, **kwargs)
            if Path(src) == repo:
                moved_away.append(str(dst))

        monkeypatch.setattr(os, "replace", killed_after_moving_the_release_away)
        try:
            run("release", dataset, "--out", repo, "--no-original", "--overwrite")
        except BaseException:
            pass
        monkeypatch.setattr(os, "replace", real_replace)
        assert (repo / "README.md").is_file() and list((repo / "data").rglob("*.parquet"))
