"""Benchmarks and load generators (run from the repository root: ``python -m loadtests.X``)."""
