"""The read window of each source entity in one run, customers, addresses and items by key
(docs/automation.md → Incremental and full runs).

Orders, carts and stores take their window from their own marker (``state/read_markers.read_window``).
Customers and items are read after orders and carts, from the windows those used in this run (``reads``: the
read metadata each source asset of the run reported): the changed rows plus the rows their mapping needs
beside them (``sap/dependants.py``). Addresses are read after customers, for the same keys, found again from
the windows the customers read recorded (the keys can only grow meanwhile) and with the marker bound it took
(an address changing in between is read again next run). When orders or carts are read in full, so are
customers and items (every deal needs them), and addresses with customers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from fp_hubspot_assets.sap.dependants import WINDOWS, customer_keys, item_keys
from fp_hubspot_assets.sap.reader import KEYED_ENTITIES, Keys, SapReader, Since
from fp_hubspot_assets.state.queries import logged_duplicates_of
from fp_hubspot_assets.state.read_markers import (
    DEPENDANTS,
    INCREMENTAL,
    MODE,
    SINCE,
    ReadMode,
    ReadWindow,
    read_window,
    utcnow,
)
from fp_hubspot_assets.state.store import StateStore
from fp_hubspot_assets.state.sync_cursor import stamp

ADDRESSES_UPPER = "addresses_upper"  # in DEPENDANTS: the addresses' marker bound when customers were read
ADDRESSES_TAKEN = "addresses_taken_at"  # … and when it was taken
Reads = Mapping[str, Mapping[str, str]]  # entity -> the read metadata its source asset reported in this run


@dataclass(frozen=True)
class SourceWindow(ReadWindow):
    """A ``ReadWindow`` that may be keyed: ``keys`` are the rows an incremental read covers (the changed rows
    plus their dependants); ``dependants`` the windows a keyed customers read found them with (JSON)."""

    keys: Keys | None = None
    dependants: str = ""

    @property
    def what(self) -> Since:
        """What ``SapReader.read`` takes."""
        return None if self.since is None else (self.keys if self.keys is not None else self.since)

    def metadata(self) -> dict[str, str | int]:
        meta = super().metadata()
        if self.since is not None and self.keys is not None:
            meta |= {f"keys_{name}": n for name, n in self.keys.counts().items() if n}
        if self.since is not None and self.dependants:
            meta[DEPENDANTS] = self.dependants
        return meta


def _source(w: ReadWindow, keys: Keys | None = None, dependants: str = "") -> SourceWindow:
    return SourceWindow(w.entity, w.since, w.upper, w.why, w.panel, w.taken_at, keys, dependants)


def source_window(
    store: StateStore,
    reader: SapReader,
    entity: str,
    sync: ReadMode,
    tags: Mapping[str, str],
    panel: str,
    run_reads: Callable[[], Reads],
) -> SourceWindow:
    """What ``entity``'s source asset reads in this run (see the module doc); ``run_reads`` is asked only for a
    keyed entity."""
    if entity not in KEYED_ENTITIES:
        return _source(read_window(store, reader, entity, sync, tags, panel))
    reads = run_reads()
    if entity == "addresses":
        return _addresses_window(store, reader, reads, panel)
    own = read_window(store, reader, entity, sync, tags, panel)
    if own.since is None:
        return _source(own)
    deals_since = {}
    for source in ("orders", "carts"):
        read = reads.get(source, {})
        if read.get(MODE) != INCREMENTAL:
            how = "not read" if not read else "read in full"
            return _source(replace(own, since=None, why=f"{source} were {how} in this run: their deals need every {entity[:-1]}"))
        deals_since[source] = datetime.fromisoformat(read[SINCE])
    if entity == "items":
        return _source(replace(own, why=own.why + ", and the items of the lines read"), item_keys(reader, own.since, deals_since))
    addresses = read_window(store, reader, "addresses", sync, tags, panel)
    if addresses.since is None:
        return _source(replace(own, since=None, why=f"addresses are read in full ({addresses.why}), so are their owners"))
    since = {"customers": own.since, "addresses": addresses.since, **deals_since}
    keys = customer_keys(reader, since, lambda survivors: logged_duplicates_of(store, survivors))
    dependants = {name: stamp(moment) for name, moment in since.items()}
    dependants[ADDRESSES_UPPER] = stamp(addresses.upper) if addresses.upper else ""
    dependants[ADDRESSES_TAKEN] = stamp(addresses.taken_at) if addresses.taken_at else ""
    why = own.why + ", with the customers of the deals read and those sharing a partner or an e-mail"
    return _source(replace(own, why=why), keys, json.dumps(dependants))


def _addresses_window(store: StateStore, reader: SapReader, reads: Reads, panel: str) -> SourceWindow:
    """The addresses of the customers this run read by key, else every address."""
    customers = reads.get("customers", {})
    if customers.get(MODE) != INCREMENTAL or not customers.get(DEPENDANTS):
        how = "not read" if not customers else "read in full"
        looked = utcnow()
        return SourceWindow("addresses", None, reader.max_updated_at("addresses"), f"customers were {how} in this run", panel,
                            looked)  # fmt: skip
    recorded = json.loads(customers[DEPENDANTS])
    since = {name: datetime.fromisoformat(recorded[name]) for name in WINDOWS}
    keys = customer_keys(reader, since, lambda survivors: logged_duplicates_of(store, survivors))
    upper = datetime.fromisoformat(recorded[ADDRESSES_UPPER]) if recorded[ADDRESSES_UPPER] else None
    taken_at = datetime.fromisoformat(recorded[ADDRESSES_TAKEN]) if recorded.get(ADDRESSES_TAKEN) else None
    why = "the addresses of the customers read in this run"
    return SourceWindow("addresses", since["addresses"], upper, why, panel, taken_at, keys)
