"""Every whole-system test here runs twice: with one process of each service, and with two replicas of every
service at once — how users scale out, and the normal state in the middle of a rolling update. Two replicas
share each durable consumer, so a backup's deliveries land on either process: every backup must still end,
no effect may double (counted at the servers), and each process's view of a backup must stay right while the
other one appends to it."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[1, 2], ids=["1-replica", "2-replicas"])
def replicas(request: pytest.FixtureRequest) -> int:
    value: int = request.param
    return value
