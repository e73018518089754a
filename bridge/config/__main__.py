"""``python -m vadbridge.config --markdown`` prints the reference (docs/configuration.md);
``python -m vadbridge.config FILE`` validates FILE: ``FILE: ok``, or the one-line error and
exit status 2, as ``vadbridge run`` would report it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from vadbridge.config.docs import render_markdown
from vadbridge.config.errors import ConfigError
from vadbridge.config.loader import format_config_error, load_config

_USAGE = "usage: python -m vadbridge.config (--markdown | CONFIG_FILE)"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--markdown"]:
        sys.stdout.write(render_markdown())
        return 0
    if len(args) == 1 and not args[0].startswith("-"):
        try:
            load_config(Path(args[0]))
        except ConfigError as error:
            print(format_config_error(error), file=sys.stderr)
            return 2
        print(f"{args[0]}: ok")
        return 0
    print(_USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
