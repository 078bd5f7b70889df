"""The incremental sync's cursor: what the source looked like when the last successful sync started.

A sync run is requested with the ``SourceState`` it starts from (the newest change marker per source entity
and the panel's digest, as run tags); the run's last step stores it as the cursor, so the next tick compares
the source with what that run saw (docs/automation.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel

from fp_hubspot_assets.objects import OBJECT_TYPES
from fp_hubspot_assets.state.queries import cursor_updated_at
from fp_hubspot_assets.state.schema import MAX_FAILED_ATTEMPTS
from fp_hubspot_assets.state.store import StateStore

SYNC_CURSOR = "incremental_hubspot_sync"  # the state-store cursor: SourceState of the last successful sync
SYNC_CLOCK_MARGIN = timedelta(minutes=15)  # longest expected gap between a run's mapping and its last step
SOURCE_STATE_TAG = "fp/source_state"  # the SourceState (JSON) a run started from
SOURCE_DIGEST_TAG = "fp/source_digest"  # its digest (plus pending retries): the run key, and a tag to find runs by
# Entities with change markers (``SapReader.max_updated_at``). Web stores have none: a store change is
# picked up by the next run for another reason, at the latest by the nightly reconcile.
MARKED_ENTITIES = ("customers", "addresses", "items", "orders", "carts")


class MarkerSource(Protocol):
    """What the cursor reads from the source: the newest change marker of an entity (an indexed MAX query)."""

    def max_updated_at(self, entity: str) -> datetime | None: ...


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def parse_stamp(cursor: str | None) -> datetime | None:
    return datetime.fromisoformat(cursor) if cursor else None


@dataclass(frozen=True)
class SourceState:
    """What a sync reads from: the newest change marker per source entity and the panel settings' digest."""

    markers: Mapping[str, str | None]  # entity -> newest marker (ISO, microseconds) or None (empty table)
    panel: str

    def to_json(self) -> str:
        return json.dumps({"markers": dict(sorted(self.markers.items())), "panel": self.panel}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> SourceState | None:
        if not text:
            return None
        raw = json.loads(text)
        return cls(dict(raw.get("markers", {})), str(raw.get("panel", "")))

    def changes_since(self, last: SourceState | None) -> list[str]:
        """Why a sync is due: the entities with a marker newer than ``last``'s, and a changed panel."""
        if last is None:
            return ["no successful sync recorded yet"]
        changed = [e for e, m in sorted(self.markers.items()) if m is not None and (last.markers.get(e) or "") < m]
        reasons = [f"{e} changed" for e in changed]
        if self.panel != last.panel:
            reasons.append("panel settings changed")
        return reasons

    def merged_after(self, earlier: SourceState | None) -> SourceState:
        """The cursor after a successful run that started from ``self``: markers never move backwards (a run
        that started earlier may finish after a later one)."""
        if earlier is None:
            return self
        markers = dict(earlier.markers)
        for entity, marker in self.markers.items():
            markers[entity] = max((m for m in (marker, markers.get(entity)) if m), default=None)
        return SourceState(markers, self.panel)


def panel_digest(settings: BaseModel, source_zone: str = "") -> str:
    """The digest of what the mapping depends on besides the rows: the panel settings and, when it is not UTC,
    the source's time zone (a new zone moves every stamp: the next run reads in full)."""
    text = settings.model_dump_json() + (f"|{source_zone}" if source_zone else "")
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def read_source_state(reader: MarkerSource, settings: BaseModel) -> SourceState:
    """The current markers: one or a few indexed MAX queries per entity, never a read of the rows."""
    markers = {}
    for entity in MARKED_ENTITIES:
        newest = reader.max_updated_at(entity)
        markers[entity] = stamp(newest) if newest is not None else None
    return SourceState(markers, panel_digest(settings))


def last_synced(store: StateStore) -> SourceState | None:
    return SourceState.from_json(store.get_cursor(SYNC_CURSOR))


def pending_retries(store: StateStore) -> int:
    """Rejected records that the next run will send again (fewer than MAX_FAILED_ATTEMPTS rejections): the
    sum of their attempts, so it changes after every run that retried them."""
    total = 0
    for object_type in OBJECT_TYPES:
        attempts = store.failures(object_type)["attempts"]
        total += int(attempts.filter(attempts < MAX_FAILED_ATTEMPTS).sum() or 0)
    return total


def source_tags(current: SourceState, extra: str = "") -> dict[str, str]:
    text = current.to_json()
    digest = hashlib.blake2b((text + extra).encode(), digest_size=8).hexdigest()
    return {SOURCE_STATE_TAG: text, SOURCE_DIGEST_TAG: digest}


def record_sync_cursor(store: StateStore, tags: Mapping[str, str]) -> SourceState | None:
    """Called by the last step of a sync run (``integration_log``, which runs only when every writer
    succeeded): the SourceState the run was requested with becomes the cursor. Runs without the tag (the
    CLI, a run launched by hand) leave the cursor alone; the next tick then finds the changes and runs once
    more, writing nothing that is already in HubSpot."""
    started_from = SourceState.from_json(tags.get(SOURCE_STATE_TAG))
    if started_from is None:
        return None
    cursor = started_from.merged_after(last_synced(store))
    store.set_cursor(SYNC_CURSOR, cursor.to_json())
    return cursor


def synced_carts(store: StateStore) -> datetime | None:
    """The newest cart change the last successful sync saw: a first sensor tick after a sync (a CLI run,
    `make demo`) starts there instead of requesting a run that finds nothing to write."""
    last = last_synced(store)
    return parse_stamp(last.markers.get("carts")) if last else None


def abandonment_threshold(now: datetime, hours: float) -> datetime:
    """Open carts last changed at or before this moment are abandoned."""
    return now - timedelta(hours=hours)


def synced_abandonment(store: StateStore, hours: float) -> datetime | None:
    """The threshold the last successful sync already applied (its deals were mapped with the clock of that
    run), less SYNC_CLOCK_MARGIN for the time between mapping and recording it; None: no sync yet."""
    synced_at = cursor_updated_at(store, SYNC_CURSOR)
    if synced_at is None:
        return None
    return abandonment_threshold(synced_at.astimezone(UTC).replace(tzinfo=None) - SYNC_CLOCK_MARGIN, hours)
