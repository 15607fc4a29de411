"""Expert-model inference: prompts with images at their <image> positions, answer extraction, grounding, a judge.

The models themselves are `mirdata.models`, the one stack every step uses.
"""

from mirdata.inference.extract import extract_answer
from mirdata.inference.judge import Judge, read_answers
from mirdata.inference.prompt import build_prompt, fit_pixels, load_images, rotate_options

__all__ = ["Judge", "build_prompt", "extract_answer", "fit_pixels", "load_images", "read_answers", "rotate_options"]
