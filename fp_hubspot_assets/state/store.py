"""StateStore: everything the integration remembers between runs, on SQLite (default) or PostgreSQL.

What it holds is documented table by table in schema.py. How it behaves:

- Every write is one short transaction of parameterized ``executemany`` statements; upserts are
  ``INSERT … ON CONFLICT DO UPDATE`` on both backends, so a re-run or a concurrent writer never duplicates
  or loses a row. Rows are written in key order so two PostgreSQL writers lock rows in the same order
  (no deadlocks); a transient error (SQLite busy, PostgreSQL deadlock) retries the whole transaction.
- SQLite: WAL journal (readers never block the writer), ``busy_timeout`` so a second process waits instead
  of failing, ``BEGIN IMMEDIATE`` for write transactions (a deferred transaction that later needs the write
  lock fails at once with "database is locked"; an immediate one waits), and a file created readable only
  by its owner (mode 0600) because it holds the id map and encrypted tokens.
- ``with store.transaction():`` makes every store call inside it (in this thread) join one transaction.
- Large reads (the id map at a million rows) go straight from the cursor into a polars frame.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from fp_hubspot_assets.state import crypto
from fp_hubspot_assets.state.schema import (
    LOG_ACTIONS,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    associations,
    baseline,
    cursors,
    failures,
    id_map,
    integration_log,
    metadata,
    oauth_tokens,
    sent_creates,
    setup_state,
    utcnow,
)

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

log = logging.getLogger(__name__)

T = TypeVar("T")

STATE_URL_ENV = "FP_STATE_URL"
SQLITE_FILE_NAME = "fp_state.db"
BUSY_TIMEOUT_S = 60.0
_WRITE_OPTION = "fp_state_write"  # execution option: this connection's transaction will write
_RETRIES = 5
IN_LOOKUP_MAX = 20_000  # keys looked up by IN lists; more are found by one scan of the type …
_RANGES_PER_STATEMENT = 300  # 601 parameters, and SQLite allows 500 UNION ALL terms
_SCAN_SHARE = 8  # … when they are more than 1/8 of its rows (an IN lookup costs ~8 rows of a scan)
_PG_TRANSIENT = {"40P01", "40001"}  # deadlock detected, serialization failure
_PG_LOCK_ID = 0x46505354  # "FPST": advisory lock that serializes concurrent table creation
UTC_DATETIME = pl.Datetime("us", "UTC")


_FETCH_ROWS = 100_000


class StateSchemaError(RuntimeError):
    """The database was written by a newer version of this package (a newer table layout)."""


class LogRow(NamedTuple):
    """One integration-log entry (the run id and timestamp are added by ``StateStore.log``)."""

    object_type: str
    source_key: str
    action: str  # one of schema.LOG_ACTIONS
    hubspot_id: str | None = None
    error_category: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """Decrypted OAuth tokens of one account; the tokens never show in repr() or logs."""

    account: str
    refresh_token: str = field(repr=False)
    access_token: str | None = field(repr=False)
    expires_at: datetime | None
    updated_at: datetime


# Column name -> polars dtype of a frame read from the store.
FrameSchema = Mapping[str, "PolarsDataType"]
ID_MAP_SCHEMA: FrameSchema = {"source_key": pl.String, "hubspot_id": pl.String, "payload_hash": pl.String}
ASSOCIATION_SCHEMA: FrameSchema = {"from_key": pl.String, "to_key": pl.String, "type_id": pl.Int64}
ID_MAP_ALL_SCHEMA: FrameSchema = {"object_type": pl.String, **ID_MAP_SCHEMA, "synced_at": UTC_DATETIME}
LOG_SCHEMA: FrameSchema = {
    "id": pl.Int64,
    "run_id": pl.String,
    "logged_at": UTC_DATETIME,
    "object_type": pl.String,
    "source_key": pl.String,
    "action": pl.String,
    "hubspot_id": pl.String,
    "error_category": pl.String,
    "message": pl.String,
}
FAILURES_SCHEMA: FrameSchema = {
    "source_key": pl.String,
    "payload_hash": pl.String,
    "attempts": pl.Int64,
    "last_category": pl.String,
    "last_message": pl.String,
}


class StateStore:
    """The integration's memory; see the module docstring and schema.py."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _create_engine(url)
        self._local = threading.local()  # .conn: the connection of an open transaction() in this thread
        self._sizes: dict[str, int] = {}  # synced records per object type, for worth_scanning
        self._create_schema()

    @classmethod
    def default_url(cls) -> str:
        """$FP_STATE_URL, else a SQLite file in $DAGSTER_HOME, else ./.fp_state.db."""
        if url := os.environ.get(STATE_URL_ENV):
            return url
        if home := os.environ.get("DAGSTER_HOME"):
            return f"sqlite:///{Path(home).expanduser().resolve() / SQLITE_FILE_NAME}"
        return f"sqlite:///{Path('.fp_state.db').resolve()}"

    def __repr__(self) -> str:
        return f"StateStore({make_url(self.url).render_as_string(hide_password=True)!r})"

    def dispose(self) -> None:
        """Close every pooled connection (call before forking, and at shutdown)."""
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; every store call made inside it in this thread joins it.

        Commits when the block ends, rolls everything back if it raises. Nested use joins the outer one.
        """
        outer: Connection | None = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                self._local.conn = conn
                try:
                    yield conn
                finally:
                    self._local.conn = None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        outer: Connection | None = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        with self.engine.connect() as conn:
            yield conn

    def _write(self, work: Callable[[Connection], T], *, retry_unique: bool = False) -> T:
        """Run ``work`` in a write transaction, retrying the whole of it on transient errors.

        ``work`` must be repeatable: callers materialize their input iterables before calling. Inside an
        outer transaction() it simply joins (the outer caller owns retrying).
        """
        outer: Connection | None = getattr(self._local, "conn", None)
        if outer is not None:
            return work(outer)
        for attempt in range(1, _RETRIES + 1):
            try:
                with self.transaction() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == _RETRIES or not _is_transient(exc, retry_unique):
                    raise
                log.info(
                    "state store: transient %s, retrying (%d/%d)", type(exc.orig).__name__, attempt, _RETRIES
                )
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _create_schema(self) -> None:
        def create(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_ID)))
            metadata.create_all(conn, checkfirst=True)
            stamped = conn.execute(
                sa.select(setup_state.c.value).where(setup_state.c.key == SCHEMA_VERSION_KEY)
            ).scalar_one_or_none()
            if stamped is None:
                self._put(conn, setup_state, {"key": SCHEMA_VERSION_KEY, "value": json.dumps(SCHEMA_VERSION)})
            elif json.loads(stamped) > SCHEMA_VERSION:
                raise StateSchemaError(
                    f"{self!r} has state schema version {stamped}, newer than this package's "
                    f"{SCHEMA_VERSION}: upgrade fp-hubspot-assets"
                )

        self._write(create, retry_unique=True)

    # ------------------------------------------------------------------ statement helpers

    def _insert(self, table: sa.Table) -> Any:
        module = pg_dialect if self.engine.dialect.name == "postgresql" else sqlite_dialect
        return module.insert(table)

    def _insert_rows(
        self, conn: Connection, table: sa.Table, rows: list[dict[str, Any]], on_conflict: Callable[[Any], Any]
    ) -> None:
        """INSERT ``rows`` with the ON CONFLICT clause that ``on_conflict(insert)`` adds.

        SQLite: one native executemany. PostgreSQL: SQLAlchemy's "insertmanyvalues" (multi-row VALUES
        pages of 1000 rows); it applies to an ON CONFLICT insert only when the statement has RETURNING, so
        one is added. Without it each row is its own statement, about 20x slower. Callers deduplicate keys
        (one statement may not touch a row twice).
        """
        stmt = on_conflict(self._insert(table))
        if self.engine.dialect.name == "postgresql":
            stmt = stmt.returning(*table.primary_key.columns)
        conn.execute(stmt, rows)

    def _upsert_rows(self, conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Upsert on the primary key: a conflicting row gets every non-key column replaced."""
        keys = [c.name for c in table.primary_key.columns]
        names = [c.name for c in table.columns if c.name not in keys]

        def on_conflict(ins: Any) -> Any:
            return ins.on_conflict_do_update(index_elements=keys, set_={n: ins.excluded[n] for n in names})

        self._insert_rows(conn, table, rows, on_conflict)

    def _put(self, conn: Connection, table: sa.Table, row: dict[str, Any]) -> None:
        """Upsert one row of a key/value table (cursors, setup_state, tokens), stamping updated_at."""
        self._upsert_rows(conn, table, [{**row, "updated_at": utcnow()}])

    def _chunks(self, values: Sequence[T]) -> Iterator[Sequence[T]]:
        """Slices small enough for an ``IN (…)`` list (SQLite before 3.32 allows 999 parameters)."""
        size = 900 if self.engine.dialect.name == "sqlite" else 10_000
        for start in range(0, len(values), size):
            yield values[start : start + size]

    def _id_pairs(
        self, conn: Connection, object_type: str, by: str, values: Sequence[str]
    ) -> list[tuple[str, str]]:
        """(source_key, hubspot_id) of the ``object_type`` rows whose column ``by`` is in ``values``.

        Up to IN_LOOKUP_MAX values: indexed ``IN`` lookups in chunks. Beyond that, one scan of the type
        filtered here: reading a million rows takes about a second, while dozens of huge ``IN`` statements
        can each be planned as a sequential scan (PostgreSQL right after a bulk load) and take 30x longer.
        """
        stmt = sa.select(id_map.c.source_key, id_map.c.hubspot_id).where(id_map.c.object_type == object_type)
        if len(values) <= IN_LOOKUP_MAX:
            column = id_map.c[by]
            return [
                (k, h)
                for chunk in self._chunks(values)
                for k, h in conn.execute(stmt.where(column.in_(chunk)))
            ]
        wanted = set(values)
        position = 0 if by == "source_key" else 1
        result = conn.execute(stmt)
        try:
            return [(k, h) for k, h in result.cursor.fetchall() if (k, h)[position] in wanted]
        finally:
            result.close()

    def _delete_in(
        self,
        conn: Connection,
        table: sa.Table,
        column: sa.ColumnElement[Any],
        values: Sequence[Any],
        *where: sa.ColumnElement[bool],
    ) -> None:
        """DELETE rows matching ``where`` whose ``column`` is in ``values``, chunked."""
        for chunk in self._chunks(values):
            conn.execute(sa.delete(table).where(*where, column.in_(chunk)))

    # ------------------------------------------------------------------ ID map + hashes

    def id_map(
        self, object_type: str, keys: Sequence[str] | pl.Series | None = None, *, with_hash: bool = True
    ) -> pl.DataFrame:
        """source_key, hubspot_id, payload_hash of every known record of ``object_type`` — or of those among
        ``keys``: a run that maps a few records reads a few rows, not the whole type. ``with_hash=False``
        leaves out payload_hash, the widest column (80 bytes a row: 330 MiB for 4.1M line items)."""
        columns = [id_map.c.source_key, id_map.c.hubspot_id] + ([id_map.c.payload_hash] if with_hash else [])
        stmt = sa.select(*columns).where(id_map.c.object_type == object_type)
        schema = ID_MAP_SCHEMA if with_hash else {name: ID_MAP_SCHEMA[name] for name in ("source_key", "hubspot_id")}
        return self._frame_of(stmt, id_map.c.source_key, keys, schema, object_type)

    def _frame_of(
        self,
        stmt: sa.Select[Any],
        column: sa.ColumnElement[Any],
        keys: Sequence[str] | pl.Series | None,
        schema: FrameSchema,
        rows_of: str,
    ) -> pl.DataFrame:
        """``stmt``'s rows as a frame — only those whose ``column`` is among ``keys`` when given: by indexed IN
        lists, unless the keys are many (over IN_LOOKUP_MAX) and a large share of the rows: then by one scan,
        filtered (a Series of millions of keys is never turned into Python strings). 28,000 products' keys of a
        small run are looked up, not found by a scan of 4M line items' rows."""
        if keys is None or self.worth_scanning(rows_of, len(keys)):
            frame = self._frame(stmt, schema)
            if keys is None:
                return frame
            return frame.filter(pl.col(column.name).is_in(keys if isinstance(keys, pl.Series) else list(keys)))
        if isinstance(keys, pl.Series):
            keys = keys.to_list()
        parts = [self._frame(stmt.where(column.in_(chunk)), schema) for chunk in self._chunks(keys)]
        return pl.concat(parts) if parts else pl.DataFrame(schema=schema)

    def worth_scanning(self, object_type: str, keys: int) -> bool:
        """Whether rows of ``keys`` records of ``object_type`` (or of their associations) are found faster by one
        scan of the type than by indexed lookups: when they are many and a large share of its synced records.
        The type's size is counted when first asked and again after records of the type were recorded (an
        index range; it only has to be right in scale)."""
        if keys <= IN_LOOKUP_MAX:
            return False
        if object_type not in self._sizes:
            with self._reading() as conn:
                count = sa.select(sa.func.count()).select_from(id_map).where(id_map.c.object_type == object_type)
                self._sizes[object_type] = int(conn.execute(count).scalar_one())
        return keys * _SCAN_SHARE > self._sizes[object_type]

    def id_map_by_prefix(self, object_type: str, prefixes: Sequence[str]) -> pl.DataFrame:
        """source_key, hubspot_id, payload_hash of the records of ``object_type`` whose key starts with one of
        ``prefixes`` (a deal's line items: ``<deal key>:L``), by indexed key ranges: for a few thousand deals,
        not a scan of millions of line items (a caller with many prefixes reads the whole type instead)."""
        parts = []
        wanted = [p for p in prefixes if p]
        for start in range(0, len(wanted), _RANGES_PER_STATEMENT):
            chunk = wanted[start : start + _RANGES_PER_STATEMENT]
            params: dict[str, Any] = {"t": object_type}
            for n, p in enumerate(chunk):
                params[f"l{n}"], params[f"h{n}"] = p, p[:-1] + chr(ord(p[-1]) + 1)
            parts.append(self._frame(_key_ranges(len(chunk)), ID_MAP_SCHEMA, params))
        return pl.concat(parts) if parts else pl.DataFrame(schema=ID_MAP_SCHEMA)

    def id_map_all(self, limit: int | None = None) -> pl.DataFrame:
        """object_type, source_key, hubspot_id, payload_hash, synced_at of every record (UTC timestamps), in
        key order; at most ``limit`` rows."""
        stmt = sa.select(
            id_map.c.object_type,
            id_map.c.source_key,
            id_map.c.hubspot_id,
            id_map.c.payload_hash,
            id_map.c.synced_at,
        ).order_by(id_map.c.object_type, id_map.c.source_key)
        return self._frame(stmt if limit is None else stmt.limit(limit), ID_MAP_ALL_SCHEMA)

    def id_map_counts(self) -> dict[str, int]:
        """{object_type: synced records}: one pass over the primary key's index, nothing held per record."""
        stmt = sa.select(id_map.c.object_type, sa.func.count()).group_by(id_map.c.object_type).order_by(id_map.c.object_type)
        with self._reading() as conn:
            return {str(t): int(n) for t, n in conn.execute(stmt)}

    def id_map_duplicates(self) -> dict[str, int]:
        """How many (object type, source key) and (object type, HubSpot id) pairs occur more than once. The
        schema's keys forbid both; this counts them in SQL (GROUP BY ... HAVING) without loading the map."""
        found = {}
        with self._reading() as conn:
            for name, column in (("duplicate_source_keys", id_map.c.source_key), ("duplicate_hubspot_ids", id_map.c.hubspot_id)):
                groups = (
                    sa.select(id_map.c.object_type)
                    .group_by(id_map.c.object_type, column)
                    .having(sa.func.count() > 1)
                    .subquery()
                )
                found[name] = int(conn.execute(sa.select(sa.func.count()).select_from(groups)).scalar_one())
        return found

    def record_synced(
        self, object_type: str, rows: Iterable[tuple[str, str, str | None]], run_id: str
    ) -> list[str]:
        """Upsert (source_key, hubspot_id, payload_hash) rows in one transaction.

        ``payload_hash`` None means "HubSpot id known, our content not synced yet" (an adopted record), so
        the next run sends it. A HubSpot id belongs to one source key (UNIQUE per type): when a row claims
        an id that another key held, HubSpot's latest write wins and the other key's mapping is dropped
        (it will be re-resolved on its next sync). Returns those displaced source keys (usually none).
        """
        latest, displaced = _last_owner_wins((str(k), _required_id(k, h), p) for k, h, p in rows)
        if not latest:
            return []
        now = utcnow()
        params = [
            {
                "object_type": object_type,
                "source_key": k,
                "hubspot_id": h,
                "payload_hash": p,
                "synced_at": now,
                "run_id": run_id,
            }
            for k, (h, p) in sorted(latest.items())
        ]
        owner = {h: k for k, (h, _) in latest.items()}

        def work(conn: Connection) -> list[str]:
            holders = self._id_pairs(conn, object_type, "hubspot_id", list(owner))
            gone = sorted(displaced | {k for k, h in holders if owner[h] != k})
            self._delete_in(conn, id_map, id_map.c.source_key, gone, id_map.c.object_type == object_type)
            self._upsert_rows(conn, id_map, params)
            return gone

        gone = self._write(work, retry_unique=True)
        # counted again when next asked: a first sync grows a type from nothing to millions within one run
        self._sizes.pop(object_type, None)
        if gone:
            log.warning(
                "state store: %d %s lost their HubSpot id to another source key: %s",
                len(gone),
                object_type,
                gone[:10],
            )
        return gone

    def hubspot_ids(self, object_type: str, source_keys: Iterable[str]) -> dict[str, str]:
        """{source_key: hubspot_id} for those of ``source_keys`` that are mapped."""
        keys = sorted(set(source_keys))
        with self._reading() as conn:
            return dict(self._id_pairs(conn, object_type, "source_key", keys))

    def forget(self, object_type: str, source_keys: Iterable[str]) -> None:
        """Drop the id mapping of these keys (their HubSpot record is gone) and every association they had."""
        keys = sorted(set(source_keys))
        if not keys:
            return

        def work(conn: Connection) -> None:
            self._delete_in(conn, id_map, id_map.c.source_key, keys, id_map.c.object_type == object_type)
            a = associations.c
            self._delete_in(conn, associations, a.from_key, keys, a.from_type == object_type)
            self._delete_in(conn, associations, a.to_key, keys, a.to_type == object_type)

        self._write(work)

    def owners(self, object_type: str, hubspot_ids: Iterable[str]) -> dict[str, str]:
        """{hubspot_id: source_key} of the ids one of our keys owns (docs/identity.md: one owner per id)."""
        wanted = sorted({str(h) for h in hubspot_ids})
        if not wanted:
            return {}
        with self._reading() as conn:
            return {h: k for k, h in self._id_pairs(conn, object_type, "hubspot_id", wanted)}

    def set_hashes(self, object_type: str, rows: Iterable[tuple[str, str | None]]) -> None:
        """Overwrite the remembered payload hash of known keys: None = "send our content again";
        a ``deleted:`` marker = flagged as vanished from the source (see sync.flag_vanished)."""
        params = [{"k": k, "h": h} for k, h in rows]
        stmt = (
            sa.update(id_map)
            .where(id_map.c.object_type == object_type, id_map.c.source_key == sa.bindparam("k"))
            .values(payload_hash=sa.bindparam("h"), synced_at=utcnow())
        )
        if params:
            self._write(lambda conn: conn.execute(stmt, params))

    def rekey(self, object_type: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Move the HubSpot record (and the associations we wrote) of each old key to its new key; the
        content is re-sent next time (hash cleared). Used when two source keys turn out to be one purchase."""
        moves = sorted(set(pairs))
        if not moves:
            return
        a = associations.c

        def work(conn: Connection) -> None:
            for old, new in moves:
                conn.execute(
                    sa.update(id_map)
                    .where(id_map.c.object_type == object_type, id_map.c.source_key == old)
                    .values(source_key=new, payload_hash=None, synced_at=utcnow())
                )
                conn.execute(sa.update(associations).where(a.from_type == object_type, a.from_key == old).values(from_key=new))
                conn.execute(sa.update(associations).where(a.to_type == object_type, a.to_key == old).values(to_key=new))

        self._write(work)

    # ------------------------------------------------------------------ associations

    def known_associations(
        self, from_type: str, to_type: str, from_keys: Sequence[str] | None = None
    ) -> set[tuple[str, str, int]]:
        """(from_key, to_key, type_id) of every association known to exist in HubSpot (only those from
        ``from_keys`` when given)."""
        return set(self.association_frame(from_type, to_type, from_keys).iter_rows())

    def association_frame(
        self, from_type: str, to_type: str, from_keys: Sequence[str] | pl.Series | None = None
    ) -> pl.DataFrame:
        """from_key, to_key, type_id of the associations known to exist in HubSpot, as a frame (millions of
        line items' deal links cost a few bytes each here, ~100 as Python tuples)."""
        a = associations.c
        stmt = sa.select(a.from_key, a.to_key, a.type_id).where(a.from_type == from_type, a.to_type == to_type)
        return self._frame_of(stmt, a.from_key, from_keys, ASSOCIATION_SCHEMA, from_type)

    def record_associations(self, from_type: str, to_type: str, rows: Iterable[tuple[str, str, int]]) -> None:
        """Remember associations HubSpot accepted (idempotent; refreshes synced_at)."""
        now = utcnow()
        params = [
            {
                "from_type": from_type,
                "from_key": f,
                "to_type": to_type,
                "to_key": t,
                "type_id": int(i),
                "synced_at": now,
            }
            for f, t, i in sorted(set(rows))
        ]
        if params:
            self._write(lambda conn: self._upsert_rows(conn, associations, params))

    def forget_associations(self, from_type: str, to_type: str, rows: Iterable[tuple[str, str, int]]) -> None:
        """Drop remembered associations (e.g. after removing them in HubSpot)."""
        a = associations.c
        params = [{"f": f, "t": t, "i": int(i)} for f, t, i in sorted(set(rows))]
        stmt = sa.delete(associations).where(
            a.from_type == from_type,
            a.to_type == to_type,
            a.from_key == sa.bindparam("f"),
            a.to_key == sa.bindparam("t"),
            a.type_id == sa.bindparam("i"),
        )
        if params:
            self._write(lambda conn: conn.execute(stmt, params))

    # ------------------------------------------------------------------ integration log

    def log(self, run_id: str, rows: Iterable[LogRow | tuple[Any, ...]]) -> None:
        """Append integration-log rows for ``run_id`` in one transaction (all share one timestamp)."""
        now = utcnow()
        params = []
        for raw in rows:
            row = raw if isinstance(raw, LogRow) else LogRow(*raw)
            if row.action not in LOG_ACTIONS:
                raise ValueError(
                    f"unknown integration-log action {row.action!r}; expected one of {LOG_ACTIONS}"
                )
            hubspot_id = None if row.hubspot_id is None else str(row.hubspot_id)
            params.append({"run_id": run_id, "logged_at": now, **row._asdict(), "hubspot_id": hubspot_id})
        if params:
            self._write(lambda conn: conn.execute(sa.insert(integration_log), params))

    def log_frame(self, run_id: str | None = None, limit: int | None = None) -> pl.DataFrame:
        """Integration-log rows, newest first; of one run when ``run_id`` is given; at most ``limit`` rows."""
        stmt = sa.select(*integration_log.columns).order_by(integration_log.c.id.desc())
        if run_id is not None:
            stmt = stmt.where(integration_log.c.run_id == run_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._frame(stmt, LOG_SCHEMA)

    def log_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """{object_type: {action: count}} of one run: the "Tracing Integration" dashboard numbers."""
        c = integration_log.c
        stmt = (
            sa.select(c.object_type, c.action, sa.func.count())
            .where(c.run_id == run_id)
            .group_by(c.object_type, c.action)
        )
        counts: dict[str, dict[str, int]] = {}
        with self._reading() as conn:
            for object_type, action, n in conn.execute(stmt):
                counts.setdefault(object_type, {})[action] = int(n)
        return counts

    def prune_log(self, older_than: datetime) -> int:
        """Delete integration-log rows logged before ``older_than`` (aware); returns how many."""
        stmt = sa.delete(integration_log).where(integration_log.c.logged_at < older_than)
        return self._write(lambda conn: conn.execute(stmt).rowcount)

    # ------------------------------------------------------------------ failures

    def record_failures(self, object_type: str, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Remember records HubSpot rejected: (source_key, payload_hash, category, message).

        ``attempts`` counts consecutive rejections of the same payload: it grows by one when the hash is
        unchanged and restarts at 1 when the payload changed (the sync retries changed payloads at once).
        """
        latest = {k: (h, c, m) for k, h, c, m in rows}  # the last word on a key wins
        params = [
            {
                "object_type": object_type,
                "source_key": k,
                "payload_hash": h,
                "attempts": 1,
                "last_category": c,
                "last_message": m,
            }
            for k, (h, c, m) in sorted(latest.items())
        ]
        if not params:
            return
        now = utcnow()
        for row in params:
            row["updated_at"] = now

        def on_conflict(ins: Any) -> Any:
            same_payload = failures.c.payload_hash.is_not_distinct_from(ins.excluded.payload_hash)
            replaced = ("payload_hash", "last_category", "last_message", "updated_at")
            return ins.on_conflict_do_update(
                index_elements=[failures.c.object_type, failures.c.source_key],
                set_={
                    "attempts": sa.case((same_payload, failures.c.attempts + 1), else_=1),
                    **{n: ins.excluded[n] for n in replaced},
                },
            )

        self._write(lambda conn: self._insert_rows(conn, failures, params, on_conflict))

    def clear_failures(self, object_type: str, source_keys: Iterable[str]) -> None:
        """Forget failures of records that have since been accepted."""
        keys = sorted(set(source_keys))
        if keys:
            self._write(
                lambda conn: self._delete_in(
                    conn, failures, failures.c.source_key, keys, failures.c.object_type == object_type
                )
            )

    def failures(self, object_type: str) -> pl.DataFrame:
        """source_key, payload_hash, attempts, last_category, last_message of the failing records."""
        f = failures.c
        stmt = sa.select(f.source_key, f.payload_hash, f.attempts, f.last_category, f.last_message).where(
            f.object_type == object_type
        )
        return self._frame(stmt, FAILURES_SCHEMA)

    # ------------------------------------------------------------------ sent creates

    def note_sent_creates(self, object_type: str, source_keys: Iterable[str], run_id: str | None) -> None:
        """Record, before a batch goes out, the keys it may create: a kill before its answer is recorded
        leaves them here for the next run to look up in HubSpot instead of creating them again."""
        now = utcnow()
        params = [
            {"object_type": object_type, "source_key": k, "run_id": run_id, "sent_at": now}
            for k in sorted(set(source_keys))
        ]
        if params:
            self._write(lambda conn: self._upsert_rows(conn, sent_creates, params))

    def clear_sent_creates(self, object_type: str, source_keys: Iterable[str]) -> None:
        """Forget sent keys whose answer (created, updated or rejected) is now recorded."""
        keys = sorted(set(source_keys))
        if keys:
            self._write(
                lambda conn: self._delete_in(
                    conn, sent_creates, sent_creates.c.source_key, keys, sent_creates.c.object_type == object_type
                )
            )

    def unanswered_creates(self, object_type: str) -> set[str]:
        """Keys of ``object_type`` sent in a create batch whose answer no run recorded."""
        stmt = sa.select(sent_creates.c.source_key).where(sent_creates.c.object_type == object_type)
        with self._reading() as conn:
            return set(conn.execute(stmt).scalars())

    def count_ids(self, object_type: str) -> int:
        """How many records of ``object_type`` the ID map knows."""
        stmt = sa.select(sa.func.count()).select_from(id_map).where(id_map.c.object_type == object_type)
        with self._reading() as conn:
            return int(conn.execute(stmt).scalar_one())

    # ------------------------------------------------------------------ cursors / setup / baseline

    def get_cursor(self, name: str) -> str | None:
        with self._reading() as conn:
            return conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)).scalar_one_or_none()

    def set_cursor(self, name: str, value: str) -> None:
        self._write(lambda conn: self._put(conn, cursors, {"name": name, "value": str(value)}))

    def get_setup(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` (pipeline ids, properties created, first setup done, …)."""
        with self._reading() as conn:
            raw = conn.execute(
                sa.select(setup_state.c.value).where(setup_state.c.key == key)
            ).scalar_one_or_none()
        return default if raw is None else json.loads(raw)

    def set_setup(self, key: str, value: Any) -> None:
        """Store any JSON-serializable ``value`` under ``key`` (TypeError for anything else)."""
        text = json.dumps(value, sort_keys=True)
        self._write(lambda conn: self._put(conn, setup_state, {"key": key, "value": text}))

    def add_baseline(self, object_type: str, source_keys: Iterable[str]) -> int:
        """Record keys as pre-existing at first setup; returns how many were not recorded before."""
        now = utcnow()
        params = [
            {"object_type": object_type, "source_key": k, "recorded_at": now}
            for k in sorted(set(source_keys))
        ]
        if not params:
            return 0
        count = sa.select(sa.func.count()).select_from(baseline).where(baseline.c.object_type == object_type)

        def work(conn: Connection) -> int:
            before = conn.execute(count).scalar_one()
            self._insert_rows(conn, baseline, params, lambda ins: ins.on_conflict_do_nothing())
            return int(conn.execute(count).scalar_one() - before)

        return self._write(work)

    def baseline(self, object_type: str) -> set[str]:
        stmt = sa.select(baseline.c.source_key).where(baseline.c.object_type == object_type)
        with self._reading() as conn:
            return set(conn.execute(stmt).scalars())

    def anything_synced(self) -> bool:
        """Whether any content reached HubSpot: an id_map row with a payload hash, or any association.

        Adopted/pulled ids (payload_hash NULL) do not count, so first setup can still run after a pull.
        """
        synced = sa.exists().where(id_map.c.payload_hash.is_not(None))
        associated = sa.exists().select_from(associations)
        with self._reading() as conn:
            return bool(conn.execute(sa.select(sa.or_(synced, associated))).scalar_one())

    # ------------------------------------------------------------------ tokens

    def save_tokens(
        self, account: str, refresh_token: str, access_token: str | None, expires_at: datetime | None
    ) -> None:
        """Store the OAuth tokens of ``account``, encrypted with FP_STATE_KEY (see crypto.py)."""
        row = {
            "account": account,
            "refresh_token_enc": crypto.encrypt(refresh_token),
            "access_token_enc": None if access_token is None else crypto.encrypt(access_token),
            "expires_at": expires_at,
        }
        self._write(lambda conn: self._put(conn, oauth_tokens, row))

    def load_tokens(self, account: str) -> TokenRecord | None:
        """The decrypted tokens of ``account``, or None; StateKeyError when FP_STATE_KEY does not fit."""
        with self._reading() as conn:
            row = conn.execute(sa.select(oauth_tokens).where(oauth_tokens.c.account == account)).one_or_none()
        if row is None:
            return None
        return TokenRecord(
            account=row.account,
            refresh_token=crypto.decrypt(row.refresh_token_enc),
            access_token=None if row.access_token_enc is None else crypto.decrypt(row.access_token_enc),
            expires_at=row.expires_at,
            updated_at=row.updated_at,
        )

    def delete_tokens(self, account: str) -> None:
        """Forget an account's tokens (the app was uninstalled or re-authorization is wanted)."""
        stmt = sa.delete(oauth_tokens).where(oauth_tokens.c.account == account)
        self._write(lambda conn: conn.execute(stmt))

    # ------------------------------------------------------------------ frames

    def _frame(
        self, stmt: sa.Select[Any] | sa.TextClause, schema: FrameSchema, params: dict[str, Any] | None = None
    ) -> pl.DataFrame:
        """Run ``stmt`` and build a frame straight from the DBAPI cursor's tuples.

        SQLAlchemy still compiles the statement and binds its parameters, but its per-row Row objects
        and result processors are skipped: at a million rows they cost 2-3x the fetch itself. So the
        timestamps arrive raw (text on SQLite, naive datetimes on PostgreSQL) and polars turns them into
        UTC datetimes, exactly what UtcDateTime would have produced.
        """
        sqlite = self.engine.dialect.name == "sqlite"
        stamps = [name for name, dtype in schema.items() if isinstance(dtype, pl.Datetime)]
        raw_schema = {
            name: (pl.String if sqlite else pl.Datetime("us")) if name in stamps else dtype
            for name, dtype in schema.items()
        }
        with self._reading() as conn:
            result = conn.execute(stmt, params) if params else conn.execute(stmt)
            try:
                # chunks, so a million-row id map never exists as a million Python tuples at once
                cursor = result.cursor
                frames = [
                    pl.DataFrame(rows, schema=raw_schema, orient="row")
                    for rows in iter(lambda: cursor.fetchmany(_FETCH_ROWS), [])
                ]
            finally:
                result.close()
        frame = pl.concat(frames) if frames else pl.DataFrame(schema=raw_schema)
        if not stamps:
            return frame
        as_utc = [
            (
                pl.col(n).str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us") if sqlite else pl.col(n)
            ).dt.replace_time_zone("UTC")
            for n in stamps
        ]
        return frame.with_columns(as_utc)


def _last_owner_wins(
    rows: Iterable[tuple[str, str, str | None]],
) -> tuple[dict[str, tuple[str, str | None]], set[str]]:
    """Apply rows in order under "one HubSpot id, one key": returns {key: (id, hash)} and the keys that
    lost their id to a later row of the same batch."""
    latest: dict[str, tuple[str, str | None]] = {}
    owner: dict[str, str] = {}
    displaced: set[str] = set()
    for key, hubspot_id, payload_hash in rows:
        if key in latest and owner.get(latest[key][0]) == key:
            del owner[latest[key][0]]
        previous = owner.get(hubspot_id)
        if previous is not None and previous != key:
            del latest[previous]
            displaced.add(previous)
        latest[key] = (hubspot_id, payload_hash)
        owner[hubspot_id] = key
        displaced.discard(key)
    return latest, displaced


def _required_id(source_key: str, hubspot_id: object) -> str:
    if hubspot_id is None or hubspot_id == "":
        raise ValueError(
            f"record_synced: {source_key!r} has no HubSpot id (use failures/log for rejected records)"
        )
    return str(hubspot_id)


def _is_transient(exc: DBAPIError, retry_unique: bool) -> bool:
    """Errors that a fresh attempt of the same transaction can get past."""
    if getattr(exc.orig, "pgcode", None) in _PG_TRANSIENT:
        return True
    if retry_unique and isinstance(exc, IntegrityError):
        return True  # a concurrent writer inserted the same key/id first; the retry sees and resolves it
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


def _normalize_url(url: str) -> URL:
    """SQLAlchemy 2.1 maps bare ``postgresql://`` to psycopg 3; use psycopg2 when that is what is installed."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        try:
            import psycopg  # type: ignore[import-not-found]  # noqa: F401  # optional: psycopg 3 may be absent
        except ImportError:
            parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _create_engine(url: str) -> Engine:
    parsed = _normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if parsed.get_driver_name() == "psycopg2":
            # ON CONFLICT upserts and DELETEs do not qualify for insertmanyvalues: batch them in big pages
            kwargs.update(executemany_mode="values_plus_batch", executemany_batch_page_size=1000)
        return sa.create_engine(parsed, **kwargs)
    raise ValueError(
        f"unsupported state store URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql://"
    )


def _sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        engine = sa.create_engine(url, poolclass=sa.StaticPool, connect_args={"check_same_thread": False})
    else:
        _create_private_file(Path(url.database).expanduser())  # type: ignore[arg-type]
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # writers take the lock up front so they queue on busy_timeout instead of failing on upgrade
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _create_private_file(path: Path) -> None:
    """Create the database file readable only by its owner (SQLite gives its -wal/-shm files the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    if path.stat().st_mode & 0o077:
        with contextlib.suppress(PermissionError):  # someone else's file: leave its mode alone
            path.chmod(0o600)


@functools.lru_cache(maxsize=8)
def _key_ranges(ranges: int) -> sa.TextClause:
    """``ranges`` index ranges of one type's keys joined by UNION ALL, as text built once per size: the SQL
    expression of 300 ranges took longer to build and compile than to run. (An OR of the ranges is planned as a
    scan of the type by SQLite: minutes at 4M rows.)"""
    one = (
        f"SELECT source_key, hubspot_id, payload_hash FROM {id_map.name} "
        "WHERE object_type = :t AND source_key >= :l{n} AND source_key < :h{n}"
    )
    return sa.text(" UNION ALL ".join(one.format(n=n) for n in range(ranges)))
