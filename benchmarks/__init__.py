"""Benchmarks: ratios against the raw libraries, measured in the same run (``python -m benchmarks.<name>``)."""
