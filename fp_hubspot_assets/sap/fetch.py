"""Running the reader's SQL and turning raw columns into typed ones without ever failing on bad data.

Two paths share every SQL text (identifiers double-quoted, values only as ``:named`` parameters):
- SQLite: the ``sqlite3`` module directly (read-only), about twice as fast as going through SQLAlchemy rows.
  SQLite lets any column hold any type, so columns we parse are selected as text (``Source.text``) and parsed
  in polars, where a bad value becomes a reject instead of an exception.
- anything else (PostgreSQL, SQL Server…): SQLAlchemy ``text()`` on an engine.

Timestamps: SQLite holds SQLAlchemy's text format; bound parameters are rendered in the same format, so text
comparison is time comparison. SAP change markers are ``UpdateDate`` (day) + ``UpdateTS`` (HHMMSS).

Time zone: SAP Business One stamps its rows in the server's (or the company's) local time, not UTC. The
source's zone (``Source(url, time_zone)``, ``$FP_SAP_TIME_ZONE``, default UTC) turns every instant the reader
returns into naive UTC (``SourceZone.to_utc``), and every moment it binds (``since_params``) into source time.
Calendar days (``UpdateDate`` alone, ``CreateDate``, ``DocDate``) stay days; a day + ``UpdateTS`` is an instant.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import sqlalchemy as sa

from fp_hubspot_assets.sap.tables import metadata

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

TEXT_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
REJECTS = pl.Schema({"entity": pl.String, "source_key": pl.String, "reason": pl.String})


def _column_types() -> dict[str, pl.DataType]:
    """Polars type of every table column by name (names never change type across our tables)."""
    by_sql = {sa.Integer: pl.Int64(), sa.Float: pl.Float64(), sa.DateTime: pl.Datetime("us"), sa.Boolean: pl.Boolean()}
    types: dict[str, pl.DataType] = {}
    for table in metadata.sorted_tables:
        for column in table.columns:
            sql_type = next((t for t in by_sql if isinstance(column.type, t)), None)
            types.setdefault(column.name, by_sql[sql_type] if sql_type else pl.String())
    return types


COLUMN_TYPES = _column_types()


def naive_utc(moment: datetime) -> datetime:
    """Aware datetimes are converted to UTC; the database holds naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


TIME_ZONE_ENV = "FP_SAP_TIME_ZONE"
_HOUR = timedelta(hours=1)


class SourceZone:
    """The time zone the source stamps its rows in. Local clocks repeat an hour when daylight saving time ends;
    bounds are widened so that no row stamped in the repeated hour is missed (``bound``)."""

    def __init__(self, name: str = "UTC") -> None:
        try:
            self.zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{TIME_ZONE_ENV}: unknown time zone {name!r}: give an IANA name such as "
                             "Europe/Berlin or America/New_York (the zone SAP Business One stamps its rows in)") from None  # fmt: skip
        self.name = name
        offsets = {self.zone.utcoffset(datetime(2026, month, 1)) for month in range(1, 13)}
        self.is_utc = offsets == {timedelta(0)}  # UTC under any name: nothing to convert

    def local(self, utc: datetime) -> datetime:
        """Naive UTC -> naive source time."""
        return utc if self.is_utc else utc.replace(tzinfo=UTC).astimezone(self.zone).replace(tzinfo=None)

    def bound(self, utc: datetime, upper: bool = False) -> datetime:
        """The source time that bounds every row stamped at or after ``utc`` (or, ``upper``, at or before it):
        one hour wider where the local clock goes back within the hour, so the repeated hour is covered."""
        if upper:
            return max(self.local(utc), self.local(utc - _HOUR) + _HOUR)
        return min(self.local(utc), self.local(utc + _HOUR) - _HOUR)

    def to_utc(self, moment: datetime | None) -> datetime | None:
        """Naive source time -> naive UTC (a repeated hour is read as its first pass)."""
        if moment is None or self.is_utc:
            return moment
        return moment.replace(tzinfo=self.zone).astimezone(UTC).replace(tzinfo=None)

    def to_utc_expr(self, expr: pl.Expr) -> pl.Expr:
        """``to_utc`` on a column (the same values); a local time the clock skipped (spring forward) is read with
        the offset before the change, as ``to_utc`` does."""
        if self.is_utc:
            return expr

        def utc(e: pl.Expr) -> pl.Expr:
            aware = e.dt.replace_time_zone(self.name, ambiguous="earliest", non_existent="null")
            return aware.dt.convert_time_zone("UTC").dt.replace_time_zone(None)

        return pl.coalesce(utc(expr), utc(expr - pl.duration(hours=1)) + pl.duration(hours=1))


UTC_ZONE = SourceZone()


class Source:
    """One database: runs a query and returns a polars frame with the query's column names."""

    def __init__(self, url: str, time_zone: str = "UTC") -> None:
        self.zone = SourceZone(time_zone)
        self.url = sa.make_url(url)
        self.sqlite = self.url.get_backend_name() == "sqlite"
        if self.sqlite and (not self.url.database or self.url.database == ":memory:"):
            raise ValueError("SapReader needs a SQLite file, not an in-memory database")
        self._engine = None if self.sqlite else sa.create_engine(self.url)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # -- SQL fragments (constant text only) ------------------------------------------------------------------

    def text(self, alias: str, column: str) -> str:
        """A column we parse ourselves, selected under its own name: cast to text on SQLite so one corrupt
        cell cannot poison the column."""
        ref = f'{alias}."{column}"'
        return f'CAST({ref} AS TEXT) AS "{column}"' if self.sqlite else ref

    def since_params(self, since: datetime | None, upper: bool = False) -> dict[str, object]:
        """Bound values for ``fp_changed``/``sap_changed`` (none when reading everything), in source time;
        ``upper``: the moment is an upper bound."""
        if since is None:
            return {}
        moment = self.zone.bound(naive_utc(since), upper)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        ts = moment.hour * 10_000 + moment.minute * 100 + moment.second
        return {"since": self._bind(moment), "since_day": self._bind(day), "since_ts": ts}

    def _bind(self, moment: datetime) -> object:
        return moment.strftime(TEXT_DATETIME) if self.sqlite else moment

    @staticmethod
    def fp_changed(alias: str, since: datetime | None) -> str:
        return "1=1" if since is None else f'{alias}."UpdatedAt" >= :since'

    @staticmethod
    def sap_changed(alias: str, since: datetime | None) -> str:
        if since is None:
            return "1=1"
        return (
            f'({alias}."UpdateDate" > :since_day OR ({alias}."UpdateDate" = :since_day '
            f'AND COALESCE({alias}."UpdateTS", 0) >= :since_ts))'
        )

    def in_keys(self, column: str, name: str) -> str:
        """``column`` is one of the keys bound as ``:name`` (``keys_param``): one parameter whatever the count."""
        return f"{column} IN (SELECT value FROM json_each(:{name}))" if self.sqlite else f"{column} = ANY(:{name})"

    def keys_param(self, keys: Iterable[object]) -> object:
        values = sorted(keys, key=str)
        return json.dumps(values) if self.sqlite else values

    def well_formed(self, column: str) -> str:
        """Excludes text that is not a timestamp from MAX() on SQLite (where 'garbage' > '2025-…')."""
        if not self.sqlite:
            return f"{column} IS NOT NULL"
        return f"typeof({column}) = 'text' AND {column} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"

    # -- running ------------------------------------------------------------------------------------------

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Cursor]:
        if not self.url.database:
            raise ValueError(f"a SQLite URL names its database file: {self.url!r}")
        uri = Path(self.url.database).resolve().as_uri() + "?mode=ro"
        con = sqlite3.connect(uri, uri=True)
        try:
            yield con.cursor()
        finally:
            con.close()

    def query(self, sql: str, params: dict[str, object] | None = None) -> pl.DataFrame:
        """Run ``sql``; rows arrive in chunks turned into frames as they come, so a million-row table never
        exists as a million Python tuples at once."""
        params = params or {}
        if self.sqlite:
            with self._cursor() as cur:
                cur.execute(sql, params)
                frame = _frame_from_chunks([d[0] for d in cur.description], iter(lambda: cur.fetchmany(FETCH_ROWS), []))
        else:
            assert self._engine is not None
            with self._engine.connect() as conn:
                result = conn.execution_options(stream_results=True).execute(sa.text(sql), params)
                names = list(result.keys())
                chunks = ([tuple(r) for r in part] for part in result.partitions(FETCH_ROWS))
                frame = _frame_from_chunks(names, chunks)
        # a column with no value at all has no type: give it the table's, so string/number logic still applies
        untyped = [n for n, dtype in frame.schema.items() if dtype == pl.Null]
        return frame.with_columns(pl.col(n).cast(COLUMN_TYPES.get(n, pl.String())) for n in untyped)


FETCH_ROWS = 100_000


def _frame_from_chunks(names: list[str], chunks: Iterator[list[Any]]) -> pl.DataFrame:
    """One frame from row chunks. A column whose Python types differ between chunks (SQLite stores what it
    is given: text in a number column) becomes text in every chunk, never an error."""
    frames = [pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None) for rows in chunks]
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(names, pl.Null))
    if len(frames) == 1:
        return frames[0]
    try:
        return pl.concat(frames, how="vertical_relaxed")
    except (pl.exceptions.SchemaError, pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        typed = {n: {f.schema[n] for f in frames} - {pl.Null} for n in names}
        mixed = [n for n, kinds in typed.items() if len(kinds) > 1]
        return pl.concat([f.with_columns(pl.col(n).cast(pl.String) for n in mixed) for f in frames], how="vertical_relaxed")


# --- parsing raw columns ------------------------------------------------------------------------------------


def as_datetime(column: pl.Series | pl.Expr, dtype: pl.DataType, zone: SourceZone | None = None) -> pl.Expr:
    """Text (SQLite) or a native timestamp/date (other databases) -> Datetime(us); unparseable -> null.
    ``zone``: the values are instants in that zone's local time, returned as UTC; None: calendar days (or
    already UTC), left as they are. A value with its own offset is converted by that offset either way."""
    expr = column if isinstance(column, pl.Expr) else pl.lit(column)
    local = zone or UTC_ZONE
    if dtype == pl.String:
        return _text_datetime(expr, local)
    if dtype == pl.Null or dtype.is_numeric():  # a number where a timestamp belongs is not a timestamp
        return pl.lit(None, dtype=pl.Datetime("us"))
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:  # a timestamp with a time zone: an instant
        return expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.Datetime("us"))
    return local.to_utc_expr(expr.cast(pl.Datetime("us")))


def _text_datetime(expr: pl.Expr, zone: SourceZone) -> pl.Expr:
    """ISO-8601 (extended or basic, "T" or space, with or without seconds and fractions, "Z" or an offset
    such as +02:00 / +0200 / +02) and SQL datetime text -> naive UTC; a text without offset is in ``zone``."""
    clock = r"(\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)"
    text = (
        expr.str.strip_chars()
        .str.replace(r"^(\d{4})(\d{2})(\d{2})$", "${1}-${2}-${3}")  # basic date
        .str.replace(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?", "${1}-${2}-${3}T${4}:${5}:${6}")
        .str.replace(r"(T\d{2}:\d{2}):(\D|$)", "${1}:00${2}")  # basic form without seconds
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[Tt ]", "${1} ")
        .str.replace(r"(\d{2}:\d{2}:\d{2}),(\d)", "${1}.${2}")  # ISO allows a decimal comma
        .str.replace(clock + r"\s*[Zz]$", "${1}+00:00")
        .str.replace(clock + r"\s*([+-]\d{2}):?(\d{2})$", "${1}${2}:${3}")
        .str.replace(clock + r"\s*([+-]\d{2})$", "${1}${2}:00")
    )

    def aware(fmt: str) -> pl.Expr:
        return text.str.to_datetime(fmt, strict=False, time_unit="us").dt.convert_time_zone("UTC").dt.replace_time_zone(None)

    def naive(fmt: str) -> pl.Expr:
        return zone.to_utc_expr(text.str.to_datetime(fmt, strict=False, time_unit="us"))

    return pl.coalesce(
        naive("%Y-%m-%d %H:%M:%S%.f"),
        aware("%Y-%m-%d %H:%M:%S%.f%:z"),
        naive("%Y-%m-%d %H:%M"),
        aware("%Y-%m-%d %H:%M%:z"),
        zone.to_utc_expr(text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us"))),
    )


def as_number(column: pl.Expr, dtype: pl.DataType, target: PolarsDataType = pl.Float64) -> pl.Expr:
    if dtype == pl.String:
        return column.str.strip_chars().cast(target, strict=False)
    return column.cast(target, strict=False)


def sap_stamp(day: pl.Expr, ts: pl.Expr, zone: SourceZone = UTC_ZONE) -> pl.Expr:
    """UpdateDate (a day) + UpdateTS (HHMMSS, source time) -> one instant in UTC; a missing UpdateTS counts
    as midnight."""
    hhmmss = ts.cast(pl.Int64, strict=False).fill_null(0)
    seconds = (hhmmss // 10_000) * 3600 + (hhmmss // 100 % 100) * 60 + hhmmss % 100
    return zone.to_utc_expr(day + pl.duration(seconds=seconds))


def parse(
    frame: pl.DataFrame, specs: dict[str, tuple[str, str]], zone: SourceZone = UTC_ZONE
) -> tuple[pl.DataFrame, pl.Series]:
    """Parse columns in place. ``specs``: column -> (kind 'datetime'|'day'|'float'|'int', label for the reason);
    a 'datetime' is an instant in ``zone`` (returned as UTC), a 'day' a calendar day (SAP's date columns).

    Returns the frame with typed columns and, per row, the reason it cannot be read (null when it can):
    a value that is present but does not parse.
    """
    reasons: list[pl.Expr] = []
    parsed: list[pl.Expr] = []
    for name, (kind, label) in specs.items():
        dtype = frame.schema[name]
        raw = pl.col(name)
        if kind in ("datetime", "day"):
            typed = as_datetime(raw, dtype, zone if kind == "datetime" else None)
        else:
            typed = as_number(raw, dtype, pl.Float64 if kind == "float" else pl.Int64)
        parsed.append(typed.alias(name))
        bad = raw.is_not_null() & typed.is_null()
        shown = raw.cast(pl.String, strict=False).fill_null("?")
        noun = "datetime" if kind == "day" else kind  # a day is reported as before: "… is not a datetime"
        reasons.append(pl.when(bad).then(pl.format(f"{label} {{}} is not a {noun}", shown.str.slice(0, 40))))
    if not specs:
        return frame, pl.Series("reason", [None] * frame.height, dtype=pl.String)
    reason = frame.select(pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("reason")).to_series()
    reason = reason.replace("", None)
    return frame.with_columns(parsed), reason


def split_rejects(
    frame: pl.DataFrame, reason: pl.Series, entity: str, key: pl.Expr
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows with a reason leave ``frame`` and become reject rows ``(entity, source_key, reason)``."""
    flagged = frame.with_columns(reason.alias("__reason"))
    bad = flagged.filter(pl.col("__reason").is_not_null())
    rejects = bad.select(
        pl.lit(entity).alias("entity"), key.cast(pl.String).alias("source_key"), pl.col("__reason").alias("reason")
    )
    return flagged.filter(pl.col("__reason").is_null()).drop("__reason"), rejects.cast(REJECTS)


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTS)


def max_stamp(frame: pl.DataFrame) -> datetime | None:
    """The newest non-null timestamp in a one-column frame of stamps."""
    if frame.is_empty():
        return None
    col = frame.to_series()
    value = col.max() if col.dtype == pl.Datetime else None
    return value if isinstance(value, datetime) else None


