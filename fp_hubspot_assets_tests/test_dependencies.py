"""The pinned dependency set is what is installed, and the dagster family belongs to one release."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _release(dagster_version: str) -> tuple[int, int]:
    """dagster 1.X.Y ships its integrations as 0.(X+16).Y: 1.13.27 ↔ 0.29.27."""
    major, minor, patch = (int(p) for p in dagster_version.split(".")[:3])
    assert major == 1
    return minor + 16, patch


def test_dagster_postgres_matches_dagster() -> None:
    minor, patch = _release(version("dagster"))
    assert version("dagster-postgres") == f"0.{minor}.{patch}", (
        "dagster-postgres is not the integration release of the installed dagster: pin them together"
    )
    assert version("dagster-webserver") == version("dagster") == version("dagster-graphql")


@pytest.mark.parametrize(
    "package", ["dagster", "dagster-postgres", "hubspot-api-client", "polars", "pydantic"]
)
def test_installed_versions_match_the_lock(package: str) -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, pinned = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = pinned.strip()
    assert pins.get(package) == version(package), f"{package} is not the version locked in constraints.txt"


def test_psycopg2_imports() -> None:
    import psycopg2  # noqa: F401 — 2.8.x fails to import on Python 3.11
