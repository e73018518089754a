"""``python -m vadbridge.benchmarks [--quick] [--only NAME ...]``: ``vadbridge bench``."""

from __future__ import annotations

import sys

from vadbridge.commands import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
