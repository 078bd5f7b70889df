"""Incremental reads: a run reads only the source rows whose change markers moved since the last successful
run (plus their dependants); a full read is the reconciler (docs/automation.md → Incremental and full runs).

- The ``sync_mode`` resource says how a run reads: ``incremental`` (default) or ``full``. It is shown (and can
  be set) in the Launchpad; the nightly reconcile sets ``full``.
- Per entity the state store keeps the marker the last successful run read up to (cursor ``read_marker:<entity>``).
  A source asset takes the newest marker *before* it reads (``upper``), reads rows changed at or after the
  stored marker minus ``overlap_seconds`` (same-second writes, clock skew, SAP's day + time-of-day pair; less
  of it when the last run took its marker long after the marker's change: ``read_markers.window_start``), and
  reports mode, rows read and the marker range in its metadata. The run's last step (``integration_log``,
  reached only when every writer succeeded) advances the stored markers to those ``upper`` values: a failed or
  killed run never advances them, and a change landing during a run is newer than ``upper`` and read next time.
  The run that finishes last sets them (possibly backwards: see ``advance_markers``).
- Records HubSpot rejected are retried only when they are in the payload: while any wait for a retry, their
  entities are read in full. So are they after a panel change (every record is mapped again).
  Re-read rows cost nothing in HubSpot: the hash diff skips what is unchanged.
- Which entities are read incrementally: ``INCREMENTAL_ENTITIES`` (stores are few and have no marker). Orders
  and carts (with their lines, deliveries and invoices) by marker; a cart and its order are always read
  together (one deal). Customers, addresses and items by key (``sap/keyed_windows.py``): the changed rows plus
  the rows their mapping needs beside them (``sap/dependants.py``: the customers and items of the deals read,
  the partner of a web customer, everyone sharing an e-mail…). They are read after orders and carts, from
  the windows those used in this run (``run_reads``); addresses after customers, for the same keys and with
  the marker bound the customers read took (an address changing in between is read again next run). When
  orders or carts are read in full, so are customers and items (every deal needs them), and addresses with
  customers.
- A writer whose sources were read incrementally skips vanished-record detection and the deletion guard
  (every unread record would look deleted); only a full read removes anything.
"""

from __future__ import annotations

from typing import Literal

from dagster import ConfigurableResource, DagsterEventType, DagsterInstance
from pydantic import Field

from fp_hubspot_assets.state.read_markers import (
    DEPENDANTS,
    FULL,
    MARKER_PREFIX,
    MODE,
    PANEL,
    PANEL_PREFIX,
    SINCE,
    SOURCES_OF,
    TAKEN,
    TAKEN_PREFIX,
    UPPER,
)
from fp_hubspot_assets.state.store import StateStore


class SyncModeResource(ConfigurableResource):
    """How source assets read: ``incremental`` (rows changed since the last successful run, plus dependants)
    or ``full`` (everything; also detects records deleted in the source)."""

    mode: Literal["incremental", "full"] = Field(
        default="incremental", description="incremental: only rows changed since the last successful run; full: all rows"
    )
    overlap_seconds: float = Field(
        default=120.0, ge=0, description="re-read this much before the stored marker (same-second writes, clock skew)"
    )


def run_reads(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, str]]:
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
        wanted = (MODE, SINCE, UPPER, TAKEN, PANEL, DEPENDANTS)
        reads[spec[0]] = {k: str(v.value) for k, v in materialization.metadata.items() if k in wanted}
    return reads


def read_partially(instance: DagsterInstance, run_id: str, object_type: str) -> bool:
    """Whether a source of ``object_type`` was read incrementally — or not at all — in this run: then what is
    missing from the payload was not read, not deleted. (A writer launched alone maps a payload another run
    stored, possibly an incremental one.)"""
    reads = run_reads(instance, run_id)
    return any(reads.get(entity, {}).get(MODE) != FULL for entity in SOURCES_OF.get(object_type, ()))


def advance_markers(store: StateStore, instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """After a successful run: each entity's stored marker becomes the newest marker seen before this run
    read it — even when a run that read later finished first and stored a newer one. This run may then have
    written an older version of rows that changed after its read (and after that other run wrote them); going
    back makes the next run read those rows again, and the hash diff writes their current version."""
    advanced = {}
    for entity, read in run_reads(instance, run_id).items():
        if read.get(UPPER):
            store.set_cursor(MARKER_PREFIX + entity, read[UPPER])
            store.set_cursor(TAKEN_PREFIX + entity, read.get(TAKEN, ""))  # with its marker, or none (older run)
            advanced[entity] = read[UPPER]
        if read.get(PANEL):
            store.set_cursor(PANEL_PREFIX + entity, read[PANEL])
    return advanced
