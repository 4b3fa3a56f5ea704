"""Capabilities, not names: every provider declares what it can do, and no service tests a provider's name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lc2backup.domain import TransferCounters
from lc2backup.providers import Capabilities
from lc2backup.providers.aws import AwsDatabaseProvider, AwsTransferProvider
from lc2backup.providers.local import LocalDatabaseProvider, LocalTransferProvider
from lc2backup.testing.instant import InstantDatabaseProvider, InstantTransferProvider

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = [
    LocalDatabaseProvider,
    LocalTransferProvider,
    AwsDatabaseProvider,
    AwsTransferProvider,
    InstantDatabaseProvider,
    InstantTransferProvider,
]


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.__name__)
def test_every_provider_declares_its_capabilities(provider: type) -> None:
    capabilities = provider.capabilities  # type: ignore[attr-defined]
    assert isinstance(capabilities, Capabilities)
    assert capabilities.counters <= TransferCounters.counts()


def test_only_the_local_dump_moves_bytes_through_our_process() -> None:
    moving = [p.__name__ for p in PROVIDERS if p.capabilities.moves_bytes]  # type: ignore[attr-defined]
    assert moving == ["LocalDatabaseProvider"]
    assert AwsDatabaseProvider.capabilities.restorable == {"snapshot"}
    assert LocalDatabaseProvider.capabilities.restorable == {"export"}


def test_no_service_tests_a_provider_by_name() -> None:
    """``provider.name == "local"`` and the like: a capability asked by name (the rule this test guards)."""
    by_name = re.compile(r"""(\.name|provider)\s*[!=]=\s*["'](local|aws|gcp|azure|instant)["']""")
    sources = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/providers/src/**/*.py")]
    assert sources
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if by_name.search(line)
    ]
    assert not found, f"a provider tested by name: {found}"
    assert by_name.search('if provider.name == "local":')  # positive control of the pattern
