"""Which source rows a run reads: everything, or the rows changed since the last successful run (the per-entity
read markers kept in the state store). docs/automation.md → Incremental and full runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fp_hubspot_assets.sap.reader import MARKER_SKEW
from fp_hubspot_assets.state.schema import MAX_FAILED_ATTEMPTS
from fp_hubspot_assets.state.store import StateStore
from fp_hubspot_assets.state.sync_cursor import MarkerSource, stamp

# Stores are few and have no change marker: always read in full. Customers, addresses and items are read by key
# (``sap/keyed_windows.py``), orders and carts by marker.
INCREMENTAL_ENTITIES = ("orders", "carts", "customers", "addresses", "items")
# Source entities each HubSpot object type is mapped from (only the incremental ones matter here).
SOURCES_OF: Mapping[str, tuple[str, ...]] = {
    **{t: ("orders", "carts") for t in ("deals", "line_items", "orders", "carts")},
    "contacts": ("customers", "addresses"),
    "companies": ("customers", "addresses"),
    "products": ("items",),
}
MARKER_PREFIX = "read_marker:"
TAKEN_PREFIX = "read_marker_taken:"  # when (our clock) the last successful run took that marker
PANEL_PREFIX = "read_panel:"  # the panel settings' digest the last successful run mapped with
# Set by the cart_abandonment sensor: carts last changed at or after this moment are read whatever the
# stored marker says (their deal stage moves with time, not with a change); "" = every cart.
CARTS_SINCE_TAG = "fp/carts_since"
MODE = "mode"
SINCE = "marker_since"
UPPER = "marker_upper"
TAKEN = "marker_taken_at"
PANEL = "panel_digest"
DEPENDANTS = "dependants_since"  # the windows a keyed customers read found its keys with (JSON)
FULL, INCREMENTAL = "full", "incremental"


class ReadMode(Protocol):
    """How a run reads (the ``sync_mode`` resource): ``incremental`` or ``full``, and the overlap."""

    @property
    def mode(self) -> str: ...
    @property
    def overlap_seconds(self) -> float: ...


@dataclass(frozen=True)
class ReadWindow:
    """What one source asset reads: everything (``since`` None) or rows changed at or after ``since``;
    ``upper`` is the newest marker seen before the read (what a successful run advances the cursor to)."""

    entity: str
    since: datetime | None
    upper: datetime | None
    why: str
    panel: str = ""
    taken_at: datetime | None = None  # our clock (naive UTC) just before ``upper`` was taken

    @property
    def mode(self) -> str:
        return FULL if self.since is None else INCREMENTAL

    def metadata(self) -> dict[str, str | int]:
        return {
            MODE: self.mode,
            SINCE: stamp(self.since) if self.since else "",
            UPPER: stamp(self.upper) if self.upper else "",
            TAKEN: stamp(self.taken_at) if self.taken_at else "",
            PANEL: self.panel,
            "read_reason": self.why,
        }


def marker(store: StateStore, entity: str, prefix: str = MARKER_PREFIX) -> datetime | None:
    value = store.get_cursor(prefix + entity)
    return datetime.fromisoformat(value) if value else None


utcnow: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None)  # noqa: E731 - our clock, naive UTC


def window_start(last: datetime, taken_at: datetime | None, overlap: timedelta) -> datetime:
    """Where an incremental read starts after a run that took marker ``last`` at ``taken_at``.

    The overlap re-reads rows saved before the marker but committed after that run looked (same second, a
    slow transaction). A row the run could not see was committed after ``taken_at``, so it carries a marker
    after ``taken_at`` - overlap - the clock tolerance (source and our clocks agree within ``MARKER_SKEW``, as
    the horizon assumes). When the marker is older than that (a burst of changes, then silence), the window
    starts there instead, up to the marker itself: a burst is re-read once, not by every run until something
    newer changes."""
    since = last - overlap
    if taken_at is None:
        return since
    return min(last, max(since, taken_at - overlap - MARKER_SKEW))


def read_window(
    store: StateStore, reader: MarkerSource, entity: str, sync: ReadMode, tags: Mapping[str, str], panel: str = ""
) -> ReadWindow:
    """``panel``: the digest of the panel settings this run maps with; a change re-maps every record."""
    taken_at = utcnow()
    upper = reader.max_updated_at(entity) if entity != "stores" else None

    def full(why: str) -> ReadWindow:
        return ReadWindow(entity, None, upper, why, panel, taken_at)

    if entity not in INCREMENTAL_ENTITIES:
        return full("always read in full (few rows, no change marker)")
    if sync.mode == FULL:
        return full("full run")
    last = marker(store, entity)
    if last is None:
        return full("no successful run recorded yet")
    if panel and store.get_cursor(PANEL_PREFIX + entity) != panel:
        return full("the panel settings changed since the last successful run (every record is mapped again)")
    if _retries_pending(store, entity):
        return full("records HubSpot rejected wait for a retry (a full read re-sends them)")
    overlap = timedelta(seconds=sync.overlap_seconds)
    since = window_start(last, marker(store, entity, TAKEN_PREFIX), overlap)
    if since == last - overlap:
        why = f"changed since the last successful run ({stamp(last)}) minus {sync.overlap_seconds:g} s overlap"
    else:  # the last run looked long after its marker: less (or none) of the overlap is needed
        why = f"changed since {stamp(since)} (the last successful run's marker {stamp(last)}, taken well after it)"
    if entity == "carts" and CARTS_SINCE_TAG in tags:
        floor = tags[CARTS_SINCE_TAG]
        if not floor:
            return full("abandonment check of every open cart")
        if datetime.fromisoformat(floor) < since:
            since, why = datetime.fromisoformat(floor), f"abandonment check: carts changed since {floor}"
    return ReadWindow(entity, since, upper, why, panel, taken_at)


def _retries_pending(store: StateStore, entity: str) -> bool:
    """Records of a type this entity feeds that HubSpot rejected fewer than MAX_FAILED_ATTEMPTS times: the
    sync re-sends them only when they are in the payload, and an incremental read would leave them out."""
    fed = [t for t, entities in SOURCES_OF.items() if entity in entities]
    return any(bool((store.failures(t)["attempts"] < MAX_FAILED_ATTEMPTS).any()) for t in fed)


