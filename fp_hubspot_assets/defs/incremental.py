"""Incremental reads: a run reads only the source rows whose change markers moved since the last successful
run (plus their dependants); a full read is the reconciler (docs/automation.md → Incremental and full runs).

- The ``sync_mode`` resource says how a run reads: ``incremental`` (default) or ``full``. It is shown (and can
  be set) in the Launchpad; the nightly reconcile sets ``full``.
- Per entity the state store keeps the marker the last successful run read up to (cursor ``read_marker:<entity>``).
  A source asset takes the newest marker *before* it reads (``upper``), reads rows changed at or after the
  stored marker minus ``overlap_seconds`` (same-second writes, clock skew, SAP's day + time-of-day pair), and
  reports mode, rows read and the marker range in its metadata. The run's last step (``integration_log``,
  reached only when every writer succeeded) advances the stored markers to those ``upper`` values: a failed or
  killed run never advances them, and a change landing during a run is newer than ``upper`` and read next time.
  The run that finishes last sets them (possibly backwards: see ``advance_markers``).
- Records HubSpot rejected are retried only when they are in the payload: while any wait for a retry, their
  entities are read in full. So are they after a panel change (every record is mapped again).
  Re-read rows cost nothing in HubSpot: the hash diff skips what is unchanged.
- Which entities are read incrementally: ``INCREMENTAL_ENTITIES``. Orders and carts (with their lines,
  deliveries and invoices) are the bulk of a store and what a cart changes; a cart and its order are always
  read together (one deal). Customers, addresses, items and stores are read in full in every mode: contact
  e-mail de-duplication, deal associations and line items' products are rules over all of them.
- A writer whose sources were read incrementally skips vanished-record detection and the deletion guard
  (every unread record would look deleted); only a full read removes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dagster import ConfigurableResource, DagsterEventType, DagsterInstance
from pydantic import Field

from fp_hubspot_assets.hubspot.sync import MAX_FAILED_ATTEMPTS
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.store import StateStore

INCREMENTAL_ENTITIES = ("orders", "carts")
# Source entities each HubSpot object type is mapped from (only the incremental ones matter here).
SOURCES_OF: Mapping[str, tuple[str, ...]] = {
    t: ("orders", "carts") for t in ("deals", "line_items", "orders", "carts")
}
MARKER_PREFIX = "read_marker:"
PANEL_PREFIX = "read_panel:"  # the panel settings' digest the last successful run mapped with
# Set by the cart_abandonment sensor: carts last changed at or after this moment are read whatever the
# stored marker says (their deal stage moves with time, not with a change); "" = every cart.
CARTS_SINCE_TAG = "fp/carts_since"
MODE = "mode"
SINCE = "marker_since"
UPPER = "marker_upper"
PANEL = "panel_digest"
FULL, INCREMENTAL = "full", "incremental"


class SyncModeResource(ConfigurableResource):
    """How source assets read: ``incremental`` (rows changed since the last successful run, plus dependants)
    or ``full`` (everything; also detects records deleted in the source)."""

    mode: Literal["incremental", "full"] = Field(
        default=INCREMENTAL, description="incremental: only rows changed since the last successful run; full: all rows"
    )
    overlap_seconds: float = Field(
        default=120.0, ge=0, description="re-read this much before the stored marker (same-second writes, clock skew)"
    )


@dataclass(frozen=True)
class ReadWindow:
    """What one source asset reads: everything (``since`` None) or rows changed at or after ``since``;
    ``upper`` is the newest marker seen before the read (what a successful run advances the cursor to)."""

    entity: str
    since: datetime | None
    upper: datetime | None
    why: str
    panel: str = ""

    @property
    def mode(self) -> str:
        return FULL if self.since is None else INCREMENTAL

    def metadata(self) -> dict[str, str]:
        return {
            MODE: self.mode,
            SINCE: _stamp(self.since) if self.since else "",
            UPPER: _stamp(self.upper) if self.upper else "",
            PANEL: self.panel,
            "read_reason": self.why,
        }


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def marker(store: StateStore, entity: str) -> datetime | None:
    value = store.get_cursor(MARKER_PREFIX + entity)
    return datetime.fromisoformat(value) if value else None


def read_window(
    store: StateStore, reader: SapReader, entity: str, sync: SyncModeResource, tags: Mapping[str, str], panel: str = ""
) -> ReadWindow:
    """``panel``: the digest of the panel settings this run maps with; a change re-maps every record."""
    upper = reader.max_updated_at(entity) if entity != "stores" else None

    def full(why: str) -> ReadWindow:
        return ReadWindow(entity, None, upper, why, panel)

    if entity not in INCREMENTAL_ENTITIES:
        return full("always read in full (rules over all records)")
    if sync.mode == FULL:
        return full("full run")
    last = marker(store, entity)
    if last is None:
        return full("no successful run recorded yet")
    if panel and store.get_cursor(PANEL_PREFIX + entity) != panel:
        return full("the panel settings changed since the last successful run (every record is mapped again)")
    if _retries_pending(store, entity):
        return full("records HubSpot rejected wait for a retry (a full read re-sends them)")
    since = last - timedelta(seconds=sync.overlap_seconds)
    why = f"changed since the last successful run ({_stamp(last)}) minus {sync.overlap_seconds:g} s overlap"
    if entity == "carts" and CARTS_SINCE_TAG in tags:
        floor = tags[CARTS_SINCE_TAG]
        if not floor:
            return full("abandonment check of every open cart")
        if datetime.fromisoformat(floor) < since:
            since, why = datetime.fromisoformat(floor), f"abandonment check: carts changed since {floor}"
    return ReadWindow(entity, since, upper, why, panel)


def _retries_pending(store: StateStore, entity: str) -> bool:
    """Records of a type this entity feeds that HubSpot rejected fewer than MAX_FAILED_ATTEMPTS times: the
    sync re-sends them only when they are in the payload, and an incremental read would leave them out."""
    fed = [t for t, entities in SOURCES_OF.items() if entity in entities]
    return any(bool((store.failures(t)["attempts"] < MAX_FAILED_ATTEMPTS).any()) for t in fed)


def _run_reads(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, str]]:
    """entity -> the read metadata its source asset reported in this run (asset materializations)."""
    from fp_hubspot_assets.defs.sap_assets import SOURCE_ASSETS

    reads = {}
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is None:
            continue
        spec = SOURCE_ASSETS.get(materialization.asset_key.to_user_string())
        if spec is None or MODE not in materialization.metadata:
            continue
        reads[spec[0]] = {k: str(v.value) for k, v in materialization.metadata.items() if k in (MODE, SINCE, UPPER, PANEL)}
    return reads


def read_partially(instance: DagsterInstance, run_id: str, object_type: str) -> bool:
    """Whether a source of ``object_type`` was read incrementally — or not at all — in this run: then what is
    missing from the payload was not read, not deleted. (A writer launched alone maps a payload another run
    stored, possibly an incremental one.)"""
    reads = _run_reads(instance, run_id)
    return any(reads.get(entity, {}).get(MODE) != FULL for entity in SOURCES_OF.get(object_type, ()))


def advance_markers(store: StateStore, instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """After a successful run: each entity's stored marker becomes the newest marker seen before this run
    read it — even when a run that read later finished first and stored a newer one. This run may then have
    written an older version of rows that changed after its read (and after that other run wrote them); going
    back makes the next run read those rows again, and the hash diff writes their current version."""
    advanced = {}
    for entity, read in _run_reads(instance, run_id).items():
        if read.get(UPPER):
            store.set_cursor(MARKER_PREFIX + entity, read[UPPER])
            advanced[entity] = read[UPPER]
        if read.get(PANEL):
            store.set_cursor(PANEL_PREFIX + entity, read[PANEL])
    return advanced
