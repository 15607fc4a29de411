"""Reinforcement learning after the curriculum: grounding rewards (`rewards`) and GRPO training (`train`)."""
