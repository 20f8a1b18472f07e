"""A real `loopynet serve` process for tests: started on 127.0.0.1 with a free port (--port 0), its
stderr collected, ready when /readyz says so; stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx

from tests.conftest import REPO


class Server:
    """`loopynet serve ARGS` in a subprocess; `url` once started, `stderr_lines` as they come."""

    def __init__(self, *args: str):
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "loopynet.cli", "serve", *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr_lines: list[str] = []
        self.url: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.stderr_lines.append(line.rstrip("\n"))
            found = re.search(r"on (http://[\d.]+:\d+)", line)
            if found and self.url is None:
                self.url = found.group(1)

    def wait_ready(self, timeout: float = 300) -> "Server":
        """Wait for /readyz 200. Raises AssertionError with the server's stderr if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.stderr_lines}")
            if self.url:
                try:
                    if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout} s: {self.stderr_lines}")

    def access_log(self, path: str, count: int, timeout: float = 30) -> list[dict]:
        """The JSON access-log entries for `path`, once at least `count` have been read from stderr (the
        server writes a line after its response is sent, so it may lag the client). Raises AssertionError on
        timeout."""
        deadline = time.monotonic() + timeout
        while True:
            entries = [json.loads(line) for line in list(self.stderr_lines) if line.startswith("{")]
            entries = [e for e in entries if e.get("path") == path]
            if len(entries) >= count:
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} log lines for {path} not seen in {timeout} s: {self.stderr_lines}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = 300) -> int:  # a loaded 2-core machine needs ~40 s to import and load
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
