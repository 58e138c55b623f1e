"""Benchmarks run by ``make bench``: each reports ratios measured within one run."""
