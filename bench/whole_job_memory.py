"""Benchmark: the main job's peak memory with every asset in one process, and which step sets it.

The Dagster job ``sync_hubspot`` runs through ``runner.run_sync`` (one process, the steps
one after another, each step's inputs loaded from the run-scoped IO manager) as a **dry run** in **full** read
mode: every source row is read, mapped, hashed and planned against the state store, and nothing is written to
HubSpot (a sandbox answers the job's read-only calls). With an empty state store that is the local side of a
first full sync (every record planned as a create, every association as new); ``--state`` starts from a copy
of a state store instead (e.g. ``million_rows.py``'s primed one: every record known and unchanged). The HTTP
writes a real sync adds are batches of 100 records, so the local side is what grows with the store.

A sampler thread reads this process's RSS every 0.2 s; each step's peak is the highest sample between its
start and end events in the run's event log. The process's own peak is ``ru_maxrss`` (the store is generated
in a child process beforehand, so the generator's pages are not counted).

Target (issue 16): the whole job ≤ 2 GiB peak RSS at 1M customers. The runner frees each step's output once the
IO manager has stored it, so a step's peak is what that step holds plus what the allocator kept from the steps
before it (bench/README.md §3c).

    .venv/bin/python bench/whole_job_memory.py [--customers 1000000] [--keep DIR] [--state STATE_DB]
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

MEMORY_TARGET_MIB = 2048.0
SAMPLE_SECONDS = 0.2


class RssSampler(threading.Thread):
    """(wall time, RSS MiB) samples of this process until stopped; a step shorter than a sample shows none."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.time(), _rss_mib()))
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def peak_between(self, start: float, end: float) -> float:
        inside = [rss for at, rss in self.samples if start <= at <= end]
        return max(inside, default=0.0)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def step_windows(instance: DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's (start, end) wall time from the run's event log."""
    from dagster import DagsterEventType

    windows: dict[str, list[float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            windows[event.step_key] = [record.timestamp, record.timestamp]
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE) and event.step_key in windows:
            windows[event.step_key][1] = record.timestamp
    return {step: (start, end) for step, (start, end) in windows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (reuses its sap.db)")
    parser.add_argument("--state", type=Path, help="start from a copy of this state store (default: empty)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="fp-whole-job-"))
    root.mkdir(parents=True, exist_ok=True)
    sap_db, state_db = root / "sap.db", root / "whole-job-state.db"
    if not sap_db.exists():  # in a child, so its pages never count in this process's peak
        code = f"from fp_demo_store.generate import generate; generate('sqlite:///{sap_db}', {args.customers}, seed=42)"
        subprocess.run([sys.executable, "-c", code], check=True)
        print(f"generated {args.customers:,} customers ({root})")
    state_db.unlink(missing_ok=True)
    if args.state:
        shutil.copyfile(args.state, state_db)

    from dagster import DagsterInstance

    from fp_hubspot_assets.runner import resource_config, run_sync
    from hubspot_sandbox.testing import running_sandbox

    logging.disable(logging.INFO)
    sampler = RssSampler()
    with running_sandbox(root / "hubspot.db", tier="professional") as sandbox, DagsterInstance.ephemeral() as instance:
        (root / "panel.yaml").write_text(f"integration:\n  base_url: {sandbox.base_url}\n")
        config = resource_config(panel=str(root / "panel.yaml"), sap_url=f"sqlite:///{sap_db}",
                                 state_url=f"sqlite:///{state_db}", dry_run=True, mode="full", log_level="WARNING")
        before = _rss_mib()
        sampler.start()
        started = time.perf_counter()
        summary = run_sync(instance, config)
        seconds = time.perf_counter() - started
        sampler.stop()
        windows = step_windows(instance, summary.run_id)
    if not summary.success:
        raise SystemExit(f"the dry run failed in {summary.failed_steps}: {summary.first_error}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"dry run, full read, every asset in one process: {seconds:.1f} s; RSS before the run {before:,.0f} MiB")
    print(f"{'step':<40}{'seconds':>9}{'peak MiB':>10}")
    for step, (start, end) in sorted(windows.items(), key=lambda item: item[1][0]):
        step_peak = sampler.peak_between(start, end)
        print(f"{step:<40}{end - start:>9.1f}{f'{step_peak:,.0f}' if step_peak else '-':>10}")
    planned = {name.removeprefix("hubspot_"): meta.get("dagster/row_count") for name, meta in summary.metadata.items()
               if name.endswith("_payloads")}  # fmt: skip
    print("payload rows: " + ", ".join(f"{name} {rows:,}" for name, rows in planned.items() if rows is not None))
    ok = peak <= MEMORY_TARGET_MIB
    print(f"peak RSS of the job's process: {peak:,.0f} MiB (target ≤ {MEMORY_TARGET_MIB:,.0f}) -> {'OK' if ok else 'TARGET MISSED'}")


if __name__ == "__main__":
    main()
