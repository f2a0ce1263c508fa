"""Reproducible measurements. `make bench` (python -m benchmarks) runs them all and prints markdown
that goes into docs/benchmarks.md with the command that produced it."""
