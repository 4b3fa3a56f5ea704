"""The ``lc2backup`` command: its composition root, where every command group joins one typer app."""

from __future__ import annotations

import typer

from lc2backup.cli import dev
from lc2backup.cli.applying import apply
from lc2backup.cli.demo import demo
from lc2backup.cli.downloading import download
from lc2backup.cli.inspecting import events, get, list_backups
from lc2backup.cli.watching import watch

app = typer.Typer(
    name="lc2backup",
    help="LC2 Backup: request, follow and inspect backups of Liferay environments; run the local stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(apply)
app.command("list")(list_backups)
app.command()(get)
app.command()(events)
app.command()(watch)
app.command()(download)
app.command()(demo)
app.add_typer(dev.app, name="dev")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
