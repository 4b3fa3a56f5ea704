"""Where the projection API and NATS are: an option, else the environment, else a running ``make up`` stack.

The order is the usual one for CLIs (flag > environment > state file), so ``source .lc2/env`` and a plain
``make up`` both work without flags, and a remote installation only needs ``LC2_API_URL``. The API's bearer
token comes from ``LC2_API_TOKEN`` (never a flag: it would show in ``ps`` and shell history), else from the
running stack, and only when the API called is that stack's.
"""

from __future__ import annotations

import os
from pathlib import Path

from lc2backup.cli.devstate import StackState, default_state_dir, read_state
from lc2backup.cli.errors import NotConfigured

START_HINT = "start the local stack with `make up` (or `lc2backup dev up --detach`), or pass {flag} / set {env}"


def _running_stack(directory: Path, flag: str, env: str) -> StackState | None:
    state = read_state(directory)
    if state is None:
        return None
    if not state.alive:
        raise NotConfigured(
            f"the local stack in {directory} is not running (stale {state.path.name})",
            hint=START_HINT.format(flag=flag, env=env),
        )
    return state


def api_url(option: str | None, state_dir: Path | None = None) -> str:
    if option:
        return option.rstrip("/")
    if os.environ.get("LC2_API_URL"):
        return os.environ["LC2_API_URL"].rstrip("/")
    directory = state_dir or default_state_dir()
    state = _running_stack(directory, "--api", "LC2_API_URL")
    if state is not None and state.api_url:
        return state.api_url
    raise NotConfigured(
        f"no projection API configured (no --api, no LC2_API_URL, no {directory}/stack.json)",
        hint=START_HINT.format(flag="--api URL", env="LC2_API_URL"),
    )


def api_token(base_url: str, state_dir: Path | None = None) -> str | None:
    if os.environ.get("LC2_API_TOKEN"):
        return os.environ["LC2_API_TOKEN"]
    state = read_state(state_dir or default_state_dir())
    if state is None or not state.alive or state.api_url != base_url.rstrip("/"):
        return None
    return state.api_token


def nats_url(option: str | None, state_dir: Path | None = None) -> str:
    if option:
        return option
    if os.environ.get("LC2_NATS__URL"):
        return os.environ["LC2_NATS__URL"]
    directory = state_dir or default_state_dir()
    state = _running_stack(directory, "--nats", "LC2_NATS__URL")
    if state is not None and state.env.get("LC2_NATS__URL"):
        return state.env["LC2_NATS__URL"]
    raise NotConfigured(
        f"no NATS server configured (no --nats, no LC2_NATS__URL, no {directory}/stack.json)",
        hint=START_HINT.format(flag="--nats URL", env="LC2_NATS__URL"),
    )
