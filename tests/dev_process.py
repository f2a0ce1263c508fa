"""`python -m localcloud dev` as a subprocess, as `make dev` runs it, for the tests that drive it.

Both its pipes are read by threads: a quiet process cannot block a test, and a chatty one cannot
block itself on a full stderr pipe. A wait for a line fails at once, with the process's exit code
and stderr, if the process exits first; on a timeout it shows what the process printed so far.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


class DevProcess:
    def __init__(self, *args: str | Path, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "dev", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Not PYTHONUNBUFFERED: the CLI must flush what matters itself, as under `| tee`.
            env={**os.environ, "PYTHONUNBUFFERED": "", **(env or {})},
        )
        self.started = time.monotonic()
        self._lines: list[str] = []
        self._stderr: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        stdout, stderr = self.process.stdout, self.process.stderr

        def pump_stdout() -> None:
            for line in stdout:
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
            with self._changed:
                self._closed = True
                self._changed.notify_all()

        def pump_stderr() -> None:
            for line in stderr:
                self._stderr.append(line)

        self._threads = [
            threading.Thread(target=pump_stdout, daemon=True),
            threading.Thread(target=pump_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def stdout(self) -> str:
        with self._changed:
            return "".join(self._lines)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _report(self, what: str) -> str:
        elapsed = time.monotonic() - self.started
        stdout = "".join(self._lines)
        return (
            f"{what} ({elapsed:.0f}s after start, exit code {self.process.poll()})\n"
            f"--- stdout ---\n{stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}"
        )

    def wait_for_line(self, matches: Callable[[str], bool], what: str, timeout: float) -> str:
        """The first line printed (so far or from now) for which `matches` holds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = 0
            while True:
                for line in self._lines[seen:]:
                    if matches(line):
                        return line
                seen = len(self._lines)
                if self._closed:
                    self.process.wait(timeout=10)
                    for thread in self._threads:
                        thread.join(timeout=5)
                    raise AssertionError(self._report(f"the process ended before {what}"))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self._report(f"no {what} within {timeout:.0f}s"))
                self._changed.wait(remaining)

    def read_until(self, marker: str, timeout: float) -> str:
        """Everything printed up to and including the first line containing `marker`."""
        line = self.wait_for_line(lambda text: marker in text, repr(marker), timeout)
        with self._changed:
            return "".join(self._lines[: self._lines.index(line) + 1])

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, as a person stops `make dev`; returns the exit code once stdout is drained."""
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                self._report(f"still running {timeout:.0f}s after Ctrl-C")
            ) from None
        for thread in self._threads:
            thread.join(timeout=5)
        return code

    def assert_stopped_cleanly(self) -> None:
        """After `interrupt`: it said it was stopping, then "stopped" last, and no onboarding
        failed on the way. Handler log lines may interleave after "stopping the local cloud"
        (work in flight ends while the servers stop), so the order is checked, not adjacency."""
        with self._changed:
            lines = [line.rstrip("\n") for line in self._lines]
        report = self._report("not a clean stop")
        assert lines[-1:] == ["stopped"], report
        assert lines.count("stopping the local cloud") == 1, report
        assert lines.index("Ctrl-C stops it.") < lines.index("stopping the local cloud"), report
        # A workflow failure recorded during the run or the shutdown is not "clean".
        failures = [line for line in lines if '"message":"onboarding failed"' in line]
        assert not failures, report

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
