"""The command layer: the ``vadbridge`` console script, one subcommand per module, wired here.

Each module in SUBCOMMAND_MODULES exposes ``add_parser(subparsers)`` which adds its subcommand(s)
and sets ``func`` (``Callable[[argparse.Namespace], int]``) on each parser. Modules are imported
only when the parser is built, so ``vadbridge run`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

DESCRIPTION = ("Emotion in, faces out: valence/arousal/dominance from OSC or MQTT become ARKit "
               "blendshapes for VMC, OSC and Live Link receivers.")
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "vadbridge.commands.infer",
    "vadbridge.commands.train",
    "vadbridge.commands.run",
    "vadbridge.tools.send",
    "vadbridge.tools.replay",
    "vadbridge.tools.preview",
    "vadbridge.commands.export",
    "vadbridge.commands.bench",
)


class _Parser(argparse.ArgumentParser):
    """Bad arguments exit 2 with a one-line reason (argparse would print the whole usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vadbridge", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:  # a real missing dependency, not an unbuilt module
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do (see the
        # "Note on SIGPIPE" in Python's signal docs for why stdout is redirected first).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result

