"""Options shared by several commands, declared once so their names and help stay the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ApiOption = Annotated[
    str | None,
    typer.Option(
        "--api",
        help="Projection API URL (default: $LC2_API_URL, else the running `make up` stack)",
        show_default=False,
    ),
]
NatsOption = Annotated[
    str | None,
    typer.Option(
        "--nats",
        help="NATS URL (default: $LC2_NATS__URL, else the running `make up` stack)",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's raw JSON")]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="State directory of the local stack (default: $LC2_STATE_DIR, else .lc2)",
        show_default=False,
    ),
]
TimeoutOption = Annotated[float, typer.Option(help="With --watch: give up (exit 3) after this many seconds")]
IntervalOption = Annotated[float, typer.Option(help="With --watch: seconds between polls of the API", min=0.1)]
