"""Which allocator Arrow uses in this process (``ESTAT_ARROW_MEMORY_POOL``, default ``system``).

Why: pyarrow 26 allocates from its bundled mimalloc by default. On the 2-core benchmark VM a
process's first large load was much slower with it than with the C library's ``malloc`` (the
1M-row table 8.2 s vs 5.5 s, the 960,336-row year 9.5 s vs 5.3 s; the same load a second time in
the same process was as fast with both), and tuning mimalloc's purge delays did not change it
(``docs/benchmarks.md``). Every load runs in a fresh process (a CLI run, a forked run worker), so
the first load is the one that counts. The choice is per process and set where definitions are
built; buffers allocated before keep their own pool.
"""

from __future__ import annotations

import pyarrow as pa

POOLS = {
    "system": pa.system_memory_pool,
    "mimalloc": pa.mimalloc_memory_pool,
    "jemalloc": pa.jemalloc_memory_pool,
}


def use_arrow_memory_pool(name: str) -> str:
    """Make ``name`` Arrow's default pool; returns the backend now in use. A pool this pyarrow
    was built without leaves the default as it was."""
    try:
        pool = POOLS[name]()
    except NotImplementedError:
        return pa.default_memory_pool().backend_name
    pa.set_memory_pool(pool)
    return pool.backend_name
