"""Benchmark: generate the demo SAP + FocusPoint database, then read it back.

Target (this project's 2-core machine): 1,000,000 customers generated in at most 180 s, and the customers
entity read in well under 60 s.

    .venv/bin/python bench/generate_demo.py [customers=1000000] [--url sqlite:///…] [--read]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fp_demo_store.generate import generate
from fp_hubspot_assets.sap.reader import ENTITIES, SapReader

GENERATE_TARGET_S = 180.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("customers", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--url", help="SQLAlchemy URL (default: a SQLite file in a temporary directory)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--read", action="store_true", help="also time SapReader.read for every entity")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'sap.db'}"
        started = time.perf_counter()
        counts = generate(url, args.customers, seed=args.seed)
        seconds = time.perf_counter() - started
        rows = sum(counts.values())
        verdict = "OK" if args.customers < 1_000_000 or seconds <= GENERATE_TARGET_S else "TOO SLOW"
        print(f"generate: {args.customers:,} customers -> {rows:,} rows in {seconds:.1f} s "
              f"({rows / seconds:,.0f} rows/s) [{verdict}; target {GENERATE_TARGET_S:.0f} s at 1,000,000]")
        for table, n in sorted(counts.items()):
            print(f"  {table:<22}{n:>12,}")
        if args.read:
            with SapReader(url) as reader:
                for entity in ENTITIES:
                    started = time.perf_counter()
                    result = reader.read(entity)
                    print(f"read {entity:<10}{result.frame.height:>12,} rows {result.rejects.height:>6} rejects "
                          f"in {time.perf_counter() - started:6.1f} s")


if __name__ == "__main__":
    main()
