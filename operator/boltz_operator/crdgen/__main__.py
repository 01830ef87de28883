"""`python -m boltz_operator.crdgen [--check] [--root DIR]`: write crds/*.yaml, or exit 1 with a diff if stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .files import write_or_check


def default_root() -> Path:
    # operator/boltz_operator/crdgen/__main__.py -> the repository root
    return Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m boltz_operator.crdgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 with a diff if the files differ")
    parser.add_argument("--root", type=Path, default=default_root(), help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    diffs = write_or_check(args.root, check=args.check)
    if diffs:
        sys.stdout.write("".join(diffs))
        sys.stderr.write("CRDs are out of date: run `python -m boltz_operator.crdgen`\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
