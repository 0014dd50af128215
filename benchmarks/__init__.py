"""Benchmarks: speed and quality tables, written to benchmarks/RESULTS.md."""
