"""Benchmarks: ``python -m bench <name>`` prints figures (see docs/benchmarks.md)."""
