"""The one way a command turns a path named in a record into a file it reads.

A record names its images relative to the dataset folder. Whatever the record says, the file read must lie
inside that folder once symbolic links are resolved: an absolute path, a `..` part, a NUL byte or a link that
points outside would let a crafted records.jsonl make `preview` embed, `release` publish or a remote model
receive any file the user can read.
"""

from __future__ import annotations

import os
from pathlib import Path

from mirdata.errors import MirdataError


def unsafe_reason(relpath: object) -> str | None:
    """Why `relpath` cannot name a file inside a dataset folder (from its text alone), or None."""
    if not isinstance(relpath, str) or not relpath:
        return "is not a non-empty string"
    if "\x00" in relpath:
        return "contains a NUL character"
    if relpath[0] in "/\\" or relpath[1:2] == ":":
        return "is an absolute path (paths are relative to the dataset folder)"
    if "\\" in relpath:
        return "uses '\\' (paths are '/'-separated)"
    if ".." in relpath.split("/"):
        return "has a '..' part, which would leave the dataset folder"
    return None


def resolve_inside(root: str | os.PathLike[str], relpath: str, what: str = "image") -> Path:
    """The real path of `relpath` under `root`, refused (MirdataError naming it) unless it stays inside `root`
    after symbolic links are resolved. The file need not exist; callers report a missing one themselves."""
    root = Path(root)
    reason = unsafe_reason(relpath)
    if reason is None:
        real_root = root.resolve()
        try:
            real = (real_root / relpath).resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            reason = f"cannot be resolved ({e})"
        else:
            if real == real_root or not real.is_relative_to(real_root):
                reason = f"resolves to {real}, outside {real_root}"
            else:
                return real
    raise MirdataError(f"{root}: {what} path {relpath!r} {reason}")
