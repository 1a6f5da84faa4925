"""Run every benchmark module in ``bench/`` that defines ``main()``, in a fixed order.

Each prints one line per figure (and its baseline from the same run) and ends with a summary line.
``python -m bench fetch`` runs one of them.
"""

from __future__ import annotations

import importlib
import sys

ORDER = ("fetch", "conform", "e2e")


def main(argv: list[str]) -> int:
    names = argv or list(ORDER)
    status = 0
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bench.{name}":
                raise
            print(f"bench {name}: not built yet", flush=True)
            status = 1
            continue
        print(f"== bench {name}", flush=True)
        status |= int(module.main() or 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
