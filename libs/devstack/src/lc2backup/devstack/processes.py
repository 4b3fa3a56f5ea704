"""One child process of the local stack: started with a death signal, probed until ready, stopped in order.

Every server is a direct child of the process that started it and gets ``PR_SET_PDEATHSIG``, so a crashed
or killed parent (a test run, ``lc2backup dev up``) never leaves an orphaned server behind. The death signal
follows the *thread* that forked, so ``start()`` must run on a long-lived thread (the main one); only the
readiness waits may run in worker threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lc2backup.devstack.errors import StackError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """A server process with a readiness probe and an ordered stop (signal, grace period, SIGKILL)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        pdeathsig_in_preexec: bool = True,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.stop_signal = stop_signal
        self._pdeathsig_in_preexec = pdeathsig_in_preexec
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=_die_with_parent if self._pdeathsig_in_preexec else None,
                process_group=0,  # a terminal's Ctrl-C reaches only us; we stop children in order
            )
        except OSError as exc:
            raise StackError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        finally:
            log.close()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited (negative: killed by that signal), else None."""
        return self._proc.poll() if self._proc is not None else None

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> float:
        """Poll ``probe`` until it answers; returns the seconds it took. Fails fast if the process exits."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(f"{self.name} exited during start-up; see {self.log_path}:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if probe():
                    return time.monotonic() - started
            time.sleep(interval)
        self.stop()
        raise StackError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, sig: signal.Signals) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, sig)

    def stop(self, grace: float = 10.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(self.stop_signal)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, as a crash would: used by fault tests."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
