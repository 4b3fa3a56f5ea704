"""PostgreSQL from the system binaries, run as the ``postgres`` user when we are root.

PostgreSQL refuses to run as root. As root we start ``postgres`` through ``setpriv`` (which execs, so the
server stays our direct child, and re-arms the death signal after the uid change). The data directory must
be reachable by that user: if the stack directory is not (a 0700 ``mktemp -d`` parent, say), the cluster
lives in a private folder under /tmp and ``<stack>/postgres`` is a symlink to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lc2backup.devstack.errors import StackError
from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.processes import ManagedProcess

PG_USER = "postgres"


def pg_bindir() -> Path:
    override = os.environ.get("LC2_PG_BINDIR")
    if override:
        return Path(override)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if versions:
        return versions[-1]
    found = shutil.which("postgres")
    if found is None:
        raise StackError("PostgreSQL binaries not found (apt-get install postgresql)")
    return Path(found).resolve().parent


def _as_pg_user(argv: list[str], *, pdeathsig: str | None = None) -> list[str]:
    if os.geteuid() != 0:
        return argv
    prefix = ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups"]
    if pdeathsig:
        prefix.append(f"--pdeathsig={pdeathsig}")
    return [*prefix, "--", *argv]


def _reachable_by_pg_user(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    probe = _as_pg_user(["test", "-x", str(path)])
    return subprocess.run(probe, check=False).returncode == 0


@dataclass
class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1, trust authentication, user ``postgres``."""

    directory: Path
    port: int = field(default_factory=free_port)
    fsync: bool = False
    _process: ManagedProcess | None = None
    _data_root: Path | None = None

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{PG_USER}@{LOOPBACK}:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        assert self._data_root is not None, "start() first"
        return self._data_root / "data"

    @property
    def log_path(self) -> Path:
        """The server's own log (stderr): errors it reported to clients, deadlocks with their lock graph."""
        assert self._data_root is not None, "start() first"
        return self._data_root / "server.log"

    def _prepare_root(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        link = self.directory / "postgres"
        if link.is_symlink() or link.exists():
            root = link.resolve()
            if root.exists() and _reachable_by_pg_user(root):
                return root
            if link.is_symlink():
                link.unlink()
        link.mkdir(exist_ok=True)
        if _reachable_by_pg_user(link):
            root = link
        else:
            link.rmdir()
            root = Path(tempfile.mkdtemp(prefix="lc2backup-pg-"))
            link.symlink_to(root)
        root.chmod(0o755)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        return root

    def start(self) -> float:
        self.spawn()
        return self.wait_ready()

    def spawn(self) -> None:
        self._data_root = self._prepare_root()
        bindir = pg_bindir()
        if not (self.data_dir / "PG_VERSION").exists():
            cmd = [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", PG_USER, "--auth=trust", "-E", "UTF8"]
            cmd += ["--no-sync", "--no-instructions"]
            done = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise StackError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        argv = [
            str(bindir / "postgres"),
            "-D", str(self.data_dir),
            "-c", f"listen_addresses={LOOPBACK}",
            "-p", str(self.port),
            "-k", str(self._data_root),
            "-c", f"fsync={'on' if self.fsync else 'off'}",
            "-c", "max_connections=200",
        ]  # fmt: skip
        root = os.geteuid() == 0
        self._process = ManagedProcess(
            "postgres",
            _as_pg_user(argv, pdeathsig="INT"),
            log_path=self.log_path,
            stop_signal=signal.SIGINT,  # fast shutdown: disconnect clients, checkpoint, exit
            pdeathsig_in_preexec=not root,
        )
        self._process.start()

    def wait_ready(self) -> float:
        assert self._process is not None
        isready = [str(pg_bindir() / "pg_isready"), "-q", "-h", LOOPBACK, "-p", str(self.port), "-U", PG_USER]
        return self._process.wait_ready(lambda: subprocess.run(isready, check=False).returncode == 0)

    def psql(self, sql: str, database: str = "postgres") -> str:
        cmd = [str(pg_bindir() / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.dsn_for(database)]
        done = subprocess.run([*cmd, "-c", sql], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StackError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if not exists:
            self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=20)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None
