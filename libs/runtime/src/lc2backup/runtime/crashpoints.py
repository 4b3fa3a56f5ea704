"""Deterministic crash points: a test-only way to SIGKILL a service exactly at a step boundary.

Why it exists: the fault suite (``tests/faults``) proves that a crash at *every* step of a backup — after an
event is appended but before its message is acked, while a managed operation is polled, between a projection
batch's rows and its commit, in the middle of a copy or a dump — loses nothing and repeats no effect. A kill
"somewhere around" a step proves little; these points put the kill exactly there. The production code runs
unchanged: with ``LC2_CRASH_AT`` unset, ``crash_point()`` is one lookup in an empty dict.

Configuration (environment, read once at start-up by ``lc2backup.runtime.scaffold`` via ``arm_from_env``):

``LC2_CRASH_AT``
    Comma-separated point names, each optionally ``@N``: crash the N-th time the point is reached (default 1).
``LC2_CRASH_MARKERS``
    A directory (required with ``LC2_CRASH_AT``). A point is armed while ``<dir>/<point>`` does not exist.
    Reaching an armed point creates that file, then the process SIGKILLs itself; the restarted process finds
    the file and runs through the point. A test can hold a point disarmed by creating its file first, and arm
    it later, without a restart, by deleting it; hits are only counted while the point is armed.

The points (names are stable; the tests parametrise over them):

``before-append:<EventType>`` / ``after-append:<EventType>``
    ``EventStore`` — the effect is done but not recorded / the event is durable but the message not acked.
``ack:<durable>`` / ``nak:<durable>``
    ``ConsumerRunner`` — the handler finished / asked for a retry (a poll still running), before the answer.
    Eventing knows nothing of crashes: ``ServiceScaffold`` passes ``crash_point`` as the store's and the
    runners' ``at_step`` hook (``lc2backup.eventing.steps``).
``projection:rows-written`` / ``projection:committed``
    archiver — a batch's rows are written but not committed / committed.
``copy:object``
    ``S3Copier`` — after each object is copied, before its manifest line is in a part (``copy:object@5``: mid-copy).
``copy:manifest-part`` / ``copy:position``
    ``S3Copier`` — a manifest part is written but the position after it not yet recorded / a position recorded.
``dump:chunk``
    ``PgDumper`` — after each chunk of ``pg_dump`` output is streamed (``dump:chunk@2``: mid-dump).
``dump:uploaded``
    ``PgDumper`` — the dump's upload is complete, its ``.sha256`` sidecar not yet written.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CRASH_AT = "LC2_CRASH_AT"
CRASH_MARKERS = "LC2_CRASH_MARKERS"


@dataclass
class _Armed:
    nth: int
    markers: Path
    hits: int = 0


_points: dict[str, _Armed] = {}


def parse(spec: str) -> dict[str, int]:
    """``"a,b@3"`` -> ``{"a": 1, "b": 3}``."""
    points: dict[str, int] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, nth = item.partition("@")
        points[name] = int(nth) if nth else 1
    return points


def arm(spec: str, markers: Path) -> None:
    """Arm the points of ``spec`` (see the module docstring); replaces any earlier arming."""
    _points.clear()
    markers.mkdir(parents=True, exist_ok=True)
    for name, nth in parse(spec).items():
        _points[name] = _Armed(max(nth, 1), markers)
    if _points:
        log.warning("test-only crash points armed: %s (markers in %s)", ", ".join(sorted(_points)), markers)


def arm_from_env(environ: Mapping[str, str]) -> None:
    spec = environ.get(CRASH_AT, "")
    if not spec.strip():
        return
    markers = environ.get(CRASH_MARKERS)
    if not markers:
        raise ValueError(f"{CRASH_AT} needs {CRASH_MARKERS} (a directory for the once-only markers)")
    arm(spec, Path(markers))


def marker(markers: Path, name: str) -> Path:
    return markers / name.replace("/", "_")


def crash_point(name: str) -> None:
    """SIGKILL this process if ``name`` is armed and reached for the N-th time; otherwise do nothing."""
    armed = _points.get(name)
    if armed is None:
        return
    path = marker(armed.markers, name)
    if path.exists():
        return
    armed.hits += 1
    if armed.hits < armed.nth:
        return
    try:
        with path.open("x") as file:
            file.write(f"pid={os.getpid()}\n")
    except FileExistsError:
        return
    log.warning("crash point %s reached: SIGKILL", name)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.kill(os.getpid(), signal.SIGKILL)
