"""Keep the frame loop on time on a shared machine: one BLAS thread, optional real-time policy."""

from __future__ import annotations

import ctypes
import gc
import os


def limit_blas_threads(count: int = 1) -> bool:
    """Pin numpy's OpenBLAS to ``count`` threads after import; False if no OpenBLAS was found.

    The targets are per core, and on a shared 2-core machine a multi-threaded OpenBLAS makes
    small matmuls 100x slower (its threads spin waiting for a core). Setting
    OPENBLAS_NUM_THREADS only works before numpy is imported, which ``vadbridge`` has done by
    the time a subcommand runs, hence the library call.
    """
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line and "/" in line}
    except OSError:  # not Linux: no /proc; BLAS keeps its default threads
        return False
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for symbol in (
            "scipy_openblas_set_num_threads64_",
            "openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ):
            setter = getattr(library, symbol, None)
            if setter is not None:
                setter(count)
                return True
    return False


def request_realtime(priority: int = 10) -> bool:
    """Ask for SCHED_FIFO (inherited by child processes); False if not permitted or not Linux.

    On a shared machine other processes' time slices delay frames by tens of milliseconds;
    a real-time policy is how a deployment would protect the frame loop (``chrt -f 10``).
    """
    setter = getattr(os, "sched_setscheduler", None)
    if setter is None:
        return False
    try:
        setter(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError:
        return False
    return True


def freeze_startup_objects() -> None:
    """Move everything built so far (modules, model, config) out of the cyclic GC's reach.

    They live as long as the process, and a full collection that scans them took ~13 ms (80 ms
    with torch imported) and stalled a frame; afterwards it scans only what the frame loop
    allocates. Collect first so startup garbage is freed rather than frozen. Call it once per
    process, just before the frame loop starts.
    """
    gc.collect()
    gc.freeze()
