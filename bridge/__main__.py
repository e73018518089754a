"""The ``vadbridge`` console script and ``python -m vadbridge``.

For ``run``, a SIGHUP is held before the command layer is imported (~25 ms of argparse and
typing): see ``vadbridge.hangup``.
"""

import sys


def main() -> int:
    from vadbridge.hangup import command_is_run, hold

    if command_is_run(sys.argv[1:]):
        hold()
    from vadbridge.commands import main as command_main

    return command_main()


if __name__ == "__main__":
    sys.exit(main())
