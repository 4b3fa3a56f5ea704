"""Errors of the command line, each with the exit code it ends the process with.

CliError (1)
 ├── NotConfigured (1)    no API / NATS URL: not given, not in the environment, no running local stack
 ├── Unreachable (1)      the API or NATS did not answer
 ├── ApiError (1)         the API answered with a status we did not expect
 │    └── NotFound (1)    no backup with this id
 ├── InvalidInput (2)     a manifest or an option is wrong; ``problems`` lists every field to fix
 └── StackFailure (1)     the local stack could not be started, stopped or seeded

Commands raise these; ``handle_errors`` prints them on stderr and exits with ``exit_code``. Exit codes of
outcomes (a failed backup 1, a timeout 3) are not errors and are returned by the commands themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from lc2backup.cli.rendering import make_console
from lc2backup.domain import Problem

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotConfigured(CliError):
    pass


class Unreachable(CliError):
    pass


class ApiError(CliError):
    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class NotFound(ApiError):
    pass


class InvalidInput(CliError):
    exit_code = EXIT_INVALID

    def __init__(self, message: str, problems: list[Problem] | None = None, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []


class StackFailure(CliError):
    pass


def print_error(err: Console, exc: CliError) -> None:
    err.print(f"[bold red]error:[/] {escape(exc.message)}")
    if isinstance(exc, InvalidInput) and exc.problems:
        width = max(len(p.field) for p in exc.problems)
        for problem in exc.problems:
            err.print(f"  [cyan]{escape(problem.field.ljust(width))}[/]  {escape(problem.message)}", soft_wrap=True)
    if exc.hint:
        err.print(f"[dim]{escape(exc.hint)}[/]", soft_wrap=True)


P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a ``CliError`` raised by a command into a message on stderr and its exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as exc:
            print_error(make_console(stderr=True), exc)
            raise typer.Exit(exc.exit_code) from exc

    return wrapper
