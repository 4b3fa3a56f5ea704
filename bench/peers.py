"""The peer copy tools of B4, run as their users would: ``aws s3 sync`` and ``rclone copy`` with excludes.

awscli lives in a virtualenv of its own (``.tools/awscli``: installed beside aioboto3 it resolves to a broken
boto3); rclone is Debian's package and must run without ``AWS_CA_BUNDLE`` (rclone 1.60 rejects it here).
Both get the strongest settings measured for them on this kind of machine: awscli with 64 concurrent
requests, rclone with 32 transfers, 32 checkers and ``--fast-list``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from lc2backup.devstack import LocalStack
from lc2backup.devstack.seaweed import ACCESS_KEY, REGION, SECRET_KEY
from lc2backup.domain import GENERATED_FOLDERS


def _run(argv: Sequence[str], env: dict[str, str], what: str) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")
    return seconds


def aws_sync(aws: str, stack: LocalStack, source: str, destination: str, companies: Sequence[int], home: Path) -> float:
    """Wall seconds of ``aws s3 sync s3://source s3://destination`` with the generated folders excluded."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config"
    config.write_text(f"[default]\nregion = {REGION}\ns3 =\n    max_concurrent_requests = 64\n")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
    }
    excludes = [a for c in companies for f in GENERATED_FOLDERS for a in ("--exclude", f"{c}/0/{f}/*")]
    argv = [aws, "s3", "sync", f"s3://{source}", f"s3://{destination}", "--endpoint-url", stack.s3.endpoint]
    return _run([*argv, *excludes, "--only-show-errors"], env, "aws s3 sync")


def rclone_copy(rclone: str, stack: LocalStack, source: str, destination: str, companies: Sequence[int]) -> float:
    """Wall seconds of ``rclone copy`` between the buckets (server-side copies) with the same excludes."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(
        RCLONE_CONFIG_X_TYPE="s3",
        RCLONE_CONFIG_X_PROVIDER="Other",
        RCLONE_CONFIG_X_ENDPOINT=stack.s3.endpoint,
        RCLONE_CONFIG_X_ACCESS_KEY_ID=ACCESS_KEY,
        RCLONE_CONFIG_X_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_X_REGION=REGION,
    )
    excludes = [a for c in companies for f in GENERATED_FOLDERS for a in ("--exclude", f"/{c}/0/{f}/**")]
    argv = [rclone, "copy", f"X:{source}", f"X:{destination}", "--transfers", "32", "--checkers", "32", "--fast-list"]
    return _run([*argv, *excludes], env, "rclone copy")
