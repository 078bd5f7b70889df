"""Benchmark: HubSpot API efficiency of the main job (issue 4; extended by issue 9).

Full sync of an N-customer demo database into the sandbox (rate limits off) through the Dagster job, then an
unchanged re-run, then a re-run after changing about 1% of the records. For each object type it reports the
write requests used against the minimum: one request per 100 written records plus one per 100 associations.

Targets: full and 1% re-sync ≤ 1.02 × the minimum; unchanged re-run = 0 write requests.

    .venv/bin/python bench/api_efficiency.py [--customers 100000] [--keep DIR] [--commerce both]
"""

from __future__ import annotations

import argparse
import logging
import math
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance

from fp_hubspot_assets.objects import COMMERCE_MODES, synced_types
from fp_hubspot_assets.runner import RunSummary, resource_config, run_sync
from fp_hubspot_assets.sandbox.testing import running_sandbox
from fp_hubspot_assets.sap.demo import generate

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
    """About 1% of web customers get a new phone, 1% of prices change, 1% of orders are cancelled."""
    with sqlite3.connect(sap_db) as conn:
        conn.execute(
            "UPDATE FP_CUSTOMER SET Phone = '+49 30 ' || CustomerId, UpdatedAt = CURRENT_TIMESTAMP WHERE CustomerId % 100 = 7"
        )
        conn.execute("UPDATE ITM1 SET Price = Price + 1 WHERE rowid % 100 = 3")
        conn.execute("UPDATE ORDR SET CANCELED = 'Y', DocStatus = 'C' WHERE DocEntry % 100 = 5 AND CANCELED = 'N'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
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
    with running_sandbox(root / "hubspot.db") as sandbox, DagsterInstance.ephemeral() as instance:
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
        records = sandbox.stats()["records"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n".join(lines))
    print(f"\nHubSpot records: {records}")
    print(f"peak memory of the sync process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
