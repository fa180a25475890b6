"""``python -m bench NAME [options]``: run a benchmark and print its figures.

Names: ingest, read360, and the domains' benchmarks that exist (scores, segments, bot,
channels, journeys ...). ``--json FILE`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

BENCHES = ["ingest", "read360", "scores", "segments", "bot", "channels", "privacy",
           "playbooks", "playbooks_latency", "playbooks_ingest",
           "playbooks_crash", "phone", "voc", "journeys", "login", "points"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="name", required=True)
    available = []
    for name in BENCHES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bench.{name}":
                raise
            continue
        available.append(name)
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        if hasattr(module, "add_arguments"):
            module.add_arguments(p)
        p.add_argument("--json", type=Path, help="write the figures to this JSON file")
        p.set_defaults(module=module)
    args = parser.parse_args(argv)
    figures = args.module.run(args)
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
