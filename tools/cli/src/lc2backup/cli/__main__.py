"""The ``lc2backup`` command: its composition root, where every command group joins one typer app."""

from __future__ import annotations

import typer

from lc2backup.cli import dev
from lc2backup.cli.applying import apply
from lc2backup.cli.demo import demo
from lc2backup.cli.downloading import download
from lc2backup.cli.inspecting import events, get, get_restore, list_backups, list_restores, restorable
from lc2backup.cli.restoring import restore, verify
from lc2backup.cli.watching import watch

app = typer.Typer(
    name="lc2backup",
    help="LC2 Backup: request, follow and inspect backups of Liferay environments, restore and verify them; run the"
    " local stack.",
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
app.command()(restore)
app.command()(verify)
app.command("restores")(list_restores)
app.command("get-restore")(get_restore)
app.command()(restorable)
app.command()(demo)
app.add_typer(dev.app, name="dev")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
