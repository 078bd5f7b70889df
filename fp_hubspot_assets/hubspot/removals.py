"""What leaves HubSpot, and why (docs/identity.md): late links merge, removed lines and vanished records.

Only **absence from the source** removes anything. A record the mapping rejected for a bad value is still
in the source, so HubSpot keeps what it has; a record the panel excludes is left as it is. Every removal
is written to HubSpot first and forgotten in the state store after, so a kill in between repeats an
idempotent archive or update next run and never leaves a record we no longer know.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from fp_hubspot_assets import failpoints
from fp_hubspot_assets.hubspot.sync import BATCH_SIZE, DELETED_MARK, SyncContext, SyncReport
from fp_hubspot_assets.objects import CHILD_SEPARATOR, DELETED_FLAG, SPECS, line_of, parent_of
from fp_hubspot_assets.state.store import LogRow

LINE_ITEMS = "line_items"


class DeletionGuardError(RuntimeError):
    """A run would remove more of one object type than the panel's ``deletes_max_share`` allows."""


def _children(ctx: SyncContext, parents: Sequence[str] | pl.Series) -> pl.DataFrame:
    """The synced line items (source_key, hubspot_id) of these deals: keys ``<deal key>:L<line>``, found by key
    ranges for a small run's deals and by one scan of the line items for many."""
    wanted = parents if isinstance(parents, pl.Series) else pl.Series(list(parents), dtype=pl.String)
    if ctx.state.worth_scanning("deals", wanted.len()):
        known = ctx.state.id_map(LINE_ITEMS, with_hash=False)
    else:
        known = ctx.state.id_map_by_prefix(LINE_ITEMS, [f"{deal}{CHILD_SEPARATOR}" for deal in wanted.to_list()])
        known = known.drop("payload_hash")
    return known.filter(parent_of(pl.col("source_key")).is_in(wanted.implode()))


def _archive(ctx: SyncContext, object_type: str, rows: Sequence[tuple[str, str]], why: str, report: SyncReport) -> None:
    """Archive (key, hubspot id) rows in HubSpot, then forget them and log why."""
    assert ctx.client is not None
    for i in range(0, len(rows), BATCH_SIZE):
        chunk = rows[i : i + BATCH_SIZE]
        ctx.client.batch_archive(object_type, [hs_id for _key, hs_id in chunk])
        failpoints.reached(f"removals.archived.{object_type}")
        with ctx.state.transaction():
            ctx.state.forget(object_type, [key for key, _ in chunk])
            ctx.state.log(ctx.run_id, [LogRow(object_type, key, "archived", hs_id, None, why) for key, hs_id in chunk])
        for key, hs_id in chunk:
            report.touch(key, hs_id, "archived", why)
        report.counts["archived"] += len(chunk)


def _rekey(ctx: SyncContext, object_type: str, rows: Sequence[tuple[str, str, str]], why: str, report: SyncReport) -> None:
    """Give HubSpot records (old key, hubspot id, new key) their new key: our id property first, then the
    state store (a kill in between repeats the same update)."""
    assert ctx.client is not None
    prop = SPECS[object_type].id_property
    for i in range(0, len(rows), BATCH_SIZE):
        chunk = rows[i : i + BATCH_SIZE]
        outcome = ctx.client.batch_update(object_type, [(new, hs_id, {prop: new}) for _old, hs_id, new in chunk])
        moved = [(old, new) for old, _hs, new in chunk if new in outcome.ok]
        failpoints.reached(f"removals.rekeyed.{object_type}")
        ctx.state.rekey(object_type, moved)
        ctx.state.log(
            ctx.run_id,
            [LogRow(object_type, old, "merged", hs_id, None, f"{why}; now {new}") for old, hs_id, new in chunk if new in outcome.ok]
            + [LogRow(object_type, old, "failed", hs_id, *outcome.failed[new]) for old, hs_id, new in chunk if new in outcome.failed],
        )
        report.counts["merged"] += len(moved)
        report.counts["failed"] += len(chunk) - len(moved)


def merge_late_links(ctx: SyncContext, aliases: pl.DataFrame | None, report: SyncReport) -> None:
    """Deals only: an order synced as ``O…`` before its link to a cart arrived is now part of the cart's
    deal ``C…``. The purchase keeps one live deal: the cart's deal when it is in HubSpot (the order's deal
    and its line items are archived), else the order's deal, re-keyed to ``C…`` with its line items."""
    if aliases is None or aliases.is_empty():
        return
    # the deals of the aliases only (their old and new keys), not every deal of the store
    ends = pl.concat([aliases.get_column("source_key"), aliases.get_column("survivor_key")]).unique()
    known = ctx.state.id_map("deals", ends, with_hash=False)
    linked = aliases.join(known, on="source_key").join(
        known.rename({"source_key": "survivor_key", "hubspot_id": "survivor_id"}), on="survivor_key", how="left"
    )
    if linked.is_empty():
        return
    if ctx.dry_run or ctx.client is None:
        report.counts["would_merge"] += linked.height
        return
    why = "order linked to its cart late: merged into the cart's deal"
    both = linked.filter(pl.col("survivor_id").is_not_null())
    if both.height:
        _archive(ctx, LINE_ITEMS, list(_children(ctx, both["source_key"]).iter_rows()), why, report)
        rows = list(both.select("source_key", "hubspot_id", "survivor_key").iter_rows())
        _archive(ctx, "deals", [(old, hs_id) for old, hs_id, _new in rows], why, report)
    only_order = linked.filter(pl.col("survivor_id").is_null())
    if only_order.height:
        moves = dict(only_order.select("source_key", "survivor_key").iter_rows())
        lines = _children(ctx, list(moves)).with_columns(
            parent_of(pl.col("source_key")).replace_strict(moves).alias("_deal"),
            line_of(pl.col("source_key")).alias("_line"),
        )
        _rekey(ctx, "deals", list(only_order.select("source_key", "hubspot_id", "survivor_key").iter_rows()), why, report)
        line_rows = [(old, hs_id, f"{deal}{line}") for old, hs_id, deal, line in lines.iter_rows()]
        _rekey(ctx, LINE_ITEMS, line_rows, why, report)


def archive_removed_children(
    ctx: SyncContext, object_type: str, records: pl.DataFrame, parents: pl.Series | None, present: pl.Series, report: SyncReport
) -> None:
    """Archive the line items we created whose deal is synced this run (``parents``) but which the source
    no longer has — also when a deal lost every line. A line rejected for a bad value is still ``present``:
    HubSpot keeps it as it was."""
    if parents is None or parents.is_empty():
        return
    gone = _children(ctx, parents).filter(~pl.col("source_key").is_in(present.implode()))
    if gone.is_empty():
        return
    if ctx.dry_run or ctx.client is None:
        report.counts["would_archive"] += gone.height
        for key, hs_id in gone.iter_rows():
            report.touch(key, hs_id, "would_archive", "no longer in the source")
        return
    _archive(ctx, object_type, list(gone.iter_rows()), "no longer in the source", report)


def vanished(ctx: SyncContext, object_type: str, present: pl.Series) -> pl.DataFrame:
    """Synced records (source_key, hubspot_id) whose key the source no longer has, not yet flagged."""
    known = ctx.state.id_map(object_type)
    return known.filter(
        ~pl.col("source_key").is_in(present.implode())
        & ~pl.col("payload_hash").fill_null("").str.starts_with(DELETED_MARK)
    ).select("source_key", "hubspot_id")


def guard_deletes(ctx: SyncContext, object_type: str, gone: pl.DataFrame, policy: str, max_share: float) -> None:
    """Stop before a mass deletion: a read that failed or came back empty must not empty HubSpot."""
    if policy == "keep" or gone.height <= 1:
        return
    known = ctx.state.count_ids(object_type)
    if gone.height > max_share * known:
        raise DeletionGuardError(
            f"{object_type}: {gone.height} of {known} synced records vanished from the source in one run "
            f"(e.g. {', '.join(gone['source_key'].head(5).to_list())}), more than deletes_max_share={max_share:g}. "
            "Nothing was flagged or archived. If the source really lost them, raise deletes_max_share in the "
            "panel for one run (or set deletes: keep); otherwise check the source database and re-run."
        )


def apply_deletes(ctx: SyncContext, object_type: str, gone: pl.DataFrame, policy: str, report: SyncReport) -> None:
    """``flag``: set ``fp_deleted_in_source`` (today, UTC) and remember it; ``archive``: archive the record
    (a deal with its line items); ``keep``: nothing."""
    if policy == "keep" or gone.is_empty():
        return
    if ctx.dry_run or ctx.client is None:
        action = f"would_{'flag' if policy == 'flag' else 'archive'}"
        report.counts[action] += gone.height
        for key, hs_id in gone.iter_rows():
            report.touch(key, hs_id, action, "no longer in the source")
        return
    why = "no longer in the source"
    rows = list(gone.iter_rows())
    if policy == "archive":
        if object_type == "deals":
            _archive(ctx, LINE_ITEMS, list(_children(ctx, gone["source_key"]).iter_rows()), why, report)
        _archive(ctx, object_type, rows, why, report)
        return
    today = datetime.now(UTC).date().isoformat()
    for i in range(0, len(rows), BATCH_SIZE):
        chunk = rows[i : i + BATCH_SIZE]
        outcome = ctx.client.batch_update(object_type, [(key, hs_id, {DELETED_FLAG: today}) for key, hs_id in chunk])
        with ctx.state.transaction():
            ctx.state.set_hashes(object_type, [(key, DELETED_MARK + today) for key in outcome.ok])
            ctx.state.log(
                ctx.run_id,
                [LogRow(object_type, key, "flagged", hs_id, None, f"{why}: {DELETED_FLAG}={today}") for key, (hs_id, _) in outcome.ok.items()]
                + [LogRow(object_type, key, "failed", None, *outcome.failed[key]) for key in outcome.failed],
            )
        for key, (hs_id, _new) in outcome.ok.items():
            report.touch(key, hs_id, "flagged", why)
        report.counts["flagged"] += len(outcome.ok)
