"""Benchmarks: one command each, printing wall time, peak memory and agreement with the naive way."""
