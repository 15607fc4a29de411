"""The decord frame sampler on real videos (Debian's opencv-doc) and on broken files made here."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from mirdata.errors import MirdataError
from mirdata.generators.frames import FrameSampler, find_videos, probe_video, probe_videos

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
HTML = Path("/usr/share/doc/opencv-doc/opencv4/html")

if not (DATA / "tree.avi").is_file():
    pytest.skip("needs Debian's opencv-doc package (real test videos)", allow_module_level=True)


def pyav_frames(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame and its presentation time, decoded independently with PyAV, in presentation order."""
    decoded = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            decoded.append((float(frame.pts * stream.time_base), frame.to_ndarray(format="rgb24")))
    decoded.sort(key=lambda d: d[0])
    return [f for _, f in decoded], [t for t, _ in decoded]


def gunzip(name: str, folder: Path) -> Path:
    out = folder / name.removesuffix(".gz")
    with gzip.open(HTML / name) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


@pytest.fixture(scope="module")
def box_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gunzip("box.mp4.gz", tmp_path_factory.mktemp("gz"))


@pytest.fixture(scope="module")
def cup_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gunzip("cup.mp4.gz", tmp_path_factory.mktemp("gz"))


def test_variable_frame_rate_times_match_the_container() -> None:
    # tree.avi: the AVI index holds 444 entries, but only 68 are frames, shown at irregular times.
    info = probe_video(DATA / "tree.avi")
    frames, times = pyav_frames(DATA / "tree.avi")
    assert info.frames == len(frames) == 68
    assert np.allclose(info.timestamps, np.array(times) - times[0], atol=1e-3)
    assert len(set(np.round(np.diff(info.timestamps), 3))) > 1  # really irregular


def test_frames_by_index_are_the_exact_frames() -> None:
    frames, _ = pyav_frames(DATA / "tree.avi")
    with FrameSampler(DATA / "tree.avi") as sampler:
        got = sampler.read([40, 3, 40, 67])
    assert got.indices == [40, 3, 40, 67]
    assert np.array_equal(got.images[0], got.images[2])
    for image, k in zip(got.images, got.indices):
        assert np.abs(image.astype(int) - frames[k].astype(int)).mean() < 2.0
    # Another frame really is different: the comparison above can fail.
    assert np.abs(got.images[1].astype(int) - frames[40].astype(int)).mean() > 5.0


def test_decoding_everything_gives_the_same_frames(cup_mp4: Path) -> None:
    reference, _ = pyav_frames(cup_mp4)
    with FrameSampler(cup_mp4) as sampler:
        some = sampler.read([0, 1, 100, 216])
        every = [f for batch in sampler.iter_all(batch_size=100) for f in batch.images]
        again = sampler.read([100])  # sampling still works after a full pass
    assert len(every) == len(reference) == 217
    for image, k in zip(some.images, some.indices):
        assert np.array_equal(image, every[k]) and np.array_equal(image, reference[k])
    assert np.array_equal(again.images[0], every[100])


def test_over_reported_frames_at_the_end_are_dropped(box_mp4: Path) -> None:
    # box.mp4 indexes 456 frames, but its last packet yields no picture: the sampler stops half a second
    # before that damaged end (decord's decoder thread reads ahead into it).
    reference, times = pyav_frames(box_mp4)
    assert len(reference) == 455
    with FrameSampler(box_mp4) as sampler:
        assert (sampler.frame_count, sampler.info.reported_frames) == (455 - 15, 456)
        last = sampler.read([sampler.frame_count - 1]).images[0].astype(int)
        assert sampler.time_of(439) == pytest.approx(times[439] - times[0], abs=1e-3)
    # The stream is damaged from its first picture on, so decoders conceal errors a little differently:
    # the last frame is the nearest of the neighbouring pictures, not an exact copy.
    differences = [np.abs(last - reference[k]).mean() for k in (438, 439, 440)]
    assert differences[1] == min(differences) and differences[1] < 1.5


def test_times_evenly_spaced_and_random() -> None:
    with FrameSampler(DATA / "vtest.avi") as sampler:
        assert sampler.frame_count == 795 and sampler.info.fps == 10.0
        assert sampler.at_times([0.0, 0.05, 0.1, 12.34, 79.5]) == [0, 0, 1, 123, 794]
        assert sampler.evenly_spaced(5) == [0, 198, 397, 596, 794]
        assert sampler.evenly_spaced(3, start_s=10.0, end_s=20.0) == [100, 150, 200]
        picks = sampler.random(6, np.random.default_rng(3), min_gap=40)
        assert picks == sorted(picks) and min(np.diff(picks)) >= 40 and 0 <= picks[0] and picks[-1] < 795
        assert picks == sampler.random(6, np.random.default_rng(3), min_gap=40)
        frames = sampler.read_at([1.0, 2.0])
        assert frames.indices == [10, 20] and frames.times == [1.0, 2.0]
        assert frames.images.shape == (2, 576, 768, 3)
        with pytest.raises(MirdataError, match="outside the video"):
            sampler.at_times([80.0])
        with pytest.raises(MirdataError, match="cannot take 800 distinct frames"):
            sampler.evenly_spaced(800)
        with pytest.raises(MirdataError, match="outside 0..794"):
            sampler.read([795])


def test_avi_without_usable_timestamps_falls_back_to_the_frame_rate() -> None:
    info = probe_video(DATA / "Megamind.avi")
    assert info.frames == 270
    assert info.timestamps[0] == 0.0 and all(b > a for a, b in zip(info.timestamps, info.timestamps[1:]))
    assert info.timestamps[100] == pytest.approx(100 / info.fps, abs=1e-5)


def test_gzipped_mp4_from_opencv_doc(cup_mp4: Path) -> None:
    with FrameSampler(cup_mp4) as sampler:
        frames = sampler.read_evenly(8)
        whole = [f for batch in sampler.iter_all() for f in batch.images]
    assert frames.images.shape == (8, 480, 640, 3)
    for image, k in zip(frames.images, frames.indices):
        assert np.array_equal(image, whole[k])
    assert frames.indices[0] == 0 and frames.indices[-1] == sampler.frame_count - 1


def test_truncated_file_is_used_up_to_its_last_decodable_frame(box_mp4: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(box_mp4.read_bytes()[:300_000])
    info = probe_video(cut)
    # The index claims 70 frames; 67 decode, and the sampler keeps half a second (15 frames) clear of the cut.
    assert (info.frames, info.reported_frames) == (67 - 15, 70)
    with FrameSampler(cut, info) as sampler:
        last = sampler.read([sampler.frame_count - 1])
    assert last.images.shape == (1, 480, 640, 3)


def test_bad_files_get_a_reason(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video at all\n")
    (tmp_path / "noise.avi").write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    tail = (DATA / "vtest.avi").read_bytes()[-400_000:]
    (tmp_path / "tail.avi").write_bytes(tail)
    from PIL import Image

    Image.new("RGB", (32, 24), "red").save(tmp_path / "still.png")
    paths = [tmp_path / n for n in ("empty.mp4", "notes.mp4", "noise.avi", "tail.avi", "still.png", "gone.mp4")]
    results = probe_videos(paths)
    assert results[str(paths[0])] == "empty file (0 bytes)"
    for p in paths[1:5]:
        assert results[str(p)].startswith("not a readable video"), results[str(p)]
    assert results[str(paths[5])] == "no such file"
    with pytest.raises(MirdataError, match=r"notes\.mp4: not a readable video"):
        FrameSampler(tmp_path / "notes.mp4")


def test_a_file_that_hangs_the_decoder_times_out(tmp_path: Path) -> None:
    # Opening a named pipe that nobody writes to blocks inside the decoder forever: the guard must end it.
    fifo = tmp_path / "stalled.mp4"
    os.mkfifo(fifo)
    results = probe_videos([fifo, DATA / "tree.avi"], timeout=1)
    assert "did not finish within 1 s" in results[str(fifo)]
    assert results[str(DATA / "tree.avi")].frames == 68  # the next file still gets probed


def test_find_videos(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/z.mp4", "a.AVI", "notes.txt", ".hidden.mp4"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_videos(tmp_path)] == ["a.AVI", "b/z.mp4"]
    with pytest.raises(MirdataError, match="no such file or folder"):
        find_videos(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MirdataError, match="no video files"):
        find_videos(tmp_path / "empty")
