"""Curriculum training throughput: samples per second of one stage, batch size 1 (baseline) vs larger batches and
LoRA, same model, same data, one run.

Default: the tiny Idefics3 of `mirdata.testing` on MIR-shaped samples (2-4 images of 448x336, real-length
reasoning chains), stage 0 (whole chain as target), through `train_curriculum` exactly as the command runs it.
`--size smolvlm-256m` builds a randomly initialised model of SmolVLM-256M's shape from its config instead
(a GPU run: the trainer uses CUDA when there is one). The figure is the trainer's own train_samples_per_second.

Run: python benchmarks/bench_train.py [--samples 24] [--batch-sizes 1 4] [--size tiny|smolvlm-256m] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from mirdata.curriculum.train import CurriculumTrainOptions, train_curriculum
from mirdata.schema.record import Record, Region, format_options
from mirdata.store import MIRStore
from mirdata.testing import make_tiny_vlm


def write_dataset(root: Path, count: int, seed: int = 0) -> None:
    """`count` easy records shaped like MIR's: several images, a question with one <image> each, five stages."""
    rng = np.random.default_rng(seed)
    store = MIRStore(root)
    records = []
    for i in range(count):
        n_images = int(rng.integers(2, 5))
        paths, captions, regions = [], [], []
        for k in range(n_images):
            im = Image.new("RGB", (448, 336), tuple(int(v) for v in rng.integers(150, 256, 3)))
            x, y = (int(v) for v in rng.integers(20, 200, 2))
            ImageDraw.Draw(im).rectangle([x, y, x + 120, y + 90], fill=tuple(int(v) for v in rng.integers(0, 150, 3)))
            paths.append(store.save_image(f"images/bench/{i}_{k}.jpg", im))
            captions.append(f"A light background with a dark box whose top-left corner is at ({x}, {y}).")
            regions.append(Region(f"r{k}", k, [x, y, x + 120, y + 90], "box"))
        left = int(np.argmin([r.box[0] for r in regions]))
        records.append(Record(
            id=f"bench-{i:04d}", category="sequential", task="motion_detection", images=paths,
            question=" ".join(f"Frame {k + 1}: <image>" for k in range(n_images))
            + ". In which frame is the box furthest to the left?",
            options=format_options([f"frame {k + 1}" for k in range(n_images)]), answer="ABCD"[left],
            summary="Find the box in every frame and compare how far left each one sits.",
            caption=captions,
            text2region=" ".join(f"'the box' → [r{k}] in image {k + 1}, box {regions[k].box}."
                                 for k in range(n_images)),
            region2region=" ".join(f"[r{k}] starts at x = {regions[k].box[0]:.0f}." for k in range(n_images)),
            conclusion=f"The box of frame {left + 1} is furthest left, so the answer is {'ABCD'[left]}.",
            regions=regions, difficulty="easy", pass_rate=1.0,
        ))
    store.write(records)


def make_smolvlm_256m_shape(path: Path) -> Path:
    """Random weights in SmolVLM-256M's shape (SigLIP-base 512 px vision tower, 30-layer 576-wide text model)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, Idefics3Config

    make_tiny_vlm(path, image_size=512)
    processor = AutoProcessor.from_pretrained(path)
    processor.image_seq_len = 64  # (512 / 16)**2 / 4**2
    tokenizer = processor.tokenizer
    config = Idefics3Config(
        vision_config={"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                       "num_attention_heads": 12, "image_size": 512, "patch_size": 16},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 576,
                     "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                     "num_key_value_heads": 3, "max_position_embeddings": 8192,
                     "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "bos_token_id": tokenizer.bos_token_id},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=4, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    AutoModelForImageTextToText.from_config(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


def samples_per_second(data: Path, model: Path, out: Path, batch_size: int, lora: bool, bf16: bool) -> float:
    train_curriculum(CurriculumTrainOptions(
        data=data, model=str(model), output_dir=out, stages=[0], per_device_train_batch_size=batch_size,
        lora=lora, bf16=bf16, learning_rate=1e-4, logging_steps=1000, save_steps=100_000))
    state = json.loads((out / "stage-0" / "trainer_state.json").read_text())
    return float(state["log_history"][-1]["train_samples_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--size", choices=["tiny", "smolvlm-256m"], default="tiny")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        write_dataset(tmp_path / "data", args.samples)
        model = (make_tiny_vlm(tmp_path / "model") if args.size == "tiny"
                 else make_smolvlm_256m_shape(tmp_path / "model"))
        device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                  else f"CPU, {torch.get_num_threads()} threads")
        runs = [(b, False) for b in args.batch_sizes] + [(max(args.batch_sizes), True)]
        figures = {}
        for batch_size, lora in runs:
            label = f"batch {batch_size}" + (" LoRA" if lora else " full")
            figures[label] = samples_per_second(tmp_path / "data", model, tmp_path / f"out-{len(figures)}",
                                                batch_size, lora, args.bf16)

    baseline_label = f"batch {args.batch_sizes[0]} full"
    baseline = figures[baseline_label]
    print(f"\ncurriculum stage 0, {args.size} model, {args.samples} samples, {device}")
    for label, value in figures.items():
        print(f"  {label:<16} {value:8.2f} samples/s   x{value / baseline:.2f} vs {baseline_label}")


if __name__ == "__main__":
    main()
