"""Benchmark: one tick of the ``new_carts`` and ``cart_abandonment`` sensors on a store with 1,000,000 carts.

Target (bench/README.md): at most 1 second per tick. A tick only probes a range of the FP_CART.UpdatedAt index
(``SapReader.cart_changes`` / ``newest_cart_change``), so its cost follows the carts changed since the last
tick, not the size of the table. Run: ``.venv/bin/python bench/sensor_tick.py [carts] [db path]``.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from dagster import DagsterInstance, build_sensor_context

from fp_hubspot_assets.defs import automation
from fp_hubspot_assets.defs.resources import PanelResource, SapSourceResource
from fp_hubspot_assets.sap.tables import metadata
from fp_hubspot_assets.state import sync_cursor

FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def build(db: Path, carts: int, now: datetime, seed: int = 5) -> None:
    """``carts`` carts changed over the last 365 days (40% still open), in the real table layout."""
    metadata.create_all(sa.create_engine(f"sqlite:///{db}"))
    rng = np.random.default_rng(seed)
    ages = np.sort(rng.integers(0, 365 * 24 * 3600 * 1000, size=carts))[::-1]  # milliseconds ago
    start = time.perf_counter()
    with sqlite3.connect(db) as con:
        rows = (
            (i + 1, 1, i % 50_000 + 1, f"c{i}@example.com", "open" if i % 5 < 2 else "ordered",
             (now - timedelta(milliseconds=int(age))).strftime(FORMAT))
            for i, age in enumerate(ages)
        )  # fmt: skip
        con.executemany(
            'INSERT INTO "FP_CART" ("CartId","StoreId","CustomerId","Email","Status","CreatedAt","UpdatedAt") '
            "VALUES (?,?,?,?,?,?6,?6)",
            rows,
        )
    print(f"built {carts:,} carts in {time.perf_counter() - start:.1f}s")


def timed(label: str, fn) -> object:  # noqa: ANN001 - any zero-argument callable
    best = float("inf")
    result = None
    for _ in range(3):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    verdict = "OK" if best <= 1.0 else "OVER TARGET"
    print(f"{label:<58} {best * 1000:8.1f} ms  {verdict}")
    return result


def main() -> None:
    carts = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    now = datetime.now(UTC).replace(tzinfo=None)
    with tempfile.TemporaryDirectory() as tmp, DagsterInstance.ephemeral() as instance:
        db = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tmp) / "carts.db"
        if not db.exists():
            build(db, carts, now)
        url = f"sqlite:///{db}"
        panel_file = Path(tmp) / "panel.yaml"
        panel_file.write_text("abandoned_cart_hours: 24\n", encoding="utf-8")
        resources = {"sap": SapSourceResource(url=url), "panel": PanelResource(path=str(panel_file))}

        def tick(sensor, cursor: str | None):  # noqa: ANN001, ANN202
            return lambda: sensor(build_sensor_context(cursor=cursor, instance=instance, resources=resources))

        recent = sync_cursor.stamp(now - timedelta(minutes=1))
        threshold_before = sync_cursor.stamp(now - timedelta(hours=24, minutes=5))
        timed("new_carts, first tick (newest marker)", tick(automation.new_carts, None))
        timed("new_carts, cursor 1 minute back", tick(automation.new_carts, recent))
        timed("cart_abandonment, first tick", tick(automation.cart_abandonment, None))
        timed("cart_abandonment, cursor 5 minutes back", tick(automation.cart_abandonment, threshold_before))


if __name__ == "__main__":
    main()
