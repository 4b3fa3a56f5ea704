"""The local stack's NATS users: the deployment's least-privilege grants, with passwords made up per stack.

Passwords are random, kept in ``<nats dir>/users.json`` (mode 0600) so that a server restarted on the same
directory keeps them. ``admin`` goes into ``NatsServer.url`` (tests, the CLI and benchmarks connect with it);
each service gets only its own user and password (``service_env``).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from lc2backup.eventing.permissions import (
    ADMIN,
    STREAM_MANAGER,
    grants,
    inbox_prefix,
    render_authorization,
)


@dataclass(frozen=True)
class NatsUsers:
    passwords: dict[str, str]

    @classmethod
    def load_or_create(cls, path: Path) -> NatsUsers:
        users = set(grants())
        try:
            stored = json.loads(path.read_text())
            if isinstance(stored, dict) and users <= set(stored):
                return cls({user: str(stored[user]) for user in sorted(users)})
        except (OSError, ValueError):
            pass
        made = cls({user: secrets.token_hex(16) for user in sorted(users)})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(made.passwords, out)
        return made

    def authorization(self) -> str:
        return render_authorization(grants(), lambda user: json.dumps(self.passwords[user]))

    def password(self, user: str) -> str:
        return self.passwords[user]

    def service_env(self, service: str, url: str) -> dict[str, str]:
        """``LC2_*`` settings that make a service connect as its own user (and manage streams only if allowed)."""
        return {
            "LC2_NATS__URL": url,
            "LC2_NATS__USER": service,
            "LC2_NATS__PASSWORD": self.passwords[service],
            "LC2_NATS__INBOX_PREFIX": inbox_prefix(service),
            "LC2_STREAMS__MANAGE": "true" if service == STREAM_MANAGER else "false",
        }

    @property
    def admin_password(self) -> str:
        return self.passwords[ADMIN]
