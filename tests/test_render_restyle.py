"""The restyle pass with a tiny ControlNet-depth pipeline built from configs, saved to a folder, loaded back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mirdata.errors import MirdataError
from mirdata.generators.render import create_renderer
from mirdata.generators.render.raster import RasterRenderer
from mirdata.generators.render.restyle import RestyleRenderer, depth_control
from mirdata.generators.scene import Scene, SceneObject, orbit_camera


def _tiny_tokenizer(folder: Path):
    """A byte-level BPE CLIP tokenizer with a vocabulary of single bytes and a few merges, written locally."""
    from transformers import CLIPTokenizer

    # GPT-2's byte-to-printable-character table, which CLIP's byte-level BPE uses.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    chars = [chr(b) if b in printable else chr(next(extra)) for b in range(256)]
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for c in chars:
        for token in (c, c + "</w>"):
            vocab.setdefault(token, len(vocab))
    merges = ["r e", "re d</w>", "c u", "cu b", "cub e</w>"]
    for m in merges:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!", model_max_length=77)
    return tok, len(vocab)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory) -> Path:
    import torch
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DDIMScheduler,
        StableDiffusionControlNetImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("restyle")
    tok_dir = root / "tok"
    tok_dir.mkdir()
    tokenizer, vocab_size = _tiny_tokenizer(tok_dir)
    torch.manual_seed(0)
    blocks = {"block_out_channels": (8, 16), "layers_per_block": 1, "in_channels": 4, "cross_attention_dim": 16,
              "norm_num_groups": 4, "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D")}
    unet = UNet2DConditionModel(sample_size=16, out_channels=4, up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                **blocks)
    controlnet = ControlNetModel(conditioning_embedding_out_channels=(8, 16), **blocks)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=4)
    text = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=16,
                                        intermediate_size=24, num_attention_heads=2, num_hidden_layers=2,
                                        vocab_size=vocab_size, max_position_embeddings=77))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    pipe = StableDiffusionControlNetImg2ImgPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, controlnet=controlnet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    folder = root / "pipeline"
    pipe.save_pretrained(folder)
    return folder


def _scene() -> Scene:
    return Scene([SceneObject(1, "cube", "red", "rubber", (1.0, 1.0, 1.0), (-1.0, 0.0), 0.3),
                  SceneObject(2, "sphere", "blue", "metal", (1.2, 1.2, 1.2), (1.5, 1.0), 0.0)])


def test_depth_control_is_bright_near_and_black_sky():
    depth = np.array([[2.0, 4.0], [8.0, np.inf]], np.float32)
    grey = np.array(depth_control(depth))[..., 0]
    assert grey[0, 0] > grey[0, 1] > grey[1, 0] > grey[1, 1] == 0


def test_restyle_repaints_colour_keeps_geometry_and_is_seeded(tiny_pipeline: Path):
    scene = _scene()
    camera = orbit_camera(scene, 20, 30, 9, (64, 48))
    named = create_renderer(f"restyle:{tiny_pipeline}")
    assert isinstance(named, RestyleRenderer) and named.folder == tiny_pipeline and named.base.name == "raster"
    named.close()
    # four steps at strength 0.6 run two denoising steps: enough to repaint, quick on a CPU
    restyle = RestyleRenderer(RasterRenderer(), tiny_pipeline, steps=4)
    try:
        base = restyle.base.render(scene, camera)
        out = restyle.render(scene, camera)
        again = restyle.render(scene, camera)
    finally:
        restyle.close()
    assert out.color.shape == (48, 64, 3) and out.color.dtype == np.uint8
    assert not np.array_equal(out.color, base.color)  # the pipeline repainted it
    assert np.array_equal(out.depth, base.depth) and np.array_equal(out.instance, base.instance)
    assert set(np.unique(out.instance)) == {0, 1, 2}
    assert np.array_equal(out.color, again.color)  # seeded from the scene and camera


def test_restyle_names_a_bad_folder(tmp_path: Path):
    with pytest.raises(MirdataError, match="model_index.json"):
        create_renderer(f"restyle:{tmp_path}")
    with pytest.raises(MirdataError, match="restyle:PATH"):
        create_renderer("restyle")
