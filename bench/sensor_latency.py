"""Benchmark: ``new_carts`` sensor latency.

1. Tick time on a store with ``--carts`` (default 1,000,000) carts: the table is built by bench/sensor_tick.py's
   ``build`` (reused), then the sensor is evaluated ``--ticks`` times per case; median reported.
   Target: ≤ 1 s per tick.
2. Time from a new cart in SAP to its deal in HubSpot (the sandbox, Professional rate budget enforced over the
   real 10-second window), with the sensor's default interval (``NEW_CARTS_INTERVAL_SECONDS`` = 60 s). The
   daemon is played in-process: ticks fire every interval on a fixed clock, the cart is added at a random
   moment between two ticks (as a shopper would), and the run a tick requests is executed in-process at once
   (``sync_carts`` job) — the time a real daemon adds to launch a run process is not in these figures. For each
   sample: latency = wait for the next tick + tick + run, each measured.

    .venv/bin/python bench/sensor_latency.py [--carts 1000000] [--samples 3] [--interval 60]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, build_sensor_context

from fp_demo_store.generate import generate
from fp_demo_store.simulate import add_cart
from fp_hubspot_assets.definitions import defs
from fp_hubspot_assets.defs import automation
from fp_hubspot_assets.defs.jobs import CART_JOB
from fp_hubspot_assets.defs.resources import PanelResource, SapSourceResource, StateStoreResource
from fp_hubspot_assets.mapping import ID_PROPERTY
from fp_hubspot_assets.runner import resource_config, run_sync
from fp_hubspot_assets.state import sync_cursor
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sensor_tick import build  # noqa: E402 - the 1M-cart table of bench/sensor_tick.py, reused

TICK_TARGET_S = 1.0


# ---------------------------------------------------------------- 1. tick time
def median_seconds(fn: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def tick_times(root: Path, carts: int, ticks: int) -> dict[str, float]:
    """Median tick time of ``new_carts`` on a first tick (no cursor) and with a cursor one minute back."""
    now = datetime.now(UTC).replace(tzinfo=None)
    db = root / "carts.db"
    build(db, carts, now)
    panel = root / "tick-panel.yaml"
    panel.write_text("abandoned_cart_hours: 24\n", encoding="utf-8")
    resources = {"sap": SapSourceResource(url=f"sqlite:///{db}"), "panel": PanelResource(path=str(panel)),
                 "state": StateStoreResource(url=f"sqlite:///{root / 'tick-state.db'}")}
    figures = {}
    with DagsterInstance.ephemeral() as instance:
        for label, cursor in (("first tick", None), ("cursor 1 minute back", sync_cursor.stamp(now - timedelta(minutes=1)))):
            with build_sensor_context(cursor=cursor, instance=instance, resources=resources) as context:
                figures[label] = median_seconds(lambda c=context: automation.new_carts(c), ticks)
    return figures


# ---------------------------------------------------------------- 2. new cart -> deal in HubSpot
@dataclass
class Sample:
    wait: float  # cart added -> the next tick starts
    tick: float
    run: float  # the requested sync_carts run, start to finish
    latency: float  # cart added -> its deal is in HubSpot

    def line(self) -> str:
        return (f"latency {self.latency:6.1f} s = wait {self.wait:5.1f} + tick {self.tick * 1000:6.1f} ms "
                f"+ run {self.run:5.1f} s")  # fmt: skip


class CartStore:
    """A small demo store whose carts are fresh (generated as of now) and already synced once."""

    def __init__(self, root: Path, sandbox: SandboxHandle, instance: DagsterInstance, customers: int) -> None:
        self.root, self.sandbox, self.instance = root, sandbox, instance
        self.sap_url = f"sqlite:///{root / 'sap.db'}"
        generate(self.sap_url, customers, seed=3, as_of=datetime.now(UTC).replace(tzinfo=None))
        panel = root / "panel.yaml"
        panel.write_text(f"integration:\n  base_url: {sandbox.base_url}\n", encoding="utf-8")
        self.config = resource_config(panel=str(panel), sap_url=self.sap_url,
                                      state_url=f"sqlite:///{root / 'state.db'}", log_level="WARNING")  # fmt: skip
        self.resources = {"sap": SapSourceResource(url=self.sap_url), "panel": PanelResource(path=str(panel)),
                          "state": StateStoreResource(url=f"sqlite:///{root / 'state.db'}")}
        summary = run_sync(instance, self.config)
        if not summary.success:
            raise SystemExit(f"initial sync failed in {summary.failed_steps}")
        with sqlite3.connect(root / "sap.db") as con:  # a shopper whose earlier cart is already a deal
            self.customer, self.item = con.execute(
                'SELECT c."CustomerId", l."ItemCode" FROM "FP_CART" c JOIN "FP_CART_LINE" l USING ("CartId") '
                'WHERE l."CombinationId" IS NULL ORDER BY c."CartId" LIMIT 1'
            ).fetchone()

    def tick(self, cursor: str | None) -> tuple[Any, float]:
        with build_sensor_context(cursor=cursor, instance=self.instance, resources=self.resources) as context:
            started = time.perf_counter()
            result = automation.new_carts(context)
            return result, time.perf_counter() - started

    def run(self, tags: dict[str, str]) -> float:
        started = time.perf_counter()
        job = defs.resolve_job_def(CART_JOB)
        result = job.execute_in_process(instance=self.instance, run_config=self.config, tags=tags, raise_on_error=False)
        if not result.success:
            raise SystemExit("the sync_carts run failed")
        return time.perf_counter() - started

    def deal_exists(self, cart_id: int) -> bool:
        prop = ID_PROPERTY["deals"]
        return any(o["properties"].get(prop) == f"C{cart_id}" for o in self.sandbox.objects("deals"))


def cart_to_deal(root: Path, customers: int, samples: int, interval: float, seed: int = 9) -> list[Sample]:
    rng = random.Random(seed)
    results: list[Sample] = []
    with running_sandbox(root / "hubspot.db", rate_limits=True, tier="professional") as sandbox, \
            DagsterInstance.ephemeral() as instance:  # fmt: skip
        store = CartStore(root, sandbox, instance, customers)
        first, _ = store.tick(None)  # the daemon's first tick: its run brings every cart in (already synced)
        cursor = first.cursor
        for request in first.run_requests or []:
            store.run(request.tags)
        next_tick = time.monotonic() + interval
        while len(results) < samples:
            time.sleep(max(0.0, next_tick - interval + rng.uniform(0, interval) - time.monotonic()))
            added = time.monotonic()
            cart_id = add_cart(store.sap_url, store.customer, [(store.item, 1)])
            time.sleep(max(0.0, next_tick - time.monotonic()))
            ticked = time.monotonic()
            result, tick_s = store.tick(cursor)
            cursor = result.cursor
            next_tick += interval
            if not result.run_requests:
                raise SystemExit(f"the tick did not see cart {cart_id}: {result.skip_reason}")
            run_s = sum(store.run(r.tags) for r in result.run_requests)
            if not store.deal_exists(cart_id):
                raise SystemExit(f"cart {cart_id} has no deal in HubSpot after the run")
            sample = Sample(ticked - added, tick_s, run_s, time.monotonic() - added)
            results.append(sample)
            print(f"  cart {cart_id}: {sample.line()}", flush=True)
            while next_tick < time.monotonic():  # a run longer than the interval: the daemon skips to the next tick
                next_tick += interval
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--carts", type=int, default=1_000_000, help="carts in the tick-time store")
    parser.add_argument("--ticks", type=int, default=5, help="evaluations per tick case (median)")
    parser.add_argument("--customers", type=int, default=300, help="demo size of the cart-to-deal store")
    parser.add_argument("--samples", type=int, default=3, help="carts whose way to HubSpot is timed")
    parser.add_argument("--interval", type=float, default=automation.NEW_CARTS_INTERVAL_SECONDS,
                        help="sensor interval (default: the sensor's own)")  # fmt: skip
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        load = os.getloadavg()[0]
        ticks = tick_times(root, args.carts, args.ticks)
        for label, seconds in ticks.items():
            verdict = "OK" if seconds <= TICK_TARGET_S else "OVER TARGET"
            print(f"new_carts tick, {args.carts:,} carts, {label}: median {seconds * 1000:.1f} ms of {args.ticks} "
                  f"(target ≤ {TICK_TARGET_S:.0f} s) {verdict} | load {load:.1f}")  # fmt: skip
        (root / "latency").mkdir()
        print(f"cart -> deal, sensor interval {args.interval:.0f} s, {args.samples} carts:")
        samples = cart_to_deal(root / "latency", args.customers, args.samples, args.interval)
    med = {k: statistics.median(getattr(s, k) for s in samples) for k in ("latency", "wait", "tick", "run")}
    print(f"median latency {med['latency']:.1f} s = wait {med['wait']:.1f} s + tick {med['tick'] * 1000:.1f} ms + "
          f"run {med['run']:.1f} s; expected: interval/2 = {args.interval / 2:.0f} s wait on average "
          f"(worst {args.interval:.0f} s) + run | load {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
