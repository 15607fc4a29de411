"""Procedural videos: H.264 files whose decoded frames agree with the facts the scene states."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest

from mirdata.generators.video import (
    COLORS,
    RECIPES,
    MotionScene,
    Occluder,
    Post,
    ProcessScene,
    Thing,
    Trajectory,
    open_clip,
    to_image,
    video_size,
    write_video,
)

SIZE = (320, 240)


def color_at(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """Mean colour of a 5x5 patch at (x, y)."""
    xi, yi = int(round(x)), int(round(y))
    return image[yi - 2: yi + 3, xi - 2: xi + 3].reshape(-1, 3).mean(axis=0)


def close_to(color: np.ndarray, name: str, tol: float = 30.0) -> bool:
    return float(np.abs(color - np.array(COLORS[name])).max()) < tol


def test_write_video_is_h264_and_deterministic(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(12)]
    a = write_video(tmp_path / "a.mp4", frames, fps=6)
    b = write_video(tmp_path / "b.mp4", frames, fps=6)
    assert a.read_bytes() == b.read_bytes()
    # A panning clip, its frames handed over at uneven pace: x264's lookahead made such runs differ.
    thing = Thing("red", "circle", 10, Trajectory.line((30, 30), (20, 5), 3.0))
    scene = MotionScene((160, 120), 3.0, 10, [thing], 7, camera=Trajectory.line((0, 0), (10, 0), 3.0), world=(200, 120))

    def uneven(run: int):
        for k in range(30):
            if run % 2:
                time.sleep(0.002 * (k % 3))
            yield scene.render(k / 10, (160, 120))

    digests = {write_video(tmp_path / f"pan{run}.mp4", uneven(run), fps=10).read_bytes() for run in range(6)}
    assert len(digests) == 1
    with av.open(str(a)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 6 and (stream.width, stream.height) == (64, 48)
        decoded = [f.pts * stream.time_base for f in container.decode(stream)]
    assert len(decoded) == 12 and float(decoded[-1]) == pytest.approx(11 / 6)


def test_video_size_is_the_image_size_with_even_sides() -> None:
    assert video_size((448, 336)) == (448, 336)
    assert video_size((225, 167)) == (226, 168)
    frame = np.arange(168 * 226 * 3, dtype=np.uint8).reshape(168, 226, 3)
    image = to_image(frame, (225, 167))
    assert image.size == (225, 167) and np.array_equal(np.asarray(image), frame[:167, :225])  # cropped, not scaled


def test_masks_are_the_visible_pixels_and_respect_occlusion() -> None:
    """The lower shape's mask loses what the upper one and the pillar cover; boxes and visible fractions follow."""
    below = Thing("red", "square", 20, Trajectory.still((100, 100)))
    above = Thing("blue", "circle", 20, Trajectory.still((130, 100)))  # drawn later: on top
    pillar = Occluder("grey pillar", (60, 0, 80, 240))
    post = Post(200, 40, 220, 6)
    scene = MotionScene(SIZE, 1.0, 10, [below, above], backdrop_seed=2, occluders=[pillar], posts=[post])
    frame = scene.render(0.0, video_size(SIZE)).astype(np.int16)
    red = np.abs(frame - np.array(COLORS["red"])).max(axis=2) < 30
    mask = scene.mask(below, 0.0)
    assert mask.shape == (SIZE[1], SIZE[0])
    assert not mask[:, :81].any() and not mask[92:108, 116:150].any()  # under the pillar and under the circle
    assert red[mask].mean() > 0.8 and red.sum() <= mask.sum()  # the mask is the red pixels (plus the outline)
    obs = scene.observe(below, 0.0)
    assert obs.box == (81, 80, 121, 121) and 0.6 < obs.visible < 0.9
    top = scene.observe(above, 0.0)
    assert top.visible == 1.0 and top.box == (110, 80, 151, 121)
    # A shape passing in front of the post hides part of it; the post's box keeps its columns.
    mover = Thing("green", "circle", 15, Trajectory.still((200, 120)))
    scene = MotionScene(SIZE, 1.0, 10, [mover], backdrop_seed=2, posts=[post])
    seen = scene.observe(post, 0.0)
    assert seen.box[0] == 197 and seen.box[2] == 204 and 0.6 < seen.visible < 0.95


def test_moving_shapes_are_where_the_facts_say() -> None:
    red = Thing("red", "circle", 20, Trajectory.line((40, 60), (80, 0), 2.0))
    blue = Thing("blue", "square", 18, Trajectory.move((250, 170), (120, 170), 0.5, 1.5))
    scene = MotionScene(SIZE, 2.0, 10, [red, blue], backdrop_seed=5)
    with open_clip(scene) as sampler:
        assert sampler.frame_count == 20
        frames = sampler.read(sampler.at_times([0.0, 1.0, 1.9]))
    for image, t in zip(frames.images, frames.times):
        for thing in (red, blue):
            obs = scene.observe(thing, t)
            assert obs.visible == 1.0
            assert close_to(color_at(image, *obs.center), thing.color), (thing.name, t)
    assert scene.observe(red, 1.0).center == (120.0, 60.0)
    assert scene.observe(blue, 0.4).center == (250.0, 170.0) and scene.observe(blue, 1.9).center == (120.0, 170.0)
    # Where the red circle was at t=0 there is only backdrop at t=1.9: the frames really change.
    assert not close_to(color_at(frames.images[2], 40, 60), "red")


def test_occluder_hides_and_camera_pan_shifts() -> None:
    pillar = Occluder("grey pillar", (150, 0, 180, 240), color=(120, 120, 128))
    thing = Thing("green", "hexagon", 12, Trajectory.line((100, 120), (60, 0), 2.0))
    camera = Trajectory.line((0, 0), (30, 0), 2.0)  # the camera pans right at 30 px/s
    scene = MotionScene(SIZE, 2.0, 10, [thing], backdrop_seed=1, occluders=[pillar], camera=camera, world=(390, 240))
    hidden_t = 1.5  # world x 190, camera at 45: screen x 145 ... the pillar is at screen 105..135
    obs = scene.observe(thing, 0.0)
    assert obs.visible == 1.0 and obs.center == (100.0, 120.0)
    obs = scene.observe(thing, 1.0)  # world x 160 behind the pillar (world 150..180)
    assert obs.world == (160.0, 120.0) and obs.center == (130.0, 120.0) and obs.visible < 0.2
    with open_clip(scene) as sampler:
        frames = sampler.read(sampler.at_times([0.0, 1.0, hidden_t]))
    assert close_to(color_at(frames.images[0], 100, 120), "green")
    assert np.abs(color_at(frames.images[1], 130, 120) - np.array(pillar.color)).max() < 30  # pillar in front
    assert close_to(color_at(frames.images[2], *scene.observe(thing, hidden_t).center), "green")
    # The pillar itself moves left in the frame as the camera pans right: 30 px/s * 1 s.
    assert np.abs(color_at(frames.images[0], 160, 30) - np.array(pillar.color)).max() < 30
    assert np.abs(color_at(frames.images[1], 130, 30) - np.array(pillar.color)).max() < 30


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_step_leaves_a_visible_change(recipe: str) -> None:
    scene = ProcessScene.make(recipe, RECIPES[recipe], 0.6, (224, 168), fps=10, seed=3)
    ends = [round(s.start + 0.5, 1) for s in scene.steps]
    with open_clip(scene) as sampler:
        frames = sampler.read(sampler.at_times([0.0, *ends]))
    images = frames.images.astype(np.float32)
    for before, after, step in zip(images, images[1:], scene.steps):
        changed = np.abs(after - before).max(axis=2) > 40
        x0, y0, x1, y1 = (int(v) for v in scene.focus_box(step, step.start + 0.5))
        inside = changed[y0: y1 + 1, x0: x1 + 1].sum()
        assert inside > 15, f"{recipe}: '{step.text}' changed nothing inside its focus box"
        assert 0 <= x0 < x1 <= 224 and 0 <= y0 < y1 <= 168
