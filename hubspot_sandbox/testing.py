"""Run the sandbox in a subprocess for tests and benchmarks.

    with running_sandbox(tmp_path / "hubspot.db", search_delay=0.5) as sb:
        client = sb.client()            # hubspot.Client pointed at the sandbox
        ...
        sb.restart()                    # same port, same state file
        assert sb.objects("contacts")

Options are the server's command-line flags with underscores (`rate_limits=True`, `faults="500=0.1"`,
`tokens=["a", "b"]`); `None` leaves a flag at its default."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

DEFAULT_TOKEN = "sandbox-token"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortBusyError(RuntimeError):
    """The sandbox's port is taken (often a sandbox of another demo or `make dev` still running)."""


def _require_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the server binds: a port held only by closed connections (TIME_WAIT, after a restart) is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortBusyError(
                f"the sandbox cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; stop what uses it "
                "(another `make dev` or sandbox?) or pick another port with --sandbox-port"
            ) from None


def _flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if key == "tokens":
            for token in value:
                flags += ["--token", str(token)]
        elif isinstance(value, bool):
            flags += [flag, "on" if value else "off"]
        else:
            flags += [flag, str(value)]
    return flags


class SandboxHandle:
    """A running sandbox subprocess and helpers to inspect it."""

    def __init__(self, state_path: Path, options: dict[str, Any]) -> None:
        self.state_path = Path(state_path)
        self.options = dict(options)
        self.port = int(self.options.pop("port", None) or free_port())
        # a portal of millions of records loads for minutes at start (bench/change_latency.py --store)
        self.start_timeout = float(self.options.pop("start_timeout", None) or START_TIMEOUT)
        tokens = self.options.get("tokens") or [self.options.pop("token", None) or DEFAULT_TOKEN]
        self.options["tokens"] = tokens
        self.token: str = tokens[0]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.state_path.with_suffix(self.state_path.suffix + ".log")
        self._proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0)

    @property
    def pid(self) -> int:
        """Process id of the running server."""
        if self._proc is None:
            raise RuntimeError("the sandbox is not running")
        return self._proc.pid

    # ---- process control ----------------------------------------------------------------------------
    def start(self) -> None:
        _require_free(self.port)  # else the health check below would find whatever already listens there
        cmd = [sys.executable, "-m", "hubspot_sandbox", "--port", str(self.port),
               "--state", str(self.state_path), *_flags(self.options)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log: IO[bytes] | None = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self._proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if self._http.get("/_sandbox/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"sandbox did not answer within {self.start_timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Clean shutdown (SIGTERM lets uvicorn run the lifespan flush); kill only if it hangs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log: IO[bytes] | None = getattr(self, "_log", None)
        if log is not None:
            log.close()
            self._log = None

    def kill(self) -> None:
        """Crash the server (SIGKILL, no shutdown flush) — for durability tests; start() brings it back."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._http.close()

    # ---- inspection ---------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return self._http.get("/_sandbox/stats").raise_for_status().json()

    def reset(self, data: bool = False) -> None:
        self._http.post("/_sandbox/reset", params={"data": "1" if data else "0"}).raise_for_status()

    def objects(self, object_type: str) -> list[dict[str, Any]]:
        """Every live record of a type, following the inspection route's pages."""
        out: list[dict[str, Any]] = []
        after = "0"
        while True:
            page = self._http.get(f"/_sandbox/objects/{object_type}", params={"limit": 1000, "after": after})
            body = page.raise_for_status().json()
            out.extend(body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if after is None:
                return out

    def client(self, access_token: str | None = None, **kwargs: Any) -> Any:
        """An official SDK client for this sandbox (typed APIs via `host`, api_request via `base_url`)."""
        import hubspot

        return hubspot.Client.create(access_token=access_token or self.token, host=self.base_url,
                                     base_url=self.base_url, **kwargs)


@contextmanager
def running_sandbox(state_path: Path, **options: Any) -> Iterator[SandboxHandle]:
    handle = SandboxHandle(state_path, options)
    handle.start()
    try:
        yield handle
    finally:
        handle.close()
