"""The fault suite's session figures: counted while it runs, printed at the end (the README quotes them)."""

from __future__ import annotations

import pytest

from tests.faults.figures import FIGURES


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.failed):
        if report.passed:
            FIGURES.cases_passed += 1
        elif report.failed:
            FIGURES.cases_failed += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.cases_passed + FIGURES.cases_failed == 0:
        return
    terminalreporter.section("fault injection figures (tests/faults)")
    for line in FIGURES.lines():
        terminalreporter.write_line(line)
