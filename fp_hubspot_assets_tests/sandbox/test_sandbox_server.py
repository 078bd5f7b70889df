"""Rate limits, fault injection, inspection routes, persistence and the command line of the sandbox."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from hubspot.crm.contacts import PublicObjectSearchRequest

from hubspot_sandbox.server import add_arguments, config_from_args
from hubspot_sandbox.testing import SandboxHandle, running_sandbox

LIST = {"method": "GET", "path": "/crm/v3/objects/contacts?limit=1"}


def test_ten_second_budget_scaled_with_headers_and_429_body(tmp_path: Path) -> None:
    with running_sandbox(
        tmp_path / "h.db", rate_limits=True, rate_window_seconds=1, tier="professional"
    ) as sb:
        client = sb.client()
        responses = [client.api_request(LIST) for _ in range(25)]
        first = responses[0]
        assert first.headers["X-HubSpot-RateLimit-Max"] == "19"  # 190 per 10 s scaled to 1 s
        assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
        assert first.headers["X-HubSpot-RateLimit-Remaining"] == "18"
        assert first.headers["X-HubSpot-RateLimit-Daily"] == "625000"
        assert int(first.headers["X-HubSpot-RateLimit-Daily-Remaining"]) == 625000 - 1
        limited = [r for r in responses if r.status_code == 429]
        assert len([r for r in responses if r.status_code == 200]) == 19 and limited
        body = limited[0].json()
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert sb.stats()["rate_limited"]["TEN_SECONDLY_ROLLING"] == len(limited)


def test_starter_tier_and_daily_budget(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", rate_limits=True, tier="starter", daily_limit=3) as sb:
        client = sb.client()
        statuses = [client.api_request(LIST) for _ in range(4)]
        assert statuses[0].headers["X-HubSpot-RateLimit-Max"] == "100"
        assert [r.status_code for r in statuses] == [200, 200, 200, 429]
        assert statuses[3].json()["policyName"] == "DAILY"


def test_a_lifted_budget_is_announced_in_the_headers(tmp_path: Path) -> None:
    """Benchmarks prime a big store with the budget lifted: the headers must say so, or our client keeps pacing
    itself to the tier's 190 per 10 s."""
    with running_sandbox(tmp_path / "h.db", rate_limits=True, requests_per_ten_seconds=100_000) as sb:
        client = sb.client()
        statuses = [client.api_request(LIST) for _ in range(200)]
        assert {r.status_code for r in statuses} == {200}
        assert statuses[0].headers["X-HubSpot-RateLimit-Max"] == "100000"
        assert statuses[-1].headers["X-HubSpot-RateLimit-Remaining"] == str(100_000 - 200)


def test_search_has_its_own_per_second_limit(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", rate_limits=True) as sb:
        client = sb.client()
        search = {"method": "POST", "path": "/crm/v3/objects/contacts/search", "body": {"limit": 1}}
        results = [client.api_request(search) for _ in range(8)]
        assert [r.status_code for r in results[:5]] == [200] * 5
        assert 429 in {r.status_code for r in results[5:]}
        assert "X-HubSpot-RateLimit-Max" not in results[0].headers
        after = client.api_request(LIST)
        assert after.headers["X-HubSpot-RateLimit-Remaining"] == "189"  # searches left the 10 s bucket alone


def test_oauth_tokens_get_110_and_no_daily_headers(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", rate_limits=True) as sb:
        page = httpx.get(
            f"{sb.base_url}/oauth/authorize",
            params={"client_id": "sandbox-client-id", "redirect_uri": "http://localhost/cb"},
        )
        assert page.status_code == 200
        redirect = httpx.post(
            f"{sb.base_url}/oauth/authorize",
            data={
                "client_id": "sandbox-client-id",
                "redirect_uri": "http://localhost/cb",
                "decision": "approve",
            },
        )
        code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
        tokens = sb.client().oauth.tokens_api.create(
            grant_type="authorization_code",
            code=code,
            redirect_uri="http://localhost/cb",
            client_id="sandbox-client-id",
            client_secret="sandbox-client-secret",
        )
        response = sb.client(access_token=tokens.access_token).api_request(LIST)
        assert response.headers["X-HubSpot-RateLimit-Max"] == "110"
        assert "X-HubSpot-RateLimit-Daily" not in response.headers


def _outcomes(sb: SandboxHandle, n: int) -> list[str]:
    out = []
    with httpx.Client(base_url=sb.base_url, headers={"Authorization": f"Bearer {sb.token}"}) as http:
        for _ in range(n):
            try:
                out.append(str(http.get("/crm/v3/objects/contacts").status_code))
            except httpx.TransportError:
                out.append("drop")
    return out


def test_seeded_faults_are_reproducible_and_counted(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", faults="500=0.2,503=0.1,429=0.1,drop=0.15", fault_seed=7) as sb:
        first = _outcomes(sb, 60)
        stats = sb.stats()
        sb.reset()  # reseeds the fault generator
        assert _outcomes(sb, 60) == first
        assert {"200", "500", "503", "429", "drop"} <= set(first)
        counted = stats["requests"]["GET /crm/v3/objects/{objectType}"]
        assert counted.get("dropped") == first.count("drop") and counted.get("500") == first.count("500")
        assert stats["faults"]["drop"] == first.count("drop")


def test_faults_never_touch_inspection_routes(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", faults="500=1.0") as sb:
        assert all(httpx.get(f"{sb.base_url}/_sandbox/health").status_code == 200 for _ in range(10))
        assert sb.objects("contacts") == [] and sb.stats()["records"]["contacts"] == 0
        assert sb.client().api_request(LIST).status_code == 500


def test_a_dropped_write_is_still_applied(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db", faults="drop=1.0") as sb:
        with pytest.raises(Exception):  # noqa: B017 - urllib3 raises its own protocol errors
            sb.client().crm.contacts.basic_api.create({"properties": {"email": "lost@x.com"}})
        assert [o["properties"]["email"] for o in sb.objects("contacts")] == ["lost@x.com"]


def test_stats_reset_and_objects_inspection(sandbox_session: SandboxHandle) -> None:
    client = sandbox_session.client()
    client.crm.contacts.basic_api.create({"properties": {"email": "s@x.com"}})
    client.crm.contacts.basic_api.get_page()
    stats = sandbox_session.stats()
    assert stats["requests"]["POST /crm/v3/objects/{objectType}"] == {"201": 1}
    assert stats["requests"]["GET /crm/v3/objects/{objectType}"] == {"200": 1}
    assert stats["records"]["contacts"] == 1
    sandbox_session.reset()
    assert sandbox_session.stats()["requests"] == {} and sandbox_session.stats()["records"]["contacts"] == 1
    sandbox_session.reset(data=True)
    assert sandbox_session.objects("contacts") == []
    assert client.crm.contacts.basic_api.create(
        {"properties": {"email": "s@x.com"}}
    ).id  # schema survived wipe


def test_state_survives_clean_restart_and_crash(tmp_path: Path) -> None:
    with running_sandbox(tmp_path / "h.db") as sb:
        client = sb.client()
        company = client.crm.companies.basic_api.create({"properties": {"name": "Acme"}})
        client.crm.contacts.basic_api.create(
            {
                "properties": {"email": "p@x.com"},
                "associations": [
                    {
                        "to": {"id": company.id},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                    }
                ],
            }
        )
        client.crm.properties.groups_api.create("contacts", {"name": "fp", "label": "FP"})
        before = sb.objects("contacts")
        sb.restart()
        assert sb.objects("contacts") == before
        assert "fp" in {g.name for g in sb.client().crm.properties.groups_api.get_all("contacts").results}
        sb.client().crm.contacts.basic_api.create({"properties": {"email": "q@x.com"}})
        sb.kill()  # no shutdown flush: what returned 2xx must already be on disk
        sb.start()
        assert sorted(o["properties"]["email"] for o in sb.objects("contacts")) == ["p@x.com", "q@x.com"]
        new = sb.client().crm.contacts.basic_api.create({"properties": {"email": "r@x.com"}})
        assert int(new.id) > int(company.id)  # ids are never reused after a restart
        found = sb.client().crm.contacts.search_api.do_search(PublicObjectSearchRequest(limit=10))
        assert found.total == 3


def test_cli_flags_and_module_entry_point(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--token",
            "a",
            "--token",
            "b",
            "--rate-limits",
            "on",
            "--faults",
            "500=0.1",
            "--fault-seed",
            "7",
            "--search-delay",
            "2",
            "--token-ttl",
            "60",
            "--tier",
            "enterprise",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.tokens == ["a", "b"] and cfg.rate_limits is True and cfg.tier == "enterprise"
    assert (args.host, args.port) == ("127.0.0.1", 8765)
    with pytest.raises(SystemExit):
        parser.parse_args(["--faults", "418=0.5"])
    help_text = subprocess.run(
        [sys.executable, "-m", "hubspot_sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--rate-window-seconds" in help_text


def test_slow_fault_still_answers_and_is_counted(tmp_path: Path) -> None:
    # how long the delay lasts is the benchmarks' business (never asserted here): the request must succeed
    with running_sandbox(tmp_path / "h.db", faults="slow=1.0", slow_seconds=0.4) as sb:
        assert sb.client().api_request(LIST).status_code == 200
        assert sb.stats()["faults"] == {"slow": 1}


def test_unique_indexes_are_built_when_the_sandbox_starts(tmp_path: Path) -> None:
    """A restarted sandbox answers its first upsert as fast as the next: the unique-value indexes are built
    from the stored records at start (built on first use, the first line-item upsert after a restart of a
    1M-customer store took 3 s, inside the benchmarks' figures)."""
    from hubspot_sandbox.app import Sandbox, SandboxConfig

    state = tmp_path / "state.db"
    with running_sandbox(state) as sandbox:
        client = sandbox.client()
        client.api_request({"method": "POST", "path": "/crm/v3/objects/contacts/batch/create",
                            "body": {"inputs": [{"properties": {"email": f"p{i}@example.org"}} for i in range(3)]}})  # fmt: skip
    restarted = Sandbox(SandboxConfig(state=state))
    assert set(restarted.store.unique["contacts"]["email"]) == {f"p{i}@example.org" for i in range(3)}
