"""Crash safety: SIGKILL the sync at random points of a large run, then prove HubSpot converges exactly.

Target: ≥ 20 kills on a 3,000-customer demo; after the last kill one run to completion leaves HubSpot
(the sandbox) holding exactly the expected records — zero duplicates by our ids and by contact email, zero
missing, zero extra, every property and association as mapped — and one more run writes nothing.

Each kill targets a random number of HubSpot requests into the run (spread so the kills cover the whole
sync: set-up, each object type, associations), sometimes the start-up before any request. The sync runs as
the real `fp-hubspot sync` command in its own process with its own DAGSTER_HOME, exactly as a scheduled
run would; a killed run is then reported failed and its pool slots freed, which is what Dagster's run
monitoring does for a run worker that died.

    .venv/bin/python bench/crash_safety.py --customers 3000 --kills 20
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import DagsterInstance

from fp_demo_store.generate import generate
from fp_hubspot_assets.mapping import ID_PROPERTY
from fp_hubspot_assets.objects import COMMERCE_MODES, synced_types
from fp_hubspot_assets.runner import release_dead_runs
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the verification reuses the e2e test's expected payloads
    sys.path.insert(0, str(REPO_ROOT))
ASSOCIATION_KINDS = {"contacts": 1, "deals": 2, "line_items": 1, "orders": 3, "carts": 2}  # batches per record batch
RUN_TIMEOUT = 900.0


@dataclass
class Workspace:
    """Everything one crash-safety session needs: demo DB, Dagster home, state store, panel, sandbox."""

    root: Path
    sandbox: SandboxHandle
    commerce: str = "deals"  # the panel's commerce.objects

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.root / "dagster_home"),
            "FP_SAP_URL": self.sap_url,
            "FP_STATE_URL": self.state_url,
            "FP_PANEL_FILE": str(self.panel_path),
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def sap_url(self) -> str:
        return f"sqlite:///{self.root / 'sap.db'}"

    @property
    def state_url(self) -> str:
        return f"sqlite:///{self.root / 'state.db'}"

    @property
    def panel_path(self) -> Path:
        return self.root / "panel.yaml"

    def instance(self) -> DagsterInstance:
        os.environ["DAGSTER_HOME"] = str(self.root / "dagster_home")
        return DagsterInstance.get()

    def prepare(self) -> None:
        home = self.root / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
        self.panel_path.write_text(
            f"integration:\n  base_url: {self.sandbox.base_url}\ncommerce:\n  objects: {self.commerce}\n", encoding="utf-8"
        )


@dataclass
class Discrepancies:
    """How HubSpot differs from the expected records (all zero when it converged)."""

    duplicate_ids: Counter[str] = field(default_factory=Counter)
    duplicate_emails: int = 0
    missing: Counter[str] = field(default_factory=Counter)
    extra: Counter[str] = field(default_factory=Counter)
    wrong_properties: Counter[str] = field(default_factory=Counter)
    missing_associations: Counter[str] = field(default_factory=Counter)
    first_difference: str = ""  # the first property or association that differs, as the check named it

    @property
    def total(self) -> int:
        counters = (self.duplicate_ids, self.missing, self.extra, self.wrong_properties, self.missing_associations)
        return self.duplicate_emails + sum(sum(c.values()) for c in counters)


@dataclass
class CrashReport:
    kills: int = 0
    finished_before_kill: int = 0
    kill_points: list[int] = field(default_factory=list)  # HubSpot requests seen when the kill landed
    final_run_seconds: float = 0.0
    rerun_writes: int = -1
    expected_records: dict[str, int] = field(default_factory=dict)
    discrepancies: Discrepancies = field(default_factory=Discrepancies)
    total_seconds: float = 0.0

    def lines(self) -> list[str]:
        d = self.discrepancies
        return [
            f"kills: {self.kills} (runs that finished before their kill point: {self.finished_before_kill})",
            f"kill points (HubSpot requests into the sync): {sorted(self.kill_points)}",
            f"expected records: {self.expected_records}",
            f"duplicates by fp id: {dict(d.duplicate_ids)}; contacts sharing an email: {d.duplicate_emails}",
            f"missing: {dict(d.missing)}; extra: {dict(d.extra)}",
            f"wrong properties: {dict(d.wrong_properties)}; missing associations: {dict(d.missing_associations)}"
            + (f" (first: {d.first_difference})" if d.first_difference else ""),
            f"final run {self.final_run_seconds:.1f}s; writes of the run after it: {self.rerun_writes}",
            f"total {self.total_seconds:.1f}s",
        ]


def _sync_command() -> list[str]:
    return [sys.executable, "-m", "fp_hubspot_assets.cli", "sync"]


def _requests(sandbox: SandboxHandle) -> int:
    return int(sandbox.stats()["total_requests"])


def _write_requests(sandbox: SandboxHandle) -> int:
    by_route = sandbox.stats()["requests"]
    return sum(n for route, counts in by_route.items() if route.startswith("POST") for n in counts.values())


def run_to_completion(ws: Workspace) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(_sync_command(), env=ws.env, cwd=ws.root, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"the sync failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def kill_after(ws: Workspace, requests: int, rng: random.Random) -> bool:
    """Start a sync and SIGKILL it once the sandbox has seen ``requests`` more requests (0: during start-up,
    at a random moment). Returns False when the run finished before the kill point."""
    start = _requests(ws.sandbox)
    proc = subprocess.Popen(_sync_command(), env=ws.env, cwd=ws.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    startup_kill = time.monotonic() + rng.uniform(0.2, 3.0) if requests == 0 else None
    try:
        while proc.poll() is None:
            if startup_kill is not None and time.monotonic() >= startup_kill:
                break
            if startup_kill is None and _requests(ws.sandbox) - start >= requests:
                time.sleep(rng.uniform(0.0, 0.05))  # land anywhere inside the request/record cycle
                break
            time.sleep(0.005)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def estimated_requests(expected: dict[str, int]) -> int:
    """About how many HubSpot requests a full sync sends: one per 100 records plus association batches."""
    batches = sum(math.ceil(n / 100) * (1 + ASSOCIATION_KINDS.get(t, 0)) for t, n in expected.items())
    return batches + 40  # set-up: property lists, groups, pipeline


def verify(ws: Workspace) -> Discrepancies:
    """Compare the sandbox with the expected payloads record by record."""
    from fp_hubspot_assets_tests.fixtures_sync import expected_payloads

    env = _as_sync_env(ws)
    expected = expected_payloads(env)
    found = Discrepancies()
    for object_type in synced_types(ws.commerce):
        prop = ID_PROPERTY[object_type]
        raw = ws.sandbox.objects(object_type)
        ids = Counter(o["properties"].get(prop) for o in raw)
        found.duplicate_ids[object_type] = sum(n - 1 for n in ids.values() if n > 1)
        want = set(expected[object_type].records["source_key"])
        found.missing[object_type] = len(want - set(ids))
        found.extra[object_type] = len(set(ids) - want)
        if object_type == "contacts":
            emails = Counter((o["properties"].get("email") or "").lower() for o in raw)
            found.duplicate_emails = sum(n - 1 for e, n in emails.items() if e and n > 1)
    if found.total == 0:
        from fp_hubspot_assets_tests.fixtures_sync import assert_hubspot_matches

        try:
            assert_hubspot_matches(env)
            if ws.commerce != "deals":
                from fp_hubspot_assets_tests.e2e.test_commerce_objects import assert_orders_and_carts

                assert_orders_and_carts(env, expected)  # type: ignore[arg-type]
        except AssertionError as exc:  # properties or associations differ: name what
            what = exc.args[0] if exc.args else ("?",)
            bucket = found.missing_associations if len(what) == 4 else found.wrong_properties
            bucket[str(what[0]) if isinstance(what, tuple) else str(what)] += 1
            found.first_difference = repr(what)
    return found


def _as_sync_env(ws: Workspace) -> object:
    from fp_hubspot_assets_tests.fixtures_sync import SyncEnv

    return SyncEnv(ws.root, ws.sap_url, ws.state_url, ws.panel_path, ws.sandbox, instance=None)  # type: ignore[arg-type]


def expected_counts(ws: Workspace) -> dict[str, int]:
    from fp_hubspot_assets_tests.fixtures_sync import expected_payloads

    return {t: m.records.height for t, m in expected_payloads(_as_sync_env(ws)).items()}  # type: ignore[arg-type]


def crash_and_converge(root: Path, customers: int, kills: int, seed: int = 11, log: bool = True,
                       sandbox_options: dict[str, Any] | None = None, commerce: str = "deals") -> CrashReport:
    """Generate, kill the sync ``kills`` times at random points, finish it, and verify HubSpot.
    ``sandbox_options`` are sandbox flags (e.g. ``{"no_unique_on": "products,line_items"}``)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    report = CrashReport()
    say = print if log else (lambda *_a: None)
    generate(f"sqlite:///{root / 'sap.db'}", customers, seed=seed)
    with running_sandbox(root / "hubspot.db", **(sandbox_options or {})) as sandbox:
        ws = Workspace(root, sandbox, commerce)
        ws.prepare()
        report.expected_records = expected_counts(ws)
        budget = estimated_requests(report.expected_records)
        attempts = 0
        while report.kills < kills and attempts < kills * 3:
            attempts += 1
            done = _requests(sandbox)
            remaining = max(1, budget - done)
            left = kills - report.kills
            # every fifth kill lands in start-up; the others spread over what is left of the sync
            target = 0 if rng.random() < 0.2 else rng.randint(1, max(1, 2 * remaining // (left + 1)))
            if kill_after(ws, target, rng):
                report.kills += 1
                report.kill_points.append(done + target)
                say(f"kill {report.kills}: after {target} more requests ({done + target} in all)")
            else:
                report.finished_before_kill += 1
                say(f"the run finished before request {target}; resetting the estimate")
                budget = done + target + 1
            with ws.instance() as instance:
                say(f"released dead runs: {release_dead_runs(instance)}")
        t0 = time.perf_counter()
        run_to_completion(ws)
        report.final_run_seconds = time.perf_counter() - t0
        before = _write_requests(sandbox)
        run_to_completion(ws)
        report.rerun_writes = _write_requests(sandbox) - before
        report.discrepancies = verify(ws)
    report.total_seconds = time.perf_counter() - started
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--no-unique-on", default=None, metavar="TYPES",
                        help="sandbox object types refusing unique-value properties, e.g. products,line_items")
    parser.add_argument("--commerce", choices=COMMERCE_MODES, default="deals", help="the panel's commerce.objects")
    args = parser.parse_args()
    options = {"no_unique_on": args.no_unique_on}
    if args.dir:
        root = Path(args.dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        report = crash_and_converge(root, args.customers, args.kills, args.seed, sandbox_options=options,
                                    commerce=args.commerce)
    else:
        with tempfile.TemporaryDirectory(prefix="fp-crash-") as tmp:
            report = crash_and_converge(Path(tmp), args.customers, args.kills, args.seed, sandbox_options=options,
                                        commerce=args.commerce)
    print("\n".join(report.lines()))
    ok = report.discrepancies.total == 0 and report.rerun_writes == 0 and report.kills >= args.kills
    print("CONVERGED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
