"""vadbridge's benchmarks, run by ``vadbridge bench`` (docs/performance.md): the suite in
``suite``, one module per benchmark, the shared harness in ``harness``."""
