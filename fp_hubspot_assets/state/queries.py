"""Read-only questions support asks the state store while tracing an issue: search the integration log, one
record's mapping, associations and log rows, and which source-data problems are already logged.

These read the tables that schema.py declares (nothing here declares or changes a table); the CLI and the
tracing page only format what these return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from fp_hubspot_assets.state.schema import associations, cursors, id_map, integration_log
from fp_hubspot_assets.state.store import IN_LOOKUP_MAX, LOG_SCHEMA, FrameSchema, LogRow, StateStore

SOURCE_DATA = "SOURCE_DATA"  # error_category of problems found in the SAP/FocusPoint data (not HubSpot's)


@dataclass(frozen=True)
class LogQuery:
    """Filters of an integration-log search; every one is optional and they combine with AND.

    ``key`` matches a source key exactly, or as a pattern with ``*`` (``O13*``: the deal and its line items).
    ``text`` is a case-insensitive substring of the message or the key. ``run`` matches a run id or its
    first characters. ``since``/``until`` are aware datetimes (``until`` exclusive)."""

    key: str | None = None
    hubspot_id: str | None = None
    object_type: str | None = None
    action: str | None = None
    reason: str | None = None  # error_category, e.g. SOURCE_DATA, VALIDATION_ERROR
    text: str | None = None
    run: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        c = integration_log.c
        clauses: list[sa.ColumnElement[bool]] = []
        if self.key:
            clauses.append(c.source_key.like(_like(self.key), escape="\\") if "*" in self.key else c.source_key == self.key)
        if self.hubspot_id:
            clauses.append(c.hubspot_id == self.hubspot_id)
        if self.object_type:
            clauses.append(c.object_type == self.object_type)
        if self.action:
            clauses.append(c.action == self.action)
        if self.reason:
            clauses.append(sa.func.upper(c.error_category) == self.reason.upper())
        if self.text:
            needle = f"%{_escape(self.text.lower())}%"
            clauses.append(
                sa.or_(
                    sa.func.lower(c.message).like(needle, escape="\\"),
                    sa.func.lower(c.source_key).like(needle, escape="\\"),
                )
            )
        if self.run:
            clauses.append(c.run_id.like(_escape(self.run) + "%", escape="\\"))
        if self.since is not None:
            clauses.append(c.logged_at >= self.since)
        if self.until is not None:
            clauses.append(c.logged_at < self.until)
        return clauses


@dataclass(frozen=True)
class LogPage:
    rows: pl.DataFrame  # LOG_SCHEMA columns, newest first
    total: int  # rows matching the filters, over every page
    offset: int
    limit: int


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(pattern: str) -> str:
    return _escape(pattern).replace("*", "%")


def search_log(store: StateStore, query: LogQuery, limit: int = 50, offset: int = 0) -> LogPage:
    """One page of the integration-log rows matching ``query``, newest first, and how many match in all."""
    clauses = query.where()
    stmt = sa.select(*integration_log.columns).where(*clauses).order_by(integration_log.c.id.desc())
    rows = store._frame(stmt.limit(limit).offset(offset), LOG_SCHEMA)
    with store._reading() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(integration_log).where(*clauses)).scalar_one())
    return LogPage(rows, total, offset, limit)


def mapping_of(store: StateStore, key: str) -> pl.DataFrame:
    """The id-map rows of ``key`` (one per object type it is synced as): object_type, hubspot_id,
    payload_hash, synced_at, run_id."""
    m = id_map.c
    stmt = sa.select(m.object_type, m.hubspot_id, m.payload_hash, m.synced_at, m.run_id).where(m.source_key == key)
    schema: FrameSchema = {"object_type": pl.String, "hubspot_id": pl.String, "payload_hash": pl.String,
              "synced_at": pl.Datetime("us", "UTC"), "run_id": pl.String}
    return store._frame(stmt.order_by(m.object_type), schema)


def associations_of(store: StateStore, key: str) -> list[dict[str, Any]]:
    """Associations known to exist in HubSpot from or to ``key``: direction, types, the other key, type id."""
    a = associations.c
    stmt = sa.select(a.from_type, a.from_key, a.to_type, a.to_key, a.type_id, a.synced_at).where(
        sa.or_(a.from_key == key, a.to_key == key)
    )
    out = []
    with store._reading() as conn:
        for from_type, from_key, to_type, to_key, type_id, synced_at in conn.execute(stmt):
            outgoing = from_key == key
            out.append({
                "direction": "to" if outgoing else "from",
                "object_type": to_type if outgoing else from_type,
                "other_key": to_key if outgoing else from_key,
                "own_type": from_type if outgoing else to_type,
                "type_id": int(type_id),
                "synced_at": synced_at,
            })
    return sorted(out, key=lambda r: (r["object_type"], r["other_key"]))


def last_actions(store: StateStore, object_type: str) -> pl.DataFrame:
    """source_key, last_action, last_at: the newest log row of every key of ``object_type`` (one grouped
    query over the (object_type, source_key) index)."""
    c = integration_log.c
    newest = sa.select(sa.func.max(c.id)).where(c.object_type == object_type).group_by(c.source_key).scalar_subquery()
    stmt = sa.select(c.source_key, c.action, c.logged_at).where(c.id.in_(newest))
    schema: FrameSchema = {"source_key": pl.String, "last_action": pl.String, "last_at": pl.Datetime("us", "UTC")}
    return store._frame(stmt, schema)


def logged_source_problems(
    store: StateStore, object_type: str, keys: Sequence[str] | None = None
) -> set[tuple[str, str, str | None]]:
    """Every distinct (source_key, action, message) source-data problem logged for ``object_type`` (a record
    may have several at once: an invalid phone and an unknown country) — of ``keys`` only when given: a small
    run looks up its few problems instead of reading every one logged (tens of thousands at 1M customers)."""
    c = integration_log.c
    stmt = (
        sa.select(c.source_key, c.action, c.message)
        .where(c.object_type == object_type, c.error_category == SOURCE_DATA)
        .distinct()
    )
    if keys is None:
        with store._reading() as conn:
            return {(k, a, m) for k, a, m in conn.execute(stmt)}
    return {(k, a, m) for k, a, m in _rows_where_in(store, stmt, c.source_key, keys)}


def logged_duplicates_of(store: StateStore, survivors: set[str]) -> set[str]:
    """Contacts last logged as skipped for a "duplicate email of <survivor>" (the contact mapping's reason)
    of one of ``survivors``: a small run's few survivors are matched in SQL, so only their duplicates come back,
    not every duplicate ever logged (57,000 at 1M customers)."""
    c = integration_log.c
    prefix = "duplicate email of "
    stmt = (
        sa.select(c.source_key, c.message)
        .where(c.object_type == "contacts", c.error_category == SOURCE_DATA, c.message.like(prefix + "%"))
        .distinct()
    )
    return {key for key, _message in _rows_where_in(store, stmt, c.message, [prefix + s for s in survivors])}


def _rows_where_in(store: StateStore, stmt: sa.Select[Any], column: sa.Column[Any], values: Sequence[str]) -> list[Any]:
    """``stmt``'s rows whose ``column`` (one it selects) is among ``values``: by IN lists, or for more than
    IN_LOOKUP_MAX values one pass over ``stmt``'s rows, filtered here."""
    with store._reading() as conn:
        if len(values) > IN_LOOKUP_MAX:
            position, wanted = list(stmt.selected_columns.keys()).index(column.name), set(values)
            return [row for row in conn.execute(stmt) if row[position] in wanted]
        return [row for chunk in store._chunks(sorted(values)) for row in conn.execute(stmt.where(column.in_(chunk)))]


def log_new_source_problems(store: StateStore, run_id: str, object_type: str, problems: Iterable[tuple[str, str, str]]) -> int:
    """Log the source-data problems ``(source_key, action, reason)`` not logged before with this content: a
    problem that stays the same is logged once, when it appears, not every run (the log stays proportional to
    change); a record whose problem changes gets a new row. Returns how many rows were written."""
    problems = list(problems)
    known = logged_source_problems(store, object_type, sorted({key for key, _action, _reason in problems}))
    rows = [
        LogRow(object_type, key, action, None, SOURCE_DATA, reason)
        for key, action, reason in problems
        if (key, action, reason) not in known
    ]
    store.log(run_id, rows)
    return len(rows)


def cursor_updated_at(store: StateStore, name: str) -> datetime | None:
    """When the cursor ``name`` was last written (aware UTC), or None when it never was."""
    with store._reading() as conn:
        return conn.execute(sa.select(cursors.c.updated_at).where(cursors.c.name == name)).scalar_one_or_none()
