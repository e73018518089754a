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
from typing import Any

from vadbridge import __version__

DESCRIPTION = ("Emotion in, faces out: valence/arousal/dominance from OSC or MQTT become ARKit "
               "blendshapes for VMC, OSC and Live Link receivers.")
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "vadbridge.commands.infer",
    "vadbridge.commands.evaluate",
    "vadbridge.commands.train",
    "vadbridge.commands.run",
    "vadbridge.tools.send",
    "vadbridge.tools.replay",
    "vadbridge.tools.preview",
    "vadbridge.commands.export",
    "vadbridge.commands.bench",
)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help when X means something.

    None (the option is simply absent) and a flag's False would only add noise; an option whose
    None stands for a computed default says so in its own help text.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Bad arguments exit 2 with a one-line reason (argparse would print the whole usage).

    Every subparser is one of these (``parser_class``), so every ``--help`` shows the defaults.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vadbridge", description=DESCRIPTION)
    parser.add_argument(
        "--version", action="version", version=f"vadbridge {__version__}",
        help="print the version and exit",
    )  # fmt: skip
    subparsers = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND",
        title="commands", help="run `vadbridge COMMAND --help` for its options",
    )  # fmt: skip
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
    try:
        # Inside the try: --list-emotions and --list-shapes print while parsing.
        args = parser.parse_args(argv)
        result: int = args.func(args)
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do (see the
        # "Note on SIGPIPE" in Python's signal docs for why stdout is redirected first).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result
