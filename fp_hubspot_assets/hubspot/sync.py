"""The sync engine: diff mapped records against the state store and write only what changed.

For one object type: hash each record's outgoing properties, compare with the hash remembered for its
source key, upsert the new and changed ones by our unique property in 100-record batches (several batches
in flight, all under the one rate budget), record every success in the ID map as its batch completes, log
each record's action, and adopt contacts whose email already exists in HubSpot. Associations follow once
both ends exist. A kill at any point loses nothing: the next run re-upserts what was not recorded, and an
upsert by our own unique id can never create a second record.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import polars as pl

from fp_hubspot_assets import failpoints
from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot import identity
from fp_hubspot_assets.hubspot.client import BatchOutcome, HubSpotClient, HubSpotError
from fp_hubspot_assets.hubspot.create_guard import CreateGuard
from fp_hubspot_assets.hubspot.properties import NO_UNIQUE_FALLBACK
from fp_hubspot_assets.mapping.common import columns_of, keep_rows
from fp_hubspot_assets.mapping.model import EXCLUDED
from fp_hubspot_assets.objects import DELETED_FLAG, SPECS
from fp_hubspot_assets.state.schema import LOG_ACTIONS, MAX_FAILED_ATTEMPTS
from fp_hubspot_assets.state.store import LogRow, StateStore

logger = logging.getLogger(__name__)
B = TypeVar("B")  # a batch
R = TypeVar("R")  # what sending it returns

REFERENCE_PREFIXES = ("assoc_",)
REFERENCE_COLUMNS = ("source_key", "product_key")
DRY_RUN_DIFFS = 5  # records whose differing properties a dry run reads back from HubSpot (one request)
TOUCHED_LIMIT = 1000  # records kept in memory for the metadata grid; the integration log holds every one
BATCH_SIZE = ep.OBJECTS_BATCH_UPSERT.batch_size  # HubSpot's batch input limit (100)
DELETED_MARK = "deleted:"  # id_map.payload_hash of a record flagged as vanished: "deleted:<date>"
ACTIONS = (*LOG_ACTIONS, EXCLUDED)  # what a run did to a record; "excluded" is counted, not logged


@dataclass
class SyncContext:
    client: HubSpotClient | None  # None only for a dry run without credentials
    state: StateStore
    run_id: str
    dry_run: bool = False
    max_workers: int = 4
    progress: Callable[[str], None] = logger.info
    progress_every: int = 50  # batches
    # A dry run may read (never write) through this client to show what differs for its first records.
    reader: HubSpotClient | None = None
    # Also compare with what HubSpot holds now (one list request per 100 records) and re-send records that
    # were edited or deleted by hand there; off, the diff compares only with what we sent last.
    reconcile: bool = False


@dataclass
class SyncReport:
    object_type: str
    counts: Counter[str] = field(default_factory=Counter)
    touched: list[tuple[str, str | None, str, str]] = field(default_factory=list)  # key, hs id, action, message
    requests: int = 0
    write_requests: int = 0
    associations_created: int = 0
    duration_s: float = 0.0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def touch(self, key: str, hubspot_id: str | None, action: str, message: str) -> None:
        """Remember a record for the UI grid; past TOUCHED_LIMIT only the counts (and the log) keep them."""
        if len(self.touched) < TOUCHED_LIMIT:
            self.touched.append((key, hubspot_id, action, message))

    def touched_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            self.touched,
            schema={"source_key": pl.String, "hubspot_id": pl.String, "action": pl.String, "message": pl.String},
            orient="row",
        )

    def summary(self) -> dict[str, int]:
        return {action: self.counts.get(action, 0) for action in ACTIONS}


def property_columns(records: pl.DataFrame) -> list[str]:
    """The columns that are HubSpot properties (everything but keys and references), in a stable order."""
    return sorted(c for c in records.columns if c not in REFERENCE_COLUMNS and not c.startswith(REFERENCE_PREFIXES))


ASSOCIATION_SLICE_ROWS = 200_000  # missing associations whose ends' HubSpot ids are looked up at a time
HASH_CHUNK_ROWS = 200_000  # the joined property strings and Python digests exist for one chunk at a time


def payload_hashes(records: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """A stable digest of each record's outgoing properties (blake2b; independent of polars versions)."""
    if records.is_empty():
        return pl.Series("payload_hash", [], dtype=pl.String)
    chunks = (records.slice(start, HASH_CHUNK_ROWS) for start in range(0, records.height, HASH_CHUNK_ROWS))
    return pl.concat([_hash_chunk(chunk, columns) for chunk in chunks])


def _hash_chunk(records: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    joined = records.select(
        pl.concat_str(
            [pl.lit(c + "=") + pl.col(c).cast(pl.String).fill_null("\x00") for c in columns], separator="\x1f"
        ).alias("j")
    )["j"]
    return pl.Series(
        "payload_hash", [hashlib.blake2b(s.encode(), digest_size=16).hexdigest() for s in joined], dtype=pl.String
    )


def plan(records: pl.DataFrame, state: StateStore, object_type: str) -> pl.DataFrame:
    """Attach payload hashes and the remembered state: one row per record with ``decision`` = write | unchanged
    | gave_up (rejected MAX_FAILED_ATTEMPTS times with this very content)."""
    columns = property_columns(records)
    hashes = payload_hashes(records, columns)
    known = state.id_map(object_type, records["source_key"]).rename({"payload_hash": "known_hash"})
    failures = state.failures(object_type).select(
        "source_key", pl.col("payload_hash").alias("failed_hash"), "attempts", "last_message"
    )
    # The joins run on a narrow frame of keys and hashes, then stand beside the records: joining the records
    # themselves would copy every property column (1.2 GiB for 4.1M line items).
    remembered = (
        pl.DataFrame([records["source_key"], hashes])
        .join(known, on="source_key", how="left", maintain_order="left")
        .join(failures, on="source_key", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("known_hash") == pl.col("payload_hash"))
            .then(pl.lit("unchanged"))
            .when((pl.col("failed_hash") == pl.col("payload_hash")) & (pl.col("attempts") >= MAX_FAILED_ATTEMPTS))
            .then(pl.lit("gave_up"))
            .otherwise(pl.lit("write"))
            .alias("decision")
        )
    )
    assert remembered.height == records.height, "the ID map and failures hold one row per key"
    return records.hstack(remembered.drop("source_key"))


def sync_records(
    ctx: SyncContext, object_type: str, id_property: str, records: pl.DataFrame, report: SyncReport | None = None
) -> SyncReport:
    """Write the new and changed records of one object type; returns counts and the touched records."""
    started = time.perf_counter()
    report = report if report is not None else SyncReport(object_type, dry_run=ctx.dry_run)
    requests_before = _requests(ctx)
    planned = plan(records, ctx.state, object_type)
    if ctx.reconcile and ctx.client is not None:
        planned = reconcile_plan(ctx, object_type, id_property, planned, property_columns(records), report)
    # ``planned``'s columns are chunked differently (records beside join results), and polars would copy every
    # column of it into one chunk for a select or filter of the whole frame: the decisions are read as Series.
    decision = planned.get_column("decision")
    report.counts["unchanged"] = int((decision == "unchanged").sum())  # counted, not copied
    gave_up = columns_of(planned, "source_key", "hubspot_id", "last_message").filter(decision == "gave_up")
    for key, hs_id, message in gave_up.iter_rows():
        report.touch(key, hs_id, "skipped", f"rejected {MAX_FAILED_ATTEMPTS} times, retried when its data changes: {message}")
    report.counts["skipped"] += gave_up.height
    todo = keep_rows(planned, decision == "write")  # a first sync writes every row: no copy
    del decision
    columns = property_columns(records)
    if ctx.dry_run:
        differs = _differences(ctx, object_type, todo, columns)
        for key, hs_id, known_hash in columns_of(todo, "source_key", "hubspot_id", "known_hash").iter_rows():
            action = "would_update" if hs_id else "would_create"
            report.counts[action] += 1
            report.touch(key, hs_id, action, differs.get(key) or _would_write_why(hs_id, known_hash))
        report.duration_s = time.perf_counter() - started
        return report
    assert ctx.client is not None, "a sync that writes needs a HubSpot client"
    total = -(-todo.height // BATCH_SIZE)
    # Batches are built as they are sent, so memory holds a few batches, not every record's payload (as
    # strings: ~1 GiB for 4.1M line items); the payload hashes likewise are held for the batches in flight
    # (and the keys waiting on a claim) only.
    hashes: dict[str, str] = {}

    def batch_at(offset: int) -> list[tuple[str, dict[str, str]]]:
        rows = todo.slice(offset, BATCH_SIZE)
        hashes.update(zip(rows["source_key"], rows["payload_hash"], strict=True))
        return _payloads(_outgoing(rows, columns))

    batches = (batch_at(offset) for offset in range(0, todo.height, BATCH_SIZE))
    if total:
        ctx.progress(f"{object_type}: writing {todo.height} new or changed records in {total} batches")
    done = 0
    client = ctx.client
    claims: list[identity.Claim] = []
    guard = _create_guard(ctx, client, object_type, id_property, todo)
    if guard is not None:
        batches = (guard.noted(batch) for batch in batches)

    def finish(batch: Sequence[tuple[str, dict[str, str]]], outcome: BatchOutcome) -> None:
        nonlocal done
        if SPECS[object_type].adopt_on_conflict:
            identity.sort_conflicts(client, ctx.state, object_type, batch, outcome, claims)
        failpoints.reached(f"sync.unrecorded.{object_type}")  # HubSpot has answered, the store does not know
        _record(ctx, object_type, outcome, hashes, report, guard, [key for key, _ in batch])
        claimed = {claim.key for claim in claims}
        for key, _props in batch:
            if key not in claimed:
                del hashes[key]
        done += 1
        if done % ctx.progress_every == 0 or done == total:
            ctx.progress(f"{object_type}: {done}/{total} batches, {sum(report.counts.values())} records processed")

    _run_batches(
        ctx.max_workers,
        batches,
        lambda batch: client.batch_upsert(object_type, id_property, batch, guard.may_exist if guard else None),
        finish,
    )
    if claims:
        ctx.progress(f"{object_type}: {len(claims)} email(s) move between our contacts; releasing, then claiming")
        holders = planned.filter(pl.col("source_key").is_in(sorted({c.holder for c in claims})))
        holder_payloads = {
            key: (props, digest)
            for (key, props), digest in zip(_payloads(_outgoing(holders, columns)), holders["payload_hash"], strict=True)
        }
        hashes |= {key: digest for key, (_props, digest) in holder_payloads.items()}
        identity.settle_claims(
            client, ctx.state, object_type, id_property, claims, holder_payloads,
            lambda outcome: _record(ctx, object_type, outcome, hashes, report),
        )
    report.requests, report.write_requests = _requests(ctx)[0] - requests_before[0], _requests(ctx)[1] - requests_before[1]
    report.duration_s = time.perf_counter() - started
    return report


def _create_guard(
    ctx: SyncContext, client: HubSpotClient, object_type: str, id_property: str, todo: pl.DataFrame
) -> CreateGuard | None:
    """Where the account may refuse a unique id property, the guard decides which keys need a search."""
    if object_type not in NO_UNIQUE_FALLBACK or todo.is_empty():
        return None
    # Series, not a filter of ``todo``: the plan's columns are chunked differently, and a filter of the whole frame
    # copied every column of 4.1M line items into one chunk first (+800 MiB on a first sync at 1M, §7 of bench/README)
    known = todo.get_column("source_key").filter(todo.get_column("hubspot_id").is_not_null())
    return CreateGuard(client, ctx.state, object_type, id_property, known, ctx.run_id, ctx.progress)


def _outgoing(planned: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """The properties to send, as strings ("" clears). A record flagged as deleted in the source that is
    back gets its flag cleared (the flag is not part of the payload, see mapping.DELETED_FLAG)."""
    frame = planned.select(["source_key", *[pl.col(c).cast(pl.String).fill_null("") for c in columns]])
    if "known_hash" in planned.columns and planned["known_hash"].str.starts_with(DELETED_MARK).any():
        frame = frame.with_columns(
            pl.when(planned["known_hash"].str.starts_with(DELETED_MARK)).then(pl.lit("")).alias(DELETED_FLAG)
        )
    return frame


def _payloads(frame: pl.DataFrame) -> list[tuple[str, dict[str, str]]]:
    """(key, properties) per row; a null property (only the deleted flag) is not sent."""
    columns = frame.columns[1:]
    return [
        (row[0], {c: v for c, v in zip(columns, row[1:], strict=True) if v is not None}) for row in frame.iter_rows()
    ]


def _differences(ctx: SyncContext, object_type: str, todo: pl.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """For a dry run's first few updates: which properties differ from what HubSpot holds now, read back in
    one request ("price: '10' → '12'"). Empty when there is no reader or HubSpot cannot be read."""
    first = todo.get_column("hubspot_id").is_not_null().arg_true().head(DRY_RUN_DIFFS)
    if ctx.reader is None or first.is_empty():
        return {}
    rows = pl.DataFrame([column.gather(first) for column in columns_of(todo, "source_key", "hubspot_id", *columns)])
    ours = {hs_id: (key, values) for key, hs_id, *values in rows.iter_rows()}
    try:
        theirs = ctx.reader.batch_read(object_type, list(ours), columns)
    except HubSpotError as exc:
        ctx.progress(f"{object_type}: dry run could not read HubSpot to show differences ({exc})")
        return {}
    out: dict[str, str] = {}
    for hs_id, (key, values) in ours.items():
        held = theirs.get(hs_id)
        if held is None:
            out[key] = "not in HubSpot any more (deleted there): would be created again"
            continue
        changed = [
            f"{c}: {str(held.get(c) or '')!r} → {'' if v is None else str(v)!r}"
            for c, v in zip(columns, values, strict=True)
            if not same_value(v, held.get(c))
        ]
        out[key] = "; ".join(changed)[:300] if changed else "same values in HubSpot (state store out of date)"
    return out


def _would_write_why(hubspot_id: str | None, known_hash: str | None) -> str:
    """What differs, for a dry run's report: the state store keeps a hash of what was sent, not the values."""
    if not hubspot_id:
        return "new: not in HubSpot yet"
    if known_hash is None:
        return "HubSpot id known, our content never sent"
    return "content changed since the last sync"


def reconcile_plan(
    ctx: SyncContext,
    object_type: str,
    id_property: str,
    planned: pl.DataFrame,
    columns: Sequence[str],
    report: SyncReport,
) -> pl.DataFrame:
    """Turn ``unchanged`` rows that drifted in HubSpot into ``write`` rows.

    Reads every live record of the type through the list API (100 per request) with our id property and
    the properties we send. A record whose HubSpot values differ from our payload was edited by hand; one
    whose key is absent was deleted (archived) by hand: its state-store mapping and remembered associations
    are dropped so the upsert recreates it under a new id and the association steps link it again. Only the
    properties we send are compared; whatever else lives on the record is not ours. Counts land in
    ``report.counts["drifted"]`` / ``["missing"]``."""
    assert ctx.client is not None
    unchanged = planned.filter(pl.col("decision") == "unchanged")
    if unchanged.is_empty():
        return planned
    ours = {row[0]: row[1:] for row in unchanged.select("source_key", *columns).iter_rows()}
    seen: set[str] = set()
    drifted: list[str] = []
    for record in ctx.client.list_all(object_type, [id_property, *columns]):
        props = record.properties or {}
        key = props.get(id_property)
        if key is None or key not in ours or key in seen:
            continue
        seen.add(key)
        if not all(same_value(a, props.get(c)) for c, a in zip(columns, ours[key], strict=True)):
            drifted.append(key)
    missing = sorted(set(ours) - seen)
    if missing:
        ctx.state.forget(object_type, missing)
    report.counts["drifted"] += len(drifted)
    report.counts["missing"] += len(missing)
    if drifted or missing:
        ctx.progress(
            f"{object_type}: reconcile found {len(drifted)} edited and {len(missing)} deleted in HubSpot "
            f"(e.g. {', '.join((drifted + missing)[:5])}); writing them back"
        )
    again = pl.Series(drifted + missing, dtype=pl.String)
    return planned.with_columns(
        pl.when(pl.col("source_key").is_in(again)).then(pl.lit("write")).otherwise(pl.col("decision")).alias("decision"),
        pl.when(pl.col("source_key").is_in(pl.Series(missing, dtype=pl.String)))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("hubspot_id"))
        .alias("hubspot_id"),
    )


def same_value(ours: object, theirs: object) -> bool:
    """Whether HubSpot's stored value equals what we send, allowing for HubSpot's normalization: empty and
    missing are the same, numbers compare as numbers ("10" == "10.0"), dates and datetimes as instants
    (a date "2024-05-01" == "2024-05-01T00:00:00Z" == its epoch milliseconds)."""
    a = "" if ours is None else str(ours)
    b = "" if theirs is None else str(theirs)
    if a == b:
        return True
    if not a or not b:
        return False
    try:
        return float(a) == float(b)
    except ValueError:
        pass
    first, second = _instant(a), _instant(b)
    return first is not None and first == second


def _instant(value: str) -> datetime | None:
    if value.isdigit() and len(value) >= 12:  # epoch milliseconds
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _run_batches(
    workers: int,
    batches: Iterable[B],
    send: Callable[[B], R],
    finish: Callable[[B, R], None],
) -> None:
    """Keep ``workers`` batches in flight; results are recorded on the calling thread as each completes,
    so the state store is written by one thread and a crash loses at most the batches in flight."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hubspot") as pool:
        pending: dict[Future[R], B] = {}
        queue = iter(batches)
        try:
            for batch in queue:
                pending[pool.submit(send, batch)] = batch
                if len(pending) >= workers:
                    break
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    batch = pending.pop(future)
                    finish(batch, future.result())
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(send, nxt)] = nxt
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _record(
    ctx: SyncContext,
    object_type: str,
    outcome: BatchOutcome,
    hashes: dict[str, str],
    report: SyncReport,
    guard: CreateGuard | None = None,
    sent: Sequence[str] = (),
) -> None:
    rows = [(key, hs_id, hashes[key]) for key, (hs_id, _new) in outcome.ok.items()]
    log_rows: list[LogRow] = []
    for key, (hs_id, new) in outcome.ok.items():
        action = "adopted" if key in outcome.adopted else "created" if new else "updated"
        message = "email already in HubSpot: the existing contact was adopted" if action == "adopted" else ""
        report.counts[action] += 1
        report.touch(key, hs_id, action, message)
        log_rows.append(LogRow(object_type, key, action, hs_id, None, message or None))
    failures = []
    for key, (category, message) in outcome.failed.items():
        report.counts["failed"] += 1
        report.touch(key, None, "failed", f"{category}: {message}")
        log_rows.append(LogRow(object_type, key, "failed", None, category, message))
        failures.append((key, hashes[key], category, message))
    with ctx.state.transaction():
        ctx.state.record_synced(object_type, rows, ctx.run_id)
        ctx.state.clear_failures(object_type, outcome.ok.keys())
        ctx.state.record_failures(object_type, failures)
        ctx.state.log(ctx.run_id, log_rows)
        if guard is not None:
            # with the answer recorded, never before (a kill between would lose it); a lost answer stays noted
            guard.answered([key for key in sent if key not in outcome.answer_lost])


def sync_associations(
    ctx: SyncContext, from_type: str, to_type: str, pairs: pl.DataFrame, report: SyncReport
) -> None:
    """Make HubSpot's associations follow the source for the records of this run: remove the ones we wrote
    earlier that the source no longer has (a deal moved to another customer, a contact to another
    company), then create the missing ones, 100 per batch. ``pairs`` holds (from key, to key) in its first
    two columns, one row per record of the run: the from keys are the records' unique source keys (to key
    null or empty: no association wanted). Pairs whose ends are not in HubSpot (yet) wait for a later run;
    associations made by hand in HubSpot are not in the state store and never touched. The diff is done on
    frames: 4M line items' deal links stay a few hundred MiB."""
    type_id = ep.ASSOCIATION_TYPE_IDS.get((from_type, to_type), 0)
    # one row per record: the from keys are unique, and so are the pairs (no hashing of millions of rows here)
    in_run = pairs.get_column(pairs.columns[0]).cast(pl.String).alias("from_key")
    to_keys = pairs.get_column(pairs.columns[1]).cast(pl.String).alias("to_key")
    wanted = pl.DataFrame([in_run, to_keys]).filter(pl.col("to_key").is_not_null() & (pl.col("to_key") != ""))
    del to_keys
    remembered = ctx.state.association_frame(from_type, to_type, in_run)
    stale = remembered.join(wanted, on=["from_key", "to_key"], how="anti")
    _remove_stale(ctx, from_type, to_type, sorted(stale.iter_rows()), report)
    missing = wanted.join(remembered, on=["from_key", "to_key"], how="anti") if remembered.height else wanted
    del in_run, wanted, remembered, stale
    if missing.is_empty():
        return

    def ready_slices() -> Iterator[pl.DataFrame]:
        """The missing pairs whose two ends are in HubSpot, with their ids, ASSOCIATION_SLICE_ROWS at a time: on a
        first sync at 1M customers both ends' ids of 4.1M line items held at once cost ~700 MiB."""
        for start in range(0, missing.height, ASSOCIATION_SLICE_ROWS):
            part = missing.slice(start, ASSOCIATION_SLICE_ROWS)
            yield (
                part.join(_ids(ctx, from_type, part["from_key"].unique(), "from_id"), on="from_key")
                .join(_ids(ctx, to_type, part["to_key"].unique(), "to_id"), on="to_key")
                .sort("from_key", "to_key")
            )

    if ctx.dry_run:
        report.counts[f"would_associate_{to_type}"] += sum(ready.height for ready in ready_slices())
        return
    assert ctx.client is not None
    client = ctx.client

    def finish(chunk: Sequence[tuple[str, str, str, str]], failed: list[tuple[int, str, str]]) -> None:
        bad = {idx for idx, _c, _m in failed}
        ok = [(a, b, type_id) for j, (a, b, _fi, _ti) in enumerate(chunk) if j not in bad]
        ctx.state.record_associations(from_type, to_type, ok)
        report.associations_created += len(ok)
        for idx, category, message in failed:
            a, b, from_id, _to_id = chunk[idx]
            ctx.state.log(ctx.run_id, [LogRow(from_type, a, "failed", from_id, category, f"association to {to_type} {b}: {message}")])
            report.counts["association_failed"] += 1

    # Association batches spend the same rate budget as records: several in flight, like record batches.
    # Each batch becomes Python tuples only when it is sent.
    _run_batches(
        ctx.max_workers,
        (ready.slice(i, BATCH_SIZE).rows() for ready in ready_slices() for i in range(0, ready.height, BATCH_SIZE)),
        lambda chunk: client.associate_default(from_type, to_type, [(fi, ti) for _a, _b, fi, ti in chunk]),
        finish,
    )


def _ids(ctx: SyncContext, object_type: str, keys: pl.Series, name: str) -> pl.DataFrame:
    """source key -> HubSpot id of the mapped ``keys``, named for a join."""
    return ctx.state.id_map(object_type, keys, with_hash=False).select(pl.col("source_key").alias(keys.name), pl.col("hubspot_id").alias(name))


def _remove_stale(
    ctx: SyncContext, from_type: str, to_type: str, stale: Sequence[tuple[str, str, int]], report: SyncReport
) -> None:
    if not stale:
        return
    if ctx.dry_run or ctx.client is None:
        report.counts[f"would_unassociate_{to_type}"] += len(stale)
        return
    from_ids = ctx.state.hubspot_ids(from_type, {a for a, _b, _t in stale})
    to_ids = ctx.state.hubspot_ids(to_type, {b for _a, b, _t in stale})
    for i in range(0, len(stale), BATCH_SIZE):
        chunk = stale[i : i + BATCH_SIZE]
        live = [(a, b) for a, b, _t in chunk if a in from_ids and b in to_ids]
        failed = {}
        if live:
            pairs = [(from_ids[a], to_ids[b]) for a, b in live]
            failed = {i: (c, m) for i, c, m in ctx.client.archive_associations(from_type, to_type, pairs)}
        removed = [pair for i, pair in enumerate(live) if i not in failed]
        kept = {pair for i, pair in enumerate(live) if i in failed}  # remembered, so tried again next run
        with ctx.state.transaction():
            ctx.state.forget_associations(from_type, to_type, [r for r in chunk if r[:2] not in kept])
            ctx.state.log(ctx.run_id, [
                LogRow(from_type, a, "updated", from_ids.get(a), None, f"association to {to_type} {b} removed: no longer in the source")
                for a, b in removed
            ] + [
                LogRow(from_type, live[i][0], "failed", from_ids.get(live[i][0]), c, f"removing association to {to_type} {live[i][1]}: {m}")
                for i, (c, m) in failed.items()
            ])
        report.counts["associations_removed"] += len(removed)


def _requests(ctx: SyncContext) -> tuple[int, int]:
    if ctx.client is None:
        return (0, 0)
    return ctx.client.total_requests, ctx.client.write_requests
