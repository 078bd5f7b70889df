"""Sandbox throughput: records upserted per second through the official hubspot-api-client over HTTP.

Target: ≥ 10,000 records/s in 100-record batch upserts with rate limits off on a 2-core machine.
The server runs in its own process (write-through to SQLite, as in real use); the clients are separate
processes so the SDK's own (de)serialisation cost does not hide the server's.

    .venv/bin/python bench/sandbox_throughput.py --records 60000 --clients 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import hubspot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.properties import PropertyCreate

from hubspot_sandbox.testing import running_sandbox

BATCH = 100
TARGET = 10_000


def _worker(base_url: str, token: str, start: int, stop: int, round_no: int) -> int:
    client = hubspot.Client.create(access_token=token, host=base_url)
    batch_api = client.crm.contacts.batch_api
    done = 0
    for first in range(start, stop, BATCH):
        inputs = [
            SimplePublicObjectBatchInputUpsert(
                id_property="fp_customer_id", id=f"S1:C{i:08d}",
                properties={"email": f"customer{i}@example.com", "firstname": f"First{i}",
                            "lastname": f"Last{round_no}", "city": "Zürich", "fp_customer_id": f"S1:C{i:08d}"},
            )
            for i in range(first, min(first + BATCH, stop))
        ]
        result = batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))
        if getattr(result, "errors", None):
            raise RuntimeError(f"upsert reported errors: {result.errors[:1]}")
        done += len(result.results)
    return done


def _cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux /proc), to report the server's own cost per record
    independently of whatever else is running on the machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(records: int, clients: int, state_dir: Path) -> dict[str, float]:
    with running_sandbox(state_dir / "bench.db") as sb:
        sb.client().crm.properties.core_api.create(
            "contacts",
            PropertyCreate(name="fp_customer_id", label="FP customer id", type="string", field_type="text",
                           group_name="contactinformation", has_unique_value=True),
        )
        share = -(-records // clients // BATCH) * BATCH
        figures: dict[str, float] = {}
        with mp.get_context("spawn").Pool(clients) as pool:
            for round_no, label in ((1, "create"), (2, "update")):
                jobs = [(sb.base_url, sb.token, k * share, min(records, (k + 1) * share), round_no) for k in range(clients)]
                cpu0, t0 = _cpu_seconds(sb.pid), time.perf_counter()
                done = sum(pool.starmap(_worker, jobs))
                elapsed, cpu = time.perf_counter() - t0, _cpu_seconds(sb.pid) - cpu0
                figures[f"{label}_records_per_s"] = done / elapsed
                print(f"{label}: {done} records in {elapsed:.2f}s = {done / elapsed:,.0f} records/s "
                      f"(server CPU {cpu:.2f}s = {done / cpu:,.0f} records per server CPU-second)")
        stored = sb.stats()["records"]["contacts"]
        assert stored == records, f"expected {records} contacts, the sandbox holds {stored}"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--clients", type=int, default=3, help="client processes sending batches in parallel")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(args.records, args.clients, Path(tmp))
    worst = min(figures.values())
    print(f"slowest phase: {worst:,.0f} records/s (target {TARGET:,}) -> {'OK' if worst >= TARGET else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
