"""``python -m vadbridge ...``: the ``vadbridge`` console script without its launcher."""

import sys

from vadbridge.commands import main

sys.exit(main())
