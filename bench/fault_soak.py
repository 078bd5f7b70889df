"""Fault soak: a full sync with the sandbox injecting 5% 5xx, 2% 429 and 1% timeouts or dropped
connections ends with HubSpot exact, and costs only retries.

Target: 20,000 customers; HubSpot exact after one faulted run (zero duplicates, zero missing, every
property and association as mapped); reports requests, retries, 429s and time against a clean run.

    .venv/bin/python bench/fault_soak.py --customers 20000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import DagsterInstance

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the verification reuses the e2e test's expected payloads
    sys.path.insert(0, str(REPO_ROOT))

from fp_demo_store.generate import generate  # noqa: E402
from fp_hubspot_assets.runner import resource_config, run_sync  # noqa: E402
from fp_hubspot_assets_tests.fixtures_sync import (  # noqa: E402
    SyncEnv,
    assert_hubspot_matches,
)
from hubspot_sandbox.testing import running_sandbox  # noqa: E402

# 5% 5xx, 2% 429, 1% timeouts or drops (half each)
FAULTS = "500=0.03,502=0.01,503=0.01,429=0.02,slow=0.005,drop=0.005"
CLIENT_TIMEOUT = 2.0  # a "slow" answer takes longer than this: the client times out and retries
SLOW_SECONDS = 3.0


@dataclass
class Outcome:
    label: str
    seconds: float
    requests: int
    faults: dict[str, int]
    records: dict[str, int]
    exact: bool

    def line(self) -> str:
        injected = sum(self.faults.values())
        return (
            f"{self.label:7} {self.seconds:7.1f}s  requests={self.requests}  injected faults={injected} "
            f"{self.faults}  (retries = injected faults)  records={sum(self.records.values())}  exact={self.exact}"
        )


def sync_once(root: Path, sap_url: str, label: str, **sandbox: Any) -> Outcome:
    work = root / label
    work.mkdir()
    with running_sandbox(work / "hubspot.db", **sandbox) as sb, DagsterInstance.ephemeral() as instance:
        env = SyncEnv(work, sap_url, f"sqlite:///{work / 'state.db'}", work / "panel.yaml", sb, instance)
        env.write_panel()
        config = resource_config(panel=str(env.panel_path), sap_url=sap_url, state_url=env.state_url, log_level="WARNING")
        config["resources"]["hubspot"]["config"]["timeout_seconds"] = CLIENT_TIMEOUT
        started = time.perf_counter()
        summary = run_sync(instance, config)
        seconds = time.perf_counter() - started
        if not summary.success:
            raise RuntimeError(f"{label} run failed in {summary.failed_steps}")
        stats = sb.stats()
        try:
            assert_hubspot_matches(env)
            exact = True
        except AssertionError as exc:
            print(f"{label}: HubSpot differs: {exc}")
            exact = False
        return Outcome(label, seconds, int(stats["total_requests"]), dict(stats["faults"]), dict(stats["records"]), exact)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fp-soak-") as tmp:
        root = Path(tmp)
        sap_url = f"sqlite:///{root / 'sap.db'}"
        t0 = time.perf_counter()
        generate(sap_url, args.customers, seed=args.seed)
        print(f"demo of {args.customers} customers generated in {time.perf_counter() - t0:.1f}s")
        clean = sync_once(root, sap_url, "clean")
        print(clean.line())
        faulted = sync_once(root, sap_url, "faulted", faults=FAULTS, fault_seed=args.seed, slow_seconds=SLOW_SECONDS)
        print(faulted.line())
        print(f"time cost of the faults: {faulted.seconds - clean.seconds:+.1f}s "
              f"({faulted.seconds / clean.seconds:.2f}x); extra requests: {faulted.requests - clean.requests}")
        ok = clean.exact and faulted.exact and faulted.records == clean.records
        print("EXACT" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
