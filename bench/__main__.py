"""``python -m bench``: start the local stack, run B1–B9, print one table, write ``bench/results/latest.json``."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.context import ROOT, Context, Peers
from bench.machine import describe, load_1min
from bench.report import table, write_json
from bench.sizes import FULL, TINY
from bench.suite import BENCHMARKS, run_suite
from lc2backup.devstack import LocalStack


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", choices=("full", "tiny"), default="full", help="tiny: the smoke-test sizes")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated ids, e.g. B1,B4")
    parser.add_argument("--quiet-load", type=float, default=1.0, help="wait for a 1-min load below this")
    parser.add_argument("--patience", type=float, default=3600.0, help="seconds to wait for it per benchmark")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--allow-missing-peers", action="store_true", help="skip aws/rclone instead of failing")
    parser.add_argument("--merge", action="store_true", help="keep the other benchmarks' results already in --output")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    ids = [i.strip().upper() for i in args.only.split(",") if i.strip()]
    unknown = [i for i in ids if i not in BENCHMARKS]
    if unknown:
        say(f"unknown benchmark ids: {unknown}; known: {list(BENCHMARKS)}")
        return 2
    peers = Peers.find()
    if "B4" in ids and peers.missing() and not args.allow_missing_peers:
        say(f"B4 needs {' and '.join(peers.missing())}: run it through `make bench`, which installs them")
        return 2
    sizes = FULL if args.size == "full" else TINY
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lc2-bench-"))
    say(f"benchmarks {ids} at size {args.size}, scratch in {workdir}")
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    stack = LocalStack(workdir / "stack").start()
    try:
        ctx = Context(stack, workdir, sizes, peers, say)
        results = run_suite(ctx, ids, quiet_load=args.quiet_load, patience=args.patience)
    finally:
        stack.stop()
        stack.remove()
    print(table(results))
    write_json(
        args.output,
        describe(peers.as_dict()),
        results,
        merge=args.merge,
        started_at=started_at.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        size=args.size,
        repetitions=sizes.repetitions,
        quiet_load_threshold=args.quiet_load,
        load_1min_at_end=load_1min(),
        wall_seconds=round(time.monotonic() - clock, 1),
    )
    say(f"wrote {args.output}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
