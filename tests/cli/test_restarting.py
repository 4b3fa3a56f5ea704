"""The supervisor's restart policy: growing delays without a last attempt, and a fresh start once healthy."""

from __future__ import annotations

from datetime import UTC, datetime

from lc2backup.cli.restarting import BACKOFF_CAP, HEALTHY_AFTER, ServiceHealth, describe_exit


def test_delays_double_up_to_the_cap_and_never_stop() -> None:
    health = ServiceHealth(started_at=0.0)
    now, delays = 10.0, []
    for _ in range(12):
        delays.append(health.exited(now, -9))
        now = health.due or now
        health.restarted(now)
        now += 1.0  # each run crashes a second after its start: never healthy
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60]
    assert BACKOFF_CAP == 60 and health.restarts == 12 and not health.down


def test_a_service_up_for_the_healthy_period_starts_again_from_the_first_delay() -> None:
    health = ServiceHealth(started_at=0.0)
    assert [health.exited(t, 1) for t in (1.0, 2.0, 3.0)] == [1, 2, 4]
    health.restarted(10.0)
    assert health.exited(10.0 + HEALTHY_AFTER - 1, 1) == 8  # not yet healthy: keeps growing
    health.restarted(100.0)
    assert health.exited(100.0 + HEALTHY_AFTER, 1) == 1
    assert health.crashes == 1 and health.restarts == 2


def test_a_failed_restart_counts_as_a_crash_and_is_recorded() -> None:
    health = ServiceHealth(started_at=0.0)
    health.exited(5.0, 3)
    assert health.restart_failed(6.0, "metadata exited during start-up") == 2
    wall = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    doc = health.describe(6.5, wall)
    assert doc == {
        "state": "down",
        "restarts": 1,
        "lastExit": "exit 3",
        "lastExitAt": health.last_exit_at.isoformat() if health.last_exit_at else None,
        "nextRestartAt": "2026-12-05T08:00:01.500000+00:00",
        "lastError": "metadata exited during start-up",
    }


def test_exit_statuses_read_as_people_say_them() -> None:
    assert [describe_exit(c) for c in (0, 2, -9, -15, None)] == [
        "exit 0",
        "exit 2",
        "killed by SIGKILL",
        "killed by SIGTERM",
        "exit unknown",
    ]
