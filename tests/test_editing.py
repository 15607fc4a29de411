"""Image editing: each classical op does exactly its edit; the diffusers backend runs from a local tiny pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mirdata.errors import MirdataError
from mirdata.generators.editing import (INPAINT_DIR, PIX2PIX_DIR, ClassicalEditor, DiffusersEditor, Edit, edit,
                                        make_editor, write_tiny_pipeline)

W, H = 96, 64
BACKGROUND = (40, 140, 60)
RED = (220, 30, 30)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scene() -> tuple[Image.Image, np.ndarray]:
    """A red square on a uniform background, and the square's mask."""
    im = Image.new("RGB", (W, H), BACKGROUND)
    ImageDraw.Draw(im).rectangle([20, 20, 39, 49], fill=RED)
    mask = np.zeros((H, W), dtype=bool)
    mask[20:50, 20:40] = True
    return im, mask


def red_pixels(im: Image.Image) -> np.ndarray:
    a = np.asarray(im).astype(int)
    return (a[..., 0] > 150) & (a[..., 1] < 90)


def test_paste_changes_only_the_sprites_footprint() -> None:
    im, _ = scene()
    sprite = Image.new("RGBA", (10, 8), (0, 0, 255, 255))
    out = ClassicalEditor().edit([im], [Edit("add a blue box", op="paste", sprite=sprite, at=(60, 10))])[0]
    diff = np.any(np.asarray(out) != np.asarray(im), axis=2)
    assert diff.sum() == 80 and diff[10:18, 60:70].all()
    assert tuple(np.asarray(out)[12, 62]) == (0, 0, 255)


def test_remove_fills_the_region_with_the_background() -> None:
    im, mask = scene()
    out = ClassicalEditor().edit([im], [Edit("remove the square", op="remove")], [mask])[0]
    assert red_pixels(out).sum() == 0
    inside = np.asarray(out)[mask].astype(float)
    assert np.abs(inside - BACKGROUND).max() < 12


def test_remove_copies_the_surrounding_texture_and_skips_other_objects() -> None:
    """Patch-based fill: the hole gets the grain of a noisy ground (not a smooth smear), its sky/ground split
    stays level, and a second object elsewhere is not copied in."""
    rng = np.random.default_rng(0)
    grain = rng.normal(0, 10, (H * 2, W * 3, 1))
    base = np.where(np.arange(H * 2)[:, None, None] < H, [150, 190, 240], [70, 150, 60]) + grain
    a = np.clip(base, 0, 255).astype(np.uint8)
    a[40:100, 20:50] = RED  # the object to remove, across the horizon
    a[40:100, 200:230] = (30, 30, 220)  # another object, which must not reappear in the hole
    mask = np.zeros(a.shape[:2], dtype=bool)
    mask[40:100, 20:50] = True
    out = np.asarray(ClassicalEditor().edit([Image.fromarray(a)], [Edit("remove", op="remove")], [mask])[0])
    hole = out[44:96, 24:46].astype(float)
    other = lambda x: (np.abs(x.astype(int) - (30, 30, 220)).max(axis=2) < 40).sum()  # noqa: E731
    assert red_pixels(Image.fromarray(out)).sum() == 0 and other(out) == other(a)
    assert np.abs(np.diff(hole, axis=1)).mean() > 6  # the grain (noise sigma 10), not a flat fill
    sky, ground = hole[: H - 44 - 3].mean(axis=(0, 1)), hole[H - 44 + 3:].mean(axis=(0, 1))
    assert np.abs(sky - [150, 190, 240]).max() < 15 and np.abs(ground - [70, 150, 60]).max() < 15


def test_recolour_changes_hue_inside_the_mask_only() -> None:
    im, mask = scene()
    out = ClassicalEditor().edit([im], [Edit("paint it blue", op="recolour", colour=(30, 30, 220))], [mask])[0]
    a = np.asarray(out).astype(int)
    assert (a[mask][:, 2] > a[mask][:, 0] + 100).all()  # blue now dominates where red was
    assert np.array_equal(a[~mask], np.asarray(im).astype(int)[~mask])


def test_resize_shrinks_the_object_about_its_bottom_centre() -> None:
    im, mask = scene()
    out = ClassicalEditor().edit([im], [Edit("make it smaller", op="resize", scale=0.5)], [mask])[0]
    red = red_pixels(out)
    assert 0.15 < red.sum() / mask.sum() < 0.35  # about a quarter of the area
    ys, xs = np.nonzero(red)
    assert abs(ys.max() - 49) <= 1 and abs((xs.min() + xs.max()) / 2 - 29.5) <= 1.5


def test_move_shifts_the_object_by_the_offset() -> None:
    im, mask = scene()
    out = ClassicalEditor().edit([im], [Edit("move it right", op="move", offset=(40, -10))], [mask])[0]
    ys, xs = np.nonzero(red_pixels(out))
    assert abs(xs.mean() - (29.5 + 40)) < 1 and abs(ys.mean() - (34.5 - 10)) < 1
    assert red_pixels(out)[mask].sum() == 0  # the old place is empty


def test_blur_softens_inside_and_keeps_far_pixels() -> None:
    im = Image.fromarray((np.indices((H, W)).sum(axis=0) % 2 * 255).astype(np.uint8)).convert("RGB")
    mask = np.zeros((H, W), dtype=bool)
    mask[10:40, 10:50] = True
    for motion in (False, True):
        out = np.asarray(ClassicalEditor().edit([im], [Edit("blur", op="blur", sigma=3, motion=motion)], [mask])[0])
        assert out[15:35, 15:45].std() < 0.2 * np.asarray(im)[15:35, 15:45].std()
        assert np.array_equal(out[:, 70:], np.asarray(im)[:, 70:])


def test_classical_edits_are_deterministic_and_inputs_untouched() -> None:
    im, mask = scene()
    before = np.asarray(im).copy()
    edits = [Edit("r", op="remove"), Edit("m", op="move", offset=(5, 5)), Edit("s", op="resize", scale=1.3)]
    a = edit([im] * 3, edits, [mask] * 3)
    b = edit([im] * 3, edits, [mask] * 3)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert np.array_equal(np.asarray(im), before)


def test_bad_edits_are_clear_errors(tmp_path: Path) -> None:
    im, mask = scene()
    with pytest.raises(MirdataError, match="needs an edit op"):
        ClassicalEditor().edit([im], ["make it winter"])
    with pytest.raises(ValueError, match="non-empty mask"):
        ClassicalEditor().edit([im], [Edit("remove", op="remove")])
    with pytest.raises(ValueError, match="mask 0 is"):
        ClassicalEditor().edit([im], [Edit("remove", op="remove")], [np.ones((3, 3), bool)])
    with pytest.raises(ValueError, match="unknown edit op"):
        Edit("x", op="explode")
    with pytest.raises(MirdataError, match="needs --editor-model"):
        make_editor("diffusers")
    with pytest.raises(MirdataError, match="unknown editor"):
        make_editor("photoshop")
    with pytest.raises(MirdataError, match="not a diffusers pipeline folder"):
        DiffusersEditor(tmp_path)
    with pytest.raises(MirdataError, match="no such diffusers pipeline folder"):
        DiffusersEditor(tmp_path / "nowhere")


# -- diffusers, from a tiny pipeline saved to a folder ------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_pipelines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_pipeline(tmp_path_factory.mktemp("tiny-diffusers"))


def test_tiny_pipeline_folder_layout(tiny_pipelines: Path) -> None:
    for kind in (PIX2PIX_DIR, INPAINT_DIR):
        assert (tiny_pipelines / kind / "model_index.json").is_file()
        assert (tiny_pipelines / kind / "tokenizer" / "tokenizer_config.json").is_file()


def test_diffusers_edits_batched_seeded_and_masked(tiny_pipelines: Path) -> None:
    im, mask = scene()
    editor = DiffusersEditor(tiny_pipelines, steps=2, batch_size=2)
    sprite = Image.new("RGBA", (10, 8), (0, 0, 255, 255))
    edits = [Edit("make it winter", seed=1), Edit("remove the square", op="remove", seed=2),
             Edit("add a box", op="paste", sprite=sprite, at=(60, 10), seed=3)]
    out = editor.edit([im] * 3, edits, [None, mask, None])
    assert [o.size for o in out] == [(W, H)] * 3
    a0 = np.asarray(out[0]).astype(int)
    assert np.abs(a0 - np.asarray(im).astype(int)).mean() > 1  # the unmasked edit changed the picture
    # Masked edits keep the pixels away from the mask exactly.
    far = np.ones((H, W), dtype=bool)
    far[10:60, 10:50] = False
    assert np.array_equal(np.asarray(out[1])[far], np.asarray(im)[far])
    footprint = edits[2].footprint((W, H))
    far_paste = ~footprint
    far_paste[0:28, 50:80] = False
    assert np.array_equal(np.asarray(out[2])[far_paste], np.asarray(im)[far_paste])
    # Same seed, alone or in a batch, gives the same pixels.
    again = editor.edit([im], [edits[0]])[0]
    assert np.array_equal(np.asarray(again), np.asarray(out[0]))
    other_seed = editor.edit([im], [Edit("make it winter", seed=9)])[0]
    assert not np.array_equal(np.asarray(other_seed), np.asarray(out[0]))
    editor.close()


def test_single_inpaint_folder_needs_masks(tmp_path: Path) -> None:
    folder = write_tiny_pipeline(tmp_path / "inpaint-only", kinds=[INPAINT_DIR])
    assert (folder / "model_index.json").is_file()
    im, mask = scene()
    editor = DiffusersEditor(folder, steps=1)
    out = editor.edit([im], [Edit("remove", op="remove")], [mask])[0]
    assert out.size == (W, H)
    with pytest.raises(MirdataError, match="needs an InstructPix2Pix pipeline"):
        editor.edit([im], ["make it winter"])
