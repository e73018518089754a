"""vadbridge's benchmarks: ``vadbridge bench`` or ``python -m benchmarks`` (docs/performance.md)."""

from benchmarks.cli import BENCHMARKS, run_benchmarks
from benchmarks.harness import Result, format_table, parse_table

__all__ = ["BENCHMARKS", "Result", "format_table", "parse_table", "run_benchmarks"]
