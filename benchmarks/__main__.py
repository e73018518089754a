"""``python -m benchmarks [--quick] [--only NAME ...]``: the same as ``vadbridge bench``."""

from __future__ import annotations

import argparse
import sys

from benchmarks.cli import add_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
