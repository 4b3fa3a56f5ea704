"""``python -m lc2backup.contracts write|check [--dir contracts] [--prune]``: the entry point of ``make contracts``.

``write`` renders every artifact; a file that no artifact produces is reported and the exit status is 1,
unless ``--prune`` deletes it. ``check`` writes nothing and exits 1 listing every file that differs, is
missing or is extra.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lc2backup.contracts import natsauth
from lc2backup.contracts.artifacts import KEPT
from lc2backup.contracts.generating import check, write


def _workspace_contracts() -> Path | None:
    """``contracts/`` of the uv workspace around the current directory (where ``uv.lock`` is)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "uv.lock").is_file():
            return folder / "contracts"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lc2backup.contracts", description=__doc__)
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument(
        "--dir", type=Path, default=None, help="the contracts directory (default: <workspace>/contracts)"
    )
    parser.add_argument("--prune", action="store_true", help="write: delete files that no artifact produces")
    args = parser.parse_args(argv)
    root: Path | None = args.dir or _workspace_contracts()
    if root is None:
        parser.error("not inside the workspace (no uv.lock above the current directory): pass --dir")

    if args.command == "check":
        drift = check(root)
        if natsauth.deploy_drift(root.parent):
            drift.changed.append(f"../{natsauth.DEPLOY_PATH}")
        if not drift:
            sys.stdout.write(f"{root}: up to date\n")
            return 0
        sys.stderr.write("".join(f"{line}\n" for line in drift.lines()))
        sys.stderr.write(f"{root} differs from the code: run `python -m lc2backup.contracts write`\n")
        return 1

    drift = write(root, prune=args.prune)
    if (deployed := natsauth.write_deploy(root.parent)) is not None:
        sys.stdout.write(f"wrote   {deployed}\n")
    for path in [*drift.changed, *drift.missing]:
        sys.stdout.write(f"missing {path} (listed in KEPT)\n" if path in KEPT else f"wrote   {path}\n")
    for path in drift.extra:
        sys.stdout.write(f"pruned  {path}\n" if args.prune else f"extra:  {path} (no artifact writes it)\n")
    if drift.extra and not args.prune:
        sys.stderr.write("files that no artifact produces: delete them, or run again with --prune\n")
        return 1
    if any(path in KEPT for path in drift.missing):
        return 1
    sys.stdout.write(f"{root}: up to date\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
