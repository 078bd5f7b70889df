"""Rate budget, retries and the daily limit, against the sandbox over HTTP with its limits and faults on.

Windows are shortened (1 s instead of HubSpot's 10 s, same requests per second) so the tests stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dagster import DagsterInstance

from fp_demo_store.generate import generate
from fp_hubspot_assets.hubspot import client as client_module
from fp_hubspot_assets.hubspot import endpoints as ep
from fp_hubspot_assets.hubspot.client import ANSWER_LOST, HubSpotClient, HubSpotError
from fp_hubspot_assets.hubspot.properties import SetupReport, ensure_properties
from fp_hubspot_assets.hubspot.ratelimit import DailyLimitReached, RateBudget
from fp_hubspot_assets.mapping import custom_properties
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv, assert_hubspot_matches, make_sync_env
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

WINDOW = 1.0


def _contacts(n: int, prefix: str = "R") -> list[tuple[str, dict[str, str]]]:
    return [(f"{prefix}{i}", {"fp_customer_id": f"{prefix}{i}", "email": f"{prefix.lower()}{i}@example.org"}) for i in range(n)]


def _prepare(sandbox: SandboxHandle) -> None:
    setup = HubSpotClient(sandbox.base_url, sandbox.token, RateBudget(10_000, None, window_seconds=0.2), backoff_base=0.01)
    ensure_properties(setup, {"contacts": custom_properties("contacts")}, SetupReport())
    sandbox.reset()  # counters and rate windows only; the properties stay


def _by_fp_id(sandbox: SandboxHandle) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in sandbox.objects("contacts"):
        key = record["properties"].get("fp_customer_id")
        counts[key] = counts.get(key, 0) + 1
    return counts


# ---------------------------------------------------------------- the rate budget against HubSpot's limits
@pytest.fixture
def limited(tmp_path: Path) -> Iterator[SandboxHandle]:
    """Starter tier (100 per 10 s → 10 per 1 s window) with rate limits enforced."""
    with running_sandbox(tmp_path / "hubspot.db", rate_limits=True, tier="starter", rate_window_seconds=WINDOW) as sb:
        _prepare(sb)
        yield sb


def _record_starts(budget: RateBudget) -> list[float]:
    """The budget's own clock reading at every slot it hands out (how long anything took is never asserted)."""
    starts: list[float] = []
    window = budget.standard
    take = window.take

    def recording_take() -> float:
        started = take()
        starts.append(started)
        return started

    window.take = recording_take  # type: ignore[method-assign]
    return starts


def _busiest_window(starts: list[float], seconds: float) -> int:
    """The most slots that ever started within one ``seconds``-long window."""
    busiest, first = 0, 0
    for last, at in enumerate(starts):
        while starts[first] <= at - seconds:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest


def test_the_budget_keeps_a_run_under_the_limit(limited: SandboxHandle) -> None:
    per_window, _daily = ep.budget_for("starter", oauth=False)
    limit = round(per_window * WINDOW / ep.TEN_SECONDS)
    budget = RateBudget(limit, None, window_seconds=WINDOW)
    starts = _record_starts(budget)
    client = HubSpotClient(limited.base_url, limited.token, budget)
    for start in range(0, 3000, 100):
        outcome = client.batch_upsert("contacts", "fp_customer_id", _contacts(3000)[start : start + 100])
        assert not outcome.failed
    assert limited.stats()["rate_limited"] == {}, "a budgeted client must never be refused"
    assert len(starts) == 30 and _busiest_window(starts, WINDOW) <= limit  # never more than the limit per window
    assert len(limited.objects("contacts")) == 3000


def test_busiest_window_counts_slots_in_a_sliding_window() -> None:
    assert _busiest_window([0.0, 0.1, 0.5, 1.05, 1.2, 1.3, 1.4], 1.0) == 5
    assert _busiest_window([0.0, 1.0, 2.0], 1.0) == 1


def test_the_remaining_header_stops_a_client_that_believes_in_a_bigger_budget(limited: SandboxHandle) -> None:
    """Another client spending the account's budget shows as a low Remaining: we wait, HubSpot never refuses."""
    greedy = RateBudget(1_000, None, window_seconds=WINDOW)
    client = HubSpotClient(limited.base_url, limited.token, greedy)
    records = _contacts(2500)
    for start in range(0, len(records), 100):
        assert not client.batch_upsert("contacts", "fp_customer_id", records[start : start + 100]).failed
    assert limited.stats()["rate_limited"] == {}, "the Remaining header must hold the client back"
    assert _by_fp_id(limited) == {key: 1 for key, _ in records}


def test_a_ten_secondly_429_waits_out_the_window_and_loses_nothing(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "hubspot.db", faults="429=0.15", fault_seed=2) as sb:
        _prepare(sb)
        window = 0.2
        budget = RateBudget(1_000, None, window_seconds=window)
        client = HubSpotClient(sb.base_url, sb.token, budget)
        records = _contacts(3000)
        for start in range(0, len(records), 100):
            assert not client.batch_upsert("contacts", "fp_customer_id", records[start : start + 100]).failed
        refused = sb.stats()["faults"].get("429", 0)
        assert refused > 0
        assert client.retries[f"{ep.OBJECTS_BATCH_UPSERT.name}:429"] == refused
        assert _by_fp_id(sb) == {key: 1 for key, _ in records}


def test_rate_limit_headers_are_read(limited: SandboxHandle) -> None:
    budget = RateBudget(1_000, None, window_seconds=WINDOW)
    client = HubSpotClient(limited.base_url, limited.token, budget)
    client.list_properties("contacts")
    assert budget.daily_remaining is not None and budget.daily_remaining > 0


def test_search_is_limited_per_second() -> None:
    clock = _FakeClock()
    budget = RateBudget(1_000, None, clock=clock.now, sleep=clock.sleep)
    for _ in range(ep.SEARCH_REQUESTS_PER_SECOND * 3):
        budget.acquire(ep.Bucket.search)
    assert 1.9 <= clock.t < 3.0  # 15 searches at 5 per second: two full seconds of waiting
    assert budget.standard.wait_time() == 0  # search does not spend the 10-second budget


def test_a_429_holds_the_next_request_until_our_oldest_leaves_the_window() -> None:
    clock = _FakeClock()
    budget = RateBudget(1_000, None, window_seconds=0.2, clock=clock.now, sleep=clock.sleep)
    budget.acquire(ep.Bucket.standard)
    clock.sleep(0.1)
    budget.penalize(ep.Bucket.standard)
    budget.acquire(ep.Bucket.standard)
    # the window rolled past our oldest request (started at 0), not a whole window from the 429
    assert budget.window_seconds <= clock.t < 0.1 + budget.window_seconds


def test_a_429_with_none_of_ours_in_the_window_holds_a_whole_window() -> None:
    clock = _FakeClock()
    budget = RateBudget(1_000, None, window_seconds=0.2, clock=clock.now, sleep=clock.sleep)
    clock.sleep(1.0)
    budget.penalize(ep.Bucket.standard)
    budget.acquire(ep.Bucket.standard)
    assert clock.t >= 1.0 + budget.window_seconds  # another client filled it: it rolls over only after a window


def test_exhausted_remaining_header_blocks_everyone_until_the_window_rolls() -> None:
    clock = _FakeClock()
    budget = RateBudget(1_000, None, clock=clock.now, sleep=clock.sleep)
    budget.observe({"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    budget.acquire(ep.Bucket.standard)
    assert clock.t >= 10.0
    budget.observe({"X-HubSpot-RateLimit-Daily-Remaining": "0"})
    with pytest.raises(DailyLimitReached, match="after .* UTC"):
        budget.acquire(ep.Bucket.standard)


class _FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


# ---------------------------------------------------------------- retries: 5xx, timeouts, dropped connections
def test_5xx_and_dropped_connections_are_retried_and_posts_land_exactly_once(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "hubspot.db", faults="500=0.15,502=0.05,503=0.05,drop=0.1", fault_seed=3) as sb:
        _prepare(sb)
        client = HubSpotClient(sb.base_url, sb.token, RateBudget(10_000, None), backoff_base=0.01, max_attempts=10)
        records = _contacts(3000)
        for start in range(0, len(records), 100):
            assert not client.batch_upsert("contacts", "fp_customer_id", records[start : start + 100]).failed
        faults = sb.stats()["faults"]
        assert faults.get("drop", 0) > 0 and faults.get("500", 0) > 0
        assert sum(client.retries.values()) >= sum(faults.values()) - 1
        assert _by_fp_id(sb) == {key: 1 for key, _ in records}


def test_a_timed_out_post_is_retried_and_lands_once(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "hubspot.db", faults="slow=0.3", fault_seed=5, slow_seconds=0.6) as sb:
        _prepare(sb)
        client = HubSpotClient(sb.base_url, sb.token, RateBudget(10_000, None), timeout=0.3, backoff_base=0.01,
                               max_attempts=12)
        records = _contacts(1000)
        for start in range(0, len(records), 100):
            assert not client.batch_upsert("contacts", "fp_customer_id", records[start : start + 100]).failed
        assert client.retries[ep.OBJECTS_BATCH_UPSERT.name] > 0
        assert _by_fp_id(sb) == {key: 1 for key, _ in records}


def test_backoff_is_exponential_bounded_and_jittered(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", delays.append)
    client = HubSpotClient("http://127.0.0.1:9", "t", RateBudget(10_000, None), max_attempts=8,
                           backoff_base=0.5, backoff_cap=4.0)

    def always_down(*_args: Any, **_kwargs: Any) -> Any:
        raise ConnectionResetError("connection reset by peer")

    with pytest.raises(HubSpotError, match=r"at http://127.0.0.1:9 failed 8 times .*host is reachable"):
        client._call(ep.OBJECTS_BATCH_UPSERT, always_down)
    assert len(delays) == 7  # no sleep after the last attempt
    for attempt, delay in enumerate(delays):
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 4.0
    assert len(set(delays)) == len(delays), "jitter: no two waits alike"


def test_a_client_error_is_not_retried(limited: SandboxHandle) -> None:
    client = HubSpotClient(limited.base_url, limited.token, RateBudget(10_000, None))
    outcome = client.batch_upsert("contacts", "no_such_property", _contacts(1))
    assert set(outcome.failed) == {"R0"}
    assert sum(client.retries.values()) == 0
    assert client.total_requests == 1


def test_a_create_whose_answer_was_lost_is_not_sent_twice(tmp_path: Path) -> None:
    """Property, group and pipeline creates are not idempotent: every answer is dropped here, yet the
    set-up ends with exactly one of each (the retry finds what the lost attempt created)."""
    with running_sandbox(tmp_path / "hubspot.db", faults="drop=0.5", fault_seed=1) as sb:
        client = HubSpotClient(sb.base_url, sb.token, RateBudget(10_000, None), backoff_base=0.01, max_attempts=12)
        ensure_properties(client, {"contacts": custom_properties("contacts")}, SetupReport())
        from hubspot.crm.pipelines import PipelineInput, PipelineStageInput

        stage = PipelineStageInput(label="Only", display_order=0, metadata={"probability": "0.5"})
        for _ in range(3):
            client.create_pipeline("deals", PipelineInput(label="Once", display_order=9, stages=[stage]))
            if sb.stats()["faults"].get("drop", 0):
                break
        assert sb.stats()["faults"].get("drop", 0) > 0
        labels = [p.label for p in client.list_pipelines("deals")]
        assert labels.count("Once") == 1
        names = [p.name for p in client.list_properties("contacts")]
        assert len(names) == len(set(names))


def test_a_batch_create_whose_answer_was_lost_is_looked_up_next_run_not_created_twice(tmp_path: Path) -> None:
    """Without a unique property (line items, products) a create cannot be retried blind: a dropped answer fails
    its batch as ANSWER_LOST, the keys stay noted as sent, and a later run finds what did land — HubSpot ends
    with exactly the source, every record once."""
    env_iter = make_sync_env(tmp_path, no_unique_on="products,line_items", faults="drop=0.3", fault_seed=3)
    env = next(env_iter)
    try:
        lost = 0
        for _ in range(6):
            summary = env.run()
            lost += sum(1 for row in env.state().log_frame(summary.run_id).iter_rows(named=True)
                        if row["error_category"] == ANSWER_LOST)
            if summary.writes == 0:
                break
        assert summary.writes == 0, "the sync did not converge"
        assert_hubspot_matches(env)  # every record exactly once
        assert lost > 0 and env.sandbox.stats()["faults"].get("drop", 0) > 0
        assert not env.state().unanswered_creates("line_items") and not env.state().unanswered_creates("products")
    finally:
        env_iter.close()


# ---------------------------------------------------------------- the daily limit ends a run cleanly
def test_the_daily_limit_ends_the_run_cleanly_and_a_later_run_completes_exactly(tmp_path: Path) -> None:
    generate(f"sqlite:///{tmp_path / 'sap.db'}", 120, seed=7)
    with (
        running_sandbox(tmp_path / "hubspot.db", rate_limits=True, daily_limit=50) as sandbox,
        DagsterInstance.ephemeral() as instance,
    ):
        env = SyncEnv(tmp_path, f"sqlite:///{tmp_path / 'sap.db'}", f"sqlite:///{tmp_path / 'state.db'}",
                      tmp_path / "panel.yaml", sandbox, instance)
        env.write_panel()
        from fp_hubspot_assets.runner import resource_config, run_sync

        config = resource_config(panel=str(env.panel_path), sap_url=env.sap_url, state_url=env.state_url)
        stopped = run_sync(instance, config)
        assert not stopped.success
        failures = [e for e in instance.all_logs(stopped.run_id) if e.dagster_event and e.dagster_event.is_step_failure]
        text = " ".join(_error_text(e.dagster_event.step_failure_data.error) for e in failures)  # type: ignore[union-attr]
        assert "daily API limit" in text and "run the sync again after" in text
        assert "Europe/Berlin" in text, "the daily limit resets at midnight in the account's time zone (account-info)"
        # the budget reads Daily-Remaining and stops before HubSpot must refuse; at worst the batches in flight
        assert sandbox.stats()["rate_limited"].get("DAILY", 0) <= 4
        written = sum(sandbox.stats()["records"].values())
        assert written > 0, "the limit should land mid-sync, after some records"

        sandbox.reset()  # a new day: the daily budget is back, HubSpot's data stays
        resumed = env.run()
        assert resumed.success
        assert_hubspot_matches(env)
        created = sum(resumed.count(t, "created") for t in ("companies", "contacts", "products", "deals", "line_items"))
        assert created + written == sum(sandbox.stats()["records"].values())
        log = env.state().log_frame()
        assert log.filter(pl.col("action") == "failed").height == 0


def _error_text(error: Any) -> str:
    """The message of a Dagster error and of every cause behind it."""
    parts = []
    while error is not None:
        parts.append(str(error.message))
        error = error.cause
    return " ".join(parts)
