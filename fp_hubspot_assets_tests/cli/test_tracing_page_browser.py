"""The tracing page in headless Chromium, after a real sync (demo SAP database → sandbox over HTTP): a search
that finds a skipped contact by e-mail, paging past 500 rows, a record's trace. The grid screenshot is the
one README shows (written to docs/ when FP_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fp_hubspot_assets.panel import load_panel
from fp_hubspot_assets.sap.reader import SapReader
from fp_hubspot_assets.state.queries import LogQuery, search_log
from fp_hubspot_assets.tracing import read_sources
from fp_hubspot_assets.tracing_page import PAGE_SIZE, create_app
from fp_hubspot_assets_tests.fixtures_browser import Browser, serving
from fp_hubspot_assets_tests.fixtures_sync import SyncEnv, make_sync_env

DOCS = Path(__file__).resolve().parents[2] / "docs"


@dataclass
class Page:
    url: str
    env: SyncEnv


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    for env in make_sync_env(tmp_path_factory.mktemp("tracing"), customers=200):
        env.run()
        with serving(create_app(env.state(), env.sap_url, load_panel(env.panel_path))) as url:
            yield Page(url, env)


def _skipped_contact(env: SyncEnv) -> tuple[str, str]:
    """(key, e-mail) of a contact the sync skipped, with the e-mail the source holds."""
    with env.state() as store:
        skipped = search_log(store, LogQuery(object_type="contacts", action="skipped"), limit=500).rows
    with SapReader(env.sap_url) as reader:
        customers = read_sources(reader)["customers"]
    emails = dict(customers.select("customer_key", "email").iter_rows())
    for key in skipped["source_key"]:
        if emails.get(key):
            return key, emails[key].strip()
    raise AssertionError("the demo data has a skipped contact with an e-mail")


def test_search_finds_a_skipped_contact_by_email(page: Page, browser: Browser, tmp_path: Path) -> None:
    key, email = _skipped_contact(page.env)
    browser.open(f"{page.url}/records/contacts")
    browser.type("#q", email)
    browser.click("#filter")
    browser.wait_until(lambda b: "q=" in b.url())
    text = browser.text()
    row = next(line for line in text.splitlines() if line.startswith(key + " "))
    assert email in row and "skipped" in row, row
    shot = DOCS / "tracing-page.png" if os.environ.get("FP_UPDATE_SCREENSHOTS") == "1" else tmp_path / "grid.png"
    browser._call("POST", "/window/rect", {"width": 1440, "height": 720})
    browser.open(f"{page.url}/records/contacts?sort=last_action&desc=1")
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paging_goes_past_500_rows(page: Page, browser: Browser) -> None:
    with page.env.state() as store:
        mapped = store.id_map("line_items").height
    assert mapped > 5 * PAGE_SIZE, "the demo has more than 500 line items"
    browser.open(f"{page.url}/records/line_items")
    seen: set[str] = set()
    for _ in range(5):
        seen |= set(re.findall(r"^(\S+:L\d+) ", browser.text(), re.M))
        browser.click("#next")
    text = browser.text()
    total = int(re.search(r"rows 501–600 of (\d+)", text)[1])  # type: ignore[index]
    assert total >= mapped, "the grid covers the whole ID map"
    sixth = set(re.findall(r"^(\S+:L\d+) ", text, re.M))
    assert len(seen) == 500 and len(sixth) == PAGE_SIZE and not sixth & seen


def test_a_records_trace(page: Page, browser: Browser) -> None:
    with page.env.state() as store:
        deal = store.id_map("deals").row(0, named=True)
    browser.open(f"{page.url}/records/deals?q={deal['source_key']}")
    browser.click(f'a[href="/trace/{deal["source_key"]}"]')
    browser.wait_until(lambda b: "/trace/" in b.url())
    text = browser.text()
    assert f"trace {deal['source_key']}" in text
    assert deal["hubspot_id"] in text and "integration log (" in text and "created" in text
    assert "payload computed now (deals):" in text and "dealname =" in text
    browser.click("#hubspot-link")
    browser.wait_until(lambda b: "/_sandbox/objects/deals" in b.url())
    assert f'"id": "{deal["hubspot_id"]}"' in browser.text().replace('":"', '": "')


def test_log_view_filters_like_the_cli(page: Page, browser: Browser) -> None:
    browser.open(f"{page.url}/log")
    browser.type("#f-action", "skipped")
    browser.type("#f-type", "contacts")
    browser.click("#search")
    browser.wait_until(lambda b: "action=skipped" in b.url())
    rows = [line for line in browser.text().splitlines() if re.match(r"^\d{4}-\d\d-\d\d ", line)]
    assert rows and all(" contacts " in r and " skipped " in r for r in rows)
