"""How big each benchmark runs: ``FULL`` for ``make bench``, ``TINY`` for the smoke runs in ``make test``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    repetitions: int
    b1_repetitions: int  # B1 is cheap and noisy: more repetitions than the rest
    b1_appends: int  # per repetition and mode
    b1_pipeline: int  # appends in flight when pipelined
    b2_backups: int
    b2_concurrency: int  # backups in flight, each in its own environment (admission serialises per environment)
    b3_copies: int  # the B2 stream replayed this many times under fresh backup ids, then rebuilt
    b4_objects: int
    b4_large_every: int  # one MiB-sized object every N regular ones
    b5_small_objects: int
    b5_big_objects: int
    b5_small_db_scale: int  # liferay_database_sql scale of the small database (scale 1 ≈ 10 MB)
    b5_big_db_scale: int  # ... of the big one (B6 dumps it too)
    b5_min_big_db_bytes: int
    b8_objects: int  # listed in the source (80 % regular, copied; the kill comes at half of those)
    b9_long_events: int  # the long backup's history before its first measured delivery
    b9_short_events: int
    b9_deliveries: int  # per repetition and backup length, each one appended event then one timed load


FULL = Sizes(
    repetitions=3,
    b1_repetitions=6,
    b1_appends=3000,
    b1_pipeline=256,
    b2_backups=600,
    b2_concurrency=20,
    b3_copies=10,
    b4_objects=10_000,
    b4_large_every=80,
    b5_small_objects=1_000,
    b5_big_objects=50_000,
    b5_small_db_scale=1,
    b5_big_db_scale=200,
    b5_min_big_db_bytes=1_000_000_000,
    b8_objects=125_000,  # 100,000 regular objects
    b9_long_events=5_000,
    b9_short_events=10,
    b9_deliveries=60,
)

TINY = Sizes(
    repetitions=1,
    b1_repetitions=2,
    b1_appends=40,
    b1_pipeline=16,
    b2_backups=6,
    b2_concurrency=3,
    b3_copies=2,
    b4_objects=50,
    b4_large_every=20,
    b5_small_objects=10,
    b5_big_objects=30,
    b5_small_db_scale=1,
    b5_big_db_scale=1,
    b5_min_big_db_bytes=0,
    b8_objects=250,
    b9_long_events=100,
    b9_short_events=10,
    b9_deliveries=4,
)
