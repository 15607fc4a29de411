"""Expert-model inference: prompts with images at their <image> positions, runners, answer extraction, a judge."""

from mirdata.inference.extract import extract_answer
from mirdata.inference.judge import Judge, read_answers
from mirdata.inference.prompt import (
           Prompt,
           build_prompt,
           fit_pixels,
           load_images,
           rotate_options,
)
from mirdata.inference.runners import (
           BACKENDS,
           Runner,
           Sampling,
           make_runner,
           prompt_seed,
)

__all__ = ["BACKENDS", "Judge", "Prompt", "Runner", "Sampling", "build_prompt", "extract_answer", "fit_pixels",
           "load_images", "make_runner", "prompt_seed", "read_answers", "rotate_options"]
