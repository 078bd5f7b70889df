"""Time model: how long a full sync of N contacts takes at each tier's rate budget.

Model: a full contact sync costs ceil(N / 100) batch upserts in the 10-second bucket. (Contact→company
association batches spend that bucket too — no HubSpot document exempts them — and add up to another
ceil(N / 100) requests; the model and its check count the upserts only, so for contacts with companies the
projection is a lower bound, up to half the real time.)
At a budget of B requests per 10 s the physical limit is B / 10 × 100 records per second, so the projected
wall time is ceil(N / 100) / (B / 10) seconds — our compute is assumed to hide behind the budget.

Check: the same model predicts a measured run — ``--check`` synthetic contacts written by the real sync engine
(``hubspot.sync.sync_records``, 4 batches in flight) through the client ``HubSpotResource`` builds, into the
sandbox enforcing the Professional budget over a shortened window (same requests per second). The ratio
measured ÷ predicted is then applied to every tier's projection ("expected in practice").

    .venv/bin/python bench/time_model.py [--contacts 1000000] [--check 20000] [--window 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from hubspot.crm.properties import PropertyCreate

from fp_hubspot_assets.defs.resources import HubSpotResource
from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.hubspot.sync import SyncContext, sync_records
from fp_hubspot_assets.panel import parse_panel
from fp_hubspot_assets.state.store import StateStore
from hubspot_sandbox.testing import running_sandbox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rate_budget import ORIGINAL_OBSERVE, rolling_observe, window_margin  # noqa: E402 - shared experiment hooks

BATCH = 100
ID_PROPERTY = "fp_customer_id"


def projected_seconds(records: int, per_ten_seconds: int) -> float:
    return math.ceil(records / BATCH) / (per_ten_seconds / ep.TEN_SECONDS)


def synthetic_contacts(n: int) -> pl.DataFrame:
    keys = [f"W{i}" for i in range(n)]
    return pl.DataFrame({
        "source_key": keys, ID_PROPERTY: keys, "email": [f"user{i}@example.com" for i in range(n)],
        "firstname": [f"First{i}" for i in range(n)], "lastname": [f"Last{i}" for i in range(n)],
    })  # fmt: skip


def measure(root: Path, contacts: int, window: float, workers: int, observe: str, margin: float) -> float:
    """Wall time of one full contact sync of ``contacts`` records at the Professional budget."""
    from unittest import mock

    with running_sandbox(root / "hubspot.db", rate_limits=True, tier="professional", rate_window_seconds=window) as sb:
        sb.client().crm.properties.core_api.create("contacts", PropertyCreate(
            name=ID_PROPERTY, label="FP customer id", type="string", field_type="text",
            group_name="contactinformation", has_unique_value=True))  # fmt: skip
        time.sleep(window)  # that request leaves HubSpot's window before ours start
        settings = parse_panel({"tier": "professional", "integration": {"base_url": sb.base_url}})
        records = synthetic_contacts(contacts)
        with StateStore(f"sqlite:///{root / 'state.db'}") as state, window_margin(margin), \
                mock.patch.object(RateBudget, "observe", rolling_observe if observe == "rolling" else ORIGINAL_OBSERVE):  # fmt: skip
            client = HubSpotResource(rate_window_seconds=window).client(settings, state)
            ctx = SyncContext(client, state, "time-model", max_workers=workers, progress=lambda _m: None)
            started = time.perf_counter()
            report = sync_records(ctx, "contacts", ID_PROPERTY, records)
            seconds = time.perf_counter() - started
        if report.counts["created"] != contacts:
            raise SystemExit(f"expected {contacts} contacts created, got {dict(report.counts)}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000, help="projection size")
    parser.add_argument("--check", type=int, default=20_000, help="contacts in the measured run (0 = skip)")
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--observe", choices=("as-is", "rolling"), default="as-is", help="see bench/rate_budget.py")
    parser.add_argument("--margin", type=float, default=0.0, help="see bench/rate_budget.py")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    ratio = None
    if args.check:
        per_window = ep.TIER_BUDGETS["professional"][0]
        predicted = projected_seconds(args.check, per_window)
        burst = max(1, round(per_window * args.window / ep.TEN_SECONDS))  # the first window is free
        predicted -= burst / (per_window / ep.TEN_SECONDS)
        measured = []
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                load = os.getloadavg()[0]
                seconds = measure(Path(tmp), args.check, args.window, args.workers, args.observe, args.margin)
            measured.append(seconds)
            print(f"check run {run + 1}: {args.check:,} contacts in {seconds:.1f} s "
                  f"({args.check / seconds:,.0f} records/s) | load {load:.1f}", flush=True)  # fmt: skip
        median = statistics.median(measured)
        ratio = median / predicted if args.check > 4 * burst * BATCH else None  # else the free burst dominates
        print(f"check ({args.observe} observe, margin {args.margin:.0%}, window {args.window:g} s): predicted "
              f"{predicted:.1f} s, measured median {median:.1f} s -> measured/predicted "
              + (f"{ratio:.2f}" if ratio else "not checked (run too short next to the first window's burst)"))  # fmt: skip
    print(f"\nfull sync of {args.contacts:,} contacts = {math.ceil(args.contacts / BATCH):,} batch upserts:")
    print(f"  {'budget':<34}{'per 10 s':>9}{'records/s limit':>17}{'projected':>12}{'in practice':>13}")
    rows = [(f"{tier}", *ep.TIER_BUDGETS[tier]) for tier in ("free", "starter", "professional", "enterprise")]
    rows.append(("public app (OAuth), any tier", ep.OAUTH_APP_TEN_SECOND_LIMIT, 0))
    for name, per_window, _daily in rows:
        seconds = projected_seconds(args.contacts, per_window)
        practice = f"{seconds * ratio / 60:10.1f} min" if ratio else ""
        print(f"  {name:<34}{per_window:>9}{per_window / ep.TEN_SECONDS * BATCH:>17,.0f}"
              f"{seconds / 60:>8.1f} min{practice:>13}")  # fmt: skip


if __name__ == "__main__":
    main()
