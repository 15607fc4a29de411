"""The curriculum: the adaptive difficulty filter, the staged training formats and loop, evaluation."""
