"""``vadbridge bench [--quick] [--only NAME ...]``: run the benchmarks, print one table.

The suite lives in ``vadbridge.benchmarks.suite``. The naive references of frame_cost and
one_avatar run the torch module: without torch the other benchmarks run and those two are
skipped (asking for one with ``--only`` exits 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vadbridge.benchmarks.suite import BENCHMARKS, run_benchmarks
from vadbridge.benchmarks.suite import NEEDS_TORCH as NEEDS_TORCH_BENCHMARKS
from vadbridge.commands.args import NEEDS_TORCH, fail, torch_installed


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the performance benchmarks and print a table",
        description="Measure what a frame costs (inference, encoding, pacing, latency, idle "
        "load) beside a naive implementation, and print one table with the targets "
        "(frame_cost and one_avatar need torch; without it the others run).",
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
    names = list(args.only or BENCHMARKS)
    has_torch = torch_installed()
    if not has_torch:
        needing = [name for name in names if name in NEEDS_TORCH_BENCHMARKS]
        if args.only and needing:
            return fail("bench", f"{', '.join(needing)}: {NEEDS_TORCH}")
        if needing:
            print(f"# skipped {', '.join(needing)}: {NEEDS_TORCH}", file=sys.stderr)
        names = [name for name in names if name not in NEEDS_TORCH_BENCHMARKS]
    return run_benchmarks(names, quick=args.quick, realtime=args.realtime,
                          torch_module=has_torch)
