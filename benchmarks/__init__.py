"""Benchmarks for Doorstep (run by ``scripts/bench``; results in ``docs/benchmarks.md``).

Nothing here is imported by the integration or its tests. Every process a benchmark
starts talks only over loopback.
"""
