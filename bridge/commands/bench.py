"""``vadbridge bench [--quick] [--only NAME ...]``: run the benchmarks, print one table.

The suite lives in ``vadbridge.benchmarks.suite``. The naive reference is the torch module, so
without torch the command exits 2 before measuring anything.
"""

from __future__ import annotations

import argparse
from typing import Any

from vadbridge.benchmarks.suite import BENCHMARKS, run_benchmarks
from vadbridge.commands.args import NEEDS_TORCH, fail, torch_installed


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the performance benchmarks and print a table (needs torch)",
        description="Measure what a frame costs (inference, encoding, pacing, latency, idle "
        "load) beside a naive implementation, and print one table with the targets (needs "
        "torch).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds per benchmark (smoke run, noisy)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, metavar="NAME",
        help=f"run only these benchmarks ({', '.join(BENCHMARKS)})",
    )  # fmt: skip
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run under SCHED_FIFO priority 10 (needs root or CAP_SYS_NICE), as a deployment "
        "protecting its frame loop would",
    )
    parser.set_defaults(func=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    if not torch_installed():
        return fail("bench", NEEDS_TORCH)
    return run_benchmarks(args.only or BENCHMARKS, quick=args.quick, realtime=args.realtime)
