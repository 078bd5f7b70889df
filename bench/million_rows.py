"""Benchmark: read + map + diff a million-customer store, beside a plain polars baseline.

Data: ``fp_demo_store.generate`` at ``--customers`` (default 1,000,000). At that size the demo writes 1,000,000 web
customers (+ 100,000 partners, 200,000 contact persons), ~1.6M addresses, 50,000 items with 117,000
attribute combinations, 1,500,000 orders with ~3.65M order lines (+ deliveries and invoices), 1,000,000
carts with ~2.4M cart lines — the exact counts are printed. That is the issue's scale (1M customers, 100k
items with combinations, 1M orders with 5M lines, 1M carts) with the demo's own ratios: more orders, fewer
order lines, and the cart lines on top.

Each phase runs in a child process so its peak RSS is its own (``os.wait4`` rusage of that child):
- ``baseline``: polars reads every table the reader reads (``SELECT *`` through sqlite3) and hashes its rows.
- ``ours``: ``SapReader.read_all``, then per object type in the job's order its mapping function and
  ``hubspot.sync.plan`` against a state store that holds the previous run's hashes (so nearly every record is
  "unchanged"). As in the job, a step holds only its inputs (``tracing.iter_payloads``).
The first ``ours`` run (``prime``) fills the state store; it is not timed against the target.

Targets: ours ≤ 3 × baseline (same run), peak RSS ≤ 4 GiB.

    .venv/bin/python bench/million_rows.py [--customers 1000000] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RATIO_TARGET = 3.0
MEMORY_TARGET_MIB = 4096.0
# The tables SapReader.read_all reads (SAP B1 + FocusPoint), for the baseline.
SOURCE_TABLES = (
    "OCRD", "OCRG", "OCPR", "CRD1", "FP_STORE", "FP_CUSTOMER", "FP_ROLE", "FP_CUSTOMER_ROLE", "FP_ADDRESS",
    "OITM", "ITM1", "FP_ITEM_STORE", "FP_ITEM_COMBINATION", "ORDR", "RDR1", "ODLN", "DLN1", "OINV", "INV1",
    "FP_CART", "FP_CART_LINE",
)  # fmt: skip


# ---------------------------------------------------------------- child phases (print one JSON line)
def phase_baseline(sap_db: Path) -> dict[str, Any]:
    import polars as pl

    started = time.perf_counter()
    rows = 0
    with sqlite3.connect(f"file:{sap_db}?mode=ro", uri=True) as con:
        for table in SOURCE_TABLES:
            frame = pl.read_database(f'SELECT * FROM "{table}"', con, infer_schema_length=None)
            rows += frame.hash_rows().len()
    return {"seconds": time.perf_counter() - started, "rows": rows}


def phase_ours(sap_db: Path, state_db: Path, prime: bool) -> dict[str, Any]:
    from fp_hubspot_assets.hubspot.sync import plan
    from fp_hubspot_assets.panel import parse_panel
    from fp_hubspot_assets.sap.reader import SapReader
    from fp_hubspot_assets.state.store import StateStore
    from fp_hubspot_assets.tracing import iter_payloads

    settings = parse_panel({})  # defaults: professional tier, so products and line items are mapped too
    t0 = time.perf_counter()
    with SapReader(f"sqlite:///{sap_db}") as reader:
        frames = {entity: result.frame for entity, result in reader.read_all().items()}
    t1 = time.perf_counter()
    peaks = {"read": _peak_mib()}
    source_rows = {entity: frame.height for entity, frame in frames.items()}
    store = StateStore(f"sqlite:///{state_db}")
    decisions: dict[str, dict[str, int]] = {}
    map_s = diff_s = 0.0
    # Like the job's steps, each mapping holds only its inputs: iter_payloads pops a source frame after its last
    # mapping and releases a payload once no later mapping reads it; each payload is dropped once planned.
    started = time.perf_counter()
    for object_type, mapped in iter_payloads(frames, settings):
        mapped_at = time.perf_counter()
        map_s += mapped_at - started
        frame = plan(mapped.records, store, object_type)
        del mapped
        decisions[object_type] = dict(frame.group_by("decision").len().iter_rows())
        if prime:
            _record_hashes(state_db, object_type, frame.select("source_key", "payload_hash"))
        del frame
        peaks[object_type] = _peak_mib()
        started = time.perf_counter()
        diff_s += started - mapped_at
    store.dispose()
    return {
        "seconds": time.perf_counter() - t0, "read": t1 - t0, "map": map_s, "diff": diff_s,
        "source_rows": source_rows,
        "decisions": decisions, "peak_after_mib": peaks,
    }  # fmt: skip


def _peak_mib() -> float:
    """This process's peak RSS so far: read after each step, it says which step set the peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _record_hashes(state_db: Path, object_type: str, hashes: Any) -> None:
    """Set-up only (the prime run): remember every record of a type as synced, with a made-up HubSpot id,
    straight into the state store's id-map table (StateStore.record_synced does the same per 100-record
    batch in a sync)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(state_db) as con:
        con.execute("DELETE FROM fp_id_map WHERE object_type = ?", (object_type,))
        rows = ((object_type, key, str(i + 1), digest, stamp, "bench") for i, (key, digest) in enumerate(hashes.iter_rows()))
        con.executemany(
            "INSERT INTO fp_id_map (object_type, source_key, hubspot_id, payload_hash, synced_at, run_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


# ---------------------------------------------------------------- parent: run phases, measure, report
def run_child(phase: str, root: Path) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its own peak RSS comes from wait4's rusage."""
    cmd = [sys.executable, __file__, "--phase", phase, "--keep", str(root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"phase {phase} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mib"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="measured baseline/ours pairs (median reported)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (reuses its sap.db)")
    parser.add_argument("--phase", choices=("baseline", "ours", "prime"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="fp-million-"))
    sap_db, state_db = root / "sap.db", root / "state.db"
    if args.phase:
        result = phase_baseline(sap_db) if args.phase == "baseline" else phase_ours(sap_db, state_db, args.phase == "prime")
        print(json.dumps(result))
        return

    root.mkdir(parents=True, exist_ok=True)
    if not sap_db.exists():
        from fp_demo_store.generate import generate

        started = time.perf_counter()
        counts = generate(f"sqlite:///{sap_db}", args.customers, seed=42)
        print(f"generated {args.customers:,} customers in {time.perf_counter() - started:.1f} s ({root})")
        print("  " + ", ".join(f"{t} {n:,}" for t, n in sorted(counts.items())))
    prime = run_child("prime", root)
    print(f"prime (empty state store, then hashes recorded): {prime['seconds']:.1f} s, peak {prime['peak_mib']:,.0f} MiB")
    print("  source rows: " + ", ".join(f"{e} {n:,}" for e, n in prime["source_rows"].items()))
    pairs: list[tuple[dict[str, Any], dict[str, Any], float]] = []
    for run in range(1, args.runs + 1):
        load = os.getloadavg()[0]
        base, ours = run_child("baseline", root), run_child("ours", root)
        pairs.append((base, ours, load))
        print(f"run {run}: baseline {base['seconds']:.1f} s ({base['rows']:,} rows, peak {base['peak_mib']:,.0f} MiB) | "
              f"ours {ours['seconds']:.1f} s = read {ours['read']:.1f} + map {ours['map']:.1f} + diff {ours['diff']:.1f} "
              f"(peak {ours['peak_mib']:,.0f} MiB; after "
              f"{', '.join(f'{k} {v:,.0f}' for k, v in ours['peak_after_mib'].items())}) | ratio {ours['seconds'] / base['seconds']:.2f} | load {load:.1f}")
    last = pairs[-1][1]
    print("  records planned: " + ", ".join(
        f"{t} {sum(d.values()):,} ({d.get('unchanged', 0):,} unchanged)" for t, d in last["decisions"].items()))
    ratio = statistics.median(o["seconds"] / b["seconds"] for b, o, _ in pairs)
    peak = max(max(b["peak_mib"], o["peak_mib"]) for b, o, _ in pairs)
    summary = {
        "baseline_s": statistics.median(b["seconds"] for b, _, _ in pairs),
        "ours_s": statistics.median(o["seconds"] for _, o, _ in pairs),
        "read_s": statistics.median(o["read"] for _, o, _ in pairs),
        "map_s": statistics.median(o["map"] for _, o, _ in pairs),
        "diff_s": statistics.median(o["diff"] for _, o, _ in pairs),
        "ratio": ratio,
        "peak_mib": peak,
        "load": statistics.median(load for _, _, load in pairs),
    }
    ok = ratio <= RATIO_TARGET and peak <= MEMORY_TARGET_MIB
    print(f"median of {len(pairs)}: baseline {summary['baseline_s']:.1f} s, ours {summary['ours_s']:.1f} s "
          f"(read {summary['read_s']:.1f} + map {summary['map_s']:.1f} + diff {summary['diff_s']:.1f}), "
          f"ratio {ratio:.2f} (target ≤ {RATIO_TARGET}), peak {peak:,.0f} MiB (target ≤ {MEMORY_TARGET_MIB:,.0f}) "
          f"-> {'OK' if ok else 'TARGET MISSED'}")
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
