"""A dataset (MIR folder or release) for evaluation harnesses: an lmms-eval task folder, VLMEvalKit TSV files."""
