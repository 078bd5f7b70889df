"""Shared pytest fixtures for the sandbox: a fresh server per test, or one per session (wiped per use)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hubspot_sandbox.testing import SandboxHandle, running_sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxHandle]:
    """A sandbox server of its own (default options) with its state in tmp_path."""
    with running_sandbox(tmp_path / "hubspot.db") as handle:
        yield handle


@pytest.fixture(scope="session")
def _sandbox_session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox") / "hubspot.db") as handle:
        yield handle


@pytest.fixture
def sandbox_session(_sandbox_session_server: SandboxHandle) -> SandboxHandle:
    """The session's shared sandbox, wiped (data, counters, schema) before each use."""
    _sandbox_session_server.reset(data=True)
    return _sandbox_session_server
