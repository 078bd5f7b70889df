"""Benchmark: change latency at scale — what an incremental run costs for a small change on a big, synced store.

A demo store of ``--customers`` (its history dated up to an hour ago) is synced once in full against the
sandbox (Professional budget, real 10-second window). Then, one scenario after the other, each stamped now:
- ``1 cart``: a new cart with two lines → the ``sync_carts`` job;
- ``100 customers``: 100 web customers get a new address → ``sync_hubspot`` (incremental);
- ``1% of orders``: 1% of the open orders are shipped → ``sync_hubspot`` (incremental);
and, for comparison, one full ``sync_hubspot`` run that changes nothing.
Each run executes in this process (``runner.run_sync``): its time is the run's own, read → HubSpot written,
without Dagster's run start-up (a new process, loading the code: measured by bench/cart_latency_daemon.py).
Reported per run: wall time, rows read per source asset (mode), rows changed, HubSpot write requests.

    .venv/bin/python bench/change_latency.py [--customers 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from whole_job_memory import RssSampler, step_windows  # noqa: E402 - the per-step RSS of bench/whole_job_memory.py

SOURCES = ("sap_customers", "sap_addresses", "sap_items", "sap_orders", "store_carts", "web_stores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--keep", help="work directory to keep (default: a temporary one); a directory whose "
                        "store was synced by an earlier invocation is reused as it is (no new initial sync)")
    parser.add_argument("--store", type=Path, help="copy this generated SAP store instead of generating one")
    parser.add_argument("--prime-unthrottled", action="store_true",
                        help="run the initial full sync with the sandbox's rate budget off (a 1M store needs hours "
                        "at the Professional budget); every measured run still has the budget enforced")
    parser.add_argument("--step-memory", action="store_true",
                        help="after each run, print every step's seconds and peak RSS (sampled every 0.2 s)")
    parser.add_argument("--profile", type=Path, help="record each run with py-spy (50 Hz, raw stacks, waiting threads too) into "
                        "DIR/<run>.raw (py-spy is a benchmark-only dependency: pip install py-spy)")
    parser.add_argument("--no-full-run", action="store_true", help="leave out the last scenario (a full run)")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="change-latency-"))
    root.mkdir(parents=True, exist_ok=True)

    from dagster import DagsterInstance

    from fp_demo_store import simulate
    from fp_hubspot_assets.defs.incremental import SyncModeResource
    from fp_hubspot_assets.defs.jobs import CART_JOB, SYNC_JOB
    from fp_hubspot_assets.runner import resource_config, run_sync
    from fp_hubspot_assets.sap.reader import SapReader
    from hubspot_sandbox.testing import free_port, running_sandbox

    sap_db = root / "sap.db"
    sap_url = f"sqlite:///{sap_db}"
    synced = root / "synced"  # written once the initial full sync succeeded
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    synced_before = synced.exists()
    if synced_before:
        print(f"reusing the synced store in {root}", flush=True)
    elif args.store:
        shutil.copyfile(args.store, sap_db)
        print(f"store copied from {args.store}", flush=True)
    else:
        # in a child process: the generator's pages would otherwise stay in this process and count in every step's
        # peak (session 12's prime at the budget started every step at ~2.2 GiB for that reason)
        as_of = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
        code = f"from datetime import datetime; from fp_demo_store.generate import generate; " \
               f"generate({sap_url!r}, {args.customers}, seed=9, as_of=datetime.fromisoformat({as_of.isoformat()!r}))"
        subprocess.run([sys.executable, "-c", code], check=True)
        print(f"store of {args.customers} customers generated in {time.perf_counter() - started:.0f} s; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    # a sandbox of millions of records takes minutes to load its state at start
    # one port for every sandbox start: a changed base_url would make the next run read in full (a changed panel)
    port_file = root / "port"
    if not port_file.exists():
        port_file.write_text(str(free_port()), encoding="utf-8")
    sandbox_options: dict[str, Any] = {"tier": "professional", "start_timeout": 1800, "port": int(port_file.read_text())}
    with DagsterInstance.ephemeral() as instance:
        panel = root / "panel.yaml"

        def run(label: str, job: str, mode: str, changed: int) -> None:
            config = resource_config(panel=str(panel), sap_url=sap_url, state_url=f"sqlite:///{root / 'state.db'}",
                                     mode=mode, log_level="WARNING")  # fmt: skip
            sampler = RssSampler()
            sampler.start()
            profiler = _py_spy(args.profile, label) if args.profile else None
            t = time.perf_counter()
            summary = run_sync(instance, config, job_name=job)
            seconds = time.perf_counter() - t
            sampler.stop()
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                profiler.wait()
            if not summary.success:
                raise SystemExit(f"{label}: run failed in {summary.failed_steps}")
            read = {s: summary.metadata[s] for s in SOURCES if s in summary.metadata}
            row = {"label": label, "job": job, "seconds": seconds, "changed": changed, "writes": summary.writes,
                   "read": {s: (m.get("mode", "?"), int(m["dagster/row_count"])) for s, m in read.items()},
                   "load": os.getloadavg()[0]}  # fmt: skip
            rows.append(row)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{label}: {seconds:.1f} s, writes {summary.writes}, read {row['read']}, "
                  f"this process's peak RSS so far {peak:,.0f} MiB", flush=True)  # fmt: skip
            if args.step_memory:
                windows = step_windows(instance, summary.run_id)
                for step, (start, end) in sorted(windows.items(), key=lambda item: item[1][0]):
                    step_peak = sampler.peak_between(start, end)
                    print(f"  {step:<48}{end - start:>8.1f} s{f'{step_peak:,.0f}' if step_peak else '-':>8} MiB", flush=True)

        if not synced.exists():
            # "unthrottled": a budget of 100,000 requests per 10 s, announced in the rate headers, which our client
            # follows (with the budget merely off, the sandbox sends no headers and the client keeps the tier's)
            lifted = {"requests_per_ten_seconds": 100_000} if args.prime_unthrottled else {}
            with running_sandbox(root / "hubspot.db", rate_limits=True, **lifted, **sandbox_options) as sandbox:
                panel.write_text(f"integration:\n  base_url: {sandbox.base_url}\n", encoding="utf-8")
                label = "initial full sync" + (" (budget lifted)" if args.prime_unthrottled else "")
                run(label, SYNC_JOB, "full", 0)
                print(sandbox_memory(sandbox.pid, root / "hubspot.db"), flush=True)
            synced.write_text("ok\n", encoding="utf-8")
        # every measured run: the Professional budget enforced over the real 10-s window (the sandbox default: off)
        t = time.perf_counter()
        with running_sandbox(root / "hubspot.db", rate_limits=True, **sandbox_options) as sandbox:
            print(f"sandbox up with the Professional budget in {time.perf_counter() - t:.0f} s", flush=True)
            panel.write_text(f"integration:\n  base_url: {sandbox.base_url}\n", encoding="utf-8")
            with sqlite3.connect(sap_db) as con:
                customers = [c for (c,) in con.execute(
                    'SELECT "CustomerId" FROM "FP_CUSTOMER" WHERE "IsGuest" = 0 AND "Email" IS NOT NULL ORDER BY 1 LIMIT 1000')]
                item = con.execute('SELECT "ItemCode" FROM "FP_CART_LINE" WHERE "CombinationId" IS NULL LIMIT 1').fetchone()[0]
                open_orders = [d for (d,) in con.execute(
                    'SELECT "DocEntry" FROM "ORDR" WHERE "DocStatus" = \'O\' AND "CANCELED" = \'N\' ORDER BY 1')]
                all_orders = con.execute('SELECT COUNT(*) FROM "ORDR"').fetchone()[0]
            # fmt: skip
            if synced_before:
                # An incremental read re-reads the 120 s before each entity's marker: after an earlier invocation's
                # 1% of orders (15,000 stamped over ~2 minutes) that is most of them. One order shipped more than
                # the overlap after the newest change moves the marker past them, as the next change of a live
                # store would (shipped sooner, the window still covers the burst's last orders).
                with SapReader(sap_url) as reader:
                    newest = reader.max_updated_at("orders")
                wait = (newest - datetime.now(UTC).replace(tzinfo=None)).total_seconds() + SyncModeResource().overlap_seconds + 5 if newest else 0
                if wait > 0:
                    print(f"waiting {wait:.0f} s: the newest change is within the overlap", flush=True)
                    time.sleep(wait)
                simulate.ship_order(sap_url, open_orders.pop())
            run("incremental run, nothing changed" + (" (1 order shipped)" if synced_before else ""), SYNC_JOB, "",
                int(synced_before))  # fmt: skip

            simulate.add_cart(sap_url, customers[0], [(item, 1.0), (item, 2.0)])
            run("1 cart", CART_JOB, "", 1)

            changed = 0
            for customer in customers[1:]:
                try:
                    simulate.set_customer_address(sap_url, f"W{customer}", street=f"Changed street {changed} at {started:.0f}",
                                                  city="Lyon", zip_code="69001", country="FR")  # fmt: skip
                except KeyError:  # no default billing address: try the next customer
                    continue
                changed += 1
                if changed == 100:
                    break
            run(f"{changed} customers", SYNC_JOB, "", changed)

            share = max(1, all_orders // 100)
            for doc_entry in open_orders[:share]:
                simulate.ship_order(sap_url, doc_entry)
            run(f"1% of orders ({share} shipped)", SYNC_JOB, "", share)

            if not args.no_full_run:
                run("full run, nothing changed", SYNC_JOB, "full", 0)

    print()
    print("| run | job | wall s | rows changed | rows read: customers / addresses / items / orders / carts (mode) | "
          "write requests | load avg |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        read = r["read"]

        def cell(asset: str, read: dict[str, tuple[str, int]] = read) -> str:
            mode, count = read.get(asset, ("-", 0))
            return f"{count:,}" + (" (inc)" if mode == "incremental" else "")

        reads = " / ".join(cell(a) for a in ("sap_customers", "sap_addresses", "sap_items", "sap_orders", "store_carts"))
        print(f"| {r['label']} | {r['job']} | {r['seconds']:.1f} | {r['changed']} | {reads} | {r['writes']} | {r['load']:.1f} |")


def _py_spy(folder: Path, label: str) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() else "_" for c in label)
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, when not on PATH
    command = [str(beside) if beside.exists() else "py-spy", "record", "--pid", str(os.getpid()), "--rate", "50", "--format", "raw", "--nonblocking", "--idle",
               "-o", str(folder / f"{name}.raw")]  # fmt: skip
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the run starts
    return profiler


def sandbox_memory(pid: int, state: Path) -> str:
    """The sandbox holds every record in memory: its RSS per stored record says what a bigger store needs."""
    rss_mib = next(int(line.split()[1]) / 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))  # fmt: skip
    with sqlite3.connect(state) as con:
        records = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    return f"sandbox: {records:,} records, RSS {rss_mib:,.0f} MiB ({rss_mib * 1024 / max(records, 1):.2f} KiB per record)"


if __name__ == "__main__":
    main()
