"""A real headless browser for end-to-end tests: Debian's Chromium driven by chromedriver over the W3C
WebDriver HTTP protocol, with httpx (no Selenium/Playwright dependency; a handful of endpoints is all the
tests need).

Fixtures: ``chromedriver`` (one driver process per test session, its base URL) and ``browser`` (a fresh
Chromium with an empty profile per test). Without chromium/chromedriver the fixtures FAIL under CI
(``CI`` set; .ci/run installs both) and skip elsewhere, saying what to install. ``serving(app)`` serves an
ASGI app (the tracing page) on a free local port for the browser or an HTTP client.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hubspot_sandbox.testing import free_port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread; yields its base URL, stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# Flags the workplace's Chromium needs as root on a closed network: without the background-networking ones
# Chromium keeps dialing Google's hosts and getting refused.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1024,768",
)
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web-element reference key
INSTALL_HINT = "apt-get install -y chromium chromium-driver (Debian's packages; .ci/run installs them)"


class WebDriverError(RuntimeError):
    """chromedriver answered with a W3C error (``no such element``, ``timeout``, …)."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def browser_binaries() -> tuple[str, str]:
    """(chromium, chromedriver) paths; fails the test under CI when one is missing, else skips it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    missing = ", ".join(name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path)
    message = f"the browser tests need {missing}: {INSTALL_HINT}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class Browser:
    """One WebDriver session: open a URL, find and click by CSS selector, read the URL and the page text."""

    def __init__(self, http: httpx.Client, session_id: str) -> None:
        self.http, self.session_id = http, session_id

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"/session/{self.session_id}{path}", json=body)
        value = response.json().get("value")
        if response.status_code != 200:
            error = value.get("error", "error") if isinstance(value, dict) else "error"
            message = value.get("message", "") if isinstance(value, dict) else str(value)
            raise WebDriverError(f"{method} {path}: {error}: {message.splitlines()[0] if message else ''}")
        return value

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return str(self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT_KEY])

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        """Clear the input at ``css`` and type ``text`` into it."""
        element = self.find(css)
        self._call("POST", f"/element/{element}/clear", {})
        self._call("POST", f"/element/{element}/value", {"text": text})

    def screenshot(self, path: Path) -> None:
        """Save the visible page as a PNG."""
        import base64

        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))

    def url(self) -> str:
        return str(self._call("GET", "/url"))

    def text(self) -> str:
        """What a person reads on the page (the body's rendered text)."""
        return str(self._call("GET", f"/element/{self.find('body')}/text"))

    def source(self) -> str:
        return str(self._call("GET", "/source"))

    def wait_until(self, condition: Callable[[Browser], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise WebDriverError(f"timed out after {timeout} s waiting in the browser (at {self.url()})")
            time.sleep(0.1)


def _wait_ready(http: httpx.Client, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WebDriverError(f"chromedriver exited with {proc.returncode}")
        try:
            if http.get("/status").json()["value"].get("ready"):
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise WebDriverError(f"chromedriver not ready within {timeout} s")


@pytest.fixture(scope="session")
def chromedriver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A chromedriver process on a free loopback port for the whole session; yields its base URL."""
    _chromium, driver = browser_binaries()
    port = free_port()
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    proc = subprocess.Popen([driver, f"--port={port}", f"--log-path={log}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5.0) as http:
            _wait_ready(http, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser(chromedriver: str, tmp_path: Path) -> Iterator[Browser]:
    """A fresh headless Chromium (new empty profile) for one test."""
    chromium, _driver = browser_binaries()
    profile = tmp_path / "chromium-profile"
    options = {"binary": chromium, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]}
    capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
    with httpx.Client(base_url=chromedriver, timeout=60.0) as http:
        created = http.post("/session", json={"capabilities": capabilities})
        value = created.json()["value"]
        if created.status_code != 200:
            raise WebDriverError(f"cannot start Chromium: {value.get('message', value)}")
        session = Browser(http, value["sessionId"])
        session._call("POST", "/timeouts", {"pageLoad": 20_000, "script": 10_000, "implicit": 0})
        try:
            yield session
        finally:
            http.delete(f"/session/{session.session_id}")
