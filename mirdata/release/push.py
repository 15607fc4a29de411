"""`mirdata push REPO_DIR --repo-id OWNER/NAME`: upload a release folder to a dataset repository on the Hub.

The token comes from the environment (HF_TOKEN) or the login cache (`hf auth login`), never from the command
line, and it is never printed or written. `HfApi.upload_folder` does the upload: with hf_xet (a dependency of
huggingface-hub) it streams the files, commits a large folder in several batches and, when interrupted,
resumes on the next run: committed files are skipped and uploaded chunks deduplicated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, get_session, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

import mirdata
from mirdata.errors import MirdataError
from mirdata.secrets import redact, remember_secret

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# Temporary files of interrupted writes and desktop litter: never part of a release.
IGNORE = ["*.tmp", "*.DS_Store"]
DEFAULT_TIMEOUT = 60.0  # seconds without an answer from the Hub before push gives up (it resumes when run again)
# hf_xet names an HTTP refusal only in its message: "HTTP status client error (401 Unauthorized), domain: …"
XET_STATUS = re.compile(r"HTTP status (?:client|server) error \((\d{3})\b")


def push_dataset(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                 endpoint: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Create the dataset repo `repo_id` if needed and upload `folder` (a `mirdata release` output) to it.

    Returns the URL of the dataset. Every failure is a MirdataError with one line saying what to do. `timeout`
    bounds each wait for the Hub's HTTP answers (huggingface-hub waits forever by default)."""
    folder = Path(folder)
    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise MirdataError(f"{folder}: not a release folder (no README.md and data/); make one with "
                           "`mirdata release DIR --out REPO_DIR`")
    if not REPO_ID.fullmatch(repo_id):
        raise MirdataError(f"--repo-id must look like OWNER/NAME, not {repo_id!r}")
    token = get_token()
    if not token:
        raise MirdataError("no Hugging Face token: set HF_TOKEN or log in with `hf auth login`")
    remember_secret(token)
    api = HfApi(endpoint=endpoint, token=token, library_name="mirbench-tools", library_version=mirdata.__version__)
    session = get_session()
    previous_timeout, session.timeout = session.timeout, httpx2.Timeout(timeout)
    with hub_errors(repo_id, api.endpoint, token), _restore_timeout(session, previous_timeout):
        # private=None leaves a new repo to its namespace's default visibility
        url = api.create_repo(repo_id, repo_type="dataset", private=private or None, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="dataset", revision=revision,
                          commit_message="Upload MIR release", ignore_patterns=IGNORE)
    return str(url)


@contextmanager
def _restore_timeout(session: httpx2.Client, timeout: httpx2.Timeout) -> Iterator[None]:
    try:
        yield
    finally:
        session.timeout = timeout


@contextmanager
def hub_errors(repo_id: str, endpoint: str, token: str) -> Iterator[None]:
    """Turn what the Hub client raises into one line that says what went wrong and what to do."""
    try:
        yield
    except OfflineModeIsEnabled:
        raise MirdataError("HF_HUB_OFFLINE is set: unset it to push to the Hub") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        raise MirdataError(_scrub(_refusal(status, e.server_message or str(e), repo_id, endpoint), token)) from None
    except ValueError as e:
        if str(e).startswith("Invalid metadata in README.md"):
            problems = "; ".join(line.lstrip("- ") for line in str(e).splitlines()[1:] if line.strip())
            raise MirdataError(f"README.md: the Hub refused the card's metadata: {problems or e}") from None
        raise MirdataError(_scrub(f"{endpoint} sent an answer the Hub client cannot use while pushing {repo_id}: "
                                  f"{_first_line(e)}", token)) from None
    except httpx2.TransportError as e:
        raise MirdataError(_scrub(_network_failure(e, endpoint), token)) from None
    except (OSError, RuntimeError) as e:
        # The file transfer runs in hf_xet (Rust): its HTTP refusals and network failures arrive as OSError
        # subclasses (ConnectionError, PermissionError) or RuntimeError with the status only in the text.
        status = XET_STATUS.search(str(e))
        if status:
            message = _refusal(int(status.group(1)), str(e), repo_id, endpoint)
        elif type(e).__name__ == "XetAuthenticationError":
            message = _refusal(401, str(e), repo_id, endpoint)
        elif isinstance(e, (ConnectionError, TimeoutError)) or type(e).__module__ == "hf_xet":
            message = _network_failure(e, endpoint)
        else:
            message = f"upload to {repo_id} failed ({type(e).__name__}: {_first_line(e)}); run push again: it resumes"
        raise MirdataError(_scrub(message, token)) from None


def _refusal(status: int | None, detail: str, repo_id: str, endpoint: str) -> str:
    if status == 401:
        return (f"{endpoint} refused the token (401 Unauthorized): it is invalid or expired; set HF_TOKEN "
                "or log in again with `hf auth login`")
    if status == 403:
        return (f"{endpoint} refused permission to write to {repo_id} (403 Forbidden): use a token with "
                "write access to that namespace")
    if status == 404:
        return f"{endpoint}: {repo_id} or the revision was not found (404), or the token cannot see it"
    return f"{endpoint} answered {status} while pushing {repo_id}: {_first_line(detail)}"


def _network_failure(error: BaseException, endpoint: str) -> str:
    return (f"network failure talking to {endpoint} ({type(error).__name__}: {_first_line(error)}); check the "
            "connection or HF_ENDPOINT and run push again: it resumes")


def _first_line(error: BaseException | str) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def _scrub(text: str, token: str) -> str:
    remember_secret(token)
    return redact(text)
