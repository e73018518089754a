"""Files written whole: a crash or a full disk leaves the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_replacing"]


def write_replacing(target: Path, text: str, *, mode: int) -> None:
    """Write ``text`` to a temporary file beside ``target`` (created 0600, so no reader sees
    looser modes while it is written), flush it to disk, give it ``mode``, and rename it over
    ``target`` in one step. On any failure the temporary file is removed and ``target`` is
    untouched."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
