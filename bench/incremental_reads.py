"""Benchmark: the local side of an incremental run on a big store — markers, dependants, rows read by marker
and by key, and the five mappings — without Dagster and without HubSpot.

A store of ``--customers`` (history dated up to two hours ago) stands for one a successful run has synced:
the stored markers are its newest ones. Then three scenarios, each stamped at its own time (so the 120-s
overlap reaches none of the previous one), each measured as the next incremental run would read it, with
the markers advanced after it as a successful run would:
- ``1 cart``: a new cart with two lines (what ``sync_carts`` reads);
- ``100 customers``: 100 web customers get a new default billing address;
- ``1% of orders``: 1% of the orders are shipped (a delivery each).
Per scenario: seconds for the marker queries, orders + carts (by marker), the dependants' keys, customers +
addresses + items (by key) and stores, the mappings (``tracing.compute_payloads``), and rows read against
rows changed. The HubSpot side (the hash diff and the writes) and Dagster's run start-up are not in these
figures (bench/change_latency.py measures a whole run against the sandbox at a size that can be synced).

    .venv/bin/python bench/incremental_reads.py [--customers 1000000] [--keep DIR] [--store FILE]

``--store FILE``: instead of generating, work on a copy of a store generated before (``fp_demo_store``'s
``generate(url, customers, seed=11, as_of=<its time> - 2 h)``): two versions of the code measured on the same
data, each on a fresh copy (the scenarios change the store).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

OVERLAP = timedelta(seconds=120)  # SyncModeResource's default
MARKED = ("orders", "carts", "customers", "addresses", "items")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def incremental_read(url: str, markers: dict[str, datetime]) -> dict[str, Any]:
    """Read and map as an incremental run does (sap/keyed_windows.py), timing each step."""
    from fp_hubspot_assets.panel import parse_panel
    from fp_hubspot_assets.sap.dependants import customer_keys, item_keys
    from fp_hubspot_assets.sap.reader import SapReader
    from fp_hubspot_assets.tracing import compute_payloads

    times: dict[str, float] = {}

    def timed(step: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        times[step] = times.get(step, 0.0) + time.perf_counter() - started
        return result

    since = {entity: marker - OVERLAP for entity, marker in markers.items()}
    with SapReader(url) as reader:
        upper = timed("markers", lambda: {e: reader.max_updated_at(e) for e in MARKED})
        frames = {
            "orders": timed("orders + carts", lambda: reader.read("orders", since["orders"]).frame),
            "carts": timed("orders + carts", lambda: reader.read("carts", since["carts"]).frame),
        }
        windows = {"customers": since["customers"], "addresses": since["addresses"], "orders": since["orders"],
                   "carts": since["carts"]}  # fmt: skip
        keys = timed("dependants", lambda: customer_keys(reader, windows, lambda survivors: set()))
        items = timed("dependants", lambda: item_keys(reader, since["items"], since))
        frames["customers"] = timed("customers + addresses + items", lambda: reader.read("customers", keys).frame)
        address_keys = timed("dependants", lambda: customer_keys(reader, windows, lambda survivors: set()))
        frames["addresses"] = timed("customers + addresses + items", lambda: reader.read("addresses", address_keys).frame)
        frames["items"] = timed("customers + addresses + items", lambda: reader.read("items", items).frame)
        frames["stores"] = timed("customers + addresses + items", lambda: reader.read("stores").frame)
    mapped = timed("map", lambda: compute_payloads(frames, parse_panel({})))
    return {
        "times": times,
        "seconds": sum(times.values()),
        "rows": {entity: frame.height for entity, frame in frames.items() if entity != "stores"},
        "keys": keys.counts() | {"items": len(items.items)},
        "records": {t: m.records.height for t, m in mapped.items()},
        "upper": upper,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--store", type=Path, help="copy this generated SAP database instead of generating one")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="fp-incremental-"))
    root.mkdir(parents=True, exist_ok=True)

    from fp_demo_store import simulate
    from fp_demo_store.generate import generate
    from fp_hubspot_assets.sap.reader import SapReader

    sap_db = root / "sap.db"
    url = f"sqlite:///{sap_db}"
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    started = time.perf_counter()
    if args.store:
        shutil.copyfile(args.store, sap_db)
        print(f"store copied from {args.store} in {time.perf_counter() - started:.0f} s", flush=True)
    else:
        generate(url, args.customers, seed=11, as_of=now - timedelta(hours=2))
        print(f"store of {args.customers:,} customers generated in {time.perf_counter() - started:.0f} s; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    with SapReader(url) as reader:
        markers = {e: reader.max_updated_at(e) for e in MARKED}
    with sqlite3.connect(sap_db) as con:
        customers = [c for (c,) in con.execute(
            'SELECT c."CustomerId" FROM "FP_CUSTOMER" c WHERE c."IsGuest" = 0 AND EXISTS (SELECT 1 FROM "FP_ADDRESS" a '
            'WHERE a."CustomerId" = c."CustomerId" AND a."AddressType" = \'billing\' AND a."IsDefault" = 1) '
            'ORDER BY 1 LIMIT 101')]  # fmt: skip
        item = con.execute('SELECT "ItemCode" FROM "FP_CART_LINE" WHERE "CombinationId" IS NULL LIMIT 1').fetchone()[0]
        all_orders = con.execute('SELECT COUNT(*) FROM "ORDR"').fetchone()[0]
        unshipped = [d for (d,) in con.execute(
            'SELECT "DocEntry" FROM "ORDR" WHERE "DocStatus" = \'O\' AND "CANCELED" = \'N\' AND "DocEntry" NOT IN '
            '(SELECT "BaseEntry" FROM "DLN1" WHERE "BaseEntry" IS NOT NULL) ORDER BY 1')]  # fmt: skip

    def one_cart(stamp: datetime) -> int:
        simulate.add_cart(url, customers[0], [(item, 1.0), (item, 2.0)], now=stamp)
        return 1

    def hundred_customers(stamp: datetime) -> int:
        for n, customer in enumerate(customers[1:101]):
            simulate.set_customer_address(url, f"W{customer}", street=f"Changed street {n}", city="Lyon",
                                          zip_code="69001", country="FR", now=stamp)  # fmt: skip
        return 100

    def one_percent_of_orders(stamp: datetime) -> int:
        import sqlalchemy as sa

        share = min(max(1, all_orders // 100), len(unshipped))
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # one transaction: simulate.ship_order opens one per order
            for doc_entry in unshipped[:share]:
                simulate._ship_order(conn, doc_entry, now=stamp)  # noqa: SLF001
        engine.dispose()
        return share

    rows = []
    scenarios = [("1 cart", one_cart), ("100 customers (addresses)", hundred_customers),
                 ("1% of orders shipped", one_percent_of_orders)]  # fmt: skip
    for n, (label, change) in enumerate(scenarios):
        stamp = now - timedelta(minutes=60 - 20 * n)
        t = time.perf_counter()
        changed = change(stamp)
        setup = time.perf_counter() - t
        load = os.getloadavg()[0]
        result = incremental_read(url, markers)
        markers = result["upper"]  # the run succeeded: its markers are stored
        rows.append((label, changed, result, load))
        print(f"{label}: {changed} changed (set-up {setup:.0f} s); read + map {result['seconds']:.2f} s "
              f"{ {k: round(v, 2) for k, v in result['times'].items()} }; rows {result['rows']}; "
              f"keys {result['keys']}; load {load:.1f}; peak so far {_peak_mib():,.0f} MiB", flush=True)

    print()
    print("| scenario | rows changed | read + map s | markers / orders+carts / dependants / customers+addresses+items / map s "
          "| rows read: customers / addresses / items / orders / carts | load |")
    print("|---|---|---|---|---|---|")
    for label, changed, r, load in rows:
        t = r["times"]
        steps = " / ".join(f"{t.get(s, 0):.2f}" for s in ("markers", "orders + carts", "dependants",
                                                          "customers + addresses + items", "map"))  # fmt: skip
        read = " / ".join(f"{r['rows'][e]:,}" for e in ("customers", "addresses", "items", "orders", "carts"))
        print(f"| {label} | {changed:,} | {r['seconds']:.2f} | {steps} | {read} | {load:.1f} |")
    print(f"peak RSS {_peak_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
