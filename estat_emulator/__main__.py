"""``python -m estat_emulator [--data DIR] [--port P]``: the emulator without the lake's CLI.

Why: the emulator is its own package; this serves it exactly as ``estat-lake emulator`` does (both
call :func:`estat_emulator.serve`), for tools that only need a local e-Stat.
"""

from __future__ import annotations

import argparse

from . import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m estat_emulator", description=__doc__)
    parser.add_argument("--data", default=None, help="directory of samples (default: bundled)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18800)
    parser.add_argument("--faults", default=None, help="JSON file of fault rules")
    parser.add_argument("--app-id", default=None, help="require this appId (default: any)")
    args = parser.parse_args(argv)
    serve(args.data, args.host, args.port, faults_file=args.faults, required_app_id=args.app_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
