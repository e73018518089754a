"""vadbridge's benchmarks: ``vadbridge bench`` (docs/performance.md)."""

from vadbridge.benchmarks.harness import Result, format_table, parse_table
from vadbridge.benchmarks.suite import BENCHMARKS, run_benchmarks

__all__ = ["BENCHMARKS", "Result", "format_table", "parse_table", "run_benchmarks"]
