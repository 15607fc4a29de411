"""The frame sampler: frames of a video by exact index or time, decoded in batches with decord.

decord seeks to the key frame before each requested frame and decodes forward from there, so sampling a few
frames of a long clip decodes only the groups of pictures that hold them. Two things about real files need
care, and `probe_videos` handles both before any frame is read in this process:

* decord's frame count is the number of packets it indexed; a container whose packets do not all decode
  (a truncated tail, a broken stream) over-reports it, and asking decord for a frame past the real end can
  spin forever in native code that holds the GIL, where no Python timeout reaches it. So each file is first
  opened, and its last frame decoded, in a child process that is killed after a timeout. When the last frame
  fails, the child counts the frames that really decode (PyAV) and checks that the last of those decodes; the
  file is then used up to there.
* unreadable, corrupt, empty and non-video files get a clear reason (a `MirdataError` naming the file).

Timestamps are the frames' presentation times as decord reports them (variable frame rate is common in real
files), or index / fps where a container carries none that make sense.
"""

from __future__ import annotations

import json
import math
import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mirdata.errors import MirdataError

# Seconds a child may take to open one file and decode its last frame; counting frames gets a few times more.
DEFAULT_TIMEOUT = 30.0
RECOUNT_FACTOR = 4
# Seconds of frames left out before a damaged end: decoding near it can fail, depending on how far decord's
# decoder thread has read ahead.
DAMAGED_END_MARGIN_S = 0.5
_LOG_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\]\s*\S+:\d+:\s*")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, checked: `frames` of them decode, frame k is shown at `timestamps[k]` seconds."""

    path: str
    frames: int
    width: int
    height: int
    fps: float
    timestamps: tuple[float, ...]
    reported_frames: int  # what decord's index claimed; more than `frames` when the container over-reports

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last one."""
        return self.timestamps[-1] + 1.0 / self.fps - self.timestamps[0]


@dataclass
class Frames:
    """Decoded frames (k, height, width, 3) uint8 RGB, with their frame indices and times in seconds."""

    images: np.ndarray
    indices: list[int]
    times: list[float]


def find_videos(source: Path) -> list[Path]:
    """The video files of `source` (a file, or a folder searched recursively), sorted by path."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise MirdataError(f"{source}: no such file or folder")
    found = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                   and not p.name.startswith("."))
    if not found:
        raise MirdataError(f"{source}: no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
    return found


# -- probing, in a child process ---------------------------------------------------------------------------

def probe_video(path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT) -> VideoInfo:
    """Check one video in a child process; a MirdataError names the file and the reason it cannot be used."""
    result = probe_videos([path], timeout)[str(path)]
    if isinstance(result, str):
        raise MirdataError(f"{path}: {result}")
    return result


def probe_videos(paths: Sequence[str | os.PathLike[str]],
                 timeout: float = DEFAULT_TIMEOUT) -> dict[str, VideoInfo | str]:
    """Check many videos with one child process (restarted after a file hangs or crashes it).

    Returns, per path as given, its VideoInfo or the reason it cannot be used.
    """
    results: dict[str, VideoInfo | str] = {}
    jobs = [(str(p), "check") for p in paths]
    first_failure: dict[str, str] = {}
    while jobs:
        for path, stage, outcome in _run_child(list(jobs), timeout):
            jobs.remove((path, stage))
            if "info" in outcome:
                results[path] = VideoInfo(**{**outcome["info"], "timestamps": tuple(outcome["info"]["timestamps"])})
            elif stage == "check" and outcome.get("recount"):
                first_failure[path] = outcome["error"]
                jobs.append((path, "recount"))
            elif stage == "recount":
                results[path] = f"{first_failure[path]}; {outcome['error']}"
            else:
                results[path] = outcome["error"]
    return {str(p): results[str(p)] for p in paths}


def _run_child(jobs: list[tuple[str, str]], timeout: float) -> Iterator[tuple[str, str, dict]]:
    """Run `jobs` in one child, yielding (path, stage, outcome) as each finishes; a job that runs past its
    timeout or takes the child down is yielded as failed (the caller starts a new child for the rest)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "from mirdata.generators.frames import _child_main; _child_main()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    child.stdin.write(json.dumps(jobs).encode())
    child.stdin.close()
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        for path, stage in jobs:
            limit = timeout * (RECOUNT_FACTOR if stage == "recount" else 1)
            deadline = time.monotonic() + limit
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    what = "counting its frames" if stage == "recount" else "opening it and decoding its last frame"
                    yield path, stage, {"error": f"{what} did not finish within {limit:g} s (the decoder hangs)",
                                        "recount": True}
                    return
                chunk = os.read(child.stdout.fileno(), 1 << 16)
                if not chunk:
                    code = child.wait()
                    yield path, stage, {"error": f"the decoder crashed on it (exit status {code})", "recount": True}
                    return
                buffer += chunk
            line, buffer = buffer.split(b"\n", 1)
            yield path, stage, json.loads(line)
    finally:
        selector.close()
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


def _child_main() -> None:
    """The child: one JSON line per job, in order, on stdout."""
    jobs = json.loads(sys.stdin.read())
    for path, stage in jobs:
        try:
            outcome = {"info": asdict(_recount(path) if stage == "recount" else _check(path))}
        except _Unusable as e:
            outcome = {"error": str(e), "recount": e.recount}
        sys.stdout.write(json.dumps(outcome) + "\n")
        sys.stdout.flush()


class _Unusable(Exception):
    def __init__(self, reason: str, recount: bool = False):
        super().__init__(reason)
        self.recount = recount  # worth counting the frames that do decode


def _open_reader(path: str, num_threads: int = 1):
    import decord

    if not os.path.exists(path):
        raise _Unusable("no such file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise _Unusable("empty file (0 bytes)")
    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    except (RuntimeError, decord.DECORDError) as e:
        if str(e).startswith("Error reading"):  # decord's words for "ffmpeg found no video stream in it"
            raise _Unusable("not a readable video (no video stream that ffmpeg can open)") from None
        raise _Unusable(f"not a readable video ({_first_line(e)})") from None


def _check(path: str) -> VideoInfo:
    """Open `path`, and decode its first and last frames; raises _Unusable."""
    reader = _open_reader(path)
    count = len(reader)
    return _info(path, reader, count, count)


def _recount(path: str) -> VideoInfo:
    """The last indexed frame does not decode: use the file up to the last frame that does."""
    import av

    reader = _open_reader(path)
    reported = len(reader)
    decoded = 0
    try:
        with av.open(path) as container:
            for _ in container.decode(video=0):
                decoded += 1
    except (av.error.FFmpegError, IndexError, ValueError):
        pass  # frames decoded before the damage still count
    return _info(path, reader, min(reported, decoded), reported, damaged=True)


def _info(path: str, reader, count: int, reported: int, damaged: bool = False) -> VideoInfo:
    """What the file holds, its first `count` of `reported` indexed frames checked; `damaged`: decoding its
    end has already failed once."""
    import decord

    if count < 2:
        raise _Unusable(f"only {count} decodable frame{'s' if count != 1 else ''}: not a video")
    fps = float(reader.get_avg_fps())
    if not np.isfinite(fps) or fps <= 0:
        raise _Unusable(f"no usable frame rate ({fps})")
    stamps = reader.get_frame_timestamp(np.arange(count))[:, 0].astype(np.float64)
    valid_times = bool(np.all(np.isfinite(stamps)) and stamps[0] >= -1e-3 and np.all(np.diff(stamps) > 0))
    stamps = stamps - stamps[0] if valid_times else np.arange(count) / fps  # AVI often has no usable times
    try:
        first = reader.get_batch([0]).asnumpy()
        if valid_times and not damaged:
            count = _agree_at_end(path, reader, stamps, reported)
        if damaged or count < reported:  # keep clear of a damaged end: decord's decoder thread reads ahead
            count = _verified_before(reader, count - math.ceil(DAMAGED_END_MARGIN_S * fps))
        elif not valid_times:
            reader.get_batch([count - 1])
        stamps = stamps[:count]
    except decord.DECORDError as e:
        raise _Unusable(f"frame {count - 1} of {reported} does not decode ({_first_line(e)})", recount=True) from None
    if count < 2:
        raise _Unusable(f"only {count} decodable frame{'s' if count != 1 else ''}: not a video")
    height, width = first.shape[1:3]
    return VideoInfo(path=path, frames=count, width=int(width), height=int(height), fps=round(fps, 6),
                     timestamps=tuple(round(float(t), 6) for t in stamps), reported_frames=reported)


def _verified_before(reader, count: int) -> int:
    """`count` (at least 2), once its last frame has decoded."""
    count = max(2, count)
    reader.get_batch([count - 1])
    return count


def _agree_at_end(path: str, reader, stamps: np.ndarray, reported: int) -> int:
    """How many of the indexed frames (shown at `stamps`, from 0) decord returns correctly.

    The last group of pictures is decoded independently with PyAV. Indexed frames after the last picture it
    yields are dropped (a packet that yields no picture, as in a cut-off file). Otherwise decord's last frame
    must be the picture PyAV shows at that time, else it is dropped too (near a broken end decord can hand
    back the previous picture for the last index)."""
    tail = _tail_pictures(path, stamps[-1])
    if not tail:
        reader.get_batch([len(stamps) - 1])  # no independent view of the end: decord must at least decode it
        return len(stamps)
    times = np.array(sorted(tail))
    count = int(np.searchsorted(stamps, times[-1] + 1e-4, side="right"))
    if count < len(stamps):
        return count  # the end is damaged: decord is not asked near it
    for _ in range(4):
        k = count - 1
        match = np.flatnonzero(np.abs(times - stamps[k]) < 1e-3)
        if count < 2 or match.size == 0:
            return count
        ours = reader.get_batch([k]).asnumpy()[0].astype(np.int16)
        if np.abs(ours - tail[float(times[match[0]])].to_ndarray(format="rgb24")).mean() <= 1.0:
            return count
        count -= 1
    raise _Unusable(f"its last frames do not decode to the pictures at their times ({reported} indexed)")


def _tail_pictures(path: str, last: float) -> dict[float, object]:
    """The pictures PyAV decodes from the last two seconds or so, by time from the first frame ({} if PyAV
    cannot walk the file)."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            start = stream.start_time or 0
            container.seek(start + int(max(0.0, last - 2.0) / stream.time_base), stream=stream, backward=True)
            return {float((frame.pts - start) * stream.time_base): frame for frame in container.decode(stream)
                    if frame.pts is not None}
    except (av.error.FFmpegError, IndexError, ValueError, ZeroDivisionError):
        return {}


def _first_line(error: BaseException) -> str:
    """The useful part of a decoder message: its last line, without decord's '[time] file.cc:line:' prefixes."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    text = _LOG_PREFIX.sub("", lines[-1]) if lines else type(error).__name__
    return text.strip()[:200] or type(error).__name__


# -- sampling ------------------------------------------------------------------------------------------------

class FrameSampler:
    """Frames of one video by index, by time, evenly spaced or at random, decoded in one batch per request.

    `info` is what the video is known to hold: from `probe_videos`, or from the writer of a file this package
    made itself; without it the file is probed in a child process first.
    """

    def __init__(self, path: str | os.PathLike[str], info: VideoInfo | None = None, *, num_threads: int = 1,
                 timeout: float = DEFAULT_TIMEOUT):
        self.path = Path(path)
        self.info = info if info is not None else probe_video(self.path, timeout)
        try:
            self._reader = _open_reader(str(self.path), num_threads)
        except _Unusable as e:
            raise MirdataError(f"{self.path}: {e}") from None
        self._times = np.asarray(self.info.timestamps, dtype=np.float64)

    def __enter__(self) -> FrameSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader = None

    @property
    def frame_count(self) -> int:
        return self.info.frames

    def time_of(self, index: int) -> float:
        return float(self._times[index])

    # Which frames -------------------------------------------------------------------------------------------

    def evenly_spaced(self, k: int, start_s: float | None = None, end_s: float | None = None) -> list[int]:
        """`k` distinct frames evenly spaced from the frame shown at `start_s` to the one at `end_s`
        (default: the first and the last frame), both included."""
        first = self.at_times([start_s])[0] if start_s is not None else 0
        last = self.at_times([end_s])[0] if end_s is not None else self.frame_count - 1
        if not 1 <= k <= last - first + 1:
            raise MirdataError(f"{self.path}: cannot take {k} distinct frames from frames {first}..{last}")
        return np.linspace(first, last, k).round().astype(int).tolist()

    def at_times(self, times: Sequence[float]) -> list[int]:
        """The frame on screen at each time (seconds from the first frame)."""
        end = self.info.duration
        bad = [t for t in times if not 0 <= t <= end]
        if bad:
            raise MirdataError(f"{self.path}: time(s) {', '.join(f'{t:g}' for t in bad)} s outside the video "
                               f"(0..{end:.3f} s)")
        idx = np.searchsorted(self._times, np.asarray(times, dtype=np.float64) + 1e-9, side="right") - 1
        return np.clip(idx, 0, self.frame_count - 1).astype(int).tolist()

    def random(self, k: int, rng: np.random.Generator, min_gap: int = 1, first: int = 0,
               last: int | None = None) -> list[int]:
        """`k` sorted frames drawn uniformly among those at least `min_gap` frames apart, within first..last."""
        last = self.frame_count - 1 if last is None else last
        span = last - first + 1 - (k - 1) * (min_gap - 1)
        if k < 1 or min_gap < 1 or span < k:
            raise MirdataError(f"{self.path}: cannot take {k} frames {min_gap} apart from frames {first}..{last}")
        picks = np.sort(rng.choice(span, size=k, replace=False))
        return (first + picks + np.arange(k) * (min_gap - 1)).astype(int).tolist()

    # Decoding --------------------------------------------------------------------------------------------------

    def read(self, indices: Sequence[int]) -> Frames:
        """Decode exactly these frames (each distinct frame once, in file order), returned in the order asked."""
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < self.frame_count]
        if bad:
            raise MirdataError(f"{self.path}: frame(s) {bad} outside 0..{self.frame_count - 1}")
        reader = self._open()
        distinct = sorted(set(indices))
        import decord

        try:
            batch = reader.get_batch(distinct).asnumpy()
        except decord.DECORDError as e:
            raise MirdataError(f"{self.path}: frames {distinct} do not decode ({_first_line(e)})") from None
        where = {index: k for k, index in enumerate(distinct)}
        images = batch[[where[i] for i in indices]]
        return Frames(images=images, indices=indices, times=[self.time_of(i) for i in indices])

    def _open(self):
        if self._reader is None:
            raise MirdataError(f"{self.path}: the sampler is closed")
        return self._reader

    def read_evenly(self, k: int) -> Frames:
        return self.read(self.evenly_spaced(k))

    def read_at(self, times: Sequence[float]) -> Frames:
        return self.read(self.at_times(times))

    def iter_all(self, batch_size: int = 32) -> Iterator[Frames]:
        """Every frame, in order, `batch_size` at a time, decoded straight through from the start (for a
        whole file this is much faster than batches of indices, which decord treats as seeks)."""
        reader = self._open()
        reader.seek(0)
        for start in range(0, self.frame_count, batch_size):
            stop = min(start + batch_size, self.frame_count)
            images = np.empty((stop - start, self.info.height, self.info.width, 3), dtype=np.uint8)
            for k in range(stop - start):
                images[k] = reader.next().asnumpy()
            yield Frames(images=images, indices=list(range(start, stop)), times=self._times[start:stop].tolist())
