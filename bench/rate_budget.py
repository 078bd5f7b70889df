"""Benchmark: how much of HubSpot's rate budget a real sync uses, alone and beside a second client.

The sandbox enforces the Professional budget (190 requests per 10 s per app) over a shortened rolling window
with the same requests per second (``--window 1`` → 19 per 1 s); our client gets the same window through
``HubSpotResource(rate_window_seconds=…)``. The sync is the real Dagster job (``run_sync``) on a demo
database, full sync into an empty sandbox.

Figures (from one run per scenario, median over ``--runs``):
- utilization = requests HubSpot accepted in the 10-second bucket per second ÷ the budget per second, over the
  spans where the sync was sending such requests (a gap longer than two windows ends a span: mapping,
  association-only phases and Dagster step start-up are not budget-bound). Each span's capacity is
  limit × (span / window + 1) — the rolling window lets one full window through at the start of a span.
- 429 share = rate-limited answers ÷ all 10-second-bucket requests our client sent.
Targets: utilization ≥ 0.90, 429 share ≤ 0.5%.

Second scenario: another client with the same token spends 30% of the budget at the same time (cheap GETs,
evenly paced, from its own process). Reported: our utilization, both clients' 429 shares, the combined
utilization, and whether HubSpot holds exactly the expected records afterwards (the e2e test's
``assert_hubspot_matches``: every record once, every property and association as mapped).

    .venv/bin/python bench/rate_budget.py [--customers 10000] [--window 1] [--runs 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from dagster import DagsterInstance

from fp_demo_store.generate import generate
from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.ratelimit import RateBudget
from fp_hubspot_assets.runner import resource_config, run_sync
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the verification reuses the e2e test's expected payloads
    sys.path.insert(0, str(REPO_ROOT))

UTILIZATION_TARGET = 0.90
REJECT_TARGET = 0.005
TIER = "professional"
OTHER_SHARE = 0.30


@dataclass
class Scenario:
    name: str
    seconds: float = 0.0
    sent: int = 0  # our 10-second-bucket requests (including those answered 429)
    rejected: int = 0  # our 429s
    utilization: float = 0.0
    busy_seconds: float = 0.0
    records_per_s: float = 0.0  # records written per second of budget-bound time
    records: int = 0
    other_sent: int = 0
    other_rejected: int = 0
    combined_utilization: float = 0.0
    exact: bool | None = None
    problem: str = ""
    load: float = 0.0
    limit: int = 0
    window: float = 0.0
    starts: list[float] = field(default_factory=list)  # request start times, seconds from the run's start

    @property
    def reject_share(self) -> float:
        return self.rejected / self.sent if self.sent else 0.0

    @property
    def other_reject_share(self) -> float:
        return self.other_rejected / self.other_sent if self.other_sent else 0.0


@dataclass
class Recorder:
    """Start time of every request our client sends in the 10-second bucket (RateBudget.acquire returns)."""

    starts: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def watching(self) -> Iterator[None]:
        original = RateBudget.acquire

        def acquire(budget: RateBudget, bucket: ep.Bucket) -> float | None:
            started = original(budget, bucket)
            if bucket in (ep.Bucket.standard, ep.Bucket.associations):  # both spend the 10-second window
                with self.lock:
                    self.starts.append(time.monotonic())
            return started

        with mock.patch.object(RateBudget, "acquire", acquire):
            yield


def busy_spans(starts: list[float], window: float) -> list[tuple[float, float, int]]:
    """(first, last, count) of each run of requests with no gap longer than two windows (a client that waits
    out one full window is still budget-bound; mapping and step start-up take longer)."""
    spans: list[tuple[float, float, int]] = []
    for t in sorted(starts):
        if spans and t - spans[-1][1] <= 2 * window:
            first, _last, n = spans[-1]
            spans[-1] = (first, t, n + 1)
        else:
            spans.append((t, t, 1))
    return spans


def utilization(starts: list[float], rejected: int, limit: int, window: float) -> tuple[float, float]:
    """(accepted ÷ capacity over the busy spans, busy seconds). Spans of fewer than two windows' worth of
    requests are start-up and set-up chatter, not a sustained phase, and are left out."""
    spans = [s for s in busy_spans(starts, window) if s[2] >= 2 * limit]
    sent = sum(n for *_t, n in spans)
    busy = sum(last - first for first, last, _n in spans)
    capacity = sum(limit * ((last - first) / window + 1) for first, last, _n in spans)
    accepted = sent - rejected * sent / max(1, len(starts))  # 429s spread over the run like the requests
    return (accepted / capacity if capacity else 0.0), busy


def rolling_observe(budget: RateBudget, headers: Any, started: float | None = None, refused: bool = False) -> None:
    """EXPERIMENT (``--observe rolling``), the change proposed for hubspot/ratelimit.py: on
    ``X-HubSpot-RateLimit-Remaining: 0`` wait until the oldest request of our own rolling window leaves it
    (when a slot frees), not a whole interval from now. Daily headers are handled as before."""
    remaining = None
    if headers:
        lower = {k.lower(): v for k, v in headers.items()}
        remaining = lower.get("x-hubspot-ratelimit-remaining")
    if remaining is None or int(remaining) > 0:
        ORIGINAL_OBSERVE(budget, headers, started, refused)
        return
    lower.pop("x-hubspot-ratelimit-remaining")
    ORIGINAL_OBSERVE(budget, lower, started, refused)  # the daily pair
    window = budget.standard
    with budget._lock:
        oldest = window._starts[0] if window._starts else budget._clock()
        window.blocked_until = max(window.blocked_until, oldest + window.seconds)


ORIGINAL_OBSERVE = RateBudget.observe
ORIGINAL_INIT = RateBudget.__init__


@contextmanager
def window_margin(margin: float) -> Iterator[None]:
    """EXPERIMENT (``--margin``): our client's window ``margin`` (a fraction) longer than HubSpot's, the same
    request count — room for the time between taking a slot and the request reaching HubSpot."""

    def init(budget: RateBudget, per_window: int, daily: int | None, window_seconds: float = 10.0,
             **kwargs: Any) -> None:  # fmt: skip
        ORIGINAL_INIT(budget, per_window, daily, window_seconds * (1 + margin), **kwargs)

    with mock.patch.object(RateBudget, "__init__", init):
        yield


def other_client(base_url: str, token: str, per_second: float, stop: Any, counts: Any) -> None:
    """A second integration on the same account: cheap GETs at ``per_second``, evenly paced; 429s are counted
    and not retried (it just keeps its pace, as a poller would)."""
    with httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {token}"}, timeout=30) as http:
        interval, next_at = 1.0 / per_second, time.monotonic()
        while not stop.is_set():
            answer = http.get("/crm/v3/objects/contacts", params={"limit": 1})
            with counts.get_lock():
                counts[0] += 1
                counts[1] += answer.status_code == 429
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))


def run_scenario(
    root: Path, sap_url: str, window: float, competitor: bool, workers: int, verify: bool, observe_mode: str = "as-is",
    margin: float = 0.0,
) -> Scenario:
    name = "with a second client at 30%" if competitor else "alone"
    if observe_mode == "rolling" or margin:
        name += f" [observe {observe_mode}, margin {margin:.0%}]"
    scenario = Scenario(name, window=window)
    per_window = ep.TIER_BUDGETS[TIER][0]
    scenario.limit = max(1, round(per_window * window / ep.TEN_SECONDS))
    root.mkdir(parents=True, exist_ok=True)
    with running_sandbox(root / "hubspot.db", rate_limits=True, tier=TIER, rate_window_seconds=window) as sandbox, \
            DagsterInstance.ephemeral() as instance:  # fmt: skip
        panel = root / "panel.yaml"
        panel.write_text(f"tier: {TIER}\nintegration:\n  base_url: {sandbox.base_url}\n", encoding="utf-8")
        config = resource_config(panel=str(panel), sap_url=sap_url, state_url=f"sqlite:///{root / 'state.db'}",
                                 max_workers=workers, log_level="WARNING")  # fmt: skip
        config["resources"]["hubspot"]["config"]["rate_window_seconds"] = window
        recorder = Recorder()
        ctx = mp.get_context("spawn")
        stop, counts = ctx.Event(), ctx.Array("l", 2)
        helper = None
        if competitor:
            rate = OTHER_SHARE * per_window / ep.TEN_SECONDS
            helper = ctx.Process(target=other_client, args=(sandbox.base_url, sandbox.token, rate, stop, counts))
            helper.start()
            time.sleep(2 * window)  # the other client is already spending when our run starts
        scenario.load = os.getloadavg()[0]
        started = time.perf_counter()
        observe = rolling_observe if observe_mode == "rolling" else ORIGINAL_OBSERVE
        try:
            with recorder.watching(), mock.patch.object(RateBudget, "observe", observe), window_margin(margin):
                summary = run_sync(instance, config)
        finally:
            stop.set()
            if helper is not None:
                helper.join(30)
        scenario.seconds = time.perf_counter() - started
        if not summary.success:
            scenario.problem = f"run failed in {summary.failed_steps}"
        stats = sandbox.stats()
        scenario.other_sent, scenario.other_rejected = int(counts[0]), int(counts[1])
        scenario.sent = len(recorder.starts)
        scenario.starts = [round(t - recorder.starts[0], 4) for t in recorder.starts]
        scenario.rejected = int(stats["rate_limited"].get("TEN_SECONDLY_ROLLING", 0)) - scenario.other_rejected
        scenario.utilization, scenario.busy_seconds = utilization(
            recorder.starts, scenario.rejected, scenario.limit, window
        )
        scenario.records = sum(stats["records"].values())
        scenario.records_per_s = scenario.records / scenario.busy_seconds if scenario.busy_seconds else 0.0
        if competitor and scenario.busy_seconds:
            other_accepted = (scenario.other_sent - scenario.other_rejected) * scenario.busy_seconds / scenario.seconds
            budget = scenario.limit * scenario.busy_seconds / window
            scenario.combined_utilization = scenario.utilization + other_accepted / budget
        if verify and summary.success:
            scenario.exact, difference = hubspot_exact(root, sap_url, sandbox, panel)
            scenario.problem = scenario.problem or difference
    return scenario


def hubspot_exact(root: Path, sap_url: str, sandbox: SandboxHandle, panel: Path) -> tuple[bool, str]:
    from fp_hubspot_assets_tests.fixtures_sync import SyncEnv, assert_hubspot_matches

    env = SyncEnv(root, sap_url, f"sqlite:///{root / 'state.db'}", panel, sandbox, instance=None)  # type: ignore[arg-type]
    try:
        assert_hubspot_matches(env)
    except AssertionError as exc:
        return False, f"HubSpot differs: {exc.args[0] if exc.args else exc!r}"
    return True, ""


def line(s: Scenario) -> str:
    text = (f"{s.name:<28} {s.seconds:6.1f} s | {s.sent:5,} requests, busy {s.busy_seconds:5.1f} s | "
            f"utilization {s.utilization:.3f} | 429s {s.rejected} = {s.reject_share:.2%} | "
            f"{s.records:,} records, {s.records_per_s:,.0f}/s | load {s.load:.1f}")  # fmt: skip
    if s.other_sent:
        text += (f"\n{'':<28} other client: {s.other_sent:,} requests, 429s {s.other_rejected} = "
                 f"{s.other_reject_share:.2%}; combined utilization {s.combined_utilization:.3f}")  # fmt: skip
    if s.exact is not None:
        text += f"\n{'':<28} HubSpot exact afterwards: {'yes' if s.exact else 'NO — ' + s.problem}"
    elif s.problem:
        text += f"\n{'':<28} {s.problem}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=1.0, help="rate window in seconds (190 per 10 s scaled)")
    parser.add_argument("--workers", type=int, default=4, help="HubSpotResource.max_workers (batches in flight)")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median reported)")
    parser.add_argument("--alone-only", action="store_true", help="skip the second-client scenario")
    parser.add_argument("--observe", choices=("as-is", "rolling"), default="as-is",
                        help="'rolling': try the proposed RateBudget.observe change (see rolling_observe)")
    parser.add_argument("--margin", type=float, default=0.0,
                        help="experiment: our window this fraction longer than HubSpot's (see window_margin)")
    parser.add_argument("--json", type=Path, help="write every scenario's figures here (read by time_model.py)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    root = args.keep or Path(tempfile.mkdtemp(prefix="fp-rate-"))
    root.mkdir(parents=True, exist_ok=True)
    sap_url = f"sqlite:///{root / 'sap.db'}"
    generate(sap_url, args.customers, seed=42)
    scenarios: list[Scenario] = []
    kinds = [False] if args.alone_only else [False, True]
    for run in range(1, args.runs + 1):
        for competitor in kinds:  # side by side in each round, so both see the same machine load
            s = run_scenario(root / f"run{run}-{int(competitor)}", sap_url, args.window, competitor, args.workers,
                             verify=competitor, observe_mode=args.observe, margin=args.margin)  # fmt: skip
            scenarios.append(s)
            print(f"run {run}: {line(s)}", flush=True)
    for name in dict.fromkeys(s.name for s in scenarios):
        group = [s for s in scenarios if s.name == name]
        u = statistics.median(s.utilization for s in group)
        r = statistics.median(s.reject_share for s in group)
        verdict = "OK" if u >= UTILIZATION_TARGET and r <= REJECT_TARGET else "TARGET MISSED"
        extra = ""
        if group[0].other_sent:
            extra = (f", other client's 429s {statistics.median(s.other_reject_share for s in group):.2%}, combined "
                     f"{statistics.median(s.combined_utilization for s in group):.3f}, exact "
                     f"{all(s.exact for s in group)}")  # fmt: skip
        print(f"median {name}: utilization {u:.3f} (target ≥ {UTILIZATION_TARGET}), 429s {r:.2%} "
              f"(target ≤ {REJECT_TARGET:.1%}){extra}" + ("" if extra else f" -> {verdict}"))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in scenarios], indent=1), encoding="utf-8")
    if any(s.exact is False or (s.problem and s.exact is None) for s in scenarios):
        raise SystemExit("a run failed or HubSpot was not exact afterwards")


if __name__ == "__main__":
    main()
