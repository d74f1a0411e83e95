"""Benchmarks for the Oxios edge and actor runtime (``python -m benchmarks.run``)."""
