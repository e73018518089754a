import ctypes

import numpy as np

from vadbridge.scheduling import limit_blas_threads


def _openblas_thread_counts() -> list[int]:
    with open("/proc/self/maps", encoding="utf-8") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line and "/" in line}
    counts = []
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                       "openblas_get_num_threads"):
            getter = getattr(library, symbol, None)
            if getter is not None:
                counts.append(int(getter()))
                break
    return counts


def test_numpy_blas_is_pinned_to_one_thread() -> None:
    np.ones((4, 4)) @ np.ones((4, 4))  # make sure BLAS is loaded
    assert limit_blas_threads(1) is True
    assert _openblas_thread_counts() and set(_openblas_thread_counts()) == {1}
