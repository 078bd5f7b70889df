"""Benchmark: HubSpot API efficiency of the main job (targets: bench/README.md).

Full sync of an N-customer demo database into the sandbox (rate limits off) through the Dagster job, then an
unchanged re-run, then a re-run after changing about 1% of the records. For each object type it reports the
write requests used against the minimum: one request per 100 written records plus one per 100 associations.

Targets: full and 1% re-sync ≤ 1.02 × the minimum; unchanged re-run = 0 write requests.

The sandbox runs with HubSpot's strict rules by default: a batch with one invalid record fails whole
(``--batch-errors whole``), products and line items refuse unique-value properties (``--no-unique-on
products,line_items``: the client creates them and keeps the ID map), and with ``--rate-limits`` the
Professional budget over HubSpot's 10-second window, which our client spends on association batches too.
``--commerce`` sets the panel's commerce.objects (deals, orders_and_carts or both).

    .venv/bin/python bench/api_efficiency.py [--customers 100000] [--rate-limits] [--commerce both] [--keep DIR]
"""

from __future__ import annotations

import argparse
import logging
import math
import resource
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterInstance

from fp_demo_store.generate import generate
from fp_demo_store.simulate import sap_marker
from fp_hubspot_assets.objects import COMMERCE_MODES, synced_types
from fp_hubspot_assets.runner import RunSummary, resource_config, run_sync
from hubspot_sandbox.testing import running_sandbox

TARGET_RATIO = 1.02


def minimum_requests(summary: RunSummary, object_type: str) -> int:
    meta = summary.metadata.get(f"hubspot_{object_type}", {})
    written = sum(int(meta.get(f"count_{a}", 0)) for a in ("created", "updated", "adopted", "failed"))
    # each associated type is its own endpoint: at least one batch per 100 associations of each
    by_type = getattr(meta.get("associations_created_by_type"), "data", None) or {}
    per_type = by_type.values() if by_type else [int(meta.get("associations_created", 0))]
    return math.ceil(written / 100) + sum(math.ceil(int(n) / 100) for n in per_type)


def report(name: str, summary: RunSummary, seconds: float, commerce: str = "deals") -> list[str]:
    lines = [f"\n{name}: {seconds:.1f} s, {summary.writes} write requests"]
    lines.append(f"  {'object type':<12}{'written':>10}{'assoc':>9}{'writes':>9}{'minimum':>9}{'ratio':>8}")
    for object_type in synced_types(commerce):
        meta = summary.metadata.get(f"hubspot_{object_type}", {})
        written = sum(int(meta.get(f"count_{a}", 0)) for a in ("created", "updated", "adopted", "failed"))
        writes = int(meta.get("api_write_requests", 0))
        minimum = minimum_requests(summary, object_type)
        ratio = writes / minimum if minimum else (0.0 if writes == 0 else math.inf)
        lines.append(
            f"  {object_type:<12}{written:>10,}{int(meta.get('associations_created', 0)):>9,}{writes:>9,}"
            f"{minimum:>9,}{ratio:>8.3f}{'' if ratio <= TARGET_RATIO else '  ABOVE TARGET'}"
        )
    return lines


def change_one_percent(sap_db: Path) -> None:
    """About 1% of web customers get a new phone, 1% of prices change, 1% of orders are cancelled — each change
    stamped on the object that owns it, as SAP and the web store do (the incremental read follows the stamps)."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    marker = sap_marker(now)
    day, ts = str(marker["UpdateDate"]), marker["UpdateTS"]
    with sqlite3.connect(sap_db) as conn:
        conn.execute(
            "UPDATE FP_CUSTOMER SET Phone = '+49 30 ' || CustomerId, UpdatedAt = ? WHERE CustomerId % 100 = 7",
            (str(now),),
        )
        conn.execute("UPDATE ITM1 SET Price = Price + 1 WHERE rowid % 100 = 3")
        conn.execute("UPDATE OITM SET UpdateDate = ?, UpdateTS = ? WHERE ItemCode IN "
                     "(SELECT ItemCode FROM ITM1 WHERE rowid % 100 = 3)", (day, ts))  # fmt: skip
        conn.execute("UPDATE ORDR SET CANCELED = 'Y', DocStatus = 'C', UpdateDate = ?, UpdateTS = ? "
                     "WHERE DocEntry % 100 = 5 AND CANCELED = 'N'", (day, ts))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--batch-errors", choices=("whole", "partial"), default="whole")
    parser.add_argument("--no-unique-on", default="products,line_items",
                        help="object types refusing unique-value properties ('' for none)")
    parser.add_argument("--rate-limits", action="store_true",
                        help="enforce the Professional budget over the real 10-s window (default: off)")
    parser.add_argument("--commerce", choices=COMMERCE_MODES, default="deals",
                        help="the panel's commerce.objects: deals (default), orders_and_carts or both")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    root = args.keep or Path(tempfile.mkdtemp(prefix="fp-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    sap_db = root / "sap.db"
    started = time.perf_counter()
    generate(f"sqlite:///{sap_db}", args.customers, seed=42)
    print(f"demo database: {args.customers:,} customers in {time.perf_counter() - started:.1f} s ({root})")
    no_unique_on = tuple(t for t in args.no_unique_on.split(",") if t)
    print(f"sandbox rules: batch errors {args.batch_errors}, no unique properties on {no_unique_on or 'none'}, "
          f"rate limits {'professional, 10-s window' if args.rate_limits else 'off'}, commerce.objects {args.commerce}")
    with running_sandbox(root / "hubspot.db", batch_errors=args.batch_errors, no_unique_on=",".join(no_unique_on) or None,
                         rate_limits=args.rate_limits, tier="professional") as sandbox, \
            DagsterInstance.ephemeral() as instance:  # fmt: skip
        (root / "panel.yaml").write_text(
            f"integration:\n  base_url: {sandbox.base_url}\ncommerce:\n  objects: {args.commerce}\n"
        )
        config = resource_config(
            panel=str(root / "panel.yaml"),
            sap_url=f"sqlite:///{sap_db}",
            state_url=f"sqlite:///{root / 'state.db'}",
            max_workers=args.workers,
            log_level="WARNING",
        )
        lines: list[str] = []
        for name, before in (("full sync", None), ("unchanged re-run", None), ("1% changed", change_one_percent)):
            if before:
                before(sap_db)
            t0 = time.perf_counter()
            summary = run_sync(instance, config)
            if not summary.success:
                raise SystemExit(f"{name} failed in {summary.failed_steps}")
            lines += report(name, summary, time.perf_counter() - t0, args.commerce)
        stats = sandbox.stats()
        records = stats["records"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n".join(lines))
    print(f"\nHubSpot records: {records}")
    print(f"429s: {stats['rate_limited'] or 'none'}")
    print(f"peak memory of the sync process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
