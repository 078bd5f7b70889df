"""Preflight: check every part of the set-up before anything is written, and say what is wrong in one line.

Run by ``fp-hubspot sync`` before it starts a run, and by the first HubSpot writer of every run (so a run
started from the UI stops there too). Checks, in order, and nothing is written by any of them:

1. the panel file is valid;
2. the HubSpot token from the environment is usable (whitespace stripped, no invisible characters);
3. the SAP / FocusPoint database is reachable and holds every table and column the reader needs;
4. the state store can be written (its file or folder is writable, or its server answers);
5. HubSpot is reachable (the host is named when it is not) and, with a token, accepts it.

A failure raises ``PreflightError`` whose message is one line: what is wrong, where, and how to fix it.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import sqlalchemy as sa

from fp_hubspot_assets.panel import PanelError, PanelSettings, load_panel
from fp_hubspot_assets.sap.tables import metadata as sap_metadata

if TYPE_CHECKING:
    from fp_hubspot_assets.sap.reader import SapReader

CONNECT_TIMEOUT_SECONDS = 5.0


class PreflightError(RuntimeError):
    """The set-up cannot work; the message is one line (what, where, how to fix)."""


def _one_line(text: str) -> str:
    """A multi-line message (panel errors list one field per line) joined into one line."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


# ---------------------------------------------------------------- 1. panel
def check_panel(path: str | None) -> PanelSettings:
    try:
        return load_panel(path or None)
    except PanelError as exc:
        raise PreflightError(f"invalid panel: {_one_line(str(exc))} — fix the file (every option: panel.example.yaml)") from None


# ---------------------------------------------------------------- 2. token
def check_token(settings: PanelSettings) -> tuple[str, str, bool]:
    """(API base URL, token, is_sandbox) as the run will use them."""
    from fp_hubspot_assets.defs.resources import NotConfigured, resolve_connection
    from fp_hubspot_assets.hubspot.secrets import SecretFormatError

    try:
        return resolve_connection(settings)
    except (SecretFormatError, NotConfigured) as exc:
        raise PreflightError(str(exc)) from None


# ---------------------------------------------------------------- 3. SAP
def required_columns() -> dict[str, list[str]]:
    """Every table the reader reads and the columns it reads from it (the declared SAP/FocusPoint layout)."""
    return {table.name: [c.name for c in table.columns] for table in sap_metadata.sorted_tables}


def _sqlite_columns(path: Path, tables: Iterable[str]) -> dict[str, set[str]]:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)  # read-only: never creates a file
    try:
        return {t: {row[1].lower() for row in con.execute(f'PRAGMA table_info("{t}")')} for t in tables}
    finally:
        con.close()


def check_sap(url: str) -> None:
    where = _safe_url(url)
    parsed = sa.make_url(url)
    needed = required_columns()
    try:
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "")
            if not path.is_file():
                raise PreflightError(
                    f"SAP database not found: {path} (FP_SAP_URL={where}) — set FP_SAP_URL to the SAP/FocusPoint "
                    f"database, or run `fp-demo generate --url {where}` for the demo"
                )
            found = _sqlite_columns(path, needed)
        else:
            engine = sa.create_engine(parsed, connect_args=_connect_timeout(parsed))
            try:
                inspector = sa.inspect(engine)
                names = {n.lower(): n for n in inspector.get_table_names()}
                found = {
                    t: {c["name"].lower() for c in inspector.get_columns(names[t.lower()])} if t.lower() in names else set()
                    for t in needed
                }
            finally:
                engine.dispose()
    except PreflightError:
        raise
    except (sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as exc:
        host = parsed.host or parsed.database
        reason = _one_line(str(getattr(exc, "orig", None) or exc)).split(" (Background")[0]
        raise PreflightError(
            f"SAP database unreachable at {host} ({where}): {reason} — check FP_SAP_URL, the server and the network"
        ) from None
    for table, columns in needed.items():
        if not found.get(table):
            raise PreflightError(
                f"SAP database {where} has no table {table} — point FP_SAP_URL at the SAP Business One + "
                f"FocusPoint database (tables the sync reads: docs/source-model.md)"
            )
        missing = [c for c in columns if c.lower() not in found[table]]
        if missing:
            raise PreflightError(
                f"SAP database {where}: table {table} has no column {', '.join(missing)} — the sync reads it "
                f"(docs/source-model.md); add it or point FP_SAP_URL at the right database"
            )


def _connect_timeout(url: sa.URL) -> dict[str, object]:
    return {"connect_timeout": int(CONNECT_TIMEOUT_SECONDS)} if url.get_backend_name() == "postgresql" else {}


# ---------------------------------------------------------------- 4. state store
def check_state_store(url: str) -> None:
    where = _safe_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "").resolve()
        folder = path.parent
        if path.exists():
            if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK):
                raise PreflightError(
                    f"state store is read-only: {path} — make the file and its folder writable for this user, "
                    f"or set FP_STATE_URL to a writable location"
                )
            return
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
            raise PreflightError(
                f"state store cannot be created: {path} ({existing} is not a writable folder) — set FP_STATE_URL "
                f"or DAGSTER_HOME to a writable location"
            )
        return
    engine = sa.create_engine(parsed, connect_args=_connect_timeout(parsed))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        reason = _one_line(str(getattr(exc, "orig", None) or exc)).split(" (Background")[0]
        raise PreflightError(
            f"state store unreachable at {parsed.host} ({where}): {reason} — check FP_STATE_URL and the server"
        ) from None
    finally:
        engine.dispose()


# ---------------------------------------------------------------- 5. HubSpot
def check_hubspot(base_url: str) -> None:
    """The API host answers a TCP connection (no request is made: nothing is spent or written)."""
    parsed = urlparse(base_url)
    host = parsed.hostname or base_url
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PreflightError(
            f"HubSpot unreachable at {host}:{port} ({base_url}): {reason} — check the network, a proxy or "
            f"firewall, and the panel's integration.base_url / integration.region"
        ) from None


# ---------------------------------------------------------------- all of it
def preflight(panel_path: str | None, sap_url: str, state_url: str) -> PanelSettings:
    """Every check, in order; the first failure raises PreflightError. Returns the loaded panel."""
    settings = check_panel(panel_path)
    base_url, _token, _sandbox = check_token(settings)
    check_sap(sap_url)
    check_state_store(state_url)
    check_hubspot(base_url)
    return settings


def preflight_from_env() -> PanelSettings:
    """``preflight`` with what a run started from this shell would use ($FP_PANEL_FILE, $FP_SAP_URL, …)."""
    from fp_hubspot_assets.state.store import StateStore

    sap_time_zone_from_env()
    return preflight(None, sap_url_from_env(), StateStore.default_url())


def sap_time_zone_from_env() -> str:
    """$FP_SAP_TIME_ZONE (default UTC): the zone SAP stamps its rows in; an unknown name is one line naming it."""
    from fp_hubspot_assets.sap.fetch import TIME_ZONE_ENV, SourceZone

    name = os.environ.get(TIME_ZONE_ENV, "").strip() or "UTC"
    try:
        SourceZone(name)
    except ValueError as exc:
        raise PreflightError(str(exc)) from None
    return name


def sap_reader_from_env() -> SapReader:
    """A reader of $FP_SAP_URL in $FP_SAP_TIME_ZONE, for commands that read SAP outside a Dagster run."""
    from fp_hubspot_assets.sap.reader import SapReader

    return SapReader(sap_url_from_env(), time_zone=sap_time_zone_from_env())


def sap_url_from_env() -> str:
    """$FP_SAP_URL, for commands that read SAP outside a Dagster run; one line when it is not set."""
    url = os.environ.get("FP_SAP_URL", "")
    if not url:
        raise PreflightError("FP_SAP_URL is not set — set it to the SQLAlchemy URL of the SAP Business One + "
                             "FocusPoint database (README, Configuration)")
    return url
